// Elementwise ops with leading-dimension broadcasting: add, sub, mul, scale, biasAdd — forward and
// backward. Broadcasting: the smaller operand's shape (leading 1s ignored) must equal the trailing
// dimensions of the larger one; it is repeated over the leading dimensions.
import { argError, check } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { alloc, fillOrDispose, fmt, prod, sameDevice, shapeEq, tensorArg } from './common';
import { zeroFill } from './strided';

interface Broadcast {
  outShape: number[];
  outer: number;
  inner: number;
  aBcast: boolean;
  bBcast: boolean;
}

function stripLeadingOnes(s: readonly number[]): number[] {
  let i = 0;
  while (i < s.length && s[i] === 1) i++;
  return s.slice(i);
}

/** Whether `small` (leading 1s ignored) equals the trailing dimensions of `big`. */
function isSuffix(small: readonly number[], big: readonly number[]): boolean {
  const s = stripLeadingOnes(small);
  if (s.length > big.length) return false;
  const off = big.length - s.length;
  return s.every((d, i) => d === big[off + i]);
}

/**
 * Decides by SHAPE, never by element count (so that empty tensors broadcast too, e.g.
 * [0, 3] + [3] → [0, 3]): the operand whose shape, leading 1s ignored, equals the trailing
 * dimensions of the other's is the broadcast one; equal shapes (leading 1s ignored) broadcast nothing.
 * @internal
 */
export function broadcastPlan(op: string, a: Tensor, b: Tensor): Broadcast {
  const rank = Math.max(a.rank, b.rank);
  const pad = (s: readonly number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const aCore = stripLeadingOnes(a.shape);
  const bCore = stripLeadingOnes(b.shape);
  if (aCore.length === bCore.length && aCore.every((d, i) => d === bCore[i])) {
    return { outShape: pad(a.shape), outer: 1, inner: a.size, aBcast: false, bBcast: false };
  }
  // `big` keeps its dimensions; `small` is repeated over big's leading prod(big[0 .. rank − |core|]).
  const plan = (big: Tensor, core: number[], smallIsA: boolean): Broadcast => ({
    outShape: pad(big.shape),
    outer: prod(big.shape, 0, big.rank - core.length),
    inner: prod(core),
    aBcast: smallIsA,
    bBcast: !smallIsA,
  });
  if (isSuffix(b.shape, a.shape)) return plan(a, bCore, false);
  if (isSuffix(a.shape, b.shape)) return plan(b, aCore, true);
  throw argError(op, 'b', `a shape broadcastable with ${fmt(a.shape)} over leading dimensions (equal to its trailing dimensions)`, b);
}

const BINARY = { add: 0, sub: 1, mul: 2 } as const;

function binary(op: keyof typeof BINARY, aIn: unknown, bIn: unknown): Tensor {
  const a = tensorArg(op, 'a', aIn);
  const b = tensorArg(op, 'b', bIn);
  const device = sameDevice(op, { a, b });
  const plan = broadcastPlan(op, a, b);
  const out = alloc(op, plan.outShape, device);
  if (out.size > 0) {
    check(op, native.binary(BINARY[op], a.storage(op, 'a'), b.storage(op, 'b'), out.storage(op, 'out'),
      plan.outer, plan.inner, plan.aBcast, plan.bBcast), [out]);
  }
  return out;
}

/** a + b (leading-dimension broadcasting). */
export function add(a: Tensor, b: Tensor): Tensor {
  return binary('add', a, b);
}
/** a − b (leading-dimension broadcasting). */
export function sub(a: Tensor, b: Tensor): Tensor {
  return binary('sub', a, b);
}
/** a ⊙ b (leading-dimension broadcasting). */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binary('mul', a, b);
}

/** alpha·x + beta (elementwise). */
export function affine(xIn: Tensor, alpha: number, beta = 0, op = 'affine'): Tensor {
  const x = tensorArg(op, 'x', xIn);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw argError(op, 'alpha', 'a finite number', alpha);
  if (typeof beta !== 'number' || !Number.isFinite(beta)) throw argError(op, 'beta', 'a finite number', beta);
  const out = alloc(op, x.shape, x.device);
  if (out.size > 0) check(op, native.affine(x.storage(op, 'x'), out.storage(op, 'out'), x.size, alpha, beta), [out]);
  return out;
}

/** s·x */
export function scale(x: Tensor, s: number): Tensor {
  return affine(x, s, 0, 'scale');
}
export function scaleBackward(x: Tensor, s: number, dOut: Tensor): { dX: Tensor } {
  const op = 'scaleBackward';
  tensorArg(op, 'x', x);
  const d = tensorArg(op, 'dOut', dOut);
  if (!shapeEq(d.shape, x.shape)) throw argError(op, 'dOut', `a tensor of the shape of x ${fmt(x.shape)}`, d);
  sameDevice(op, { x, dOut: d });
  return { dX: affine(d, s, 0, op) };
}

/**
 * Sums dOut (the output gradient of a broadcast op) down to `target`'s shape: a view when no
 * broadcasting happened, else a sum over the leading (repeated) rows.
 */
function reduceTo(op: string, g: Tensor, target: Tensor, bcast: boolean, outer: number): Tensor {
  if (!bcast) return g.reshape(target.shape);
  const out = alloc(op, target.shape, g.device);
  // repeated over no rows (an empty leading dimension): Σ = 0
  if (outer === 0) fillOrDispose([out], () => zeroFill(op, out));
  else if (out.size > 0) {
    check(op, native.reduce(g.storage(op, 'dOut'), out.storage(op, 'out'), 1, outer, target.size, 1), [out]);
  }
  return out;
}

function binaryBackward(op: string, kind: keyof typeof BINARY, aIn: unknown, bIn: unknown, dIn: unknown): { dA: Tensor; dB: Tensor } {
  const a = tensorArg(op, 'a', aIn);
  const b = tensorArg(op, 'b', bIn);
  const dOut = tensorArg(op, 'dOut', dIn);
  sameDevice(op, { a, b, dOut });
  const plan = broadcastPlan(op, a, b);
  if (dOut.size !== prod(plan.outShape) || dOut.rank !== plan.outShape.length || !dOut.shape.every((d, i) => d === plan.outShape[i])) {
    throw argError(op, 'dOut', `shape ${fmt(plan.outShape)} (the forward output)`, dOut);
  }
  let gA: Tensor;
  let gB: Tensor;
  if (kind === 'add') {
    gA = dOut;
    gB = dOut;
  } else if (kind === 'sub') {
    gA = dOut;
    gB = affine(dOut, -1, 0, op);
  } else {
    gA = binary('mul', dOut, b);
    gB = binary('mul', dOut, a);
  }
  const dA = reduceTo(op, gA, a, plan.aBcast, plan.outer);
  const dB = reduceTo(op, gB, b, plan.bBcast, plan.outer);
  if (gA !== dOut) gA.dispose();
  if (gB !== dOut) gB.dispose();
  return { dA, dB };
}

export function addBackward(a: Tensor, b: Tensor, dOut: Tensor): { dA: Tensor; dB: Tensor } {
  return binaryBackward('addBackward', 'add', a, b, dOut);
}
export function subBackward(a: Tensor, b: Tensor, dOut: Tensor): { dA: Tensor; dB: Tensor } {
  return binaryBackward('subBackward', 'sub', a, b, dOut);
}
export function mulBackward(a: Tensor, b: Tensor, dOut: Tensor): { dA: Tensor; dB: Tensor } {
  return binaryBackward('mulBackward', 'mul', a, b, dOut);
}

/** x[..., C] + bias[C] */
export function biasAdd(xIn: Tensor, biasIn: Tensor): Tensor {
  const op = 'biasAdd';
  const x = tensorArg(op, 'x', xIn, { minRank: 1 });
  const bias = tensorArg(op, 'bias', biasIn, { rank: 1 });
  const C = x.shape[x.rank - 1];
  if (bias.shape[0] !== C) throw argError(op, 'bias', `shape [${C}] (the last dimension of x)`, bias);
  sameDevice(op, { x, bias });
  return binary('add', x, bias);
}
export function biasAddBackward(xIn: Tensor, biasIn: Tensor, dIn: Tensor): { dX: Tensor; dBias: Tensor } {
  const op = 'biasAddBackward';
  const x = tensorArg(op, 'x', xIn, { minRank: 1 });
  const bias = tensorArg(op, 'bias', biasIn, { rank: 1 });
  const C = x.shape[x.rank - 1];
  if (bias.shape[0] !== C) throw argError(op, 'bias', `shape [${C}] (the last dimension of x)`, bias);
  const dOut = tensorArg(op, 'dOut', dIn);
  sameDevice(op, { x, bias, dOut });
  const r = binaryBackward(op, 'add', x, bias, dOut);
  return { dX: r.dA, dBias: r.dB };
}
