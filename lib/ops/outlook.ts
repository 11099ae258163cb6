// VOLO outlook attention (fused core) — forward and backward. Math: ../../shared/spec/algorithms.md §2.
//
// v[B,H,W,C] (channel m·d + e belongs to head m, d = C/M), logits[B,h,w,M,k²,k²] with axis 4 the
// DESTINATION position q in the window and axis 5 the SOURCE position r (r = a·k + c, row-major like
// unfold). Window (i,j) covers the pixels (s·i − p + a, s·j − p + c); pixels outside the image are
// zeros that are ATTENDED (enter the softmax with their logit), not masked.
//   A[b,i,j,m,q,:] = softmax_r(scale · logits[b,i,j,m,q,:])
//   out[b,y,x,m·d+e] = Σ over (window, q) landing on (y,x) of Σ_r A[..,q,r] · v[b, src(r), m·d+e]
// (a SUM over overlapping windows — fold; destination positions in the padding are dropped).
// Window grid: h = ⌊(H + 2p − k)/s⌋ + 1, w likewise (both >= 1). M is read from logits' 4th dimension.
// Backward: dA = Gw·Vwᵀ, dVw = Aᵀ·Gw folded back onto v, dLogits = scale · A ⊙ (dA − rowsum(A ⊙ dA)).
import { argError, check, finiteNumber, isInt, options, positiveInt } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { alloc, expectShape, fmt, sameDevice, tensorArg } from './common';
import { zeroFill } from './strided';

export interface OutlookAttentionOptions {
  /** window size k, odd; default 3 */
  kernelSize?: number;
  /** zero padding p in [0, k); default (k − 1)/2 */
  padding?: number;
  /** window stride s >= 1; default 1 */
  stride?: number;
  /** multiplies the logits before the softmax; default (C/M)^−1/2 */
  scale?: number;
}

interface OutlookPlan {
  B: number;
  H: number;
  W: number;
  C: number;
  h: number;
  w: number;
  heads: number;
  k: number;
  p: number;
  s: number;
  scale: number;
}

/** Window-grid length of one spatial dimension, or an error naming it. */
function gridLen(op: string, v: Tensor, dim: 'H' | 'W', n: number, k: number, p: number, s: number): number {
  const span = n + 2 * p - k;
  if (span < 0) {
    throw argError(op, 'v', `a spatial size ${dim} with ${dim} + 2·padding >= kernelSize (kernelSize ${k}, padding ${p}: ${dim} >= ${k - 2 * p})`, v);
  }
  return Math.floor(span / s) + 1;
}

function plan(op: string, v: Tensor, logits: Tensor, optsIn: unknown): OutlookPlan {
  const o = options(op, optsIn);
  const k = positiveInt(op, 'options.kernelSize', o.kernelSize, 3);
  if (k % 2 === 0) throw argError(op, 'options.kernelSize', 'an odd positive integer (windows are centred)', k);
  if (k > 215) throw argError(op, 'options.kernelSize', 'an odd integer <= 215 (k⁴ must fit in int32)', k);
  const p = o.padding === undefined ? (k - 1) / 2 : o.padding;
  if (!isInt(p) || p < 0 || p >= k) throw argError(op, 'options.padding', `an integer in [0, ${k}) (0 <= padding < kernelSize)`, p);
  const s = positiveInt(op, 'options.stride', o.stride, 1);
  if (s > 2 ** 30) throw argError(op, 'options.stride', 'an integer < 2^30', s);
  const [B, H, W, C] = v.shape;
  const h = gridLen(op, v, 'H', H, k, p, s);
  const w = gridLen(op, v, 'W', W, k, p, s);
  const K2 = k * k;
  const expected = [B, h, w, null, K2, K2];
  expectShape(op, 'logits', logits, expected,
    `shape [B, h, w, *, k², k²] = [${B}, ${h}, ${w}, *, ${K2}, ${K2}] (the window grid of v ${fmt(v.shape)} ` +
    `with kernelSize ${k}, padding ${p}, stride ${s}; * = heads)`);
  const heads = logits.shape[3];
  if (heads < 1) throw argError(op, 'logits', 'at least one head (dimension 3 >= 1)', logits);
  if (C % heads !== 0) {
    throw argError(op, 'v', `a channel count C divisible by the number of heads ${heads} (dimension 3 of logits)`, v);
  }
  const dflt = C > 0 ? Math.pow(C / heads, -0.5) : 1;
  const scale = finiteNumber(op, 'options.scale', o.scale, dflt);
  return { B, H, W, C, h, w, heads, k, p, s, scale };
}

/** Fused outlook attention: softmax over the source axis, weighted sum over the window, fold. → out[B,H,W,C] */
export function outlookAttention(vIn: Tensor, logitsIn: Tensor, opts?: OutlookAttentionOptions): Tensor {
  const op = 'outlookAttention';
  const v = tensorArg(op, 'v', vIn, { rank: 4 });
  const logits = tensorArg(op, 'logits', logitsIn, { rank: 6 });
  const device = sameDevice(op, { v, logits });
  const p = plan(op, v, logits, opts);
  const out = alloc(op, v.shape, device);
  if (out.size > 0) {
    check(op, native.outlookAttention(v.storage(op, 'v'), logits.storage(op, 'logits'), out.storage(op, 'out'),
      p.B, p.H, p.W, p.C, p.h, p.w, p.heads, p.k, p.p, p.s, p.scale), [out]);
  }
  return out;
}

/** Gradients of outlookAttention: {dV (shape of v), dLogits (shape of logits)}; the softmax is recomputed. */
export function outlookAttentionBackward(
  vIn: Tensor, logitsIn: Tensor, dIn: Tensor, opts?: OutlookAttentionOptions,
): { dV: Tensor; dLogits: Tensor } {
  const op = 'outlookAttentionBackward';
  const v = tensorArg(op, 'v', vIn, { rank: 4 });
  const logits = tensorArg(op, 'logits', logitsIn, { rank: 6 });
  const dOut = tensorArg(op, 'dOut', dIn);
  const device = sameDevice(op, { v, logits, dOut });
  const p = plan(op, v, logits, opts);
  expectShape(op, 'dOut', dOut, v.shape, `shape ${fmt(v.shape)} (the shape of the forward output, that of v)`);
  const dV = alloc(op, v.shape, device);
  const dLogits = alloc(op, logits.shape, device);
  try {
    if (v.size === 0) {
      // No values (C = 0 or an empty image): every dA is an empty sum, so dLogits = 0.
      zeroFill(op, dLogits);
    } else if (dLogits.size > 0) {
      check(op, native.outlookAttentionBackward(v.storage(op, 'v'), logits.storage(op, 'logits'), dOut.storage(op, 'dOut'),
        dV.storage(op, 'dV'), dLogits.storage(op, 'dLogits'), p.B, p.H, p.W, p.C, p.h, p.w, p.heads, p.k, p.p, p.s, p.scale));
    }
  } catch (e) {
    dV.dispose();
    dLogits.dispose();
    throw e;
  }
  return { dV, dLogits };
}
