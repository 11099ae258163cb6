// ML-Decoder ops on every device against the float64 oracles (test/oracle/group_decoder.ts, checked
// against finite differences in test/oracle.group_decoder.test.ts):
// * crossAttention forward (out, lse) and backward (dQ, dK, dV): shared (Bq = 1) and per-image queries,
//   Lk = 1, odd sizes, one head, head dim 96, large logits, probability dropout 0 and 0.3 (the oracle
//   reproduces the Philox mask), determinism, empty batch / no queries;
// * groupFC forward and backward: N not a multiple of K (dropped slots: dW exactly 0), K = N, N = K·g;
// * dropout / dropoutBackward: the Philox mask (same on every device), kept fraction, p = 0 copy;
// * argument validation.
import * as va from '../lib';
import type { Device, Tensor } from '../lib';
import { disposedTensor, expectClose, expectTensor, floatTensor, intTensor, otherDevice, read, Rng, scoped, testDevices, toTensor } from './helpers';
import {
  crossAttentionBackwardRef, crossAttentionRef, CrossRefOptions, dropoutRef, groupFCBackwardRef, groupFCRef,
} from './oracle/group_decoder';
import { Arr } from './oracle/nd';
import { dropoutMask } from './oracle/philox';

const bitsEqual = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

// ---------------------------------------------------------------- cross-attention

interface CrossCase {
  name: string;
  /** B, Bq, Lq, Lk, M, d, dv */
  dims: [number, number, number, number, number, number, number];
  o: CrossRefOptions;
  /** std of q and k (large values stress the softmax) */
  std?: number;
}

const CROSS: CrossCase[] = [
  { name: 'shared queries Bq = 1, batch 2, 2 heads', dims: [2, 1, 5, 7, 2, 8, 8], o: {} },
  { name: 'per-image queries Bq = B = 3, odd sizes (Lq 3, Lk 11, d 5, dv 3)', dims: [3, 3, 3, 11, 2, 5, 3], o: {} },
  { name: 'Lk = 1 (a single key: probability 1)', dims: [2, 1, 4, 1, 2, 4, 4], o: {} },
  { name: 'Lk = 1, Bq = B', dims: [2, 2, 3, 1, 1, 3, 2], o: {} },
  { name: 'one head, batch 1, Lq 1', dims: [1, 1, 1, 6, 1, 4, 4], o: {} },
  { name: 'head dim 96 (ML-Decoder), shared queries, T = 49', dims: [2, 1, 10, 49, 2, 96, 96], o: {} },
  { name: 'head dim 96, Bq = B, dv 32', dims: [2, 2, 7, 13, 1, 96, 32], o: {} },
  { name: 'odd tile edges: Lq 33, Lk 70, d 17, dv 9', dims: [1, 1, 33, 70, 1, 17, 9], o: {} },
  { name: 'COCO-like: 80 queries, 49 tokens, d 96, shared queries', dims: [2, 1, 80, 49, 2, 96, 96], o: {} },
  { name: 'explicit scale 1.0, large logits (softmax stability)', dims: [2, 1, 6, 9, 2, 8, 4], o: { scale: 1 }, std: 4 },
  { name: 'dropout 0.3, shared queries', dims: [2, 1, 5, 7, 2, 8, 8], o: { dropout: 0.3, seed: 1234 } },
  { name: 'dropout 0.3, Bq = B, odd sizes', dims: [3, 3, 3, 11, 2, 5, 3], o: { dropout: 0.3, seed: 99 } },
  { name: 'dropout 0.3, head dim 96, 49 tokens, seed > 2^32', dims: [2, 1, 10, 49, 2, 96, 96], o: { dropout: 0.3, seed: 2 ** 40 + 17 } },
  { name: 'dropout 0.3, Lk = 1', dims: [2, 1, 4, 1, 2, 4, 4], o: { dropout: 0.3, seed: 5 } },
  { name: 'dropout 0.3 with an explicit scale and large logits', dims: [1, 1, 6, 9, 2, 8, 4], o: { dropout: 0.3, seed: 7, scale: 1 }, std: 3 },
  // kernel paths: padded head widths 64 and 128, the generic path (max(d, dv) > 128), many tiles
  { name: 'd 40, dv 64 (width 64), Lq 70, Lk 33', dims: [2, 2, 70, 33, 1, 40, 64], o: {} },
  { name: 'd 128, dv 100 (width 128), shared queries', dims: [2, 1, 9, 40, 2, 128, 100], o: {} },
  { name: 'd 160 > 128 (generic path), shared queries, dropout 0.3', dims: [2, 1, 5, 9, 2, 160, 8], o: { dropout: 0.3, seed: 31 } },
  { name: 'dv 136 > 128 (generic path), Bq = B', dims: [2, 2, 4, 7, 1, 8, 136], o: {} },
  { name: 'many tiles: Lq 70, Lk 100, dropout 0.1', dims: [2, 1, 70, 100, 2, 96, 96], o: { dropout: 0.1, seed: 8 } },
];

function crossData(c: CrossCase, seed = 1) {
  const [B, Bq, Lq, Lk, M, d, dv] = c.dims;
  const rng = new Rng(c.dims.reduce((p, x) => p * 7 + x, seed));
  const std = c.std ?? 1;
  return {
    q: rng.arr([Bq, Lq, M, d], { std }),
    k: rng.arr([B, Lk, M, d], { std }),
    v: rng.arr([B, Lk, M, dv]),
    dOut: rng.arr([B, Lq, M, dv]),
  };
}

function crossTensors(x: ReturnType<typeof crossData>, device: Device) {
  return { q: toTensor(x.q, device), k: toTensor(x.k, device), v: toTensor(x.v, device), dOut: toTensor(x.dOut, device) };
}

/**
 * Lk = 1: per row, dS = scale·P·(dP − D) is a difference of two equal terms of size |dP|·keep/(1 − p)
 * (dP = dOut·v); dQ = dS·k and dK = dS·q. Returns the magnitude of the terms whose difference they are:
 * scale·max|dP·keep/(1 − p)|·max|k| (for dQ) and ·max|q| (for dK).
 */
function cancelledMagnitude(x: ReturnType<typeof crossData>, c: CrossCase): { dQ: number; dK: number } {
  const [B, , Lq, , M, d, dv] = c.dims;
  const scale = c.o.scale ?? 1 / Math.sqrt(d);
  const keepScale = 1 / (1 - Math.fround(c.o.dropout ?? 0));
  let dP = 0;
  for (let b = 0; b < B; b++)
    for (let i = 0; i < Lq; i++)
      for (let m = 0; m < M; m++) {
        let s = 0;
        for (let e = 0; e < dv; e++) s += x.dOut.data[((b * Lq + i) * M + m) * dv + e] * x.v.data[(b * M + m) * dv + e];
        dP = Math.max(dP, Math.abs(s) * keepScale);
      }
  const maxAbs = (a: Arr) => a.data.reduce((mx, v) => Math.max(mx, Math.abs(v)), 0);
  return { dQ: scale * dP * maxAbs(x.k), dK: scale * dP * maxAbs(x.q) };
}

/** Like expectTensor for a reference that is identically 0: tolerance 2e-4 of the cancelled magnitude. */
function expectZeroish(t: Tensor, ref: Arr, magnitude: number, label: string): void {
  expect(ref.data.every((v) => v === 0)).toBe(true);
  expect([...t.shape]).toEqual(ref.shape);
  expectClose(read(t), ref.data, { atol: 2e-4 * magnitude, rtol: 0 }, label);
}

describe.each(testDevices())('crossAttention on %s', (device) => {
  it.each(CROSS.map((c) => [c.name, c] as const))('forward (out, lse) and dQ, dK, dV: %s', (_, c) => scoped(() => {
    const x = crossData(c);
    const t = crossTensors(x, device);
    const f = va.ops.crossAttention(t.q, t.k, t.v, c.o);
    const ref = crossAttentionRef(x.q, x.k, x.v, c.o);
    expectTensor(f.out, ref.out, `crossAttention out ${device}`);
    expectTensor(f.lse, ref.lse, `crossAttention lse ${device}`);
    const g = va.ops.crossAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.dOut, c.o);
    const r = crossAttentionBackwardRef(x.q, x.k, x.v, x.dOut, c.o);
    if (c.dims[3] === 1) {
      // one key: the softmax is constant, dQ and dK are exactly 0 — in float32 they are the rounding
      // residue of dS = P·(dP − D) with dP = D: judge them against the magnitude of what cancels
      const mag = cancelledMagnitude(x, c);
      expectZeroish(g.dQ, r.dQ, mag.dQ, `crossAttentionBackward dQ (Lk = 1) ${device}`);
      expectZeroish(g.dK, r.dK, mag.dK, `crossAttentionBackward dK (Lk = 1) ${device}`);
    } else {
      expectTensor(g.dQ, r.dQ, `crossAttentionBackward dQ ${device}`);
      expectTensor(g.dK, r.dK, `crossAttentionBackward dK ${device}`);
    }
    expectTensor(g.dV, r.dV, `crossAttentionBackward dV ${device}`);
  }));

  it('defaults: scale d^-1/2, no dropout (a seed alone changes nothing)', () => scoped(() => {
    const c = CROSS[1];
    const x = crossData(c, 3);
    const t = crossTensors(x, device);
    const ref = crossAttentionRef(x.q, x.k, x.v, { scale: 1 / Math.sqrt(5), dropout: 0 });
    expectTensor(va.ops.crossAttention(t.q, t.k, t.v).out, ref.out, `crossAttention defaults ${device}`);
    const withSeed = va.ops.crossAttention(t.q, t.k, t.v, { seed: 3, dropout: 0 });
    expectTensor(withSeed.out, ref.out, `crossAttention dropout 0 + seed ${device}`);
  }));

  it('dropout: the mask depends on the seed only, and the same seed gives bitwise-equal results', () => scoped(() => {
    const c = CROSS[10];
    const x = crossData(c, 4);
    const t = crossTensors(x, device);
    const a = va.ops.crossAttention(t.q, t.k, t.v, c.o);
    const b = va.ops.crossAttention(t.q, t.k, t.v, c.o);
    expect(bitsEqual(read(a.out), read(b.out))).toBe(true);
    expect(bitsEqual(read(a.lse), read(b.lse))).toBe(true);
    const other = va.ops.crossAttention(t.q, t.k, t.v, { ...c.o, seed: 4321 });
    expect(bitsEqual(read(a.out), read(other.out))).toBe(false);
    expect(bitsEqual(read(a.lse), read(other.lse))).toBe(true); // lse is taken before the dropout
    expectTensor(other.out, crossAttentionRef(x.q, x.k, x.v, { ...c.o, seed: 4321 }).out, `crossAttention seed 4321 ${device}`);
  }));

  it.each([
    ['no dropout, shared queries', CROSS[0]],
    ['dropout 0.3, Bq = B', CROSS[11]],
  ] as const)('repeated calls overwrite their outputs, and the backward is bitwise deterministic (%s)', (_, c) => scoped(() => {
    const x = crossData(c, 7);
    const t = crossTensors(x, device);
    const r = crossAttentionBackwardRef(x.q, x.k, x.v, x.dOut, c.o);
    let first: Float32Array[] | null = null;
    for (let i = 0; i < 3; i++) {
      va.scope(() => {
        const f = va.ops.crossAttention(t.q, t.k, t.v, c.o);
        const g = va.ops.crossAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.dOut, c.o);
        expectTensor(g.dQ, r.dQ, `dQ #${i} ${device}`);
        const now = [f.out, f.lse, g.dQ, g.dK, g.dV].map(read);
        if (!first) first = now;
        else now.forEach((a, j) => expect(bitsEqual(a, first![j])).toBe(true));
      });
    }
  }));

  it('a shared query table gives the same out as the table repeated per image, and dQ = the batch sum', () => scoped(() => {
    const c = CROSS[0];
    const x = crossData(c, 8);
    const [B, , Lq, , M, d] = c.dims;
    const rep: Arr = { data: new Float64Array(B * Lq * M * d), shape: [B, Lq, M, d] };
    for (let b = 0; b < B; b++) rep.data.set(x.q.data, b * x.q.data.length);
    const t = crossTensors(x, device);
    const qr = toTensor(rep, device);
    const shared = va.ops.crossAttention(t.q, t.k, t.v);
    const repeated = va.ops.crossAttention(qr, t.k, t.v);
    expectTensor(shared.out, { data: Float64Array.from(read(repeated.out)), shape: [...repeated.out.shape] }, `shared vs repeated ${device}`);
    const gs = va.ops.crossAttentionBackward(t.q, t.k, t.v, shared.out, shared.lse, t.dOut);
    const gr = va.ops.crossAttentionBackward(qr, t.k, t.v, repeated.out, repeated.lse, t.dOut);
    const sum = va.ops.sum(gr.dQ, { axis: 0, keepDims: true });
    expectTensor(gs.dQ, { data: Float64Array.from(read(sum)), shape: [1, Lq, M, d] }, `dQ = Σ_b dQ_b ${device}`);
  }));

  it('empty batch: empty outputs; a shared query table gets dQ = 0', () => scoped(() => {
    const q = va.ones([1, 3, 2, 4], { device });
    const k = va.zeros([0, 5, 2, 4], { device });
    const v = va.zeros([0, 5, 2, 6], { device });
    const f = va.ops.crossAttention(q, k, v, { dropout: 0.3, seed: 1 });
    expect(f.out.shape).toEqual([0, 3, 2, 6]);
    expect(f.lse.shape).toEqual([0, 2, 3]);
    const g = va.ops.crossAttentionBackward(q, k, v, f.out, f.lse, f.out, { dropout: 0.3, seed: 1 });
    expect(g.dQ.shape).toEqual([1, 3, 2, 4]);
    expect(Array.from(read(g.dQ)).every((e) => e === 0)).toBe(true);
    expect(g.dK.shape).toEqual([0, 5, 2, 4]);
    expect(g.dV.shape).toEqual([0, 5, 2, 6]);
    // Bq = B = 0 is accepted too
    const f0 = va.ops.crossAttention(va.zeros([0, 3, 2, 4], { device }), k, v);
    expect(f0.out.shape).toEqual([0, 3, 2, 6]);
  }));

  it('no queries (Lq = 0): empty outputs, dK = dV = 0', () => scoped(() => {
    const q = va.zeros([2, 0, 2, 4], { device });
    const k = va.ones([2, 5, 2, 4], { device });
    const v = va.ones([2, 5, 2, 3], { device });
    const f = va.ops.crossAttention(q, k, v);
    expect(f.out.shape).toEqual([2, 0, 2, 3]);
    expect(f.lse.shape).toEqual([2, 2, 0]);
    const g = va.ops.crossAttentionBackward(q, k, v, f.out, f.lse, f.out);
    expect(g.dQ.shape).toEqual([2, 0, 2, 4]);
    expect(Array.from(read(g.dK)).every((e) => e === 0)).toBe(true);
    expect(Array.from(read(g.dV)).every((e) => e === 0)).toBe(true);
  }));

  it('rejects bad inputs', () => scoped(() => {
    const ca = va.ops.crossAttention as (...a: unknown[]) => unknown;
    const cb = va.ops.crossAttentionBackward as (...a: unknown[]) => unknown;
    const q = floatTensor([1, 5, 2, 8], device);
    const k = floatTensor([3, 7, 2, 8], device);
    const v = floatTensor([3, 7, 2, 6], device);
    expect(() => ca(q, k, v)).not.toThrow();
    expect(() => ca(floatTensor([3, 5, 2, 8], device), k, v)).not.toThrow();
    // head size d of q and k differ; heads differ; v does not match k
    expect(() => ca(q, floatTensor([3, 7, 2, 6], device), v)).toThrow(
      /^crossAttention: argument 'k' expected shape \[B, Lk, M, d\] = \[\*, \*, 2, 8\] \(M and d of q \[1, 5, 2, 8\]\), received a float32 tensor of shape \[3, 7, 2, 6\]/);
    expect(() => ca(q, floatTensor([3, 7, 4, 4], device), v)).toThrow(/^crossAttention: argument 'k' expected shape \[B, Lk, M, d\] = \[\*, \*, 2, 8\]/);
    expect(() => ca(q, k, floatTensor([3, 6, 2, 6], device))).toThrow(
      /^crossAttention: argument 'v' expected shape \[B, Lk, M, dv\] = \[3, 7, 2, \*\] \(the first three dimensions of k\), received a float32 tensor of shape \[3, 6, 2, 6\]/);
    expect(() => ca(q, k, floatTensor([2, 7, 2, 6], device))).toThrow(/^crossAttention: argument 'v' expected shape \[B, Lk, M, dv\] = \[3, 7, 2, \*\]/);
    // Bq not in {1, B}
    expect(() => ca(floatTensor([2, 5, 2, 8], device), k, v)).toThrow(
      /^crossAttention: argument 'q' expected a query batch Bq \(dimension 0\) of 1 \(queries shared by the batch\) or B = 3 \(the batch of k\), received a float32 tensor of shape \[2, 5, 2, 8\]/);
    // empty key set, zero sizes
    expect(() => ca(q, floatTensor([3, 0, 2, 8], device), floatTensor([3, 0, 2, 6], device))).toThrow(
      /^crossAttention: argument 'k' expected at least one key \(dimension 1, Lk >= 1\), received a float32 tensor of shape \[3, 0, 2, 8\]/);
    expect(() => ca(floatTensor([1, 5, 0, 8], device), floatTensor([3, 7, 0, 8], device), floatTensor([3, 7, 0, 6], device))).toThrow(
      /^crossAttention: argument 'q' expected at least one head \(dimension 2, M >= 1\)/);
    expect(() => ca(floatTensor([1, 5, 2, 0], device), floatTensor([3, 7, 2, 0], device), v)).toThrow(/^crossAttention: argument 'q' expected a head size d >= 1 \(dimension 3\)/);
    expect(() => ca(q, k, floatTensor([3, 7, 2, 0], device))).toThrow(/^crossAttention: argument 'v' expected a value size dv >= 1 \(dimension 3\)/);
    // options: dropout without a seed, bad probabilities, seeds, scale
    expect(() => ca(q, k, v, { dropout: 0.1 })).toThrow(
      /^crossAttention: argument 'options.seed' expected an integer in \[0, 2\^53\) \(required when options.dropout > 0: the backward regenerates the mask from it\), received undefined$/);
    expect(() => ca(q, k, v, { dropout: 1, seed: 1 })).toThrow(/^crossAttention: argument 'options.dropout' expected a probability p with 0 <= p < 1, received 1$/);
    expect(() => ca(q, k, v, { dropout: 0.99999999999, seed: 1 })).toThrow(/^crossAttention: argument 'options.dropout' expected a probability p with 0 <= p < 1/);
    expect(() => ca(q, k, v, { dropout: -0.1, seed: 1 })).toThrow(/^crossAttention: argument 'options.dropout' expected a probability p with 0 <= p < 1, received -0.1$/);
    expect(() => ca(q, k, v, { dropout: NaN, seed: 1 })).toThrow(/^crossAttention: argument 'options.dropout' expected a probability/);
    expect(() => ca(q, k, v, { dropout: '0.1', seed: 1 })).toThrow(/^crossAttention: argument 'options.dropout' expected a probability p with 0 <= p < 1, received "0.1"$/);
    expect(() => ca(q, k, v, { dropout: 0.1, seed: 1.5 })).toThrow(/^crossAttention: argument 'options.seed' expected an integer in \[0, 2\^53\).*received 1.5$/);
    expect(() => ca(q, k, v, { dropout: 0.1, seed: -1 })).toThrow(/^crossAttention: argument 'options.seed' expected an integer in \[0, 2\^53\)/);
    expect(() => ca(q, k, v, { dropout: 0.1, seed: 2 ** 53 })).toThrow(/^crossAttention: argument 'options.seed' expected an integer in \[0, 2\^53\)/);
    expect(() => ca(q, k, v, { seed: 'x' })).toThrow(/^crossAttention: argument 'options.seed' expected an integer in \[0, 2\^53\), received "x"$/);
    expect(() => ca(q, k, v, { scale: Infinity })).toThrow(/^crossAttention: argument 'options.scale' expected a finite number, received Infinity$/);
    expect(() => ca(q, k, v, 5)).toThrow(/^crossAttention: argument 'options' expected an options object, received 5$/);
    // dtype, rank, devices, disposed
    expect(() => ca(intTensor([1, 5, 2, 8], device), k, v)).toThrow(/^crossAttention: argument 'q' expected dtype float32/);
    expect(() => ca(q, floatTensor([3, 7, 16], device), v)).toThrow(/^crossAttention: argument 'k' expected a rank-4 tensor, received a float32 tensor of shape \[3, 7, 16\]/);
    expect(() => ca(q, k, 'v')).toThrow(/^crossAttention: argument 'v' expected a float32 Tensor, received "v"$/);
    expect(() => ca(q, k, floatTensor([3, 7, 2, 6], otherDevice(device)))).toThrow(
      new RegExp(`^crossAttention: argument 'v' expected a tensor on ${device} \\(the device of 'q'\\), received a float32 tensor of shape \\[3, 7, 2, 6\\] on ${otherDevice(device)}$`));
    expect(() => ca(disposedTensor([1, 5, 2, 8], device), k, v)).toThrow(/^crossAttention: argument 'q' expected a live tensor, received a disposed float32 tensor of shape \[1, 5, 2, 8\]/);
    // backward: out / lse / dOut
    const out = floatTensor([3, 5, 2, 6], device);
    const lse = floatTensor([3, 2, 5], device);
    expect(() => cb(q, k, v, out, lse, out)).not.toThrow();
    expect(() => cb(q, k, v, out, lse, floatTensor([3, 5, 2, 8], device))).toThrow(
      /^crossAttentionBackward: argument 'dOut' expected shape \[3, 5, 2, 6\] \(the shape of the forward output\), received a float32 tensor of shape \[3, 5, 2, 8\]/);
    expect(() => cb(q, k, v, out, floatTensor([3, 5, 2], device), out)).toThrow(/^crossAttentionBackward: argument 'lse' expected shape \[3, 2, 5\] \(the forward's lse\)/);
    expect(() => cb(q, k, v, floatTensor([1, 5, 2, 6], device), lse, out)).toThrow(/^crossAttentionBackward: argument 'out' expected shape \[3, 5, 2, 6\] \(the forward's output for these q, k, v\)/);
    expect(() => cb(q, k, v, out, lse, floatTensor([3, 5, 2, 6], otherDevice(device)))).toThrow(new RegExp(`^crossAttentionBackward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => cb(q, k, v, out, disposedTensor([3, 2, 5], device), out)).toThrow(/^crossAttentionBackward: argument 'lse' expected a live tensor/);
    expect(() => cb(q, k, v, out, lse, out, { dropout: 0.3 })).toThrow(/^crossAttentionBackward: argument 'options.seed' expected an integer in \[0, 2\^53\) \(required when options.dropout > 0/);
    expect(() => cb(floatTensor([2, 5, 2, 8], device), k, v, out, lse, out)).toThrow(/^crossAttentionBackward: argument 'q' expected a query batch Bq/);
  }));
});

// ---------------------------------------------------------------- group FC

interface GroupCase {
  name: string;
  /** B, K, D, g, N */
  dims: [number, number, number, number, number];
}

const GROUP: GroupCase[] = [
  { name: 'N not a multiple of K: K 3, g 3, N 7 (2 dropped slots)', dims: [2, 3, 5, 3, 7] },
  { name: 'K = N (g = 1, full decoding)', dims: [3, 6, 8, 1, 6] },
  { name: 'N = K·g', dims: [2, 4, 7, 2, 8] },
  { name: 'one group (K 1, g 5, N 4)', dims: [2, 1, 9, 5, 4] },
  { name: 'batch 1, odd D 13, K 5, g 4, N 17 (3 dropped slots)', dims: [1, 5, 13, 4, 17] },
  { name: 'ImageNet-like: K 20, D 96, g 5, N 98 (2 dropped)', dims: [3, 20, 96, 5, 98] },
  { name: 'COCO-like: K = N = 80, D 96', dims: [2, 80, 96, 1, 80] },
  { name: 'wide groups: K 3, D 33, g 40, N 81', dims: [2, 3, 33, 40, 81] },
  { name: 'batch 11 (> 8), D 300 (> 256), g 70 (> 64), N 215', dims: [11, 4, 300, 70, 215] },
  { name: 'D 768, g = 1, batch 9, K = N = 7', dims: [9, 7, 768, 1, 7] },
  { name: 'OpenImages-like groups: B 8, K 10, D 384, g 97, N 923', dims: [8, 10, 384, 97, 923] },
];

function groupData(c: GroupCase, seed = 1) {
  const [B, K, D, g, N] = c.dims;
  const rng = new Rng(c.dims.reduce((p, x) => p * 11 + x, seed));
  return { x: rng.arr([B, K, D]), w: rng.arr([K, D, g], { std: 0.3 }), bias: rng.arr([N]), dLogits: rng.arr([B, N]) };
}

describe.each(testDevices())('groupFC on %s', (device) => {
  it.each(GROUP.map((c) => [c.name, c] as const))('forward and dX, dW, dBias: %s', (_, c) => scoped(() => {
    const [, K, D, g, N] = c.dims;
    const x = groupData(c);
    const t = { x: toTensor(x.x, device), w: toTensor(x.w, device), bias: toTensor(x.bias, device), d: toTensor(x.dLogits, device) };
    const logits = va.ops.groupFC(t.x, t.w, t.bias);
    expectTensor(logits, groupFCRef(x.x, x.w, x.bias), `groupFC ${device}`);
    const gr = va.ops.groupFCBackward(t.x, t.w, t.d);
    const r = groupFCBackwardRef(x.x, x.w, x.dLogits);
    expectTensor(gr.dX, r.dX, `groupFCBackward dX ${device}`);
    expectTensor(gr.dW, r.dW, `groupFCBackward dW ${device}`);
    expectTensor(gr.dBias, r.dBias, `groupFCBackward dBias ${device}`);
    // the dropped slots k·g + j >= N get exactly zero gradient
    const dW = read(gr.dW);
    const nonZeroDropped: number[] = [];
    for (let k = 0; k < K; k++)
      for (let e = 0; e < D; e++)
        for (let j = 0; j < g; j++) if (k * g + j >= N && !Object.is(dW[(k * D + e) * g + j], 0)) nonZeroDropped.push((k * D + e) * g + j);
    expect(nonZeroDropped).toEqual([]);
  }));

  it('the dropped slots never influence the logits (NaN weights there are ignored)', () => scoped(() => {
    const c = GROUP[0];
    const [, K, D, g, N] = c.dims;
    const x = groupData(c, 2);
    const wNaN = Float32Array.from(x.w.data);
    for (let k = 0; k < K; k++) for (let e = 0; e < D; e++) for (let j = 0; j < g; j++) if (k * g + j >= N) wNaN[(k * D + e) * g + j] = NaN;
    const w = va.tensor(wNaN, x.w.shape, { device });
    const logits = va.ops.groupFC(toTensor(x.x, device), w, toTensor(x.bias, device));
    expectTensor(logits, groupFCRef(x.x, x.w, x.bias), `groupFC NaN in dropped slots ${device}`);
    const gr = va.ops.groupFCBackward(toTensor(x.x, device), w, toTensor(x.dLogits, device));
    expectTensor(gr.dX, groupFCBackwardRef(x.x, x.w, x.dLogits).dX, `groupFCBackward dX, NaN in dropped slots ${device}`);
  }));

  it('repeated calls overwrite their outputs, and the backward is bitwise deterministic', () => scoped(() => {
    const c = GROUP[5];
    const x = groupData(c, 3);
    const t = { x: toTensor(x.x, device), w: toTensor(x.w, device), bias: toTensor(x.bias, device), d: toTensor(x.dLogits, device) };
    let first: Float32Array[] | null = null;
    for (let i = 0; i < 3; i++) {
      va.scope(() => {
        const logits = va.ops.groupFC(t.x, t.w, t.bias);
        const gr = va.ops.groupFCBackward(t.x, t.w, t.d);
        const now = [logits, gr.dX, gr.dW, gr.dBias].map(read);
        if (!first) first = now;
        else now.forEach((a, j) => expect(bitsEqual(a, first![j])).toBe(true));
      });
    }
  }));

  it('empty batch: empty logits and dX, zero dW and dBias', () => scoped(() => {
    const x = va.zeros([0, 3, 4], { device });
    const w = va.ones([3, 4, 2], { device });
    const bias = va.ones([5], { device });
    const logits = va.ops.groupFC(x, w, bias);
    expect(logits.shape).toEqual([0, 5]);
    const g = va.ops.groupFCBackward(x, w, logits);
    expect(g.dX.shape).toEqual([0, 3, 4]);
    expect(g.dW.shape).toEqual([3, 4, 2]);
    expect(g.dBias.shape).toEqual([5]);
    expect(Array.from(read(g.dW)).every((e) => e === 0)).toBe(true);
    expect(Array.from(read(g.dBias)).every((e) => e === 0)).toBe(true);
  }));

  it('rejects bad inputs', () => scoped(() => {
    const gf = va.ops.groupFC as (...a: unknown[]) => unknown;
    const gb = va.ops.groupFCBackward as (...a: unknown[]) => unknown;
    const x = floatTensor([2, 3, 4], device);
    const w = floatTensor([3, 4, 3], device);
    expect(() => gf(x, w, floatTensor([7], device))).not.toThrow();
    expect(() => gf(x, w, floatTensor([9], device))).not.toThrow();
    // K·g < N, and N <= (K−1)·g
    expect(() => gf(x, w, floatTensor([10], device))).toThrow(
      /^groupFC: argument 'bias' expected a class count N \(dimension 0\) with \(K−1\)·g < N <= K·g, i\.e\. 6 < N <= 9 \(K = 3 groups of g = 3 slots\); K·g < N: class 9 has no slot, received a float32 tensor of shape \[10\]/);
    expect(() => gf(x, w, floatTensor([12], device))).toThrow(/^groupFC: argument 'bias' expected .*K·g < N: classes 9\.\.11 have no slot/);
    expect(() => gf(x, w, floatTensor([6], device))).toThrow(
      /^groupFC: argument 'bias' expected a class count N \(dimension 0\) with \(K−1\)·g < N <= K·g, i\.e\. 6 < N <= 9 .*N <= \(K−1\)·g: group 2 would have no class, received a float32 tensor of shape \[6\]/);
    expect(() => gf(x, w, floatTensor([0], device))).toThrow(/^groupFC: argument 'bias' expected a class count N/);
    // w does not match x
    expect(() => gf(x, floatTensor([2, 4, 3], device), floatTensor([7], device))).toThrow(
      /^groupFC: argument 'w' expected shape \[K, D, g\] = \[3, 4, \*\] \(K and D of x \[2, 3, 4\]\), received a float32 tensor of shape \[2, 4, 3\]/);
    expect(() => gf(x, floatTensor([3, 5, 3], device), floatTensor([7], device))).toThrow(/^groupFC: argument 'w' expected shape \[K, D, g\] = \[3, 4, \*\]/);
    expect(() => gf(x, floatTensor([3, 4, 0], device), floatTensor([7], device))).toThrow(/^groupFC: argument 'w' expected a group size g >= 1 \(dimension 2\)/);
    expect(() => gf(floatTensor([2, 0, 4], device), floatTensor([0, 4, 3], device), floatTensor([7], device))).toThrow(/^groupFC: argument 'x' expected at least one group \(dimension 1, K >= 1\)/);
    expect(() => gf(floatTensor([2, 3, 0], device), floatTensor([3, 0, 3], device), floatTensor([7], device))).toThrow(/^groupFC: argument 'x' expected a feature size D >= 1 \(dimension 2\)/);
    // rank, dtype, devices, disposed
    expect(() => gf(floatTensor([6, 4], device), w, floatTensor([7], device))).toThrow(/^groupFC: argument 'x' expected a rank-3 tensor/);
    expect(() => gf(x, w, floatTensor([1, 7], device))).toThrow(/^groupFC: argument 'bias' expected a rank-1 tensor/);
    expect(() => gf(x, w, null)).toThrow(/^groupFC: argument 'bias' expected a float32 Tensor, received null$/);
    expect(() => gf(x, intTensor([3, 4, 3], device), floatTensor([7], device))).toThrow(/^groupFC: argument 'w' expected dtype float32/);
    expect(() => gf(x, w, floatTensor([7], otherDevice(device)))).toThrow(new RegExp(`^groupFC: argument 'bias' expected a tensor on ${device} \\(the device of 'x'\\)`));
    expect(() => gf(x, disposedTensor([3, 4, 3], device), floatTensor([7], device))).toThrow(/^groupFC: argument 'w' expected a live tensor/);
    // backward: dLogits
    expect(() => gb(x, w, floatTensor([2, 7], device))).not.toThrow();
    expect(() => gb(x, w, floatTensor([3, 7], device))).toThrow(
      /^groupFCBackward: argument 'dLogits' expected shape \[B, N\] = \[2, \*\] \(B of x \[2, 3, 4\]\), received a float32 tensor of shape \[3, 7\]/);
    expect(() => gb(x, w, floatTensor([2, 10], device))).toThrow(/^groupFCBackward: argument 'dLogits' expected a class count N \(dimension 1\) .*K·g < N: class 9 has no slot/);
    expect(() => gb(x, w, floatTensor([2, 5], device))).toThrow(/^groupFCBackward: argument 'dLogits' expected a class count N .*group 2 would have no class/);
    expect(() => gb(x, w, floatTensor([14], device))).toThrow(/^groupFCBackward: argument 'dLogits' expected a rank-2 tensor/);
    expect(() => gb(x, w, floatTensor([2, 7], otherDevice(device)))).toThrow(new RegExp(`^groupFCBackward: argument 'dLogits' expected a tensor on ${device}`));
    expect(() => gb(disposedTensor([2, 3, 4], device), w, floatTensor([2, 7], device))).toThrow(/^groupFCBackward: argument 'x' expected a live tensor/);
  }));
});

// ---------------------------------------------------------------- dropout

/** Positions of the exact zeros (x has no zeros, so these are the dropped elements). */
function dropped(a: Float32Array): Uint8Array {
  return Uint8Array.from(a, (v) => (v === 0 ? 1 : 0));
}

function nonZero(shape: number[], seed: number): Arr {
  const a = new Rng(seed).arr(shape);
  for (let i = 0; i < a.data.length; i++) if (a.data[i] === 0) a.data[i] = 0.5;
  return a;
}

describe.each(testDevices())('dropout on %s', (device) => {
  it.each([
    [0.3, 17, 0, [4, 37]],
    [0.1, 2 ** 45 + 3, 5, [3, 5, 7]],
    [0.5, 0, 2 ** 40, [1001]],
    [0.9, 123, 1, [64, 9]],
  ] as [number, number, number, number[]][])('p %s, seed %s, offset %s: the Philox mask, scaled by 1/(1 − p); backward = the same mask on dOut', (p, seed, offset, shape) => scoped(() => {
    const x = nonZero(shape, 10);
    const d = nonZero(shape, 11);
    const opts = { p, seed, offset };
    const y = va.ops.dropout(toTensor(x, device), opts);
    expect(y.shape).toEqual(shape);
    const ref = dropoutRef(x, p, seed, offset);
    expectTensor(y, ref, `dropout ${device}`);
    const keep = dropoutMask(x.data.length, seed, offset, p);
    const zy = dropped(read(y));
    expect(Array.from(zy)).toEqual(Array.from(keep, (k) => 1 - k));
    const g = va.ops.dropoutBackward(toTensor(d, device), opts);
    expectTensor(g.dX, dropoutRef(d, p, seed, offset), `dropoutBackward ${device}`);
    expect(Array.from(dropped(read(g.dX)))).toEqual(Array.from(zy));
  }));

  it('keeps about 1 − p of a large tensor; distinct seeds and offsets give distinct masks; offset defaults to 0', () => scoped(() => {
    const n = 1 << 17;
    const x = va.ones([n], { device });
    for (const p of [0.1, 0.3, 0.7]) {
      const y = read(va.ops.dropout(x, { p, seed: 3 }));
      let kept = 0;
      for (let i = 0; i < n; i++) if (y[i] !== 0) kept++;
      expect(Math.abs(kept / n - (1 - p))).toBeLessThan(0.01);
      // kept values are exactly 1/(1 − p) in float32
      const want = Math.fround(1 / (1 - Math.fround(p)));
      for (let i = 0; i < n; i += 997) if (y[i] !== 0) expect(Math.abs(y[i] - want)).toBeLessThanOrEqual(want * 2 ** -23);
    }
    const a = read(va.ops.dropout(x, { p: 0.5, seed: 3 }));
    const a0 = read(va.ops.dropout(x, { p: 0.5, seed: 3, offset: 0 }));
    const b = read(va.ops.dropout(x, { p: 0.5, seed: 3, offset: 1 }));
    const c = read(va.ops.dropout(x, { p: 0.5, seed: 4 }));
    expect(bitsEqual(a, a0)).toBe(true);
    expect(bitsEqual(a, b)).toBe(false);
    expect(bitsEqual(a, c)).toBe(false);
  }));

  it('p = 0 returns a new tensor holding a copy (bitwise), with or without a seed', () => scoped(() => {
    const x = toTensor(nonZero([5, 6], 12), device);
    const want = read(x);
    for (const opts of [{ p: 0 }, { p: 0, seed: 5, offset: 2 }]) {
      const y = va.ops.dropout(x, opts);
      expect(y).not.toBe(x);
      const g = va.ops.dropoutBackward(x, opts).dX;
      expect(bitsEqual(read(y), want)).toBe(true);
      expect(bitsEqual(read(g), want)).toBe(true);
    }
    const y = va.ops.dropout(x, { p: 0 });
    x.dispose();
    expect(bitsEqual(read(y), want)).toBe(true);
  }));

  it('empty tensors give empty results', () => scoped(() => {
    expect(va.ops.dropout(va.zeros([0, 3], { device }), { p: 0.5, seed: 1 }).shape).toEqual([0, 3]);
    expect(va.ops.dropoutBackward(va.zeros([2, 0], { device }), { p: 0.5, seed: 1 }).dX.shape).toEqual([2, 0]);
  }));

  it('rejects bad inputs', () => scoped(() => {
    const dr = va.ops.dropout as (...a: unknown[]) => unknown;
    const db = va.ops.dropoutBackward as (...a: unknown[]) => unknown;
    const x = floatTensor([4, 5], device);
    expect(() => dr(x, { p: 0.5 })).toThrow(
      /^dropout: argument 'options.seed' expected an integer in \[0, 2\^53\) \(required when options.p > 0: the backward regenerates the mask from it\), received undefined$/);
    expect(() => db(x, { p: 0.5 })).toThrow(/^dropoutBackward: argument 'options.seed' expected an integer in \[0, 2\^53\) \(required when options.p > 0/);
    expect(() => dr(x)).toThrow(/^dropout: argument 'options' expected an options object \{p, seed, offset\?\} \(p is required\), received undefined$/);
    expect(() => dr(x, { seed: 1 })).toThrow(/^dropout: argument 'options.p' expected a probability p with 0 <= p < 1 \(required\), received undefined$/);
    expect(() => dr(x, { p: 1, seed: 1 })).toThrow(/^dropout: argument 'options.p' expected a probability p with 0 <= p < 1, received 1$/);
    expect(() => dr(x, { p: -0.5, seed: 1 })).toThrow(/^dropout: argument 'options.p' expected a probability p with 0 <= p < 1, received -0.5$/);
    expect(() => dr(x, { p: 0.5, seed: 0.5 })).toThrow(/^dropout: argument 'options.seed' expected an integer in \[0, 2\^53\)/);
    expect(() => dr(x, { p: 0.5, seed: 1, offset: -1 })).toThrow(/^dropout: argument 'options.offset' expected an integer in \[0, 2\^53\), received -1$/);
    expect(() => dr(x, 0.5)).toThrow(/^dropout: argument 'options' expected an options object, received 0.5$/);
    expect(() => dr([1, 2], { p: 0.5, seed: 1 })).toThrow(/^dropout: argument 'x' expected a float32 Tensor, received \[1, 2\]/);
    expect(() => dr(intTensor([3], device), { p: 0.5, seed: 1 })).toThrow(/^dropout: argument 'x' expected dtype float32/);
    expect(() => dr(disposedTensor([3], device), { p: 0.5, seed: 1 })).toThrow(/^dropout: argument 'x' expected a live tensor/);
    expect(() => db(disposedTensor([3], device), { p: 0.5, seed: 1 })).toThrow(/^dropoutBackward: argument 'dOut' expected a live tensor/);
  }));
});

describe('dropout across devices', () => {
  const devices = testDevices();
  (devices.length > 1 ? it : it.skip)('the same (seed, offset) gives the same mask on every device', () => scoped(() => {
    const x = nonZero([3, 333], 20);
    const masks = devices.map((d) => {
      const y = va.ops.dropout(toTensor(x, d), { p: 0.3, seed: 77, offset: 9 });
      return Array.from(dropped(read(y)));
    });
    for (const m of masks.slice(1)) expect(m).toEqual(masks[0]);
    // and the cross-attention probability mask: results agree across devices within the tolerance
    const c = CROSS[11];
    const data = crossData(c, 21);
    const ref = crossAttentionRef(data.q, data.k, data.v, c.o).out;
    const outs: Tensor[] = devices.map((d) => {
      const t = crossTensors(data, d);
      return va.ops.crossAttention(t.q, t.k, t.v, c.o).out;
    });
    outs.forEach((o, i) => expectTensor(o, ref, `crossAttention dropout on ${devices[i]}`));
  }));
});
