// kMaX-DeepLab's k-means cross-attention (fused assign + update) and the row L2 normalisation of its
// pixel features. Math: ../../shared/spec/algorithms.md §4.3–§4.4; numerics: ARCHITECTURE.md.
//
// pixels[B,N,D], centers[B,L,D], values[B,N,Dv]:
//   score[b,l,n] = pixels[b,n,:]·centers[b,l,:] in the CANONICAL order (ascending feature index, fused
//                  multiply-add, no split): identical centers score bit-identically on every device
//   assign[b,n]  = argmax_l score (the LOWEST l on ties)                      int32 [B,N]
//   update[b,l,:] = Σ_{n: assign[b,n] = l} values[b,n,:] (a SUM; empty cluster → 0)   [B,L,Dv]
//   logits = score [B,L,N], only when returnLogits (training: the deep-supervision losses read them)
// No dense one-hot is built; the update is a deterministic segmented sum. Backward: a gather,
// dValues[b,n,:] = dUpdate[b, assign[b,n], :] — no gradient to pixels or centers through the arg-max.
import { argError, bool, check, finiteNumber, options, positiveInt } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { alloc, expectShape, fmt, sameDevice, tensorArg } from './common';
import { zeroFill } from './strided';

export interface KMeansCrossAttentionOptions {
  /** also return the scores [B,L,N] (default false) */
  returnLogits?: boolean;
}

export interface KMeansCrossAttentionResult {
  /** [B, L, Dv]: per-cluster sums of the assigned pixels' values */
  update: Tensor;
  /** int32 [B, N]: each pixel's cluster */
  assign: Tensor;
  /** [B, L, N] when returnLogits */
  logits?: Tensor;
}

/** k-means cross-attention: hard arg-max assignment of pixels to centers, per-cluster value sums. */
export function kmeansCrossAttention(
  pixelsIn: Tensor, centersIn: Tensor, valuesIn: Tensor, opts?: KMeansCrossAttentionOptions,
): KMeansCrossAttentionResult {
  const op = 'kmeansCrossAttention';
  const pixels = tensorArg(op, 'pixels', pixelsIn, { rank: 3 });
  const centers = tensorArg(op, 'centers', centersIn, { rank: 3 });
  const values = tensorArg(op, 'values', valuesIn, { rank: 3 });
  const device = sameDevice(op, { pixels, centers, values });
  const o = options(op, opts);
  const returnLogits = bool(op, 'options.returnLogits', o.returnLogits, false);
  const [B, N, D] = pixels.shape;
  if (D < 1) throw argError(op, 'pixels', 'a feature size D >= 1 (dimension 2)', pixels);
  expectShape(op, 'centers', centers, [B, null, D], `shape [B, L, D] = [${B}, *, ${D}] (B and D of pixels ${fmt(pixels.shape)})`);
  const L = centers.shape[1];
  if (L < 1) throw argError(op, 'centers', 'at least one center (dimension 1 >= 1)', centers);
  if (L > 2 ** 31 - 1) throw argError(op, 'centers', 'at most 2^31 − 1 centers (int32 assignments)', centers);
  expectShape(op, 'values', values, [B, N, null], `shape [B, N, Dv] = [${B}, ${N}, *] (B and N of pixels ${fmt(pixels.shape)})`);
  const Dv = values.shape[2];
  if (Dv < 1) throw argError(op, 'values', 'a value size Dv >= 1 (dimension 2)', values);
  const update = alloc(op, [B, L, Dv], device);
  const assign = alloc(op, [B, N], device, 'int32');
  const logits = returnLogits ? alloc(op, [B, L, N], device) : undefined;
  try {
    if (B > 0 && N === 0) {
      zeroFill(op, update);
    } else if (B > 0) {
      check(op, native.kmeansCrossAttention(pixels.storage(op, 'pixels'), centers.storage(op, 'centers'),
        values.storage(op, 'values'), update.storage(op, 'update'), assign.storage(op, 'assign'),
        logits ? logits.storage(op, 'logits') : null, B, N, L, D, Dv));
    }
  } catch (e) {
    for (const t of [update, assign, logits]) t?.dispose();
    throw e;
  }
  return logits ? { update, assign, logits } : { update, assign };
}

export interface KMeansCrossAttentionBackwardOptions {
  /** N, the number of pixels (must equal assign's dimension 1) */
  numPixels: number;
}

/**
 * Gradient of kmeansCrossAttention with respect to values: dValues[b,n,:] = dUpdate[b, assign[b,n], :].
 * An assignment outside [0, L) is found inside the kernel: the op fails on the device's stream and
 * the next readback or synchronize throws, naming the op.
 */
export function kmeansCrossAttentionBackward(assignIn: Tensor, dIn: Tensor, opts: KMeansCrossAttentionBackwardOptions): Tensor {
  const op = 'kmeansCrossAttentionBackward';
  const assign = tensorArg(op, 'assign', assignIn, { dtype: 'int32', rank: 2 });
  const dUpdate = tensorArg(op, 'dUpdate', dIn, { rank: 3 });
  const device = sameDevice(op, { assign, dUpdate });
  const o = options(op, opts);
  if (o.numPixels === undefined) throw argError(op, 'options.numPixels', 'the number of pixels N (required)', undefined);
  const N = o.numPixels === 0 ? 0 : positiveInt(op, 'options.numPixels', o.numPixels);
  const [B, L, Dv] = dUpdate.shape;
  expectShape(op, 'assign', assign, [B, N], `shape [B, numPixels] = [${B}, ${N}] (B of dUpdate ${fmt(dUpdate.shape)})`);
  if (L < 1) throw argError(op, 'dUpdate', 'at least one center (dimension 1 >= 1)', dUpdate);
  const dValues = alloc(op, [B, N, Dv], device);
  try {
    if (dValues.size > 0) {
      check(op, native.kmeansCrossAttentionBackward(assign.storage(op, 'assign'), dUpdate.storage(op, 'dUpdate'),
        dValues.storage(op, 'dValues'), B, N, L, Dv));
    }
  } catch (e) {
    dValues.dispose();
    throw e;
  }
  return dValues;
}

export interface L2NormalizeOptions {
  /** the norm's lower bound (default 1e-12, as F.normalize) */
  eps?: number;
}

function l2Plan(op: string, x: Tensor, optsIn: unknown) {
  const o = options(op, optsIn);
  const eps = finiteNumber(op, 'options.eps', o.eps, 1e-12);
  if (!(eps > 0) || Math.fround(eps) === 0) throw argError(op, 'options.eps', 'a number > 0 (and > 0 in float32)', eps);
  if (x.rank < 1) throw argError(op, 'x', 'a tensor of rank >= 1 (normalised over its last axis)', x);
  const cols = x.shape[x.rank - 1];
  return { eps, cols, rows: cols === 0 ? 0 : x.size / cols };
}

/** y = x / max(‖x‖₂, eps) over the last axis (per pixel over channels). */
export function l2Normalize(xIn: Tensor, opts?: L2NormalizeOptions): Tensor {
  const op = 'l2Normalize';
  const x = tensorArg(op, 'x', xIn);
  const p = l2Plan(op, x, opts);
  const y = alloc(op, x.shape, x.device);
  if (y.size > 0) check(op, native.l2Normalize(x.storage(op, 'x'), y.storage(op, 'y'), p.rows, p.cols, p.eps), [y]);
  return y;
}

/** Gradient of l2Normalize: with n = ‖x‖₂, dx = (dy − y·(y·dy))/n when n > eps, else dy/eps. */
export function l2NormalizeBackward(xIn: Tensor, dIn: Tensor, opts?: L2NormalizeOptions): { dX: Tensor } {
  const op = 'l2NormalizeBackward';
  const x = tensorArg(op, 'x', xIn);
  const dOut = tensorArg(op, 'dOut', dIn);
  sameDevice(op, { x, dOut });
  const p = l2Plan(op, x, opts);
  expectShape(op, 'dOut', dOut, x.shape, `shape ${fmt(x.shape)} (the shape of x)`);
  const dX = alloc(op, x.shape, x.device);
  if (dX.size > 0) {
    check(op, native.l2NormalizeBackward(x.storage(op, 'x'), dOut.storage(op, 'dOut'), dX.storage(op, 'dX'), p.rows, p.cols, p.eps), [dX]);
  }
  return { dX };
}
