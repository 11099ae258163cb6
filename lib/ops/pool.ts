// 2-D average pooling, channels-last x[B,H,W,C], square windows, no padding — forward and backward.
// Output size per spatial dimension (PyTorch's rule with padding 0):
//   floor mode: Ho = floor((H − k)/s) + 1            (H >= k required)
//   ceil mode:  Ho = ceil((H − k)/s) + 1, minus 1 when the last window would start at or past H.
// A partial window (ceil mode) averages over the in-image pixels it covers.
import { argError, bool, check, options, positiveInt } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { alloc, expectShape, fmt, sameDevice, tensorArg } from './common';

export interface AvgPool2dOptions {
  kernelSize: number;
  /** default kernelSize */
  stride?: number;
  /** default false */
  ceilMode?: boolean;
}

interface PoolPlan {
  B: number;
  H: number;
  W: number;
  C: number;
  Ho: number;
  Wo: number;
  k: number;
  s: number;
}

/** Output length of one spatial dimension, or an error naming the dimension. */
function outLen(op: string, x: Tensor, dim: 'H' | 'W', n: number, k: number, s: number, ceil: boolean): number {
  let o: number;
  if (ceil) {
    o = Math.floor((n - k + s - 1) / s) + 1;
    if (o > 0 && (o - 1) * s >= n) o -= 1;
  } else {
    o = n >= k ? Math.floor((n - k) / s) + 1 : 0;
  }
  if (o < 1) {
    throw argError(op, 'x', `a spatial size ${dim} of at least kernelSize ${k} (${ceil ? 'ceil' : 'floor'} mode, stride ${s}) for a non-empty output`, x);
  }
  return o;
}

function plan(op: string, x: Tensor, opts: unknown): PoolPlan {
  const o = options(op, opts);
  const k = positiveInt(op, 'options.kernelSize', o.kernelSize);
  const s = positiveInt(op, 'options.stride', o.stride, k);
  const ceil = bool(op, 'options.ceilMode', o.ceilMode, false);
  if (k > 2 ** 30 || s > 2 ** 30) throw argError(op, k > 2 ** 30 ? 'options.kernelSize' : 'options.stride', 'an integer < 2^30', Math.max(k, s));
  const [B, H, W, C] = x.shape;
  return { B, H, W, C, Ho: outLen(op, x, 'H', H, k, s, ceil), Wo: outLen(op, x, 'W', W, k, s, ceil), k, s };
}

/** Average pooling of x[B,H,W,C] → [B,Ho,Wo,C]. */
export function avgPool2d(xIn: Tensor, opts: AvgPool2dOptions): Tensor {
  const op = 'avgPool2d';
  const x = tensorArg(op, 'x', xIn, { rank: 4 });
  const p = plan(op, x, opts);
  const y = alloc(op, [p.B, p.Ho, p.Wo, p.C], x.device);
  if (y.size > 0) {
    check(op, native.avgPool2d(x.storage(op, 'x'), y.storage(op, 'out'), p.B, p.H, p.W, p.C, p.Ho, p.Wo, p.k, p.s), [y]);
  }
  return y;
}

/** Gradient of avgPool2d: each window spreads dOut / (its in-image pixel count) over its pixels. */
export function avgPool2dBackward(xIn: Tensor, dIn: Tensor, opts: AvgPool2dOptions): { dX: Tensor } {
  const op = 'avgPool2dBackward';
  const x = tensorArg(op, 'x', xIn, { rank: 4 });
  const dOut = tensorArg(op, 'dOut', dIn);
  sameDevice(op, { x, dOut });
  const p = plan(op, x, opts);
  const outShape = [p.B, p.Ho, p.Wo, p.C];
  expectShape(op, 'dOut', dOut, outShape, `shape ${fmt(outShape)} (the shape of the forward output)`);
  const dX = alloc(op, x.shape, x.device);
  if (dX.size > 0) {
    check(op, native.avgPool2dBackward(dOut.storage(op, 'dOut'), dX.storage(op, 'dX'), p.B, p.H, p.W, p.C, p.Ho, p.Wo, p.k, p.s), [dX]);
  }
  return { dX };
}
