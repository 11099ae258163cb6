// Elementwise ops with leading-dimension broadcasting: add, sub, mul, scale, biasAdd — forward and
// backward. Broadcasting: the smaller operand's shape (leading 1s ignored) must equal the trailing
// dimensions of the larger one; it is repeated over the leading dimensions.
import { argError } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { check } from '../errors';
import { alloc, fmt, prod, sameDevice, tensorArg } from './common';

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

function isSuffix(small: readonly number[], big: readonly number[]): boolean {
  const s = stripLeadingOnes(small);
  if (s.length > big.length) return false;
  const off = big.length - s.length;
  return s.every((d, i) => d === big[off + i]);
}

/** @internal */
export function broadcastPlan(op: string, a: Tensor, b: Tensor): Broadcast {
  const rank = Math.max(a.rank, b.rank);
  const pad = (s: readonly number[]) => [...new Array(rank - s.length).fill(1), ...s];
  if (a.size >= b.size && isSuffix(b.shape, a.shape)) {
    const inner = b.size;
    return { outShape: pad(a.shape), outer: inner === 0 ? 0 : a.size / inner, inner, aBcast: false, bBcast: a.size !== b.size };
  }
  if (b.size > a.size && isSuffix(a.shape, b.shape)) {
    const inner = a.size;
    return { outShape: pad(b.shape), outer: inner === 0 ? 0 : b.size / inner, inner, aBcast: true, bBcast: false };
  }
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
      plan.outer, plan.inner, plan.aBcast, plan.bBcast));
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
  if (out.size > 0) check(op, native.affine(x.storage(op, 'x'), out.storage(op, 'out'), x.size, alpha, beta));
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
  if (d.size !== x.size) throw argError(op, 'dOut', `a tensor of the shape of x ${fmt(x.shape)}`, d);
  return { dX: affine(d, s, 0, op) };
}

/**
 * Sums dOut (the output gradient of a broadcast op) down to `target`'s shape: a view when no
 * broadcasting happened, else a sum over the leading (repeated) rows.
 */
function reduceTo(op: string, g: Tensor, target: Tensor, bcast: boolean, outer: number): Tensor {
  if (!bcast) return g.reshape(target.shape);
  const out = alloc(op, target.shape, g.device);
  if (out.size > 0) {
    check(op, native.reduce(g.storage(op, 'dOut'), out.storage(op, 'out'), 1, outer, target.size, 1));
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
  const r = binaryBackward(op, 'add', x, bias, dIn);
  return { dX: r.dA, dBias: r.dB };
}
