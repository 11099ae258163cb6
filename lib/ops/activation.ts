// Activations: relu, gelu (erf form: 0.5·x·(1 + erf(x/√2))) and silu (x·σ(x)) — forward and backward.
// The backward recomputes f'(x) from the forward input: dX = dOut ⊙ f'(x) (relu'(0) = 0).
import { check } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { alloc, expectShape, fmt, sameDevice, tensorArg } from './common';

const UNARY = { relu: 0, gelu: 1, silu: 2 } as const;
type UnaryKind = keyof typeof UNARY;

function unary(kind: UnaryKind, xIn: unknown): Tensor {
  const op = kind;
  const x = tensorArg(op, 'x', xIn);
  const out = alloc(op, x.shape, x.device);
  if (out.size > 0) check(op, native.unary(UNARY[kind], x.storage(op, 'x'), out.storage(op, 'out'), x.size), [out]);
  return out;
}

function unaryBackward(kind: UnaryKind, xIn: unknown, dIn: unknown): { dX: Tensor } {
  const op = `${kind}Backward`;
  const x = tensorArg(op, 'x', xIn);
  const dOut = tensorArg(op, 'dOut', dIn);
  sameDevice(op, { x, dOut });
  expectShape(op, 'dOut', dOut, x.shape, `shape ${fmt(x.shape)} (the shape of x)`);
  const dX = alloc(op, x.shape, x.device);
  if (dX.size > 0) {
    check(op, native.unaryBackward(UNARY[kind], x.storage(op, 'x'), dOut.storage(op, 'dOut'), dX.storage(op, 'dX'), x.size), [dX]);
  }
  return { dX };
}

/** max(x, 0) */
export function relu(x: Tensor): Tensor {
  return unary('relu', x);
}
/** 0.5·x·(1 + erf(x/√2)) (the exact, erf form) */
export function gelu(x: Tensor): Tensor {
  return unary('gelu', x);
}
/** x·σ(x) */
export function silu(x: Tensor): Tensor {
  return unary('silu', x);
}
/** dX = dOut ⊙ [x > 0] */
export function reluBackward(x: Tensor, dOut: Tensor): { dX: Tensor } {
  return unaryBackward('relu', x, dOut);
}
/** dX = dOut ⊙ (Φ(x) + x·φ(x)) */
export function geluBackward(x: Tensor, dOut: Tensor): { dX: Tensor } {
  return unaryBackward('gelu', x, dOut);
}
/** dX = dOut ⊙ σ(x)·(1 + x·(1 − σ(x))) */
export function siluBackward(x: Tensor, dOut: Tensor): { dX: Tensor } {
  return unaryBackward('silu', x, dOut);
}
