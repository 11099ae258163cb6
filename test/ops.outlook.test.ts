// outlookAttention (VOLO) forward and backward (dV, dLogits) against the float64 oracle on every device.
import * as va from '../lib';
import {
  disposedTensor, expectTensor, floatTensor, gradcheck, intTensor, otherDevice, Rng, scoped, testDevices, toTensor,
} from './helpers';
import { outlookAttentionBackwardRef, outlookAttentionRef, outlookLogitsShape, OutlookRefOptions } from './oracle/outlook';

// (every row has all five entries: jest passes a `done` callback in place of missing ones)
type Case = [name: string, vShape: number[], heads: number, opts: OutlookRefOptions, logitStd: number];

const CASES: Case[] = [
  ['k3 stride 1, odd 5x7, 2 heads, batch 2', [2, 5, 7, 8], 2, { kernelSize: 3, stride: 1 }, 1],
  ['k3 stride 2, odd 5x7 (1/2/4-window coverage), 2 heads', [2, 5, 7, 8], 2, { kernelSize: 3, stride: 2 }, 1],
  ['k3 stride 2, even 4x4, batch 2', [2, 4, 4, 8], 2, { kernelSize: 3, stride: 2 }, 1],
  ['k5 stride 1, 5x7', [1, 5, 7, 6], 2, { kernelSize: 5, stride: 1 }, 1],
  ['k5 stride 2, 6x5', [2, 6, 5, 4], 1, { kernelSize: 5, stride: 2 }, 1],
  ['H = 1, stride 2', [2, 1, 7, 8], 2, { kernelSize: 3, stride: 2 }, 1],
  ['W = 1, stride 1, one head', [1, 6, 1, 4], 1, { kernelSize: 3, stride: 1 }, 1],
  ['1x1 image, k5', [1, 1, 1, 4], 2, { kernelSize: 5, stride: 2 }, 1],
  ['batch 1, one head, 4x4 stride 2', [1, 4, 4, 4], 1, { kernelSize: 3, stride: 2 }, 1],
  ['4 heads, d = 2', [1, 3, 5, 8], 4, { kernelSize: 3, stride: 1 }, 1],
  ['k1 (a softmax over one source: out = v)', [1, 3, 4, 4], 2, { kernelSize: 1, stride: 1 }, 1],
  ['padding 0 (windows inside the image)', [1, 5, 6, 4], 1, { kernelSize: 3, padding: 0, stride: 1 }, 1],
  ['padding 2 (more windows than pixels), stride 2', [1, 5, 4, 4], 2, { kernelSize: 3, padding: 2, stride: 2 }, 1],
  ['explicit scale, large logits (softmax stability)', [1, 4, 5, 8], 2, { kernelSize: 3, stride: 2, scale: 1.7 }, 8],
  ['VOLO head dim d = 32, stride 2', [1, 6, 6, 64], 2, { kernelSize: 3, stride: 2 }, 1],
  ['3 heads of d = 32, odd 7x5, stride 2', [1, 7, 5, 96], 3, { kernelSize: 3, stride: 2 }, 1],
  // shapes that leave the CUDA kernels' specialised (k ∈ {3,5}, s ∈ {1,2}, shared-memory-bounded) paths
  ['k7 stride 1 (generic kernels)', [1, 4, 5, 4], 2, { kernelSize: 7, stride: 1 }, 1],
  ['k3 stride 3 (generic kernels)', [2, 7, 8, 4], 2, { kernelSize: 3, stride: 3 }, 1],
  ['k5 stride 2, 16 heads of d = 1 (cell tile over the shared-memory limit)', [1, 5, 4, 16], 16, { kernelSize: 5, stride: 2 }, 1],
  ['k5 stride 1, d = 256 (window tile over the shared-memory limit)', [1, 3, 3, 256], 1, { kernelSize: 5, stride: 1 }, 1],
];

function data(shape: number[], heads: number, o: OutlookRefOptions, logitStd = 1, seed = 1) {
  const rng = new Rng(shape.reduce((p, d) => p * 7 + d, seed) + heads * 31 + (o.kernelSize ?? 3) * 5 + (o.stride ?? 1));
  const v = rng.arr(shape);
  const logits = rng.arr(outlookLogitsShape(shape, heads, o), { std: logitStd });
  const d = rng.arr(shape);
  return { v, logits, d };
}

describe('outlookAttention oracle', () => {
  const small: Case[] = [
    ['k3 stride 1, 2x3, 2 heads', [1, 2, 3, 4], 2, { kernelSize: 3, stride: 1 }, 1],
    ['k3 stride 2, odd 5x3, batch 2', [2, 5, 3, 2], 1, { kernelSize: 3, stride: 2 }, 1],
    ['k5 stride 2, 2x2 (one window larger than the image)', [1, 2, 2, 2], 1, { kernelSize: 5, stride: 2 }, 1],
    ['padding 0, explicit scale', [1, 4, 4, 2], 1, { kernelSize: 3, padding: 0, stride: 1, scale: 0.7 }, 1],
    ['H = 1', [1, 1, 4, 2], 1, { kernelSize: 3, stride: 2 }, 2],
  ];
  it.each(small)('backward matches finite differences (dV, dLogits): %s', (_, shape, heads, o) => {
    const { v, logits } = data(shape, heads, o);
    gradcheck('outlookAttention', ([a, z]) => outlookAttentionRef(a, z, o), ([a, z], d) => {
      const r = outlookAttentionBackwardRef(a, z, d, o);
      return [r.dV, r.dLogits];
    }, [v, logits]);
  });

  it('k = 1 is the identity; stride-2 k3 coverage counts are 1, 2 or 4', () => {
    const { v, logits } = data([1, 3, 4, 4], 2, { kernelSize: 1 });
    expect(Array.from(outlookAttentionRef(v, logits, { kernelSize: 1 }).data)).toEqual(Array.from(v.data));
    // Uniform logits (A = 1/9) and v = 1: every window outputs (its in-image source count)/9 at each
    // destination, and a pixel sums that over the windows covering it (padding attended, not masked).
    const shape = [1, 5, 5, 1];
    const ones = { data: new Float64Array(25).fill(1), shape };
    const zero = { data: new Float64Array(outlookLogitsShape(shape, 1, { stride: 2 }).reduce((a, b) => a * b, 1)), shape: outlookLogitsShape(shape, 1, { stride: 2 }) };
    const out = outlookAttentionRef(ones, zero, { stride: 2 });
    // Window (i,j) covers rows 2i-1..2i+1: pixel (2,2) is covered by window (1,1) only (all 9 sources in
    // the image); pixel (1,1) by windows (0,0) (4 in-image sources), (0,1), (1,0) (6 each) and (1,1) (9).
    const at = (y: number, x: number) => out.data[y * 5 + x];
    expect(at(2, 2)).toBeCloseTo(1, 12);
    expect(at(1, 1)).toBeCloseTo(4 / 9 + 6 / 9 + 6 / 9 + 1, 12);
  });
});

describe.each(testDevices())('outlookAttention on %s', (device) => {
  it.each(CASES)('forward, dV and dLogits: %s', (_, shape, heads, o, std) => scoped(() => {
    const { v, logits, d } = data(shape, heads, o, std);
    const tv = toTensor(v, device);
    const tz = toTensor(logits, device);
    const out = va.ops.outlookAttention(tv, tz, o);
    expectTensor(out, outlookAttentionRef(v, logits, o), `outlookAttention ${device}`);
    const g = va.ops.outlookAttentionBackward(tv, tz, toTensor(d, device), o);
    const r = outlookAttentionBackwardRef(v, logits, d, o);
    expectTensor(g.dV, r.dV, `outlookAttentionBackward dV ${device}`);
    expectTensor(g.dLogits, r.dLogits, `outlookAttentionBackward dLogits ${device}`);
  }));

  it('defaults: kernelSize 3, padding 1, stride 1, scale (C/M)^-1/2', () => scoped(() => {
    const shape = [1, 4, 5, 8];
    const { v, logits, d } = data(shape, 2, {});
    const tv = toTensor(v, device);
    const tz = toTensor(logits, device);
    const o = { kernelSize: 3, padding: 1, stride: 1, scale: 0.5 };
    expectTensor(va.ops.outlookAttention(tv, tz), outlookAttentionRef(v, logits, o), `outlookAttention defaults ${device}`);
    expectTensor(va.ops.outlookAttentionBackward(tv, tz, toTensor(d, device)).dLogits,
      outlookAttentionBackwardRef(v, logits, d, o).dLogits, `outlookAttentionBackward defaults ${device}`);
  }));

  it('repeated calls overwrite their outputs (no accumulation into recycled memory)', () => scoped(() => {
    const o = { kernelSize: 3, stride: 2 };
    const { v, logits, d } = data([1, 5, 7, 8], 2, o);
    const tv = toTensor(v, device);
    const tz = toTensor(logits, device);
    const td = toTensor(d, device);
    const ref = outlookAttentionBackwardRef(v, logits, d, o);
    for (let i = 0; i < 3; i++) {
      va.scope(() => {
        expectTensor(va.ops.outlookAttention(tv, tz, o), outlookAttentionRef(v, logits, o), `outlookAttention #${i} ${device}`);
        const g = va.ops.outlookAttentionBackward(tv, tz, td, o);
        expectTensor(g.dV, ref.dV, `dV #${i} ${device}`);
        expectTensor(g.dLogits, ref.dLogits, `dLogits #${i} ${device}`);
      });
    }
  }));

  it('empty batch and zero channels', () => scoped(() => {
    const v0 = va.zeros([0, 4, 4, 8], { device });
    const z0 = va.zeros([0, 2, 2, 2, 9, 9], { device });
    expect(va.ops.outlookAttention(v0, z0, { stride: 2 }).shape).toEqual([0, 4, 4, 8]);
    const g0 = va.ops.outlookAttentionBackward(v0, z0, v0, { stride: 2 });
    expect(g0.dV.shape).toEqual([0, 4, 4, 8]);
    expect(g0.dLogits.shape).toEqual([0, 2, 2, 2, 9, 9]);
    const vc = va.zeros([1, 3, 3, 0], { device });
    const zc = va.ones([1, 3, 3, 2, 9, 9], { device });
    expect(va.ops.outlookAttention(vc, zc).shape).toEqual([1, 3, 3, 0]);
    const gc = va.ops.outlookAttentionBackward(vc, zc, vc);
    expect(Array.from(gc.dLogits.dataSync()).every((x) => x === 0)).toBe(true);
  }));

  it('rejects bad inputs', () => scoped(() => {
    const oa = va.ops.outlookAttention as (...a: unknown[]) => unknown;
    const ob = va.ops.outlookAttentionBackward as (...a: unknown[]) => unknown;
    const v = floatTensor([2, 5, 7, 8], device);
    const z = floatTensor([2, 3, 4, 2, 9, 9], device); // stride 2 grid of 5x7
    const s2 = { stride: 2 };
    expect(() => oa(v, z, s2)).not.toThrow();
    // channels not divisible by heads
    expect(() => oa(v, floatTensor([2, 3, 4, 3, 9, 9], device), s2)).toThrow(
      /^outlookAttention: argument 'v' expected a channel count C divisible by the number of heads 3 \(dimension 3 of logits\), received a float32 tensor of shape \[2, 5, 7, 8\]/);
    expect(() => oa(v, floatTensor([2, 3, 4, 0, 9, 9], device), s2)).toThrow(/^outlookAttention: argument 'logits' expected at least one head/);
    // logits not on the window grid
    expect(() => oa(v, z)).toThrow(
      /^outlookAttention: argument 'logits' expected shape \[B, h, w, \*, k², k²\] = \[2, 5, 7, \*, 9, 9\] \(the window grid of v \[2, 5, 7, 8\] with kernelSize 3, padding 1, stride 1; \* = heads\), received a float32 tensor of shape \[2, 3, 4, 2, 9, 9\]/);
    expect(() => oa(v, floatTensor([2, 3, 4, 2, 9, 8], device), s2)).toThrow(/^outlookAttention: argument 'logits' expected shape \[B, h, w, \*, k², k²\] = \[2, 3, 4, \*, 9, 9\]/);
    expect(() => oa(v, floatTensor([1, 3, 4, 2, 9, 9], device), s2)).toThrow(/^outlookAttention: argument 'logits' expected shape \[B, h, w, \*, k², k²\] = \[2, 3, 4, \*, 9, 9\]/);
    expect(() => oa(v, z, { kernelSize: 5, stride: 2 })).toThrow(/^outlookAttention: argument 'logits' expected shape \[B, h, w, \*, k², k²\] = \[2, 3, 4, \*, 25, 25\]/);
    expect(() => oa(v, floatTensor([2, 3, 4, 2, 81], device), s2)).toThrow(/^outlookAttention: argument 'logits' expected a rank-6 tensor/);
    // kernel size, padding, stride, scale
    expect(() => oa(v, z, { kernelSize: 4, stride: 2 })).toThrow(/^outlookAttention: argument 'options.kernelSize' expected an odd positive integer \(windows are centred\), received 4/);
    expect(() => oa(v, z, { kernelSize: 0 })).toThrow(/^outlookAttention: argument 'options.kernelSize' expected a positive integer, received 0/);
    expect(() => oa(v, z, { kernelSize: 2.5 })).toThrow(/^outlookAttention: argument 'options.kernelSize' expected a positive integer/);
    expect(() => oa(v, z, { stride: 2, padding: 3 })).toThrow(/^outlookAttention: argument 'options.padding' expected an integer in \[0, 3\) \(0 <= padding < kernelSize\), received 3/);
    expect(() => oa(v, z, { stride: 2, padding: -1 })).toThrow(/^outlookAttention: argument 'options.padding' expected an integer in \[0, 3\)/);
    expect(() => oa(v, z, { stride: 2, padding: 0.5 })).toThrow(/^outlookAttention: argument 'options.padding' expected an integer in \[0, 3\)/);
    expect(() => oa(v, z, { stride: 0 })).toThrow(/^outlookAttention: argument 'options.stride' expected a positive integer, received 0/);
    expect(() => oa(v, z, { stride: -2 })).toThrow(/^outlookAttention: argument 'options.stride' expected a positive integer/);
    expect(() => oa(v, z, { stride: 2, scale: NaN })).toThrow(/^outlookAttention: argument 'options.scale' expected a finite number, received NaN/);
    expect(() => oa(v, z, { stride: 2, scale: Infinity })).toThrow(/^outlookAttention: argument 'options.scale' expected a finite number, received Infinity/);
    expect(() => oa(v, z, { stride: 2, scale: '1' })).toThrow(/^outlookAttention: argument 'options.scale' expected a finite number/);
    expect(() => oa(v, z, 3)).toThrow(/^outlookAttention: argument 'options' expected an options object, received 3/);
    // image too small for the kernel
    expect(() => oa(floatTensor([1, 1, 4, 2], device), floatTensor([1, 1, 1, 1, 25, 25], device), { kernelSize: 5, padding: 1 })).toThrow(
      /^outlookAttention: argument 'v' expected a spatial size H with H \+ 2·padding >= kernelSize \(kernelSize 5, padding 1: H >= 3\)/);
    expect(() => oa(floatTensor([1, 4, 2, 2], device), floatTensor([1, 1, 1, 1, 25, 25], device), { kernelSize: 5, padding: 1 })).toThrow(
      /^outlookAttention: argument 'v' expected a spatial size W/);
    // dtype, rank, devices, disposed
    expect(() => oa(intTensor([2, 5, 7, 8], device), z, s2)).toThrow(/^outlookAttention: argument 'v' expected dtype float32/);
    expect(() => oa(v, intTensor([2, 3, 4, 2, 9, 9], device), s2)).toThrow(/^outlookAttention: argument 'logits' expected dtype float32/);
    expect(() => oa(floatTensor([5, 7, 8], device), z, s2)).toThrow(/^outlookAttention: argument 'v' expected a rank-4 tensor/);
    expect(() => oa([1, 2, 3], z, s2)).toThrow(/^outlookAttention: argument 'v' expected a float32 Tensor, received \[1, 2, 3\]/);
    expect(() => oa(v, floatTensor([2, 3, 4, 2, 9, 9], otherDevice(device)), s2)).toThrow(
      new RegExp(`^outlookAttention: argument 'logits' expected a tensor on ${device} \\(the device of 'v'\\)`));
    expect(() => oa(disposedTensor([2, 5, 7, 8], device), z, s2)).toThrow(/^outlookAttention: argument 'v' expected a live tensor/);
    expect(() => oa(v, disposedTensor([2, 3, 4, 2, 9, 9], device), s2)).toThrow(/^outlookAttention: argument 'logits' expected a live tensor/);
    // backward
    expect(() => ob(v, z, floatTensor([2, 5, 7, 4], device), s2)).toThrow(/^outlookAttentionBackward: argument 'dOut' expected shape \[2, 5, 7, 8\] \(the shape of the forward output, that of v\)/);
    expect(() => ob(v, z, floatTensor([2, 5, 7, 8], otherDevice(device)), s2)).toThrow(new RegExp(`^outlookAttentionBackward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => ob(v, z, disposedTensor([2, 5, 7, 8], device), s2)).toThrow(/^outlookAttentionBackward: argument 'dOut' expected a live tensor/);
    expect(() => ob(v, floatTensor([2, 3, 4, 3, 9, 9], device), v, s2)).toThrow(/^outlookAttentionBackward: argument 'v' expected a channel count C divisible by the number of heads 3/);
    expect(() => ob(v, z, v, { stride: 2, kernelSize: 2 })).toThrow(/^outlookAttentionBackward: argument 'options.kernelSize' expected an odd positive integer/);
    expect(() => ob(v, z, v)).toThrow(/^outlookAttentionBackward: argument 'logits' expected shape \[B, h, w, \*, k², k²\] = \[2, 5, 7, \*, 9, 9\]/);
  }));
});
