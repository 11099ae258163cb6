// Shape ops that move data: transpose, permute, slice (a copy) and concat — forward and backward.
// Each is a strided copy of 4-byte elements, so int32 tensors are accepted and copied bit-exactly;
// a backward returns gradients with dOut's dtype. sliceBackward zero-fills dX, then copies dOut in.
import { argError, isInt, options } from '../errors';
import { Tensor } from '../tensor';
import { alloc, axisArg, expectShape, fillOrDispose, fmt, sameDevice } from './common';
import { stridedCopy, stridesOf, zeroFill } from './strided';

/** A live float32 or int32 tensor. */
function anyTensorArg(op: string, arg: string, v: unknown): Tensor {
  if (!(v instanceof Tensor)) throw argError(op, arg, 'a Tensor (float32 or int32)', v);
  if (v.disposed) throw argError(op, arg, 'a live tensor', v);
  return v;
}

function permArg(op: string, perm: unknown, rank: number): number[] {
  const expected = `a permutation of the ${rank} axes (integers in [${-rank}, ${rank - 1}], each axis once)`;
  if (!Array.isArray(perm) || perm.length !== rank) throw argError(op, 'perm', expected, perm);
  const p = perm.map((a) => (isInt(a) && a >= -rank && a < rank ? (a < 0 ? a + rank : a) : -1));
  if (p.some((a) => a < 0) || new Set(p).size !== rank) throw argError(op, 'perm', expected, perm);
  return p;
}

function permuted(shape: readonly number[], perm: readonly number[]): number[] {
  return perm.map((p) => shape[p]);
}

function permuteImpl(op: string, x: Tensor, perm: number[]): Tensor {
  const outShape = permuted(x.shape, perm);
  const out = alloc(op, outShape, x.device, x.dtype);
  const xs = stridesOf(x.shape);
  fillOrDispose([out], () => stridedCopy(op, x, 'x', out, outShape, permuted(xs, perm), stridesOf(outShape)));
  return out;
}

function permuteBackwardImpl(op: string, x: Tensor, dOut: Tensor, perm: number[]): { dX: Tensor } {
  const outShape = permuted(x.shape, perm);
  sameDevice(op, { x, dOut });
  expectShape(op, 'dOut', dOut, outShape, `shape ${fmt(outShape)} (the shape of the forward output)`);
  const dX = alloc(op, x.shape, x.device, dOut.dtype);
  // Scatter: dOut's element t goes to dX at the index whose axis perm[d] is t[d].
  fillOrDispose([dX], () => stridedCopy(op, dOut, 'dOut', dX, outShape, stridesOf(outShape), permuted(stridesOf(x.shape), perm)));
  return { dX };
}

function swapPerm(op: string, rank: number, axis0: unknown, axis1: unknown): number[] {
  const a0 = axisArg(op, 'axis0', axis0, rank);
  const a1 = axisArg(op, 'axis1', axis1, rank);
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[a0] = a1;
  perm[a1] = a0;
  return perm;
}

/** Swaps two axes (default: the last two) — a copy. */
export function transpose(xIn: Tensor, axis0 = -2, axis1 = -1): Tensor {
  const op = 'transpose';
  const x = anyTensorArg(op, 'x', xIn);
  return permuteImpl(op, x, swapPerm(op, x.rank, axis0, axis1));
}
/** Gradient of transpose: dOut with the same two axes swapped back. */
export function transposeBackward(xIn: Tensor, dIn: Tensor, axis0 = -2, axis1 = -1): { dX: Tensor } {
  const op = 'transposeBackward';
  const x = anyTensorArg(op, 'x', xIn);
  const dOut = anyTensorArg(op, 'dOut', dIn);
  return permuteBackwardImpl(op, x, dOut, swapPerm(op, x.rank, axis0, axis1));
}

/** out.shape[d] = x.shape[perm[d]] — a copy. */
export function permute(xIn: Tensor, perm: readonly number[]): Tensor {
  const op = 'permute';
  const x = anyTensorArg(op, 'x', xIn);
  return permuteImpl(op, x, permArg(op, perm, x.rank));
}
/** Gradient of permute: dOut permuted by the inverse permutation. */
export function permuteBackward(xIn: Tensor, dIn: Tensor, perm: readonly number[]): { dX: Tensor } {
  const op = 'permuteBackward';
  const x = anyTensorArg(op, 'x', xIn);
  const dOut = anyTensorArg(op, 'dOut', dIn);
  return permuteBackwardImpl(op, x, dOut, permArg(op, perm, x.rank));
}

export interface SliceOptions {
  axis: number;
  /** first index (negative counts from the end); default 0 */
  start?: number;
  /** one past the last index (negative counts from the end); default the axis length */
  end?: number;
}

interface SlicePlan {
  axis: number;
  start: number;
  outShape: number[];
}

function slicePlan(op: string, x: Tensor, opts: unknown): SlicePlan {
  const o = options(op, opts);
  const axis = axisArg(op, 'options.axis', o.axis, x.rank);
  const len = x.shape[axis];
  const index = (name: string, v: unknown, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!isInt(v) || v < -len || v > len) throw argError(op, `options.${name}`, `an integer in [${-len}, ${len}] (axis ${axis} has length ${len})`, v);
    return v < 0 ? v + len : v;
  };
  const start = index('start', o.start, 0);
  const end = index('end', o.end, len);
  if (end < start) throw argError(op, 'options.end', `an index >= start (${start})`, o.end);
  return { axis, start, outShape: x.shape.map((d, i) => (i === axis ? end - start : d)) };
}

/** x[..., start:end, ...] along opts.axis — a copy. */
export function slice(xIn: Tensor, opts: SliceOptions): Tensor {
  const op = 'slice';
  const x = anyTensorArg(op, 'x', xIn);
  const p = slicePlan(op, x, opts);
  const xs = stridesOf(x.shape);
  const out = alloc(op, p.outShape, x.device, x.dtype);
  fillOrDispose([out], () => stridedCopy(op, x, 'x', out, p.outShape, xs, stridesOf(p.outShape), p.start * xs[p.axis], 0));
  return out;
}
/** Gradient of slice: zeros of x's shape with dOut copied into the sliced range. */
export function sliceBackward(xIn: Tensor, dIn: Tensor, opts: SliceOptions): { dX: Tensor } {
  const op = 'sliceBackward';
  const x = anyTensorArg(op, 'x', xIn);
  const dOut = anyTensorArg(op, 'dOut', dIn);
  sameDevice(op, { x, dOut });
  const p = slicePlan(op, x, opts);
  expectShape(op, 'dOut', dOut, p.outShape, `shape ${fmt(p.outShape)} (the shape of the forward output)`);
  const xs = stridesOf(x.shape);
  const dX = alloc(op, x.shape, x.device, dOut.dtype);
  fillOrDispose([dX], () => {
    if (dOut.size !== dX.size) zeroFill(op, dX);
    stridedCopy(op, dOut, 'dOut', dX, p.outShape, stridesOf(p.outShape), xs, 0, p.start * xs[p.axis]);
  });
  return { dX };
}

export interface ConcatOptions {
  /** the axis to join along (negative counts from the end); default 0 */
  axis?: number;
}

interface ConcatPlan {
  list: Tensor[];
  axis: number;
  outShape: number[];
  offsets: number[];
}

function concatPlan(op: string, tensors: unknown, opts: unknown): ConcatPlan {
  if (!Array.isArray(tensors) || tensors.length === 0) throw argError(op, 'tensors', 'a non-empty array of tensors', tensors);
  const list = tensors.map((t, i) => anyTensorArg(op, `tensors[${i}]`, t));
  const first = list[0];
  if (first.rank === 0) throw argError(op, 'tensors[0]', 'a tensor of rank >= 1', first);
  const o = options(op, opts);
  const axis = axisArg(op, 'options.axis', o.axis ?? 0, first.rank);
  const named: Record<string, Tensor> = {};
  list.forEach((t, i) => (named[`tensors[${i}]`] = t));
  sameDevice(op, named);
  const offsets: number[] = [];
  let total = 0;
  list.forEach((t, i) => {
    if (t.dtype !== first.dtype) throw argError(op, `tensors[${i}]`, `dtype ${first.dtype} (that of tensors[0])`, t);
    const ok = t.rank === first.rank && t.shape.every((d, k) => k === axis || d === first.shape[k]);
    if (!ok) {
      const exp = first.shape.map((d, k) => (k === axis ? '*' : String(d))).join(', ');
      throw argError(op, `tensors[${i}]`, `shape [${exp}] (that of tensors[0] except along axis ${axis})`, t);
    }
    offsets.push(total);
    total += t.shape[axis];
  });
  return { list, axis, outShape: first.shape.map((d, k) => (k === axis ? total : d)), offsets };
}

/** Joins tensors along opts.axis (all other dimensions, the dtype and the device must agree). */
export function concat(tensors: readonly Tensor[], opts?: ConcatOptions): Tensor {
  const op = 'concat';
  const p = concatPlan(op, tensors, opts);
  const first = p.list[0];
  const out = alloc(op, p.outShape, first.device, first.dtype);
  const os = stridesOf(p.outShape);
  fillOrDispose([out], () => p.list.forEach((t, i) => {
    stridedCopy(op, t, `tensors[${i}]`, out, t.shape, stridesOf(t.shape), os, 0, p.offsets[i] * os[p.axis]);
  }));
  return out;
}
/** Gradient of concat: dOut split back into the inputs' shapes. */
export function concatBackward(tensors: readonly Tensor[], dIn: Tensor, opts?: ConcatOptions): { dXs: Tensor[] } {
  const op = 'concatBackward';
  const p = concatPlan(op, tensors, opts);
  const dOut = anyTensorArg(op, 'dOut', dIn);
  sameDevice(op, { 'tensors[0]': p.list[0], dOut });
  expectShape(op, 'dOut', dOut, p.outShape, `shape ${fmt(p.outShape)} (the shape of the forward output)`);
  const os = stridesOf(p.outShape);
  const dXs: Tensor[] = [];
  try {
    p.list.forEach((t) => {
      const dX = alloc(op, t.shape, t.device, dOut.dtype);
      dXs.push(dX);
      stridedCopy(op, dOut, 'dOut', dX, t.shape, os, stridesOf(t.shape), p.offsets[dXs.length - 1] * os[p.axis], 0);
    });
  } catch (e) {
    for (const d of dXs) d.dispose();
    throw e;
  }
  return { dXs };
}
