// Reductions over one axis (or over every element): sum and mean — forward and backward.
// The backward is a broadcast copy of dOut along the reduced axis (source stride 0), scaled by 1
// (sum) or 1/len (mean). Reducing an axis of length 0 is an error (mean would be undefined).
import { argError, bool, check, options } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { alloc, axisArg, expectShape, fillOrDispose, fmt, prod, sameDevice, tensorArg } from './common';
import { stridedCopy } from './strided';

export interface ReduceOptions {
  /** the axis to reduce (negative counts from the end); omitted: every element */
  axis?: number;
  /** keep the reduced axis as a dimension of size 1; default false */
  keepDims?: boolean;
}

interface ReducePlan {
  outer: number;
  len: number;
  inner: number;
  outShape: number[];
}

function plan(op: string, x: Tensor, opts: unknown): ReducePlan {
  const o = options(op, opts);
  const keepDims = bool(op, 'options.keepDims', o.keepDims, false);
  if (o.axis === undefined) {
    if (x.size === 0) throw argError(op, 'x', 'a non-empty tensor (the reduction covers every element)', x);
    return { outer: 1, len: x.size, inner: 1, outShape: keepDims ? x.shape.map(() => 1) : [] };
  }
  const axis = axisArg(op, 'options.axis', o.axis, x.rank);
  const len = x.shape[axis];
  if (len === 0) throw argError(op, 'x', `a non-empty axis ${axis} to reduce`, x);
  const outShape = keepDims ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
  return { outer: prod(x.shape, 0, axis), len, inner: prod(x.shape, axis + 1), outShape };
}

function forward(op: string, mean: boolean, xIn: unknown, opts: unknown): Tensor {
  const x = tensorArg(op, 'x', xIn);
  const p = plan(op, x, opts);
  const y = alloc(op, p.outShape, x.device);
  if (y.size > 0) {
    check(op, native.reduce(x.storage(op, 'x'), y.storage(op, 'out'), p.outer, p.len, p.inner, mean ? 1 / p.len : 1), [y]);
  }
  return y;
}

function backward(op: string, mean: boolean, xIn: unknown, dIn: unknown, opts: unknown): { dX: Tensor } {
  const x = tensorArg(op, 'x', xIn);
  const dOut = tensorArg(op, 'dOut', dIn);
  sameDevice(op, { x, dOut });
  const p = plan(op, x, opts);
  expectShape(op, 'dOut', dOut, p.outShape, `shape ${fmt(p.outShape)} (the shape of the forward output)`);
  const dX = alloc(op, x.shape, x.device);
  fillOrDispose([dX], () => stridedCopy(op, dOut, 'dOut', dX, [p.outer, p.len, p.inner], [p.inner, 0, 1],
    [p.len * p.inner, p.inner, 1], 0, 0, mean ? 1 / p.len : 1));
  return { dX };
}

/** Σ over opts.axis (or over every element when no axis is given). */
export function sum(x: Tensor, opts?: ReduceOptions): Tensor {
  return forward('sum', false, x, opts);
}
/** Mean over opts.axis (or over every element when no axis is given). */
export function mean(x: Tensor, opts?: ReduceOptions): Tensor {
  return forward('mean', true, x, opts);
}
/** Gradient of sum: dOut broadcast along the reduced axis. */
export function sumBackward(x: Tensor, dOut: Tensor, opts?: ReduceOptions): { dX: Tensor } {
  return backward('sumBackward', false, x, dOut, opts);
}
/** Gradient of mean: dOut / len broadcast along the reduced axis. */
export function meanBackward(x: Tensor, dOut: Tensor, opts?: ReduceOptions): { dX: Tensor } {
  return backward('meanBackward', true, x, dOut, opts);
}
