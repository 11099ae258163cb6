// Softmax and log-softmax over the last axis — forward and backward. The backward kernel recomputes
// the forward from x: softmax dX = y ⊙ (dOut − Σ dOut⊙y); log-softmax dX = dOut − softmax(x)·Σ dOut.
import { check } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { alloc, expectShape, fmt, sameDevice, tensorArg } from './common';

function rowsCols(x: Tensor): { rows: number; cols: number } {
  const cols = x.shape[x.rank - 1];
  return { rows: cols === 0 ? 0 : x.size / cols, cols };
}

function forward(op: string, log: boolean, xIn: unknown): Tensor {
  const x = tensorArg(op, 'x', xIn, { minRank: 1 });
  const { rows, cols } = rowsCols(x);
  const y = alloc(op, x.shape, x.device);
  if (y.size > 0) check(op, native.softmax(x.storage(op, 'x'), y.storage(op, 'out'), rows, cols, log), [y]);
  return y;
}

function backward(op: string, log: boolean, xIn: unknown, dIn: unknown): { dX: Tensor } {
  const x = tensorArg(op, 'x', xIn, { minRank: 1 });
  const dOut = tensorArg(op, 'dOut', dIn);
  sameDevice(op, { x, dOut });
  expectShape(op, 'dOut', dOut, x.shape, `shape ${fmt(x.shape)} (the shape of x)`);
  const { rows, cols } = rowsCols(x);
  const dX = alloc(op, x.shape, x.device);
  if (dX.size > 0) {
    check(op, native.softmaxBackward(x.storage(op, 'x'), dOut.storage(op, 'dOut'), dX.storage(op, 'dX'), rows, cols, log), [dX]);
  }
  return { dX };
}

/** exp(x − max) / Σ exp(x − max) over the last axis. */
export function softmax(x: Tensor): Tensor {
  return forward('softmax', false, x);
}
/** x − max − log Σ exp(x − max) over the last axis. */
export function logSoftmax(x: Tensor): Tensor {
  return forward('logSoftmax', true, x);
}
/** Gradient of softmax (recomputed from x). */
export function softmaxBackward(x: Tensor, dOut: Tensor): { dX: Tensor } {
  return backward('softmaxBackward', false, x, dOut);
}
/** Gradient of logSoftmax (recomputed from x). */
export function logSoftmaxBackward(x: Tensor, dOut: Tensor): { dX: Tensor } {
  return backward('logSoftmaxBackward', true, x, dOut);
}
