// Self-tests of the float64 halo-attention oracle (test/oracle/halo.ts), no addon involved:
// * the forward against an independent transcription of timm's HaloAttn (pad the key/value maps
//   after the projection, unfold win×win windows, relative logits through timm's rel→abs padding
//   trick in rel_logits_1d), which also pins the uncentred table indexing and strided geometry;
// * lse against log Σ exp of the logits; the unused table rows getting zero gradient; h = 0 against
//   plain blocked softmax attention; padded keys attended (not masked);
// * every gradient (dQ, dK, dV, dRelH, dRelW) against central finite differences (spec §5.1 configs).
import { gradcheck, expectClose } from './oracle/gradcheck';
import { haloAttentionBackwardRef, haloAttentionRef, haloLogitsRef, HaloRefOptions } from './oracle/halo';
import { Arr, zerosArr } from './oracle/nd';
import { Rng } from './oracle/rng';

interface Case {
  name: string;
  B: number;
  H: number;
  W: number;
  M: number;
  dk: number;
  dv: number;
  o: HaloRefOptions;
}

interface Inputs {
  q: Arr;
  k: Arr;
  v: Arr;
  relH: Arr;
  relW: Arr;
}

function inputs(c: Case, seed: number): Inputs {
  const rng = new Rng(seed);
  const s = c.o.stride ?? 1;
  const win = c.o.blockSize + 2 * c.o.haloSize;
  return {
    q: rng.arr([c.B, c.H / s, c.W / s, c.M, c.dk]),
    k: rng.arr([c.B, c.H, c.W, c.M, c.dk]),
    v: rng.arr([c.B, c.H, c.W, c.M, c.dv]),
    relH: rng.arr([2 * win - 1, c.dk], { std: 0.5 }),
    relW: rng.arr([2 * win - 1, c.dk], { std: 0.5 }),
  };
}

/**
 * timm's rel_logits_1d for one query row of a block: x[qx, r] = q_{qx}·rel[r] (qx < bq, r < 2win−1),
 * pad each row with one zero, flatten, pad with (2win−1 − bq) zeros, reshape to (bq+1, 2win−1) and
 * keep [:bq, win−1:] → result[qx][kx]. Done literally on the flat buffer.
 */
function relLogits1d(x: number[][], win: number): number[][] {
  const bq = x.length;
  const rel = 2 * win - 1;
  const flat: number[] = [];
  for (let r = 0; r < bq; r++) flat.push(...x[r], 0);
  for (let p = 0; p < rel - bq; p++) flat.push(0);
  if (flat.length !== (bq + 1) * rel) throw new Error('relLogits1d: bad padding');
  const out: number[][] = [];
  for (let r = 0; r < bq; r++) out.push(flat.slice(r * rel + win - 1, r * rel + win - 1 + win));
  return out;
}

/** Independent timm-style forward: returns out, lse and the logits [B,Hq,Wq,M,win²]. */
function timmHalo(inp: Inputs, c: Case): { out: Arr; lse: Arr; logits: Arr } {
  const { B, H, W, M, dk, dv } = c;
  const b = c.o.blockSize;
  const h = c.o.haloSize;
  const s = c.o.stride ?? 1;
  const bq = b / s;
  const win = b + 2 * h;
  const tau = c.o.scale ?? 1 / Math.sqrt(dk);
  const Hq = H / s;
  const Wq = W / s;
  const Hp = H + 2 * h;
  const Wp = W + 2 * h;
  // zero-pad after the projection
  const pad = (t: Arr, d: number): Float64Array => {
    const p = new Float64Array(B * Hp * Wp * M * d);
    for (let n = 0; n < B; n++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++)
          for (let i = 0; i < M * d; i++) p[(((n * Hp + y + h) * Wp + x + h) * M * d) + i] = t.data[((n * H + y) * W + x) * M * d + i];
    return p;
  };
  const kp = pad(inp.k, dk);
  const vp = pad(inp.v, dv);
  const out = zerosArr([B, Hq, Wq, M, dv]);
  const lse = zerosArr([B, Hq, Wq, M]);
  const logits = zerosArr([B, Hq, Wq, M, win * win]);
  const qvec = (n: number, y: number, x: number, m: number) => Array.from(inp.q.data.subarray((((n * Hq + y) * Wq + x) * M + m) * dk, (((n * Hq + y) * Wq + x) * M + m + 1) * dk));
  const dotv = (a: number[], t: Float64Array, o: number) => a.reduce((acc, ai, e) => acc + ai * t[o + e], 0);
  for (let n = 0; n < B; n++)
    for (let I = 0; I < H / b; I++)
      for (let J = 0; J < W / b; J++)
        for (let m = 0; m < M; m++) {
          // block queries Qb[qy][qx] and unfolded window keys/values
          const Qb: number[][][] = [];
          for (let qy = 0; qy < bq; qy++) {
            Qb.push([]);
            for (let qx = 0; qx < bq; qx++) Qb[qy].push(qvec(n, I * bq + qy, J * bq + qx, m));
          }
          const kOff = (ky: number, kx: number) => (((n * Hp + I * b + ky) * Wp + J * b + kx) * M + m) * dk;
          const vOff = (ky: number, kx: number) => (((n * Hp + I * b + ky) * Wp + J * b + kx) * M + m) * dv;
          // width logits: for each qy, rows over qx; height logits: for each qx, rows over qy
          const relW: number[][][] = []; // [qy][qx][kx]
          for (let qy = 0; qy < bq; qy++) {
            const x: number[][] = Qb[qy].map((qv) => Array.from({ length: 2 * win - 1 }, (_, r) => dotv(qv, inp.relW.data, r * dk)));
            relW.push(relLogits1d(x, win));
          }
          const relH: number[][][] = []; // [qx][qy][ky]
          for (let qx = 0; qx < bq; qx++) {
            const x: number[][] = Qb.map((row) => Array.from({ length: 2 * win - 1 }, (_, r) => dotv(row[qx], inp.relH.data, r * dk)));
            relH.push(relLogits1d(x, win));
          }
          for (let qy = 0; qy < bq; qy++)
            for (let qx = 0; qx < bq; qx++) {
              const qv = Qb[qy][qx];
              const S: number[] = [];
              for (let ky = 0; ky < win; ky++)
                for (let kx = 0; kx < win; kx++) {
                  const qk = dotv(qv, kp, kOff(ky, kx));
                  const R = relW[qy][qx][kx] + relH[qx][qy][ky];
                  S.push(c.o.scalePosEmbed ? tau * (qk + R) : tau * qk + R);
                }
              const mx = Math.max(...S);
              const Z = S.reduce((acc, z) => acc + Math.exp(z - mx), 0);
              const row = ((n * Hq + I * bq + qy) * Wq + J * bq + qx) * M + m;
              lse.data[row] = mx + Math.log(Z);
              logits.data.set(S, row * win * win);
              for (let ky = 0; ky < win; ky++)
                for (let kx = 0; kx < win; kx++) {
                  const a = Math.exp(S[ky * win + kx] - mx) / Z;
                  for (let e = 0; e < dv; e++) out.data[row * dv + e] += a * vp[vOff(ky, kx) + e];
                }
            }
        }
  return { out, lse, logits };
}

const CASES: Case[] = [
  { name: 'b4 h1 on 8×8 (4 border blocks)', B: 1, H: 8, W: 8, M: 2, dk: 4, dv: 4, o: { blockSize: 4, haloSize: 1 } },
  { name: 'b4 h1 on 8×8, scalePosEmbed, dk 8', B: 1, H: 8, W: 8, M: 2, dk: 8, dv: 4, o: { blockSize: 4, haloSize: 1, scalePosEmbed: true } },
  { name: 'b4 h1 on 4×4 (single block), batch 2', B: 2, H: 4, W: 4, M: 2, dk: 4, dv: 8, o: { blockSize: 4, haloSize: 1 } },
  { name: 'b4 h1 on 4×4 (single block), scalePosEmbed', B: 1, H: 4, W: 4, M: 2, dk: 8, dv: 8, o: { blockSize: 4, haloSize: 1, scalePosEmbed: true } },
  { name: 'stride 2, b4 h1 on 8×8 (b_q = 2)', B: 1, H: 8, W: 8, M: 2, dk: 4, dv: 4, o: { blockSize: 4, haloSize: 1, stride: 2 } },
  { name: 'stride 2, b4 h1 on 8×8, scalePosEmbed', B: 1, H: 8, W: 8, M: 2, dk: 4, dv: 8, o: { blockSize: 4, haloSize: 1, stride: 2, scalePosEmbed: true } },
  { name: 'non-square 8×4, b4 h2, one head, custom scale', B: 1, H: 8, W: 4, M: 1, dk: 4, dv: 4, o: { blockSize: 4, haloSize: 2, scale: 0.3 } },
  { name: 'stride 2 on 4×8, b2 h1 (b_q = 1)', B: 1, H: 4, W: 8, M: 2, dk: 4, dv: 4, o: { blockSize: 2, haloSize: 1, stride: 2 } },
  { name: 'h = 0, b4 on 8×8', B: 1, H: 8, W: 8, M: 2, dk: 4, dv: 4, o: { blockSize: 4, haloSize: 0 } },
];

describe('halo attention oracle: forward', () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s matches the timm-style unfold formulation', (_name, c, i) => {
    const inp = inputs(c, 100 + i);
    const ref = haloAttentionRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, c.o);
    const t = timmHalo(inp, c);
    expect(ref.out.shape).toEqual(t.out.shape);
    expect(ref.lse.shape).toEqual(t.lse.shape);
    expectClose(ref.out.data, t.out.data, { atol: 1e-12, rtol: 1e-12 }, 'out');
    expectClose(ref.lse.data, t.lse.data, { atol: 1e-12, rtol: 1e-12 }, 'lse');
    const logits = haloLogitsRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, c.o);
    expectClose(logits.data, t.logits.data, { atol: 1e-12, rtol: 1e-12 }, 'logits');
  });

  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s: lse = log Σ exp of the logits', (_name, c, i) => {
    const inp = inputs(c, 200 + i);
    const { lse } = haloAttentionRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, c.o);
    const logits = haloLogitsRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, c.o);
    const W2 = logits.shape[4];
    const want = new Float64Array(lse.data.length);
    for (let r = 0; r < want.length; r++) {
      let s = 0;
      for (let j = 0; j < W2; j++) s += Math.exp(logits.data[r * W2 + j]);
      want[r] = Math.log(s);
    }
    expectClose(lse.data, want, { atol: 1e-12, rtol: 1e-12 }, 'lse');
  });

  it('padded keys are attended, not masked (v = 1 gives the in-image probability mass)', () => {
    const c = CASES[2]; // 4×4 single block, h = 1: every window has padding
    const inp = inputs(c, 7);
    inp.v.data.fill(1);
    const { out } = haloAttentionRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, c.o);
    for (const x of out.data) {
      expect(x).toBeLessThan(1 - 1e-6);
      expect(x).toBeGreaterThan(0);
    }
    // and exactly that mass: Σ over in-image keys of exp(S − lse)
    const logits = haloLogitsRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, c.o);
    const { lse } = haloAttentionRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, c.o);
    const win = 6;
    const rows = lse.data.length;
    for (let r = 0; r < rows; r++) {
      let mass = 0;
      for (let ky = 1; ky <= 4; ky++) for (let kx = 1; kx <= 4; kx++) mass += Math.exp(logits.data[r * win * win + ky * win + kx] - lse.data[r]);
      expect(Math.abs(out.data[r * c.dv] - mass)).toBeLessThan(1e-12);
    }
    // padded keys' logits are the positional term only: changing k cannot change them
    const k2 = new Rng(8).arr(inp.k.shape);
    const logits2 = haloLogitsRef(inp.q, k2, inp.v, inp.relH, inp.relW, c.o);
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < win * win; j++) {
        const ky = Math.floor(j / win);
        const kx = j % win;
        const padded = ky === 0 || ky === win - 1 || kx === 0 || kx === win - 1;
        if (padded) expect(logits2.data[r * win * win + j]).toBe(logits.data[r * win * win + j]);
      }
  });

  it('h = 0 reduces to plain blocked softmax attention (zero tables) and to blocked attention + R', () => {
    const c: Case = { name: 'h0', B: 2, H: 8, W: 4, M: 2, dk: 4, dv: 3, o: { blockSize: 4, haloSize: 0 } };
    for (const zeroTables of [true, false]) {
      const inp = inputs(c, zeroTables ? 31 : 32);
      if (zeroTables) {
        inp.relH.data.fill(0);
        inp.relW.data.fill(0);
      }
      const { out, lse } = haloAttentionRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, c.o);
      const b = 4;
      const tau = 0.5;
      const want = new Float64Array(out.data.length);
      const wantLse = new Float64Array(lse.data.length);
      const at = (n: number, y: number, x: number, m: number, d: number) => (((n * c.H + y) * c.W + x) * c.M + m) * d;
      for (let n = 0; n < c.B; n++)
        for (let y = 0; y < c.H; y++)
          for (let x = 0; x < c.W; x++)
            for (let m = 0; m < c.M; m++) {
              // keys: every pixel of the same block, position relative to the block
              const I = Math.floor(y / b);
              const J = Math.floor(x / b);
              const S: number[] = [];
              const V: number[][] = [];
              for (let yy = I * b; yy < I * b + b; yy++)
                for (let xx = J * b; xx < J * b + b; xx++) {
                  let s = 0;
                  let r = 0;
                  const qo = at(n, y, x, m, c.dk);
                  const ko = at(n, yy, xx, m, c.dk);
                  const rh = (yy - I * b) - (y - I * b) + b - 1;
                  const rw = (xx - J * b) - (x - J * b) + b - 1;
                  for (let e = 0; e < c.dk; e++) {
                    s += inp.q.data[qo + e] * inp.k.data[ko + e];
                    r += inp.q.data[qo + e] * (inp.relH.data[rh * c.dk + e] + inp.relW.data[rw * c.dk + e]);
                  }
                  S.push(tau * s + r);
                  const vo = at(n, yy, xx, m, c.dv);
                  V.push(Array.from(inp.v.data.subarray(vo, vo + c.dv)));
                }
              const mx = Math.max(...S);
              const Z = S.reduce((a, z) => a + Math.exp(z - mx), 0);
              const row = ((n * c.H + y) * c.W + x) * c.M + m;
              wantLse[row] = mx + Math.log(Z);
              for (let j = 0; j < S.length; j++)
                for (let e = 0; e < c.dv; e++) want[row * c.dv + e] += (Math.exp(S[j] - mx) / Z) * V[j][e];
            }
      expectClose(out.data, want, { atol: 1e-12, rtol: 1e-12 }, `out (zero tables ${zeroTables})`);
      expectClose(lse.data, wantLse, { atol: 1e-12, rtol: 1e-12 }, `lse (zero tables ${zeroTables})`);
    }
  });

  it('a single block with h = 0 is global attention over the map', () => {
    const c: Case = { name: 'global', B: 1, H: 4, W: 4, M: 1, dk: 4, dv: 2, o: { blockSize: 4, haloSize: 0 } };
    const inp = inputs(c, 41);
    inp.relH.data.fill(0);
    inp.relW.data.fill(0);
    const { out } = haloAttentionRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, c.o);
    const N = 16;
    for (let i = 0; i < N; i++) {
      const S = Array.from({ length: N }, (_, j) => 0.5 * [0, 1, 2, 3].reduce((a, e) => a + inp.q.data[i * 4 + e] * inp.k.data[j * 4 + e], 0));
      const mx = Math.max(...S);
      const Z = S.reduce((a, z) => a + Math.exp(z - mx), 0);
      for (let e = 0; e < 2; e++) {
        const want = S.reduce((a, z, j) => a + (Math.exp(z - mx) / Z) * inp.v.data[j * 2 + e], 0);
        expect(Math.abs(out.data[i * 2 + e] - want)).toBeLessThan(1e-12);
      }
    }
  });

  it('rejects inconsistent shapes and non-strided stride-2 configurations', () => {
    const c = CASES[0];
    const inp = inputs(c, 1);
    expect(() => haloAttentionRef(inp.q, inp.k, inp.v, zerosArr([10, 4]), inp.relW, c.o)).toThrow(/relH/);
    expect(() => haloAttentionRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, { ...c.o, stride: 2 })).toThrow(/q has shape/);
    expect(() => haloAttentionRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, { blockSize: 3, haloSize: 1, stride: 2 })).toThrow(/strided/);
  });
});

/**
 * Central finite differences of L = Σ w ⊙ out on a sample of entries of each input (every entry of a
 * tensor with at most `full` elements, else `count` random ones), same tolerance rule as gradcheck:
 * |analytic − numeric| <= 1e-6·max(max|analytic|, 1e-3) + 1e-5·|numeric|.
 */
function sampledGradcheck(label: string, c: Case, inp: Inputs, seed: number, count = 24, full = 48): void {
  const rng = new Rng(seed);
  const xs = [inp.q, inp.k, inp.v, inp.relH, inp.relW];
  const names = ['dQ', 'dK', 'dV', 'dRelH', 'dRelW'];
  const f = () => haloAttentionRef(xs[0], xs[1], xs[2], xs[3], xs[4], c.o).out;
  const y0 = f();
  const w = rng.arr(y0.shape);
  const loss = () => {
    const y = f();
    let s = 0;
    for (let i = 0; i < y.data.length; i++) s += w.data[i] * y.data[i];
    return s;
  };
  const g = haloAttentionBackwardRef(xs[0], xs[1], xs[2], xs[3], xs[4], w, c.o);
  const grads = [g.dQ, g.dK, g.dV, g.dRelH, g.dRelW];
  const step = 1e-6;
  for (let t = 0; t < xs.length; t++) {
    const x = xs[t];
    expect(grads[t].shape).toEqual(x.shape);
    const n = x.data.length;
    const idx = n <= full ? Array.from({ length: n }, (_, j) => j) : Array.from({ length: count }, () => rng.int(0, n));
    const ana: number[] = [];
    const num: number[] = [];
    for (const j of idx) {
      const v = x.data[j];
      x.data[j] = v + step;
      const lp = loss();
      x.data[j] = v - step;
      const lm = loss();
      x.data[j] = v;
      num.push((lp - lm) / (2 * step));
      ana.push(grads[t].data[j]);
    }
    let scale = 1e-3;
    for (const a of grads[t].data) scale = Math.max(scale, Math.abs(a));
    expectClose(ana, num, { atol: 1e-6 * scale, rtol: 1e-5 }, `${label}: ${names[t]} at [${idx.slice(0, 8).join(', ')}${idx.length > 8 ? ', …' : ''}] vs finite differences`);
  }
}

describe('halo attention oracle: backward', () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s: all five gradients match finite differences (sampled)', (_name, c, i) => {
    sampledGradcheck(`halo ${c.name}`, c, inputs(c, 300 + i), 400 + i);
  });

  // exhaustive (every entry of every input) on the two smallest configurations, with the shared tool
  it.each([3, 7].map((i) => [CASES[i].name, CASES[i], i] as const))('%s: all five gradients match finite differences (every entry)', (_name, c, i) => {
    const inp = inputs(c, 700 + i);
    gradcheck(
      `halo ${c.name}`,
      ([q, k, v, relH, relW]) => haloAttentionRef(q, k, v, relH, relW, c.o).out,
      ([q, k, v, relH, relW], dOut) => {
        const g = haloAttentionBackwardRef(q, k, v, relH, relW, dOut, c.o);
        return [g.dQ, g.dK, g.dV, g.dRelH, g.dRelW];
      },
      [inp.q, inp.k, inp.v, inp.relH, inp.relW],
      { seed: 800 + i },
    );
  });

  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s: table rows 0 … win − b_q − 1 get zero gradient, the others do not', (_name, c, i) => {
    const inp = inputs(c, 500 + i);
    const dOut = new Rng(600 + i).arr(haloAttentionRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, c.o).out.shape);
    const g = haloAttentionBackwardRef(inp.q, inp.k, inp.v, inp.relH, inp.relW, dOut, c.o);
    const s = c.o.stride ?? 1;
    const bq = c.o.blockSize / s;
    const win = c.o.blockSize + 2 * c.o.haloSize;
    for (const t of [g.dRelH, g.dRelW]) {
      expect(t.shape).toEqual([2 * win - 1, c.dk]);
      for (let r = 0; r < 2 * win - 1; r++) {
        const row = Array.from(t.data.subarray(r * c.dk, (r + 1) * c.dk));
        if (r < win - bq) expect(row.every((x) => x === 0)).toBe(true);
        else expect(row.some((x) => x !== 0)).toBe(true);
      }
    }
  });
});
