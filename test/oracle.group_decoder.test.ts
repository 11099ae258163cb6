// Self-tests of the float64 ML-Decoder oracles (test/oracle/group_decoder.ts) and of the TypeScript
// Philox port (test/oracle/philox.ts):
// * Philox-4x32-10 against the Random123 known-answer vector, and uniform24 against va.rand on every
//   device (the native generator the dropout masks come from);
// * cross-attention against a matrix formulation (softmax rows, then P̃·V), a shared query table against
//   the same queries repeated per image, Lk = 1, the dropout mask's kept fraction;
// * group FC against the einsum-flatten-truncate formulation of the reference;
// * ASL in the params.h form against the reference's w·L_ce form (binary targets), the spec's closed-form
//   gradients, BCE against the naive formula;
// * every gradient against central finite differences (test/oracle/gradcheck.ts), dropout included (the
//   mask is a function of the indices only, so the loss stays smooth).
import * as va from '../lib';
import { testDevices } from './helpers';
import { expectClose, gradcheck } from './oracle/gradcheck';
import {
  aslElementRef, aslGradRef, aslReferenceFormRef, aslRef, bceElementRef, bceGradRef, bceRef, crossAttentionBackwardRef,
  crossAttentionRef, CrossRefOptions, crossGeometry, crossMaskRef, dropoutRef, groupFCBackwardRef, groupFCRef,
} from './oracle/group_decoder';
import { Arr, arr, zerosArr } from './oracle/nd';
import { dropoutKeep, dropoutMask, philox4x32_10, uniformAt } from './oracle/philox';
import { Rng } from './oracle/rng';

describe('Philox port', () => {
  it('matches the Random123 known-answer vector (counter 0, key 0)', () => {
    expect(philox4x32_10(0, 0, 0)).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  });

  it.each(testDevices())('uniform24 stream equals va.rand on %s (large seeds and offsets too)', (device) => {
    for (const [seed, offset] of [[0, 0], [42, 3], [2 ** 40 + 12345, 2 ** 35 + 7], [Number.MAX_SAFE_INTEGER, 1]]) {
      va.scope(() => {
        const got = va.rand([1003], { seed, offset, device }).dataSync();
        let bad = 0;
        for (let i = 0; i < got.length; i++) if (got[i] !== uniformAt(i, seed, offset)) bad++;
        expect({ seed, offset, bad }).toEqual({ seed, offset, bad: 0 });
      });
    }
  });

  it('dropoutMask agrees with dropoutKeep, keeps about 1 − p, and p = 0 keeps everything', () => {
    const n = 20000;
    for (const p of [0, 0.1, 0.3, 0.5]) {
      const m = dropoutMask(n, 9, 2, p);
      let kept = 0;
      for (let i = 0; i < n; i++) {
        kept += m[i];
        if (i % 97 === 0) expect(m[i] === 1).toBe(dropoutKeep(i, 9, 2, p));
      }
      expect(Math.abs(kept / n - (1 - p))).toBeLessThan(0.015);
      if (p === 0) expect(kept).toBe(n);
    }
    // distinct offsets and seeds give different masks
    const a = dropoutMask(256, 9, 0, 0.5);
    const b = dropoutMask(256, 9, 1, 0.5);
    const c = dropoutMask(256, 10, 0, 0.5);
    expect(a.some((x, i) => x !== b[i])).toBe(true);
    expect(a.some((x, i) => x !== c[i])).toBe(true);
  });

  it('dropoutRef scales the kept elements by 1/(1 − p)', () => {
    const x = new Rng(3).arr([5, 7]);
    const y = dropoutRef(x, 0.25, 11, 4);
    const keep = dropoutMask(35, 11, 4, 0.25);
    for (let i = 0; i < 35; i++) expect(Math.abs(y.data[i] - (keep[i] ? x.data[i] / 0.75 : 0))).toBeLessThan(1e-15);
    expect(keep.some((k) => k === 0) && keep.some((k) => k === 1)).toBe(true);
    expect(dropoutRef(x, 0, 0).data).toEqual(x.data);
  });
});

// ---------------------------------------------------------------- cross-attention

interface CrossCase {
  name: string;
  /** B, Bq, Lq, Lk, M, d, dv */
  dims: [number, number, number, number, number, number, number];
  o: CrossRefOptions;
}

const CROSS: CrossCase[] = [
  { name: 'shared queries (Bq = 1), B 2, 2 heads', dims: [2, 1, 3, 4, 2, 3, 2], o: {} },
  { name: 'per-image queries (Bq = B = 2)', dims: [2, 2, 3, 5, 2, 2, 3], o: { scale: 0.7 } },
  { name: 'Lk = 1', dims: [2, 1, 2, 1, 1, 3, 2], o: {} },
  { name: 'dropout 0.3, shared queries', dims: [2, 1, 3, 5, 2, 3, 2], o: { dropout: 0.3, seed: 77 } },
  { name: 'dropout 0.3, Bq = B, one head', dims: [3, 3, 2, 4, 1, 2, 3], o: { dropout: 0.3, seed: 2 ** 33 + 5 } },
];

function crossInputs(c: CrossCase, seed: number) {
  const [B, Bq, Lq, Lk, M, d, dv] = c.dims;
  const rng = new Rng(seed);
  return { q: rng.arr([Bq, Lq, M, d]), k: rng.arr([B, Lk, M, d]), v: rng.arr([B, Lk, M, dv]), dOut: rng.arr([B, Lq, M, dv]) };
}

/** Matrix formulation: per (b, m) gather Q (Lq×d), K, V; S = τQKᵀ; P row softmax; out = (P ⊙ mask)V. */
function crossMatrixForm(q: Arr, k: Arr, v: Arr, o: CrossRefOptions): { out: Arr; lse: Arr } {
  const g = crossGeometry(q.shape, k.shape, v.shape, o);
  const mask = crossMaskRef(g);
  const out = zerosArr([g.B, g.Lq, g.M, g.dv]);
  const lse = zerosArr([g.B, g.M, g.Lq]);
  for (let b = 0; b < g.B; b++)
    for (let m = 0; m < g.M; m++) {
      const bq = g.Bq === 1 ? 0 : b;
      const Q = Array.from({ length: g.Lq }, (_, i) => Array.from({ length: g.d }, (_, e) => q.data[((bq * g.Lq + i) * g.M + m) * g.d + e]));
      const K = Array.from({ length: g.Lk }, (_, j) => Array.from({ length: g.d }, (_, e) => k.data[((b * g.Lk + j) * g.M + m) * g.d + e]));
      const V = Array.from({ length: g.Lk }, (_, j) => Array.from({ length: g.dv }, (_, e) => v.data[((b * g.Lk + j) * g.M + m) * g.dv + e]));
      Q.forEach((qi, i) => {
        const S = K.map((kj) => g.scale * kj.reduce((a, x, e) => a + x * qi[e], 0));
        const z = Math.log(S.reduce((a, s) => a + Math.exp(s), 0));
        lse.data[(b * g.M + m) * g.Lq + i] = z;
        const P = S.map((s, j) => Math.exp(s - z) * mask[((b * g.M + m) * g.Lq + i) * g.Lk + j]);
        for (let e = 0; e < g.dv; e++) out.data[((b * g.Lq + i) * g.M + m) * g.dv + e] = P.reduce((a, pj, j) => a + pj * V[j][e], 0);
      });
    }
  return { out, lse };
}

describe('cross-attention oracle', () => {
  it.each(CROSS.map((c, i) => [c.name, c, i] as const))('%s: forward matches the matrix formulation', (_n, c, i) => {
    const x = crossInputs(c, 10 + i);
    const r = crossAttentionRef(x.q, x.k, x.v, c.o);
    const m = crossMatrixForm(x.q, x.k, x.v, c.o);
    expectClose(r.out.data, m.out.data, { atol: 1e-12, rtol: 1e-12 }, 'out');
    expectClose(r.lse.data, m.lse.data, { atol: 1e-12, rtol: 1e-12 }, 'lse');
  });

  it.each(CROSS.map((c, i) => [c.name, c, i] as const))('%s: every gradient matches finite differences', (_n, c, i) => {
    const x = crossInputs(c, 20 + i);
    gradcheck(`cross ${c.name}`,
      ([q, k, v]) => crossAttentionRef(q, k, v, c.o).out,
      ([q, k, v], d) => {
        const g = crossAttentionBackwardRef(q, k, v, d, c.o);
        return [g.dQ, g.dK, g.dV];
      },
      [x.q, x.k, x.v], { seed: 30 + i });
  });

  it('a shared query table equals the same queries repeated per image; its dQ is the batch sum', () => {
    const c = CROSS[3];
    const [B, , Lq, , M, d] = c.dims;
    const x = crossInputs(c, 5);
    const rep = zerosArr([B, Lq, M, d]);
    for (let b = 0; b < B; b++) rep.data.set(x.q.data, b * x.q.data.length);
    const a = crossAttentionRef(x.q, x.k, x.v, c.o);
    const r = crossAttentionRef(rep, x.k, x.v, c.o);
    expectClose(a.out.data, r.out.data, { atol: 1e-14, rtol: 0 }, 'out');
    const ga = crossAttentionBackwardRef(x.q, x.k, x.v, x.dOut, c.o);
    const gr = crossAttentionBackwardRef(rep, x.k, x.v, x.dOut, c.o);
    const summed = zerosArr(x.q.shape);
    for (let b = 0; b < B; b++) for (let j = 0; j < summed.data.length; j++) summed.data[j] += gr.dQ.data[b * summed.data.length + j];
    expectClose(ga.dQ.data, summed.data, { atol: 1e-13, rtol: 0 }, 'dQ');
    expectClose(ga.dK.data, gr.dK.data, { atol: 1e-14, rtol: 0 }, 'dK');
  });

  it('Lk = 1 without dropout returns v (probability 1) and lse = the single logit', () => {
    const c = CROSS[2];
    const x = crossInputs(c, 6);
    const r = crossAttentionRef(x.q, x.k, x.v, c.o);
    const [B, , Lq, , M, d, dv] = c.dims;
    for (let b = 0; b < B; b++)
      for (let i = 0; i < Lq; i++)
        for (let m = 0; m < M; m++) {
          for (let e = 0; e < dv; e++) expect(r.out.data[((b * Lq + i) * M + m) * dv + e]).toBeCloseTo(x.v.data[(b * M + m) * dv + e], 14);
          let s = 0;
          for (let e = 0; e < d; e++) s += x.q.data[(i * M + m) * d + e] * x.k.data[(b * M + m) * d + e];
          expect(r.lse.data[(b * M + m) * Lq + i]).toBeCloseTo(s / Math.sqrt(d), 12);
        }
  });

  it('the probability mask uses element index ((b·M + m)·Lq + i)·Lk + j of stream (seed, 0)', () => {
    const g = crossGeometry([1, 3, 2, 4], [2, 5, 2, 4], [2, 5, 2, 3], { dropout: 0.4, seed: 123 });
    const mask = crossMaskRef(g);
    for (let b = 0; b < 2; b++)
      for (let m = 0; m < 2; m++)
        for (let i = 0; i < 3; i++)
          for (let j = 0; j < 5; j++) {
            const idx = ((b * 2 + m) * 3 + i) * 5 + j;
            expect(mask[idx]).toBe(dropoutKeep(idx, 123, 0, 0.4) ? 1 / (1 - Math.fround(0.4)) : 0);
          }
  });
});

// ---------------------------------------------------------------- group FC

describe('group FC oracle', () => {
  const cases: [string, number, number, number, number, number][] = [
    // name, B, K, D, g, N
    ['N not a multiple of K (K·g − N = 2 dropped slots)', 2, 3, 4, 3, 7],
    ['K = N (g = 1, full decoding)', 2, 5, 3, 1, 5],
    ['N = K·g', 1, 2, 3, 4, 8],
    ['one group', 3, 1, 2, 5, 4],
  ];
  it.each(cases)('%s: forward equals einsum → flatten → first N → + bias', (_n, B, K, D, g, N) => {
    const rng = new Rng(B * 100 + K * 10 + N);
    const x = rng.arr([B, K, D]);
    const w = rng.arr([K, D, g]);
    const bias = rng.arr([N]);
    const got = groupFCRef(x, w, bias);
    const want = new Float64Array(B * N);
    for (let b = 0; b < B; b++) {
      const Z: number[] = [];
      for (let k = 0; k < K; k++)
        for (let j = 0; j < g; j++) {
          let s = 0;
          for (let e = 0; e < D; e++) s += x.data[(b * K + k) * D + e] * w.data[(k * D + e) * g + j];
          Z.push(s);
        }
      for (let c = 0; c < N; c++) want[b * N + c] = Z[c] + bias.data[c];
    }
    expectClose(got.data, want, { atol: 1e-13, rtol: 0 }, 'logits');
  });

  it.each(cases)('%s: gradients match finite differences; dropped slots get dW = 0', (_n, B, K, D, g, N) => {
    const rng = new Rng(B * 1000 + K * 10 + N);
    const x = rng.arr([B, K, D]);
    const w = rng.arr([K, D, g]);
    const bias = rng.arr([N]);
    gradcheck(`groupFC ${_n}`, ([xx, ww, bb]) => groupFCRef(xx, ww, bb), ([xx, ww], d) => {
      const r = groupFCBackwardRef(xx, ww, d);
      return [r.dX, r.dW, r.dBias];
    }, [x, w, bias], { seed: N });
    const r = groupFCBackwardRef(x, w, rng.arr([B, N]));
    for (let k = 0; k < K; k++)
      for (let e = 0; e < D; e++)
        for (let j = 0; j < g; j++) if (k * g + j >= N) expect(r.dW.data[(k * D + e) * g + j]).toBe(0);
  });
});

// ---------------------------------------------------------------- losses

function lossInputs(seed: number, shape: number[], opts: { soft?: boolean; std?: number } = {}) {
  const rng = new Rng(seed);
  const logits = rng.arr(shape, { std: opts.std ?? 2 });
  const targets = zerosArr(shape);
  for (let i = 0; i < targets.data.length; i++) targets.data[i] = opts.soft ? Math.fround(rng.next()) : rng.next() < 0.3 ? 1 : 0;
  return { logits, targets };
}

describe('ASL oracle', () => {
  const variants: [string, Record<string, number | boolean>][] = [
    ['defaults (γ− 4, γ+ 1, clip 0.05)', {}],
    ['training-script setting (γ+ 0)', { gammaPos: 0 }],
    ['no clip, γ− 2', { clip: 0, gammaNeg: 2 }],
    ['plain BCE limit (γ± 0, clip 0)', { gammaPos: 0, gammaNeg: 0, clip: 0 }],
  ];

  it.each(variants)('%s: the params.h form equals the reference form for binary targets', (_n, o) => {
    const { logits, targets } = lossInputs(1, [4, 9], { std: 4 });
    expectClose(aslElementRef(logits, targets, o).data, aslReferenceFormRef(logits, targets, o).data, { atol: 1e-14, rtol: 1e-13 }, 'loss');
  });

  it('γ± = 0 and clip 0 is BCE', () => {
    const { logits, targets } = lossInputs(2, [3, 11]);
    expectClose(aslElementRef(logits, targets, { gammaPos: 0, gammaNeg: 0, clip: 0 }).data, bceElementRef(logits, targets).data,
      { atol: 1e-13, rtol: 1e-12 }, 'asl vs bce');
  });

  it.each(variants)('%s: the detached-weight gradient matches the spec closed forms', (_n, o) => {
    const { logits, targets } = lossInputs(3, [4, 9], { std: 3 });
    const g = aslGradRef(logits, targets, o);
    const gp = (o.gammaPos as number | undefined) ?? 1;
    const gn = (o.gammaNeg as number | undefined) ?? 4;
    const m = (o.clip as number | undefined) ?? 0.05;
    for (let i = 0; i < logits.data.length; i++) {
      const p = 1 / (1 + Math.exp(-logits.data[i]));
      const want = targets.data[i] === 1
        ? -Math.pow(1 - p, gp) * (1 - p)
        : p > m ? Math.pow(p - m, gn) * p * (1 - p) / (1 - p + m) : 0;
      expect(Math.abs(g.data[i] - want)).toBeLessThan(1e-14);
    }
  });

  const fdCases: [string, Record<string, number | boolean>, boolean][] = [
    ['focalGrad, defaults', { focalGrad: true }, false],
    ['focalGrad, γ+ 0', { focalGrad: true, gammaPos: 0 }, false],
    ['focalGrad, γ− 2.5, clip 0.1', { focalGrad: true, gammaNeg: 2.5, clip: 0.1 }, false],
    ['focalGrad, soft targets', { focalGrad: true }, true],
    ['focalGrad, soft targets, γ+ 0', { focalGrad: true, gammaPos: 0 }, true],
  ];
  it.each(fdCases)('%s: gradient matches finite differences of the loss', (_n, o, soft) => {
    const { logits, targets } = lossInputs(4, [3, 7], { soft });
    gradcheck(`asl ${_n}`, ([x]) => aslElementRef(x, targets, o), ([x], d) => {
      const g = aslGradRef(x, targets, o);
      return [{ data: g.data.map((v, i) => v * d.data[i]), shape: g.shape }];
    }, [logits], { seed: 5 });
  });

  it.each([
    ['defaults', {}, false], ['γ+ 0', { gammaPos: 0 }, false], ['soft targets', {}, true], ['soft, γ+ 0, clip 0', { gammaPos: 0, clip: 0 }, true],
  ] as [string, Record<string, number>, boolean][])('detached weights (%s): gradient matches finite differences with the weights frozen', (_n, o, soft) => {
    const { logits, targets } = lossInputs(6, [3, 7], { soft });
    const at: Arr = { data: logits.data.slice(), shape: logits.shape.slice() };
    gradcheck(`asl detached ${_n}`, ([x]) => aslElementRef(x, targets, o, at), ([x], d) => {
      const g = aslGradRef(x, targets, o);
      return [{ data: g.data.map((v, i) => v * d.data[i]), shape: g.shape }];
    }, [logits], { seed: 7 });
  });

  it('the clamps: p < eps gives log(eps) and no gradient through the log; p <= clip gives 0 for a negative', () => {
    const logits = arr([-30, -30, 0.5, -3.5], [4]);
    const targets = arr([1, 1, 0, 0], [4]);
    const L = aslElementRef(logits, targets, { gammaPos: 0 });
    expect(L.data[0]).toBeCloseTo(-Math.log(1e-8), 10);
    const g = aslGradRef(logits, targets, { gammaPos: 0 });
    expect(Math.abs(g.data[0])).toBe(0);
    expect(Math.abs(L.data[3])).toBe(0); // σ(−3.5) = 0.029 <= clip: p_neg = 1
    expect(Math.abs(g.data[3])).toBe(0);
    expect(aslRef(logits, targets, { gammaPos: 0 })).toBeCloseTo(L.data.reduce((a, x) => a + x, 0), 12);
  });
});

describe('BCE oracle', () => {
  it('equals −[y log σ + (1 − y) log(1 − σ)] and its gradient matches finite differences', () => {
    const { logits, targets } = lossInputs(8, [4, 5], { soft: true });
    const naive = logits.data.map((x, i) => {
      const p = 1 / (1 + Math.exp(-x));
      return -(targets.data[i] * Math.log(p) + (1 - targets.data[i]) * Math.log(1 - p));
    });
    expectClose(bceElementRef(logits, targets).data, naive, { atol: 1e-12, rtol: 1e-12 }, 'bce');
    expect(bceRef(logits, targets, 'sum')).toBeCloseTo(naive.reduce((a, x) => a + x, 0), 10);
    expect(bceRef(logits, targets)).toBeCloseTo(naive.reduce((a, x) => a + x, 0) / 20, 12);
    gradcheck('bce', ([x]) => bceElementRef(x, targets), ([x], d) => {
      const g = bceGradRef(x, targets, 'sum');
      return [{ data: g.data.map((v, i) => v * d.data[i]), shape: g.shape }];
    }, [logits], { seed: 9 });
    const gm = bceGradRef(logits, targets, 'mean', 3);
    const gs = bceGradRef(logits, targets, 'sum');
    expectClose(gm.data, gs.data.map((v) => (v * 3) / 20), { atol: 1e-15, rtol: 1e-14 }, 'mean scaling');
  });

  it('is stable for large logits', () => {
    const L = bceElementRef(arr([200, -200, 200, -200], [4]), arr([1, 0, 0, 1], [4]));
    expect(Array.from(L.data)).toEqual([Math.log1p(Math.exp(-200)), Math.log1p(Math.exp(-200)), 200 + Math.log1p(Math.exp(-200)), 200 + Math.log1p(Math.exp(-200))]);
  });
});
