// Float64 references of the ML-Decoder ops (spec §1.2–§1.4, semantics of native/include/visattn/params.h),
// written naively with explicit loops:
// * cross-attention per (image b, head m, query i): S_j = τ·q_i·k_j, softmax over the keys, the
//   probabilities multiplied by keep/(1 − p) where keep is the Philox dropout mask of element
//   ((b·M + m)·Lq + i)·Lk + j of stream (seed, offset 0) (test/oracle/philox.ts); q has batch 1 (shared)
//   or B; backward: dP̃ = dO·vᵀ, dP = dP̃ ⊙ keep/(1 − p), dS = P ⊙ (dP − Σ P·dP), dQ = τ·dS·k (summed
//   over the batch for a shared q), dK = τ·dSᵀ·q, dV = P̃ᵀ·dO;
// * group FC: logit[b,c] = x[b,⌊c/g⌋,:]·w[⌊c/g⌋,:,c mod g] + bias[c], and its backward;
// * dropout with the same Philox mask;
// * the asymmetric loss per element (params.h form, and the reference's w·L_ce form for self-tests),
//   its gradient with the focusing weights detached or differentiated; sigmoid BCE.
// Checked against central finite differences in test/oracle.group_decoder.test.ts.
import { Arr, sizeOf, zerosArr } from './nd';
import { dropoutMask } from './philox';

// ---------------------------------------------------------------- dropout

export function dropoutRef(x: Arr, p: number, seed: number, offset = 0): Arr {
  const out = zerosArr(x.shape);
  if (p === 0) {
    out.data.set(x.data);
    return out;
  }
  const keep = dropoutMask(x.data.length, seed, offset, p);
  const s = 1 / (1 - Math.fround(p));
  for (let i = 0; i < x.data.length; i++) out.data[i] = keep[i] ? x.data[i] * s : 0;
  return out;
}

// ---------------------------------------------------------------- cross-attention

export interface CrossRefOptions {
  /** τ, default d^−1/2 */
  scale?: number;
  /** probability dropout p, default 0 */
  dropout?: number;
  seed?: number;
}

export interface CrossGeometry {
  B: number;
  Bq: number;
  Lq: number;
  Lk: number;
  M: number;
  d: number;
  dv: number;
  scale: number;
  p: number;
  seed: number;
}

export function crossGeometry(qShape: readonly number[], kShape: readonly number[], vShape: readonly number[], o: CrossRefOptions): CrossGeometry {
  const [Bq, Lq, M, d] = qShape;
  const [B, Lk] = kShape;
  const dv = vShape[3];
  const bad = (what: string) => new Error(`crossAttentionRef: ${what} (q [${qShape.join(', ')}], k [${kShape.join(', ')}], v [${vShape.join(', ')}])`);
  if (kShape.length !== 4 || kShape[2] !== M || kShape[3] !== d) throw bad('k must be [B, Lk, M, d]');
  if (vShape.length !== 4 || vShape[0] !== B || vShape[1] !== Lk || vShape[2] !== M) throw bad('v must be [B, Lk, M, dv]');
  if (Bq !== 1 && Bq !== B) throw bad('Bq must be 1 or B');
  const p = o.dropout ?? 0;
  if (p > 0 && o.seed === undefined) throw bad('dropout needs a seed');
  return { B, Bq, Lq, Lk, M, d, dv, scale: o.scale ?? Math.pow(d, -0.5), p, seed: o.seed ?? 0 };
}

/** The keep mask as multipliers keep/(1 − p) in element order ((b·M + m)·Lq + i)·Lk + j (all 1 when p = 0). */
export function crossMaskRef(g: CrossGeometry): Float64Array {
  const n = g.B * g.M * g.Lq * g.Lk;
  const out = new Float64Array(n).fill(1);
  if (g.p === 0) return out;
  const keep = dropoutMask(n, g.seed, 0, g.p);
  const s = 1 / (1 - Math.fround(g.p));
  for (let i = 0; i < n; i++) out[i] = keep[i] ? s : 0;
  return out;
}

const qAt = (g: CrossGeometry, b: number, i: number, m: number) => (((g.Bq === 1 ? 0 : b) * g.Lq + i) * g.M + m) * g.d;
const kAt = (g: CrossGeometry, b: number, j: number, m: number) => ((b * g.Lk + j) * g.M + m) * g.d;
const vAt = (g: CrossGeometry, b: number, j: number, m: number) => ((b * g.Lk + j) * g.M + m) * g.dv;
const oAt = (g: CrossGeometry, b: number, i: number, m: number) => ((b * g.Lq + i) * g.M + m) * g.dv;

/** Softmax probabilities P (before dropout) of row (b, m, i) into P; returns lse. */
function crossRow(g: CrossGeometry, q: Arr, k: Arr, b: number, m: number, i: number, P: Float64Array): number {
  const qo = qAt(g, b, i, m);
  let mx = -Infinity;
  for (let j = 0; j < g.Lk; j++) {
    const ko = kAt(g, b, j, m);
    let s = 0;
    for (let e = 0; e < g.d; e++) s += q.data[qo + e] * k.data[ko + e];
    P[j] = g.scale * s;
    mx = Math.max(mx, P[j]);
  }
  let sum = 0;
  for (let j = 0; j < g.Lk; j++) sum += Math.exp(P[j] - mx);
  const lse = mx + Math.log(sum);
  for (let j = 0; j < g.Lk; j++) P[j] = Math.exp(P[j] - lse);
  return lse;
}

export function crossAttentionRef(q: Arr, k: Arr, v: Arr, o: CrossRefOptions = {}): { out: Arr; lse: Arr } {
  const g = crossGeometry(q.shape, k.shape, v.shape, o);
  const mask = crossMaskRef(g);
  const out = zerosArr([g.B, g.Lq, g.M, g.dv]);
  const lse = zerosArr([g.B, g.M, g.Lq]);
  const P = new Float64Array(g.Lk);
  for (let b = 0; b < g.B; b++)
    for (let m = 0; m < g.M; m++)
      for (let i = 0; i < g.Lq; i++) {
        lse.data[(b * g.M + m) * g.Lq + i] = crossRow(g, q, k, b, m, i, P);
        const row = ((b * g.M + m) * g.Lq + i) * g.Lk;
        const oo = oAt(g, b, i, m);
        for (let j = 0; j < g.Lk; j++) {
          const pt = P[j] * mask[row + j];
          const vo = vAt(g, b, j, m);
          for (let e = 0; e < g.dv; e++) out.data[oo + e] += pt * v.data[vo + e];
        }
      }
  return { out, lse };
}

export function crossAttentionBackwardRef(q: Arr, k: Arr, v: Arr, dOut: Arr, o: CrossRefOptions = {}): { dQ: Arr; dK: Arr; dV: Arr } {
  const g = crossGeometry(q.shape, k.shape, v.shape, o);
  const mask = crossMaskRef(g);
  const dQ = zerosArr(q.shape);
  const dK = zerosArr(k.shape);
  const dV = zerosArr(v.shape);
  const P = new Float64Array(g.Lk);
  const dP = new Float64Array(g.Lk);
  for (let b = 0; b < g.B; b++)
    for (let m = 0; m < g.M; m++)
      for (let i = 0; i < g.Lq; i++) {
        crossRow(g, q, k, b, m, i, P);
        const row = ((b * g.M + m) * g.Lq + i) * g.Lk;
        const go = oAt(g, b, i, m);
        let rowDot = 0;
        for (let j = 0; j < g.Lk; j++) {
          const vo = vAt(g, b, j, m);
          let s = 0;
          for (let e = 0; e < g.dv; e++) {
            s += dOut.data[go + e] * v.data[vo + e];
            dV.data[vo + e] += P[j] * mask[row + j] * dOut.data[go + e];
          }
          dP[j] = s * mask[row + j]; // ∂L/∂P (through the dropout)
          rowDot += P[j] * dP[j];
        }
        const qo = qAt(g, b, i, m);
        for (let j = 0; j < g.Lk; j++) {
          const dS = g.scale * P[j] * (dP[j] - rowDot);
          const ko = kAt(g, b, j, m);
          for (let e = 0; e < g.d; e++) {
            dQ.data[qo + e] += dS * k.data[ko + e];
            dK.data[ko + e] += dS * q.data[qo + e];
          }
        }
      }
  return { dQ, dK, dV };
}

// ---------------------------------------------------------------- group fully-connected

function groupGeometry(x: Arr, w: Arr, N: number) {
  const [B, K, D] = x.shape;
  const g = w.shape[2];
  if (w.shape[0] !== K || w.shape[1] !== D) throw new Error(`groupFCRef: w [${w.shape.join(', ')}] does not match x [${x.shape.join(', ')}]`);
  if (!(N > (K - 1) * g && N <= K * g)) throw new Error(`groupFCRef: N = ${N} outside ((K−1)·g, K·g] with K ${K}, g ${g}`);
  return { B, K, D, g };
}

export function groupFCRef(x: Arr, w: Arr, bias: Arr): Arr {
  const N = bias.data.length;
  const { B, K, D, g } = groupGeometry(x, w, N);
  const out = zerosArr([B, N]);
  for (let b = 0; b < B; b++)
    for (let c = 0; c < N; c++) {
      const kk = Math.floor(c / g);
      const j = c % g;
      let s = bias.data[c];
      for (let e = 0; e < D; e++) s += x.data[(b * K + kk) * D + e] * w.data[(kk * D + e) * g + j];
      out.data[b * N + c] = s;
    }
  return out;
}

export function groupFCBackwardRef(x: Arr, w: Arr, dLogits: Arr): { dX: Arr; dW: Arr; dBias: Arr } {
  const N = dLogits.shape[1];
  const { B, K, D, g } = groupGeometry(x, w, N);
  const dX = zerosArr(x.shape);
  const dW = zerosArr(w.shape);
  const dBias = zerosArr([N]);
  for (let b = 0; b < B; b++)
    for (let c = 0; c < N; c++) {
      const kk = Math.floor(c / g);
      const j = c % g;
      const gc = dLogits.data[b * N + c];
      dBias.data[c] += gc;
      for (let e = 0; e < D; e++) {
        dX.data[(b * K + kk) * D + e] += w.data[(kk * D + e) * g + j] * gc;
        dW.data[(kk * D + e) * g + j] += x.data[(b * K + kk) * D + e] * gc;
      }
    }
  return { dX, dW, dBias };
}

// ---------------------------------------------------------------- multi-label losses

export interface AslRefOptions {
  gammaNeg?: number;
  gammaPos?: number;
  clip?: number;
  eps?: number;
  focalGrad?: boolean;
}

interface AslParams {
  gp: number;
  gn: number;
  clip: number;
  eps: number;
  focalGrad: boolean;
}

function aslParams(o: AslRefOptions): AslParams {
  return { gp: o.gammaPos ?? 1, gn: o.gammaNeg ?? 4, clip: o.clip ?? 0.05, eps: o.eps ?? 1e-8, focalGrad: o.focalGrad ?? false };
}

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** p_neg = min(1 − p + clip, 1) */
const pNegOf = (p: number, clip: number) => Math.min(1 - p + clip, 1);

/**
 * Per-element ASL (params.h): L = −[y·log(max(p, eps))·(1 − p)^γ+ + (1 − y)·log(max(p_neg, eps))·(1 − p_neg)^γ−].
 * `weightsAt`, when given, freezes the focusing weights at those logits (for finite differences of the
 * detached-weight gradient).
 */
export function aslElementRef(logits: Arr, targets: Arr, o: AslRefOptions = {}, weightsAt?: Arr): Arr {
  const a = aslParams(o);
  const out = zerosArr(logits.shape);
  for (let i = 0; i < logits.data.length; i++) {
    const y = targets.data[i];
    const p = sigmoid(logits.data[i]);
    const pn = pNegOf(p, a.clip);
    const pw = weightsAt ? sigmoid(weightsAt.data[i]) : p;
    const pnw = pNegOf(pw, a.clip);
    const wPos = Math.pow(1 - pw, a.gp);
    const wNeg = Math.pow(1 - pnw, a.gn);
    out.data[i] = -(y * Math.log(Math.max(p, a.eps)) * wPos + (1 - y) * Math.log(Math.max(pn, a.eps)) * wNeg);
  }
  return out;
}

/**
 * The reference's form (ML_Decoder losses.py AsymmetricLoss): −w·L_ce with pt = y·p + (1 − y)·p_neg and
 * γ = y·γ+ + (1 − y)·γ−, w = (1 − pt)^γ. Equal to aslElementRef for y ∈ {0, 1}.
 */
export function aslReferenceFormRef(logits: Arr, targets: Arr, o: AslRefOptions = {}): Arr {
  const a = aslParams(o);
  const out = zerosArr(logits.shape);
  for (let i = 0; i < logits.data.length; i++) {
    const y = targets.data[i];
    const xsPos = sigmoid(logits.data[i]);
    let xsNeg = 1 - xsPos;
    if (a.clip > 0) xsNeg = Math.min(xsNeg + a.clip, 1);
    const lce = y * Math.log(Math.max(xsPos, a.eps)) + (1 - y) * Math.log(Math.max(xsNeg, a.eps));
    let w = 1;
    if (a.gp > 0 || a.gn > 0) {
      const pt = xsPos * y + xsNeg * (1 - y);
      w = Math.pow(1 - pt, a.gp * y + a.gn * (1 - y));
    }
    out.data[i] = -lce * w;
  }
  return out;
}

/** Σ of the per-element ASL (the loss the op returns). */
export function aslRef(logits: Arr, targets: Arr, o: AslRefOptions = {}): number {
  return aslElementRef(logits, targets, o).data.reduce((s, x) => s + x, 0);
}

/** ∂L/∂x per element, focusing weights detached (focalGrad false) or differentiated (true). */
export function aslGradRef(logits: Arr, targets: Arr, o: AslRefOptions = {}): Arr {
  const a = aslParams(o);
  const out = zerosArr(logits.shape);
  for (let i = 0; i < logits.data.length; i++) {
    const y = targets.data[i];
    const p = sigmoid(logits.data[i]);
    const s = p * (1 - p); // dp/dx
    // positive part: Lp = −log(max(p, eps))·(1 − p)^γ+
    const logP = Math.log(Math.max(p, a.eps));
    const dLogP = p > a.eps ? 1 / p : 0;
    let gPos = -Math.pow(1 - p, a.gp) * dLogP * s; // weight held constant
    if (a.focalGrad) gPos += a.gp * Math.pow(1 - p, a.gp) * p * logP; // −log p · d(1−p)^γ+/dx = γ+(1−p)^γ+·p·log p
    // negative part: Ln = −log(max(p_neg, eps))·(1 − p_neg)^γ−, p_neg = 1 − (p − clip) while p > clip, else 1
    let gNeg = 0;
    if (p > a.clip && 1 - p + a.clip < 1) {
      const pn = 1 - p + a.clip;
      const pm = p - a.clip;
      const dLogPn = pn > a.eps ? -1 / pn : 0; // d log p_neg / dp
      gNeg = -Math.pow(pm, a.gn) * dLogPn * s;
      if (a.focalGrad && a.gn > 0) gNeg += -Math.log(Math.max(pn, a.eps)) * a.gn * Math.pow(pm, a.gn - 1) * s;
    }
    out.data[i] = y * gPos + (1 - y) * gNeg;
  }
  return out;
}

/** Per-element stable sigmoid BCE: max(x, 0) − x·y + log(1 + exp(−|x|)). */
export function bceElementRef(logits: Arr, targets: Arr): Arr {
  const out = zerosArr(logits.shape);
  for (let i = 0; i < logits.data.length; i++) {
    const x = logits.data[i];
    out.data[i] = Math.max(x, 0) - x * targets.data[i] + Math.log1p(Math.exp(-Math.abs(x)));
  }
  return out;
}

export function bceRef(logits: Arr, targets: Arr, reduction: 'mean' | 'sum' = 'mean'): number {
  const s = bceElementRef(logits, targets).data.reduce((a, x) => a + x, 0);
  return reduction === 'mean' ? s / sizeOf(logits.shape) : s;
}

/** ∂(bce)/∂x = (σ(x) − y)·dLoss (/ n for 'mean'). */
export function bceGradRef(logits: Arr, targets: Arr, reduction: 'mean' | 'sum' = 'mean', dLoss = 1): Arr {
  const out = zerosArr(logits.shape);
  const s = reduction === 'mean' ? dLoss / logits.data.length : dLoss;
  for (let i = 0; i < logits.data.length; i++) out.data[i] = (sigmoid(logits.data[i]) - targets.data[i]) * s;
  return out;
}
