// Matrix products: matmul (batched, with a 2-D operand broadcast over the other's batch) and linear
// (x·wᵀ + bias, weights [out, in] as in PyTorch checkpoints) — forward and backward.
//
// Gradients of C = op(A)·op(B) with op(A) [M,K], op(B) [K,N]:
//   dop(A) = dC·op(B)ᵀ,  dop(B) = op(A)ᵀ·dC,
// each written in the operand's STORED layout (a transposed operand gets the transposed gradient).
// An operand broadcast over the batch gets its gradient summed over the batch (strideC = 0).
import { argError, bool, check, options } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { alloc, expectShape, fillOrDispose, fmt, prod, sameDevice, shapeEq, tensorArg } from './common';
import { stridedCopy, zeroFill } from './strided';

export interface MatmulOptions {
  /** a is stored [..., K, M] (op(a) = aᵀ) */
  transposeA?: boolean;
  /** b is stored [..., N, K] (op(b) = bᵀ) */
  transposeB?: boolean;
}

interface Operand {
  t: Tensor;
  arg: string;
}

/**
 * c = op(a)·op(b) (+ bias) for `batch` matrices, one native call. K = 0 (an empty inner product) and
 * batch = 0 give zeros. c is overwritten; strideC = 0 sums over the batch.
 */
function gemm(
  op: string, a: Operand, b: Operand, c: Tensor, bias: Tensor | null, batch: number, M: number, N: number, K: number,
  strideA: number, strideB: number, strideC: number, transA: boolean, transB: boolean,
): void {
  if (c.size === 0) return;
  if (K === 0 || batch === 0) {
    zeroFill(op, c);
    return;
  }
  check(op, native.matmul(
    a.t.storage(op, a.arg), b.t.storage(op, b.arg), c.storage(op, 'out'), bias ? bias.storage(op, 'bias') : null,
    batch, M, N, K, strideA, strideB, strideC, transA, transB, 1, 0,
  ));
}

interface MatmulPlan {
  transA: boolean;
  transB: boolean;
  batchShape: number[];
  batch: number;
  M: number;
  N: number;
  K: number;
  /** batch strides of a and b (0 when the operand is 2-D and broadcast) */
  strideA: number;
  strideB: number;
  outShape: number[];
}

function matmulPlan(op: string, a: Tensor, b: Tensor, optsIn: unknown): MatmulPlan {
  const o = options(op, optsIn);
  const transA = bool(op, 'options.transposeA', o.transposeA, false);
  const transB = bool(op, 'options.transposeB', o.transposeB, false);
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  if (aBatch.length > 0 && bBatch.length > 0 && !shapeEq(aBatch, bBatch)) {
    throw argError(op, 'b', `batch dimensions ${fmt(aBatch)} (those of a), or a 2-D tensor`, b);
  }
  const [M, K] = transA ? [a.shape[a.rank - 1], a.shape[a.rank - 2]] : [a.shape[a.rank - 2], a.shape[a.rank - 1]];
  const [Kb, N] = transB ? [b.shape[b.rank - 1], b.shape[b.rank - 2]] : [b.shape[b.rank - 2], b.shape[b.rank - 1]];
  if (Kb !== K) {
    const where = transB ? 'last' : 'second-to-last';
    throw argError(op, 'b', `${where} dimension ${K} (the inner dimension K of op(a) ${fmt([M, K])})`, b);
  }
  const batchShape = aBatch.length > 0 ? aBatch : bBatch;
  return {
    transA, transB, batchShape, batch: prod(batchShape), M, N, K,
    strideA: aBatch.length > 0 ? M * K : 0,
    strideB: bBatch.length > 0 ? K * N : 0,
    outShape: [...batchShape, M, N],
  };
}

/**
 * op(a)[..., M, K] · op(b)[..., K, N] → [..., M, N]. The leading (batch) dimensions of a and b are
 * equal, or one operand is 2-D and is broadcast over the other's batch.
 */
export function matmul(aIn: Tensor, bIn: Tensor, opts?: MatmulOptions): Tensor {
  const op = 'matmul';
  const a = tensorArg(op, 'a', aIn, { minRank: 2 });
  const b = tensorArg(op, 'b', bIn, { minRank: 2 });
  const device = sameDevice(op, { a, b });
  const p = matmulPlan(op, a, b, opts);
  const out = alloc(op, p.outShape, device);
  fillOrDispose([out], () => gemm(op, { t: a, arg: 'a' }, { t: b, arg: 'b' }, out, null, p.batch, p.M, p.N, p.K,
    p.strideA, p.strideB, p.M * p.N, p.transA, p.transB));
  return out;
}

/** Gradients of matmul: {dA (shape of a), dB (shape of b)}; a broadcast operand's gradient is summed over the batch. */
export function matmulBackward(aIn: Tensor, bIn: Tensor, dIn: Tensor, opts?: MatmulOptions): { dA: Tensor; dB: Tensor } {
  const op = 'matmulBackward';
  const a = tensorArg(op, 'a', aIn, { minRank: 2 });
  const b = tensorArg(op, 'b', bIn, { minRank: 2 });
  const dOut = tensorArg(op, 'dOut', dIn);
  const device = sameDevice(op, { a, b, dOut });
  const p = matmulPlan(op, a, b, opts);
  expectShape(op, 'dOut', dOut, p.outShape, `shape ${fmt(p.outShape)} (the shape of the forward output)`);
  const { M, N, K, batch, strideA, strideB } = p;
  const sD = M * N;
  const A: Operand = { t: a, arg: 'a' };
  const B: Operand = { t: b, arg: 'b' };
  const D: Operand = { t: dOut, arg: 'dOut' };
  const dA = alloc(op, a.shape, device);
  const dB = alloc(op, b.shape, device);
  try {
    if (!p.transA) {
      // dA[M,K] = dC·op(B)ᵀ
      gemm(op, D, B, dA, null, batch, M, K, N, sD, strideB, strideA, false, !p.transB);
    } else {
      // dA[K,M] = op(B)·dCᵀ
      gemm(op, B, D, dA, null, batch, K, M, N, strideB, sD, strideA, p.transB, true);
    }
    if (!p.transB) {
      // dB[K,N] = op(A)ᵀ·dC
      gemm(op, A, D, dB, null, batch, K, N, M, strideA, sD, strideB, !p.transA, false);
    } else {
      // dB[N,K] = dCᵀ·op(A)
      gemm(op, D, A, dB, null, batch, N, K, M, sD, strideA, strideB, true, p.transA);
    }
  } catch (e) {
    dA.dispose();
    dB.dispose();
    throw e;
  }
  return { dA, dB };
}

interface LinearPlan {
  rows: number;
  inF: number;
  outF: number;
  outShape: number[];
}

function linearPlan(op: string, x: Tensor, w: Tensor): LinearPlan {
  const inF = x.shape[x.rank - 1];
  const outF = w.shape[0];
  if (w.shape[1] !== inF) throw argError(op, 'w', `shape [*, ${inF}] ([out, in]; in = the last dimension of x)`, w);
  return { rows: prod(x.shape, 0, x.rank - 1), inF, outF, outShape: [...x.shape.slice(0, -1), outF] };
}

/** x[..., in] · wᵀ (w[out, in]) + bias[out] → [..., out]; the bias is fused into the GEMM. */
export function linear(xIn: Tensor, wIn: Tensor, biasIn?: Tensor | null): Tensor {
  const op = 'linear';
  const x = tensorArg(op, 'x', xIn, { minRank: 1 });
  const w = tensorArg(op, 'w', wIn, { rank: 2 });
  const bias = biasIn === undefined || biasIn === null ? null : tensorArg(op, 'bias', biasIn, { rank: 1 });
  const device = sameDevice(op, { x, w, bias });
  const p = linearPlan(op, x, w);
  if (bias && bias.shape[0] !== p.outF) throw argError(op, 'bias', `shape [${p.outF}] (the first dimension of w)`, bias);
  const out = alloc(op, p.outShape, device);
  fillOrDispose([out], () => {
    if (p.inF === 0 && bias) stridedCopy(op, bias, 'bias', out, [p.rows, p.outF], [0, 1], [p.outF, 1]);
    else gemm(op, { t: x, arg: 'x' }, { t: w, arg: 'w' }, out, bias, 1, p.rows, p.outF, p.inF, 0, 0, 0, false, true);
  });
  return out;
}

export interface LinearBackwardOptions {
  /** also return dBias (the forward had a bias); default false */
  bias?: boolean;
}

/** Gradients of linear: dX = dOut·w, dW = dOutᵀ·x (over all rows), dBias = Σ_rows dOut (when opts.bias). */
export function linearBackward(
  xIn: Tensor, wIn: Tensor, dIn: Tensor, opts?: LinearBackwardOptions,
): { dX: Tensor; dW: Tensor; dBias?: Tensor } {
  const op = 'linearBackward';
  const x = tensorArg(op, 'x', xIn, { minRank: 1 });
  const w = tensorArg(op, 'w', wIn, { rank: 2 });
  const dOut = tensorArg(op, 'dOut', dIn);
  const device = sameDevice(op, { x, w, dOut });
  const o = options(op, opts);
  const withBias = bool(op, 'options.bias', o.bias, false);
  const p = linearPlan(op, x, w);
  expectShape(op, 'dOut', dOut, p.outShape, `shape ${fmt(p.outShape)} (the shape of the forward output)`);
  const X: Operand = { t: x, arg: 'x' };
  const W: Operand = { t: w, arg: 'w' };
  const D: Operand = { t: dOut, arg: 'dOut' };
  const dX = alloc(op, x.shape, device);
  const dW = alloc(op, w.shape, device);
  const dBias = withBias ? alloc(op, [p.outF], device) : undefined;
  try {
    gemm(op, D, W, dX, null, 1, p.rows, p.inF, p.outF, 0, 0, 0, false, false);
    gemm(op, D, X, dW, null, 1, p.outF, p.inF, p.rows, 0, 0, 0, true, false);
    if (dBias && dBias.size > 0) {
      if (p.rows === 0) zeroFill(op, dBias);
      else check(op, native.reduce(dOut.storage(op, 'dOut'), dBias.storage(op, 'dBias'), 1, p.rows, p.outF, 1));
    }
  } catch (e) {
    dX.dispose();
    dW.dispose();
    dBias?.dispose();
    throw e;
  }
  return dBias ? { dX, dW, dBias } : { dX, dW };
}
