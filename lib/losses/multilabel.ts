// Multi-label losses on logits: the asymmetric loss of ML-Decoder (ASL, spec §1.4) and sigmoid binary
// cross-entropy — forward (a scalar Tensor of shape []) and backward ({dLogits}).
//
// Per element, with x a logit, y its target in [0, 1] and p = σ(x):
//   ASL:  p_neg = min(1 − p + clip, 1),
//         L = −[ y·log(max(p, eps))·(1 − p)^γ+ + (1 − y)·log(max(p_neg, eps))·(1 − p_neg)^γ− ]
//         (for y ∈ {0, 1} exactly the reference's w·L_ce with w = (1 − pt)^γ). The loss is the SUM over
//         every element (batch and classes), as the reference — not a mean.
//         Gradient: the focusing weights held constant (focalGrad false, the reference default) or
//         differentiated too (focalGrad true).
//   BCE:  L = max(x, 0) − x·y + log(1 + exp(−|x|)), ∂L/∂x = p − y; reduction 'mean' (default) or 'sum'.
// One native call computes the per-element loss (and gradient); ops.sum / ops.mean reduce it. Target
// values are not read back to be checked (that would block on the device): they must lie in [0, 1].
// An empty input gives a loss of 0 with reduction 'sum' (ASL always sums); 'mean' over no element is
// rejected, as ops.mean is.
import { argError, bool, check, finiteNumber, options } from '../errors';
import { native } from '../native';
import * as ops from '../ops';
import { alloc, expectShape, fmt, sameDevice, tensorArg } from '../ops/common';
import { zeroFill } from '../ops/strided';
import { Tensor } from '../tensor';

export interface AsymmetricLossOptions {
  /** focusing exponent of the negatives γ− >= 0; default 4 */
  gammaNeg?: number;
  /** focusing exponent of the positives γ+ >= 0; default 1 (the ML-Decoder training scripts use 0) */
  gammaPos?: number;
  /** probability margin m in [0, 1) shifting the negatives (p_m = max(p − m, 0)); default 0.05 */
  clip?: number;
  /** floor of the probabilities inside the logs, in (0, 1); default 1e-8 */
  eps?: number;
  /** differentiate the focusing weights too; default false (the reference detaches them) */
  focalGrad?: boolean;
}

export interface BceWithLogitsOptions {
  /** 'mean' (default: over every element) or 'sum' */
  reduction?: 'mean' | 'sum';
}

const ASL = 0;
const BCE = 1;

interface LossPlan {
  kind: number;
  gammaPos: number;
  gammaNeg: number;
  clip: number;
  eps: number;
  focalGrad: boolean;
  mean: boolean;
}

function nonNegative(op: string, arg: string, v: unknown, dflt: number): number {
  const x = finiteNumber(op, arg, v, dflt);
  if (x < 0) throw argError(op, arg, 'a finite number >= 0', v);
  return x;
}

function aslPlan(op: string, optsIn: unknown): LossPlan {
  const o = options(op, optsIn);
  const gammaNeg = nonNegative(op, 'options.gammaNeg', o.gammaNeg, 4);
  const gammaPos = nonNegative(op, 'options.gammaPos', o.gammaPos, 1);
  const clip = finiteNumber(op, 'options.clip', o.clip, 0.05);
  if (!(clip >= 0 && Math.fround(clip) < 1)) throw argError(op, 'options.clip', 'a number in [0, 1)', o.clip);
  const eps = finiteNumber(op, 'options.eps', o.eps, 1e-8);
  if (!(Math.fround(eps) > 0 && eps < 1)) throw argError(op, 'options.eps', 'a number in (0, 1) (positive in float32)', o.eps);
  const focalGrad = bool(op, 'options.focalGrad', o.focalGrad, false);
  return { kind: ASL, gammaPos, gammaNeg, clip, eps, focalGrad, mean: false };
}

function bcePlan(op: string, optsIn: unknown): LossPlan {
  const o = options(op, optsIn);
  const r = o.reduction === undefined ? 'mean' : o.reduction;
  if (r !== 'mean' && r !== 'sum') throw argError(op, 'options.reduction', "'mean' or 'sum'", o.reduction);
  return { kind: BCE, gammaPos: 0, gammaNeg: 0, clip: 0, eps: 0, focalGrad: false, mean: r === 'mean' };
}

function lossArgs(op: string, logitsIn: unknown, targetsIn: unknown, pl: LossPlan): { logits: Tensor; targets: Tensor } {
  const logits = tensorArg(op, 'logits', logitsIn);
  const targets = tensorArg(op, 'targets', targetsIn);
  expectShape(op, 'targets', targets, logits.shape,
    `shape ${fmt(logits.shape)} (the shape of logits; float32 values in [0, 1])`);
  sameDevice(op, { logits, targets });
  if (pl.mean && logits.size === 0) {
    throw argError(op, 'logits', "a non-empty tensor (reduction 'mean' over no element is undefined; use 'sum')", logits);
  }
  return { logits, targets };
}

/** Per-element loss (and gradient when wanted) in one native call. */
function elementwise(op: string, logits: Tensor, targets: Tensor, pl: LossPlan, withGrad: boolean): { loss: Tensor; grad: Tensor | null } {
  const loss = alloc(op, logits.shape, logits.device);
  let grad: Tensor | null = null;
  try {
    if (withGrad) grad = alloc(op, logits.shape, logits.device);
    if (logits.size > 0) {
      check(op, native.multiLabelLoss(logits.storage(op, 'logits'), targets.storage(op, 'targets'), loss.storage(op, 'loss'),
        grad ? grad.storage(op, 'grad') : null, logits.size, pl.kind, pl.gammaPos, pl.gammaNeg, pl.clip, pl.eps, pl.focalGrad));
    }
  } catch (e) {
    loss.dispose();
    grad?.dispose();
    throw e;
  }
  return { loss, grad };
}

function forward(op: string, logitsIn: unknown, targetsIn: unknown, pl: LossPlan): Tensor {
  const { logits, targets } = lossArgs(op, logitsIn, targetsIn, pl);
  if (logits.size === 0) {
    const zero = alloc(op, [], logits.device);
    zeroFill(op, zero);
    return zero;
  }
  const { loss } = elementwise(op, logits, targets, pl, false);
  try {
    return pl.mean ? ops.mean(loss) : ops.sum(loss);
  } finally {
    loss.dispose();
  }
}

function backward(op: string, logitsIn: unknown, targetsIn: unknown, pl: LossPlan, dLossIn: unknown): { dLogits: Tensor } {
  const { logits, targets } = lossArgs(op, logitsIn, targetsIn, pl);
  const dLoss = finiteNumber(op, 'dLoss', dLossIn, 1);
  const { loss, grad } = elementwise(op, logits, targets, pl, true);
  loss.dispose();
  const s = pl.mean ? dLoss / logits.size : dLoss;
  if (s === 1 || logits.size === 0) return { dLogits: grad! };
  try {
    return { dLogits: ops.scale(grad!, s) };
  } finally {
    grad!.dispose();
  }
}

/**
 * Asymmetric loss (ML-Decoder, spec §1.4) of logits against multi-label targets in [0, 1]: the SUM over
 * every element (batch and classes) → a scalar Tensor of shape [].
 */
export function asymmetricLoss(logits: Tensor, targets: Tensor, opts?: AsymmetricLossOptions): Tensor {
  const op = 'asymmetricLoss';
  return forward(op, logits, targets, aslPlan(op, opts));
}

/** Gradient of asymmetricLoss with respect to the logits, times the upstream scalar dLoss (default 1). */
export function asymmetricLossBackward(
  logits: Tensor, targets: Tensor, opts?: AsymmetricLossOptions, dLoss = 1,
): { dLogits: Tensor } {
  const op = 'asymmetricLossBackward';
  return backward(op, logits, targets, aslPlan(op, opts), dLoss);
}

/** Sigmoid binary cross-entropy on logits (numerically stable), mean (default) or sum → shape []. */
export function bceWithLogits(logits: Tensor, targets: Tensor, opts?: BceWithLogitsOptions): Tensor {
  const op = 'bceWithLogits';
  return forward(op, logits, targets, bcePlan(op, opts));
}

/** Gradient of bceWithLogits: (σ(x) − y)·dLoss (divided by the element count for 'mean'). */
export function bceWithLogitsBackward(
  logits: Tensor, targets: Tensor, opts?: BceWithLogitsOptions, dLoss = 1,
): { dLogits: Tensor } {
  const op = 'bceWithLogitsBackward';
  return backward(op, logits, targets, bcePlan(op, opts), dLoss);
}
