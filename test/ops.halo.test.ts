// haloAttention (HaloNet) forward (out, lse) and backward (dQ, dK, dV, dRelH, dRelW) against the float64
// oracle (test/oracle/halo.ts, itself checked against timm's unfold formulation and finite differences)
// on every device.
import * as va from '../lib';
import { disposedTensor, expectTensor, floatTensor, intTensor, otherDevice, read, Rng, scoped, testDevices, toTensor } from './helpers';
import { haloAttentionBackwardRef, haloAttentionRef, HaloRefOptions } from './oracle/halo';

interface Case {
  name: string;
  /** B, H, W, M, dk, dv */
  dims: [number, number, number, number, number, number];
  o: HaloRefOptions;
  /** std of q and k (large values stress the softmax) */
  std?: number;
}

const CASES: Case[] = [
  { name: 'several blocks: 8x12 map, b4 h1, 2 heads, batch 2', dims: [2, 8, 12, 2, 8, 8], o: { blockSize: 4, haloSize: 1 } },
  { name: 'a single all-border block (b = H = W = 4, h 2)', dims: [1, 4, 4, 2, 4, 4], o: { blockSize: 4, haloSize: 2 } },
  { name: 'stride 2 (strided queries, b_q = 2), 8x8, batch 2', dims: [2, 8, 8, 2, 4, 4], o: { blockSize: 4, haloSize: 1, stride: 2 } },
  { name: 'stride 2, non-square 4x12, one head, dk != dv', dims: [1, 4, 12, 1, 6, 4], o: { blockSize: 4, haloSize: 2, stride: 2 } },
  { name: 'non-square 4x8, b2 h1, one head', dims: [1, 4, 8, 1, 4, 6], o: { blockSize: 2, haloSize: 1 } },
  { name: 'scalePosEmbed, batch 1, one head, odd block 3', dims: [1, 6, 6, 1, 4, 4], o: { blockSize: 3, haloSize: 1, scalePosEmbed: true } },
  { name: 'scalePosEmbed with stride 2, 8x4', dims: [2, 8, 4, 2, 4, 4], o: { blockSize: 4, haloSize: 1, stride: 2, scalePosEmbed: true } },
  { name: 'halo 0 (plain blocked attention), dk 3, dv 5', dims: [1, 6, 4, 2, 3, 5], o: { blockSize: 2, haloSize: 0 } },
  { name: 'halo >= block (b2 h3: windows reach two blocks away)', dims: [1, 4, 6, 1, 4, 4], o: { blockSize: 2, haloSize: 3 } },
  { name: 'odd block 3, h1, dk 5, dv 3', dims: [1, 6, 9, 2, 5, 3], o: { blockSize: 3, haloSize: 1 } },
  { name: 'block 1 (every query its own block), h1', dims: [1, 3, 2, 2, 4, 4], o: { blockSize: 1, haloSize: 1 } },
  { name: 'stride 2 with b_q = 1 (b2 h1)', dims: [1, 4, 2, 1, 2, 2], o: { blockSize: 2, haloSize: 1, stride: 2 } },
  { name: 'HaloNet head size dk = dv = 32, b8 h3 (one 14x14 window)', dims: [1, 8, 8, 2, 32, 32], o: { blockSize: 8, haloSize: 3 } },
  { name: 'dk = dv = 64, b8 h3 (large window tile)', dims: [1, 8, 8, 1, 64, 64], o: { blockSize: 8, haloSize: 3 } },
  { name: 'stride 2, b8 h3, dk 32, 16x8 (halonet strided-query layer)', dims: [1, 16, 8, 1, 32, 16], o: { blockSize: 8, haloSize: 3, stride: 2 } },
  { name: 'explicit scale, large logits (softmax stability)', dims: [1, 8, 8, 2, 4, 4], o: { blockSize: 4, haloSize: 2, scale: 1.3 }, std: 4 },
];

function data(c: Case, seed = 1) {
  const [B, H, W, M, dk, dv] = c.dims;
  const s = c.o.stride ?? 1;
  const win = c.o.blockSize + 2 * c.o.haloSize;
  const rng = new Rng(c.dims.reduce((p, d) => p * 7 + d, seed) + c.o.blockSize * 13 + c.o.haloSize * 5 + s);
  const std = c.std ?? 1;
  return {
    q: rng.arr([B, H / s, W / s, M, dk], { std }),
    k: rng.arr([B, H, W, M, dk], { std }),
    v: rng.arr([B, H, W, M, dv]),
    relH: rng.arr([2 * win - 1, dk], { std: 0.5 }),
    relW: rng.arr([2 * win - 1, dk], { std: 0.5 }),
    d: rng.arr([B, H / s, W / s, M, dv]),
  };
}

describe.each(testDevices())('haloAttention on %s', (device) => {
  it.each(CASES.map((c) => [c.name, c] as const))('forward (out, lse) and all five gradients: %s', (_, c) => scoped(() => {
    const x = data(c);
    const t = { q: toTensor(x.q, device), k: toTensor(x.k, device), v: toTensor(x.v, device), relH: toTensor(x.relH, device), relW: toTensor(x.relW, device) };
    const f = va.ops.haloAttention(t.q, t.k, t.v, t.relH, t.relW, c.o);
    const ref = haloAttentionRef(x.q, x.k, x.v, x.relH, x.relW, c.o);
    expectTensor(f.out, ref.out, `haloAttention out ${device}`);
    expectTensor(f.lse, ref.lse, `haloAttention lse ${device}`);
    const g = va.ops.haloAttentionBackward(t.q, t.k, t.v, t.relH, t.relW, f.out, f.lse, toTensor(x.d, device), c.o);
    const r = haloAttentionBackwardRef(x.q, x.k, x.v, x.relH, x.relW, x.d, c.o);
    expectTensor(g.dQ, r.dQ, `haloAttentionBackward dQ ${device}`);
    expectTensor(g.dK, r.dK, `haloAttentionBackward dK ${device}`);
    expectTensor(g.dV, r.dV, `haloAttentionBackward dV ${device}`);
    expectTensor(g.dRelH, r.dRelH, `haloAttentionBackward dRelH ${device}`);
    expectTensor(g.dRelW, r.dRelW, `haloAttentionBackward dRelW ${device}`);
  }));

  it('defaults: stride 1, scale dk^-1/2, scalePosEmbed false', () => scoped(() => {
    const c: Case = { name: 'defaults', dims: [1, 4, 8, 2, 4, 4], o: { blockSize: 4, haloSize: 1 } };
    const x = data(c);
    const explicit: HaloRefOptions = { blockSize: 4, haloSize: 1, stride: 1, scale: 0.5, scalePosEmbed: false };
    const f = va.ops.haloAttention(toTensor(x.q, device), toTensor(x.k, device), toTensor(x.v, device),
      toTensor(x.relH, device), toTensor(x.relW, device), { blockSize: 4, haloSize: 1 });
    expectTensor(f.out, haloAttentionRef(x.q, x.k, x.v, x.relH, x.relW, explicit).out, `haloAttention defaults ${device}`);
  }));

  it('repeated calls overwrite their outputs, and the backward is bitwise deterministic', () => scoped(() => {
    const c = CASES[0];
    const x = data(c, 7);
    const t = [x.q, x.k, x.v, x.relH, x.relW].map((a) => toTensor(a, device));
    const d = toTensor(x.d, device);
    const r = haloAttentionBackwardRef(x.q, x.k, x.v, x.relH, x.relW, x.d, c.o);
    let first: Float32Array[] | null = null;
    for (let i = 0; i < 3; i++) {
      va.scope(() => {
        const f = va.ops.haloAttention(t[0], t[1], t[2], t[3], t[4], c.o);
        const g = va.ops.haloAttentionBackward(t[0], t[1], t[2], t[3], t[4], f.out, f.lse, d, c.o);
        expectTensor(g.dK, r.dK, `dK #${i} ${device}`);
        expectTensor(g.dRelW, r.dRelW, `dRelW #${i} ${device}`);
        const now = [g.dQ, g.dK, g.dV, g.dRelH, g.dRelW].map(read);
        if (!first) first = now;
        else now.forEach((a, j) => expect(Buffer.from(a.buffer).equals(Buffer.from(first![j].buffer))).toBe(true));
      });
    }
  }));

  it('empty batch: empty outputs, zero table gradients', () => scoped(() => {
    const o = { blockSize: 2, haloSize: 1 };
    const q = va.zeros([0, 4, 4, 2, 3], { device });
    const v = va.zeros([0, 4, 4, 2, 5], { device });
    const rel = va.ones([7, 3], { device });
    const f = va.ops.haloAttention(q, q, v, rel, rel, o);
    expect(f.out.shape).toEqual([0, 4, 4, 2, 5]);
    expect(f.lse.shape).toEqual([0, 4, 4, 2]);
    const g = va.ops.haloAttentionBackward(q, q, v, rel, rel, f.out, f.lse, f.out, o);
    expect(g.dQ.shape).toEqual([0, 4, 4, 2, 3]);
    expect(g.dV.shape).toEqual([0, 4, 4, 2, 5]);
    expect(Array.from(read(g.dRelH)).every((e) => e === 0)).toBe(true);
    expect(Array.from(read(g.dRelW)).every((e) => e === 0)).toBe(true);
  }));

  it('rejects bad inputs', () => scoped(() => {
    const ha = va.ops.haloAttention as (...a: unknown[]) => unknown;
    const hb = va.ops.haloAttentionBackward as (...a: unknown[]) => unknown;
    const o = { blockSize: 4, haloSize: 1 };
    const q = floatTensor([2, 8, 12, 2, 4], device);
    const k = floatTensor([2, 8, 12, 2, 4], device);
    const v = floatTensor([2, 8, 12, 2, 6], device);
    const rel = floatTensor([11, 4], device);
    expect(() => ha(q, k, v, rel, rel, o)).not.toThrow();
    // H, W not multiples of the block
    expect(() => ha(floatTensor([2, 6, 12, 2, 4], device), floatTensor([2, 6, 12, 2, 4], device), floatTensor([2, 6, 12, 2, 6], device), rel, rel, o)).toThrow(
      /^haloAttention: argument 'k' expected a map H×W whose sides are positive multiples of blockSize 4 \(dimensions 1, 2\), received a float32 tensor of shape \[2, 6, 12, 2, 4\]/);
    expect(() => ha(q, k, v, rel, rel, { blockSize: 5, haloSize: 1 })).toThrow(/^haloAttention: argument 'k' expected a map H×W whose sides are positive multiples of blockSize 5/);
    // table length != 2·win − 1, table width != dk
    expect(() => ha(q, k, v, floatTensor([12, 4], device), rel, o)).toThrow(
      /^haloAttention: argument 'relH' expected shape \[2·win − 1, dk\] = \[11, 4\] \(win = blockSize \+ 2·haloSize = 6\), received a float32 tensor of shape \[12, 4\]/);
    expect(() => ha(q, k, v, rel, floatTensor([11, 5], device), o)).toThrow(/^haloAttention: argument 'relW' expected shape \[2·win − 1, dk\] = \[11, 4\]/);
    expect(() => ha(q, k, v, rel, rel, { blockSize: 4, haloSize: 2 })).toThrow(/^haloAttention: argument 'relH' expected shape \[2·win − 1, dk\] = \[15, 4\]/);
    // dk mismatch between q and k, mismatched v, q not on the query grid
    expect(() => ha(floatTensor([2, 8, 12, 2, 5], device), k, v, rel, rel, o)).toThrow(
      /^haloAttention: argument 'q' expected shape \[B, H\/stride, W\/stride, M, dk\] = \[2, 8, 12, 2, 4\] \(k is \[2, 8, 12, 2, 4\], stride 1\), received a float32 tensor of shape \[2, 8, 12, 2, 5\]/);
    expect(() => ha(q, k, floatTensor([2, 8, 12, 1, 6], device), rel, rel, o)).toThrow(/^haloAttention: argument 'v' expected shape \[B, H, W, M, dv\] = \[2, 8, 12, 2, \*\]/);
    expect(() => ha(q, k, v, rel, rel, { ...o, stride: 2 })).toThrow(/^haloAttention: argument 'q' expected shape \[B, H\/stride, W\/stride, M, dk\] = \[2, 4, 6, 2, 4\]/);
    expect(() => ha(floatTensor([2, 8, 12, 2, 0], device), floatTensor([2, 8, 12, 2, 0], device), v, floatTensor([11, 0], device), floatTensor([11, 0], device), o)).toThrow(
      /^haloAttention: argument 'k' expected a key size dk >= 1/);
    // options
    expect(() => ha(q, k, v, rel, rel, { haloSize: 1 })).toThrow(/^haloAttention: argument 'options.blockSize' expected a positive integer \(the block size b; required\), received undefined/);
    expect(() => ha(q, k, v, rel, rel, { blockSize: 4 })).toThrow(/^haloAttention: argument 'options.haloSize' expected a non-negative integer \(the halo h; required\)/);
    expect(() => ha(q, k, v, rel, rel)).toThrow(/^haloAttention: argument 'options.blockSize' expected/);
    expect(() => ha(q, k, v, rel, rel, { blockSize: 0, haloSize: 1 })).toThrow(/^haloAttention: argument 'options.blockSize' expected a positive integer, received 0/);
    expect(() => ha(q, k, v, rel, rel, { blockSize: 4, haloSize: -1 })).toThrow(/^haloAttention: argument 'options.haloSize' expected a non-negative integer, received -1/);
    expect(() => ha(q, k, v, rel, rel, { ...o, stride: 3 })).toThrow(/^haloAttention: argument 'options.stride' expected 1 or 2, received 3/);
    expect(() => ha(floatTensor([1, 3, 3, 1, 4], device), floatTensor([1, 6, 6, 1, 4], device), floatTensor([1, 6, 6, 1, 4], device),
      floatTensor([9, 4], device), floatTensor([9, 4], device), { blockSize: 3, haloSize: 1, stride: 2 })).toThrow(
      /^haloAttention: argument 'options.stride' expected 1 with an odd blockSize \(3\): strided queries need an even block/);
    expect(() => ha(q, k, v, rel, rel, { ...o, scale: NaN })).toThrow(/^haloAttention: argument 'options.scale' expected a finite number, received NaN/);
    expect(() => ha(q, k, v, rel, rel, { ...o, scalePosEmbed: 1 })).toThrow(/^haloAttention: argument 'options.scalePosEmbed' expected a boolean, received 1/);
    expect(() => ha(q, k, v, rel, rel, 3)).toThrow(/^haloAttention: argument 'options' expected an options object, received 3/);
    // dtype, rank, devices, disposed
    expect(() => ha(intTensor([2, 8, 12, 2, 4], device), k, v, rel, rel, o)).toThrow(/^haloAttention: argument 'q' expected dtype float32/);
    expect(() => ha(q, k, v, floatTensor([11, 4, 1], device), rel, o)).toThrow(/^haloAttention: argument 'relH' expected a rank-2 tensor/);
    expect(() => ha(q, floatTensor([8, 12, 2, 4], device), v, rel, rel, o)).toThrow(/^haloAttention: argument 'k' expected a rank-5 tensor/);
    expect(() => ha(q, k, v, rel, floatTensor([11, 4], otherDevice(device)), o)).toThrow(
      new RegExp(`^haloAttention: argument 'relW' expected a tensor on ${device} \\(the device of 'q'\\)`));
    expect(() => ha(q, disposedTensor([2, 8, 12, 2, 4], device), v, rel, rel, o)).toThrow(/^haloAttention: argument 'k' expected a live tensor/);
    // backward: out / lse / dOut shapes and devices
    const out = floatTensor([2, 8, 12, 2, 6], device);
    const lse = floatTensor([2, 8, 12, 2], device);
    expect(() => hb(q, k, v, rel, rel, out, lse, out, o)).not.toThrow();
    expect(() => hb(q, k, v, rel, rel, out, lse, floatTensor([2, 8, 12, 2, 4], device), o)).toThrow(
      /^haloAttentionBackward: argument 'dOut' expected shape \[2, 8, 12, 2, 6\] \(the shape of the forward output\)/);
    expect(() => hb(q, k, v, rel, rel, out, floatTensor([2, 8, 12, 1], device), out, o)).toThrow(/^haloAttentionBackward: argument 'lse' expected shape \[2, 8, 12, 2\] \(the forward's lse\)/);
    expect(() => hb(q, k, v, rel, rel, floatTensor([2, 8, 12, 2, 4], device), lse, out, o)).toThrow(/^haloAttentionBackward: argument 'out' expected shape \[2, 8, 12, 2, 6\]/);
    expect(() => hb(q, k, v, rel, rel, out, lse, floatTensor([2, 8, 12, 2, 6], otherDevice(device)), o)).toThrow(
      new RegExp(`^haloAttentionBackward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => hb(q, k, v, floatTensor([13, 4], device), rel, out, lse, out, o)).toThrow(/^haloAttentionBackward: argument 'relH' expected shape \[2·win − 1, dk\] = \[11, 4\]/);
    expect(() => hb(q, k, v, rel, rel, out, disposedTensor([2, 8, 12, 2], device), out, o)).toThrow(/^haloAttentionBackward: argument 'lse' expected a live tensor/);
  }));
});
