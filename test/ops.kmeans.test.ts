// kmeansCrossAttention (kMaX-DeepLab) forward (update, assign, logits) and backward (the gather), the
// row L2 normalisation, and nn.KMeansClusterUpdate, against float64 oracles on every device;
// assignments identical across devices; the out-of-range assignment as a stream error.
import * as va from '../lib';
import type { Device } from '../lib';
import { disposedTensor, expectTensor, floatTensor, gradcheck, otherDevice, read, Rng, scoped, testDevices, toTensor } from './helpers';
import { kmeansBackwardRef, kmeansRef, l2NormalizeBackwardRef, l2NormalizeRef } from './oracle/kmeans';
import { Arr } from './oracle/nd';

interface Case {
  name: string;
  /** B, N, L, D, Dv */
  dims: [number, number, number, number, number];
  /** center indices made identical to an earlier center: [copy, of] */
  ties?: [number, number][];
  /** a center that no pixel picks (all pixels positive, this center negative) */
  empty?: number;
}

const CASES: Case[] = [
  { name: 'batch 2, N 37, L 5', dims: [2, 37, 5, 8, 6] },
  { name: 'L = 1 (every pixel in one cluster)', dims: [2, 9, 1, 4, 3] },
  { name: 'one pixel', dims: [1, 1, 3, 5, 2] },
  { name: 'N 301 (not a multiple of any tile), L 16, D 16, Dv 33', dims: [1, 301, 16, 16, 33] },
  { name: 'ties: identical centers go to the lowest index', dims: [2, 64, 6, 8, 4], ties: [[4, 1], [5, 1], [3, 0]] },
  { name: 'an empty cluster gets a zero update', dims: [2, 50, 4, 6, 5], empty: 2 },
  { name: 'kMaX head sizes D 128, Dv 256, L 128', dims: [1, 67, 128, 128, 256] },
];

function data(c: Case, seed = 1) {
  const [B, N, L, D, Dv] = c.dims;
  const rng = new Rng(c.dims.reduce((p, d) => p * 13 + d, seed));
  const pixels = rng.arr([B, N, D]);
  const centers = rng.arr([B, L, D]);
  if (c.empty !== undefined) {
    for (let i = 0; i < pixels.data.length; i++) pixels.data[i] = Math.abs(pixels.data[i]);
    for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) centers.data[(b * L + c.empty) * D + d] = -Math.abs(centers.data[(b * L + c.empty) * D + d]) - 0.5;
  }
  for (const [copy, of] of c.ties ?? []) {
    for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) centers.data[(b * L + copy) * D + d] = centers.data[(b * L + of) * D + d];
  }
  return { pixels, centers, values: rng.arr([B, N, Dv]), dUpdate: rng.arr([B, L, Dv]) };
}

function assignOf(t: va.Tensor): number[] {
  return Array.from(t.dataSync() as Int32Array);
}

describe('k-means and L2 normalisation oracles', () => {
  it('l2NormalizeBackward matches finite differences (rows above and below eps)', () => {
    const rng = new Rng(3);
    const x = rng.arr([3, 5]);
    gradcheck('l2Normalize', ([a]) => l2NormalizeRef(a), ([a], d) => [l2NormalizeBackwardRef(a, d)], [x]);
    // eps 0.5 with a row of norm ~0.1 (the clamped branch) and rows of norm > 0.5; the step (1e-6)
    // stays far from the branch boundary
    for (let c = 0; c < 5; c++) x.data[5 + c] = 0.04 * (c - 2);
    gradcheck('l2Normalize eps', ([a]) => l2NormalizeRef(a, 0.5), ([a], d) => [l2NormalizeBackwardRef(a, d, 0.5)], [x]);
  });
});

describe.each(testDevices())('kmeansCrossAttention on %s', (device) => {
  it.each(CASES.map((c) => [c.name, c] as const))('forward (update, assign, logits) and backward: %s', (_, c) => scoped(() => {
    const x = data(c);
    const [, N] = c.dims;
    const ref = kmeansRef(x.pixels, x.centers, x.values);
    const r = va.ops.kmeansCrossAttention(toTensor(x.pixels, device), toTensor(x.centers, device), toTensor(x.values, device), { returnLogits: true });
    expect(r.assign.dtype).toBe('int32');
    expect(assignOf(r.assign)).toEqual(Array.from(ref.assign));
    expectTensor(r.update, ref.update, `kmeans update ${device}`);
    expectTensor(r.logits!, ref.logits, `kmeans logits ${device}`);
    if (c.ties) for (const [copy] of c.ties) expect(assignOf(r.assign).includes(copy)).toBe(false);
    if (c.empty !== undefined) {
      const u = read(r.update);
      const Dv = c.dims[4];
      for (let b = 0; b < c.dims[0]; b++) {
        expect(Array.from(u.subarray((b * c.dims[2] + c.empty) * Dv, (b * c.dims[2] + c.empty + 1) * Dv)).every((v) => v === 0)).toBe(true);
      }
    }
    const dV = va.ops.kmeansCrossAttentionBackward(r.assign, toTensor(x.dUpdate, device), { numPixels: N });
    expectTensor(dV, kmeansBackwardRef(ref.assign, x.dUpdate, N), `kmeans dValues ${device}`, 0);
    // without logits: the same update and assignment
    const r2 = va.ops.kmeansCrossAttention(toTensor(x.pixels, device), toTensor(x.centers, device), toTensor(x.values, device));
    expect(r2.logits).toBeUndefined();
    expect(assignOf(r2.assign)).toEqual(assignOf(r.assign));
    expect(Array.from(read(r2.update))).toEqual(Array.from(read(r.update)));
  }));

  it('assignments are identical to the cpu device\'s, bit for bit, on near-tie data', () => scoped(() => {
    // centers that differ by one ulp-scale perturbation: the canonical score order decides
    const rng = new Rng(11);
    const B = 2, N = 257, L = 24, D = 48;
    const pixels = rng.arr([B, N, D]);
    const centers = rng.arr([B, L, D]);
    for (let b = 0; b < B; b++) for (let l = 1; l < L; l += 2) for (let d = 0; d < D; d++) {
      const i = (b * L + l) * D + d;
      centers.data[i] = Math.fround(centers.data[i - D] * (1 + (d === 0 ? 2 ** -20 : 0)));
    }
    const values = rng.arr([B, N, 3]);
    const on = (dev: Device) => assignOf(va.ops.kmeansCrossAttention(toTensor(pixels, dev), toTensor(centers, dev), toTensor(values, dev)).assign);
    expect(on(device)).toEqual(on('cpu'));
  }));

  it('repeated calls are bitwise identical (deterministic update)', () => scoped(() => {
    const x = data(CASES[3], 5);
    const args = [toTensor(x.pixels, device), toTensor(x.centers, device), toTensor(x.values, device)] as const;
    const a = read(va.ops.kmeansCrossAttention(...args).update);
    const b = read(va.ops.kmeansCrossAttention(...args).update);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  }));

  it('an out-of-range assignment in backward becomes a stream error naming the op; the device stays usable', () => {
    const bad = va.tensor(Int32Array.from([0, 1, 3, 0]), [1, 4], { device, dtype: 'int32' });
    const dU = va.ones([1, 3, 2], { device });
    const dV = va.ops.kmeansCrossAttentionBackward(bad, dU, { numPixels: 4 }); // enqueued: no synchronous error
    expect(() => dV.dataSync()).toThrow(/kmeansCrossAttentionBackward: assign\[0, 2\] = 3 is outside \[0, 3\)/);
    const neg = va.tensor(Int32Array.from([0, -1]), [1, 2], { device, dtype: 'int32' });
    const dV2 = va.ops.kmeansCrossAttentionBackward(neg, dU, { numPixels: 2 });
    expect(() => va.synchronizeSync(device)).toThrow(/kmeansCrossAttentionBackward: assign\[0, 1\] = -1 is outside \[0, 3\)/);
    // the error was reported once; later work on the device succeeds
    const ok = va.tensor(Int32Array.from([2, 0]), [1, 2], { device, dtype: 'int32' });
    const dV3 = va.ops.kmeansCrossAttentionBackward(ok, dU, { numPixels: 2 });
    expect(Array.from(read(dV3))).toEqual([1, 1, 1, 1]);
    for (const t of [bad, dU, dV, neg, dV2, ok, dV3]) t.dispose();
  });

  it('empty batch and no pixels', () => scoped(() => {
    const r = va.ops.kmeansCrossAttention(va.zeros([0, 5, 4], { device }), va.zeros([0, 3, 4], { device }), va.zeros([0, 5, 2], { device }));
    expect([r.update.shape, r.assign.shape]).toEqual([[0, 3, 2], [0, 5]]);
    const r0 = va.ops.kmeansCrossAttention(va.zeros([2, 0, 4], { device }), va.ones([2, 3, 4], { device }), va.zeros([2, 0, 2], { device }), { returnLogits: true });
    expect(Array.from(read(r0.update))).toEqual(new Array(12).fill(0));
    expect(r0.logits!.shape).toEqual([2, 3, 0]);
  }));

  it('rejects bad inputs', () => scoped(() => {
    const km = va.ops.kmeansCrossAttention as (...a: unknown[]) => unknown;
    const kb = va.ops.kmeansCrossAttentionBackward as (...a: unknown[]) => unknown;
    const p = floatTensor([2, 10, 8], device);
    const c = floatTensor([2, 4, 8], device);
    const v = floatTensor([2, 10, 6], device);
    expect(() => km(p, c, v)).not.toThrow();
    expect(() => km(p, floatTensor([2, 4, 7], device), v)).toThrow(
      /^kmeansCrossAttention: argument 'centers' expected shape \[B, L, D\] = \[2, \*, 8\] \(B and D of pixels \[2, 10, 8\]\), received a float32 tensor of shape \[2, 4, 7\]/);
    expect(() => km(p, floatTensor([1, 4, 8], device), v)).toThrow(/^kmeansCrossAttention: argument 'centers' expected shape \[B, L, D\] = \[2, \*, 8\]/);
    expect(() => km(p, c, floatTensor([2, 9, 6], device))).toThrow(/^kmeansCrossAttention: argument 'values' expected shape \[B, N, Dv\] = \[2, 10, \*\]/);
    expect(() => km(p, floatTensor([2, 0, 8], device), v)).toThrow(/^kmeansCrossAttention: argument 'centers' expected at least one center/);
    expect(() => km(p, c, v, { returnLogits: 1 })).toThrow(/^kmeansCrossAttention: argument 'options.returnLogits' expected a boolean, received 1/);
    expect(() => km(p, c, floatTensor([2, 10, 6], otherDevice(device)))).toThrow(new RegExp(`^kmeansCrossAttention: argument 'values' expected a tensor on ${device}`));
    expect(() => km(disposedTensor([2, 10, 8], device), c, v)).toThrow(/^kmeansCrossAttention: argument 'pixels' expected a live tensor/);
    expect(() => km(floatTensor([10, 8], device), c, v)).toThrow(/^kmeansCrossAttention: argument 'pixels' expected a rank-3 tensor/);
    const a = va.zeros([2, 10], { device, dtype: 'int32' });
    const dU = floatTensor([2, 4, 6], device);
    expect(() => kb(a, dU, { numPixels: 10 })).not.toThrow();
    expect(() => kb(floatTensor([2, 10], device), dU, { numPixels: 10 })).toThrow(/^kmeansCrossAttentionBackward: argument 'assign' expected dtype int32/);
    expect(() => kb(a, dU, { numPixels: 9 })).toThrow(/^kmeansCrossAttentionBackward: argument 'assign' expected shape \[B, numPixels\] = \[2, 9\]/);
    expect(() => kb(a, dU, {})).toThrow(/^kmeansCrossAttentionBackward: argument 'options.numPixels' expected the number of pixels N \(required\)/);
    expect(() => kb(a, dU)).toThrow(/^kmeansCrossAttentionBackward: argument 'options.numPixels' expected/);
    expect(() => kb(a, floatTensor([2, 4, 6], otherDevice(device)), { numPixels: 10 })).toThrow(new RegExp(`^kmeansCrossAttentionBackward: argument 'dUpdate' expected a tensor on ${device}`));
  }));

  it('l2Normalize and its backward vs the oracle (a zero row takes the eps branch)', () => scoped(() => {
    const rng = new Rng(21);
    const x = rng.arr([4, 7, 33]);
    for (let c = 0; c < 33; c++) x.data[33 * 5 + c] = 0;
    const d = rng.arr([4, 7, 33]);
    const tx = toTensor(x, device);
    expectTensor(va.ops.l2Normalize(tx), l2NormalizeRef(x), `l2Normalize ${device}`);
    expectTensor(va.ops.l2NormalizeBackward(tx, toTensor(d, device)).dX, l2NormalizeBackwardRef(x, d), `l2NormalizeBackward ${device}`);
    const y = va.ops.l2Normalize(tx, { eps: 0.5 });
    expectTensor(y, l2NormalizeRef(x, 0.5), `l2Normalize eps ${device}`);
    expect(() => va.ops.l2Normalize(tx, { eps: 0 })).toThrow(/^l2Normalize: argument 'options.eps' expected a number > 0/);
    expect(() => va.ops.l2NormalizeBackward(tx, floatTensor([4, 7, 32], device))).toThrow(/^l2NormalizeBackward: argument 'dOut' expected shape \[4, 7, 33\] \(the shape of x\)/);
  }));

  it('nn.KMeansClusterUpdate: update, logits, and backward to values, pixel features and centers', () => scoped(() => {
    const rng = new Rng(31);
    const B = 2, N = 23, L = 5, D = 6, Dv = 4;
    const f = rng.arr([B, N, D]);
    const centers = rng.arr([B, L, D]);
    const values = rng.arr([B, N, Dv]);
    const dU = rng.arr([B, L, Dv]);
    const dL = rng.arr([B, L, N]);
    const m = new va.nn.KMeansClusterUpdate();
    const r = m.update(toTensor(f, device), toTensor(centers, device), toTensor(values, device));
    const fn = l2NormalizeRef(f);
    const ref = kmeansRef(fn, centers, values);
    expect(assignOf(r.assign)).toEqual(Array.from(ref.assign));
    expectTensor(r.update, ref.update, `KMeansClusterUpdate update ${device}`);
    expectTensor(r.logits!, ref.logits, `KMeansClusterUpdate logits ${device}`);
    const g = m.updateBackward(toTensor(dU, device), toTensor(dL, device));
    expectTensor(g.dValues, kmeansBackwardRef(ref.assign, dU, N), `KMeansClusterUpdate dValues ${device}`);
    // logits = F̂·centersᵀ: dF̂[b,n,:] = Σ_l dL[b,l,n]·centers[b,l,:], dCenters[b,l,:] = Σ_n dL[b,l,n]·F̂[b,n,:]
    const dFn: Arr = { data: new Float64Array(B * N * D), shape: [B, N, D] };
    const dC: Arr = { data: new Float64Array(B * L * D), shape: [B, L, D] };
    for (let b = 0; b < B; b++) for (let l = 0; l < L; l++) for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) {
      const g0 = dL.data[(b * L + l) * N + n];
      dFn.data[(b * N + n) * D + d] += g0 * centers.data[(b * L + l) * D + d];
      dC.data[(b * L + l) * D + d] += g0 * fn.data[(b * N + n) * D + d];
    }
    expectTensor(g.dPixelFeatures!, l2NormalizeBackwardRef(f, dFn), `KMeansClusterUpdate dPixelFeatures ${device}`);
    expectTensor(g.dCenters!, dC, `KMeansClusterUpdate dCenters ${device}`);
    const only = m.updateBackward(toTensor(dU, device));
    expect(only.dPixelFeatures).toBeUndefined();
    expect(() => m.updateBackward(toTensor(dU, device), floatTensor([B, L, N + 1], device))).toThrow(
      /^KMeansClusterUpdate.updateBackward: argument 'dLogits' expected shape \[2, 5, 23\] \(the shape of the logits\)/);
    m.eval();
    m.update(toTensor(f, device), toTensor(centers, device), toTensor(values, device));
    expect(m.cachedTensors()).toBe(0);
    m.dispose();
  }));
});
