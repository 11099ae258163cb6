// HaloNet halo attention (fused core) — forward and backward. Math: ../../shared/spec/algorithms.md §3
// (timm's HaloAttn semantics).
//
// q[B,Hq,Wq,M,dk], k[B,H,W,M,dk], v[B,H,W,M,dv] (channels-last, heads in dimension 3), relH/relW
// [2·win−1, dk] shared by the heads, with win = b + 2h. Block (I,J) of b×b pixels: its queries are the
// b_q×b_q query-map pixels (I·b_q + qy, J·b_q + qx); its keys/values the win×win window of pixels
// (I·b − h + ky, J·b − h + kx). Pixels outside the map are ZERO keys and values that ARE attended
// (padding after the projection, no mask — as timm).
//   R[i,j] = q_i·relW[kx − qx + win − 1] + q_i·relH[ky − qy + win − 1]   (uncentred, timm's indexing)
//   S = scale·q·kᵀ + R     (scalePosEmbed: S = scale·(q·kᵀ + R))
//   out_i = Σ_j softmax_j(S[i,:])·v_j,  lse_i = log Σ_j exp S[i,j] (natural log)
// stride 1: b_q = b, Hq = H. stride 2 (even b only): strided queries, b_q = b/2, Hq = H/2 — the query
// map holds the top-left pixel of every 2×2 cell, and (qy, qx) are its DOWNSAMPLED block coordinates.
// (stride 2 with an odd block is the module's full-resolution + average-pool path, not this op's.)
// H and W must be multiples of b. The backward recomputes the probabilities from lse.
import { argError, bool, check, finiteNumber, nonNegativeInt, options, positiveInt } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { alloc, expectShape, fmt, sameDevice, tensorArg } from './common';
import { zeroFill } from './strided';

export interface HaloAttentionOptions {
  /** block size b (required) */
  blockSize: number;
  /** halo h >= 0 (required); the window is b + 2h wide */
  haloSize: number;
  /** 1 (default) or 2 with an even block (strided queries) */
  stride?: number;
  /** τ, multiplies q·k; default dk^−1/2 */
  scale?: number;
  /** true: τ also scales the relative logits (default false, as timm) */
  scalePosEmbed?: boolean;
}

export interface HaloAttentionResult {
  /** [B, Hq, Wq, M, dv] */
  out: Tensor;
  /** [B, Hq, Wq, M]: natural-log log-sum-exp of each query's logits (for the backward) */
  lse: Tensor;
}

export interface HaloAttentionGrads {
  dQ: Tensor;
  dK: Tensor;
  dV: Tensor;
  dRelH: Tensor;
  dRelW: Tensor;
}

interface HaloPlan {
  B: number;
  H: number;
  W: number;
  M: number;
  dk: number;
  dv: number;
  Hq: number;
  Wq: number;
  b: number;
  h: number;
  s: number;
  win: number;
  scale: number;
  scalePosEmbed: boolean;
}

const MAX_WIN = 1 << 14;

function plan(op: string, q: Tensor, k: Tensor, v: Tensor, relH: Tensor, relW: Tensor, optsIn: unknown): HaloPlan {
  const o = options(op, optsIn);
  if (o.blockSize === undefined) throw argError(op, 'options.blockSize', 'a positive integer (the block size b; required)', undefined);
  if (o.haloSize === undefined) throw argError(op, 'options.haloSize', 'a non-negative integer (the halo h; required)', undefined);
  const b = positiveInt(op, 'options.blockSize', o.blockSize);
  const h = nonNegativeInt(op, 'options.haloSize', o.haloSize);
  const win = b + 2 * h;
  if (win > MAX_WIN) throw argError(op, 'options', `blockSize + 2·haloSize <= ${MAX_WIN}`, `blockSize ${b}, haloSize ${h}`, true);
  const s = positiveInt(op, 'options.stride', o.stride, 1);
  if (s !== 1 && s !== 2) throw argError(op, 'options.stride', '1 or 2', s);
  if (s === 2 && b % 2 !== 0) {
    throw argError(op, 'options.stride',
      `1 with an odd blockSize (${b}): strided queries need an even block; stride 2 with an odd block is ` +
      'full-resolution attention followed by 2×2 average pooling (nn.HaloAttention does that)', s);
  }
  const [B, H, W, M, dk] = k.shape;
  if (M < 1) throw argError(op, 'k', 'at least one head (dimension 3 >= 1)', k);
  if (dk < 1) throw argError(op, 'k', 'a key size dk >= 1 (dimension 4)', k);
  if (H < 1 || W < 1 || H % b !== 0 || W % b !== 0) {
    throw argError(op, 'k', `a map H×W whose sides are positive multiples of blockSize ${b} (dimensions 1, 2)`, k);
  }
  expectShape(op, 'v', v, [B, H, W, M, null], `shape [B, H, W, M, dv] = [${B}, ${H}, ${W}, ${M}, *] (the first four dimensions of k)`);
  const dv = v.shape[4];
  if (dv < 1) throw argError(op, 'v', 'a value size dv >= 1 (dimension 4)', v);
  const Hq = H / s;
  const Wq = W / s;
  expectShape(op, 'q', q, [B, Hq, Wq, M, dk],
    `shape [B, H/stride, W/stride, M, dk] = ${fmt([B, Hq, Wq, M, dk])} (k is ${fmt(k.shape)}, stride ${s})`);
  const rows = 2 * win - 1;
  const tableWhat = `shape [2·win − 1, dk] = ${fmt([rows, dk])} (win = blockSize + 2·haloSize = ${win})`;
  expectShape(op, 'relH', relH, [rows, dk], tableWhat);
  expectShape(op, 'relW', relW, [rows, dk], tableWhat);
  const scale = finiteNumber(op, 'options.scale', o.scale, Math.pow(dk, -0.5));
  const scalePosEmbed = bool(op, 'options.scalePosEmbed', o.scalePosEmbed, false);
  return { B, H, W, M, dk, dv, Hq, Wq, b, h, s, win, scale, scalePosEmbed };
}

function args(op: string, q: unknown, k: unknown, v: unknown, relH: unknown, relW: unknown) {
  return {
    q: tensorArg(op, 'q', q, { rank: 5 }),
    k: tensorArg(op, 'k', k, { rank: 5 }),
    v: tensorArg(op, 'v', v, { rank: 5 }),
    relH: tensorArg(op, 'relH', relH, { rank: 2 }),
    relW: tensorArg(op, 'relW', relW, { rank: 2 }),
  };
}

/** Fused halo attention: relative logits, softmax over each block's haloed window, weighted sum → {out, lse}. */
export function haloAttention(
  qIn: Tensor, kIn: Tensor, vIn: Tensor, relHIn: Tensor, relWIn: Tensor, opts: HaloAttentionOptions,
): HaloAttentionResult {
  const op = 'haloAttention';
  const { q, k, v, relH, relW } = args(op, qIn, kIn, vIn, relHIn, relWIn);
  const device = sameDevice(op, { q, k, v, relH, relW });
  const p = plan(op, q, k, v, relH, relW, opts);
  const out = alloc(op, [p.B, p.Hq, p.Wq, p.M, p.dv], device);
  const lse = alloc(op, [p.B, p.Hq, p.Wq, p.M], device);
  try {
    if (p.B > 0) {
      check(op, native.haloAttention(q.storage(op, 'q'), k.storage(op, 'k'), v.storage(op, 'v'),
        relH.storage(op, 'relH'), relW.storage(op, 'relW'), out.storage(op, 'out'), lse.storage(op, 'lse'),
        p.B, p.H, p.W, p.M, p.dk, p.dv, p.b, p.h, p.s, p.scale, p.scalePosEmbed));
    }
  } catch (e) {
    out.dispose();
    lse.dispose();
    throw e;
  }
  return { out, lse };
}

/**
 * Gradients of haloAttention with respect to q, k, v and both tables. `out` and `lse` are the forward's
 * results for the same inputs (the probabilities are recomputed from lse); dOut has out's shape.
 */
export function haloAttentionBackward(
  qIn: Tensor, kIn: Tensor, vIn: Tensor, relHIn: Tensor, relWIn: Tensor,
  outIn: Tensor, lseIn: Tensor, dIn: Tensor, opts: HaloAttentionOptions,
): HaloAttentionGrads {
  const op = 'haloAttentionBackward';
  const { q, k, v, relH, relW } = args(op, qIn, kIn, vIn, relHIn, relWIn);
  const out = tensorArg(op, 'out', outIn, { rank: 5 });
  const lse = tensorArg(op, 'lse', lseIn, { rank: 4 });
  const dOut = tensorArg(op, 'dOut', dIn, { rank: 5 });
  const device = sameDevice(op, { q, k, v, relH, relW, out, lse, dOut });
  const p = plan(op, q, k, v, relH, relW, opts);
  const outShape = [p.B, p.Hq, p.Wq, p.M, p.dv];
  expectShape(op, 'out', out, outShape, `shape ${fmt(outShape)} (the forward's output for these q, k, v)`);
  expectShape(op, 'lse', lse, outShape.slice(0, 4), `shape ${fmt(outShape.slice(0, 4))} (the forward's lse)`);
  expectShape(op, 'dOut', dOut, outShape, `shape ${fmt(outShape)} (the shape of the forward output)`);
  const grads: Tensor[] = [];
  try {
    for (const t of [q, k, v, relH, relW]) grads.push(alloc(op, t.shape, device));
    const [dQ, dK, dV, dRelH, dRelW] = grads;
    if (p.B === 0) {
      for (const g of [dRelH, dRelW]) zeroFill(op, g);
    } else {
      check(op, native.haloAttentionBackward(q.storage(op, 'q'), k.storage(op, 'k'), v.storage(op, 'v'),
        relH.storage(op, 'relH'), relW.storage(op, 'relW'), out.storage(op, 'out'), lse.storage(op, 'lse'),
        dOut.storage(op, 'dOut'), dQ.storage(op, 'dQ'), dK.storage(op, 'dK'), dV.storage(op, 'dV'),
        dRelH.storage(op, 'dRelH'), dRelW.storage(op, 'dRelW'),
        p.B, p.H, p.W, p.M, p.dk, p.dv, p.b, p.h, p.s, p.scale, p.scalePosEmbed));
    }
    return { dQ, dK, dV, dRelH, dRelW };
  } catch (e) {
    for (const g of grads) g.dispose();
    throw e;
  }
}
