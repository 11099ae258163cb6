// LayerNorm over the last axis (biased variance) — forward and backward:
//   y = (x − μ)/sqrt(var + eps) · gamma + beta
// The backward recomputes μ and σ from x; dGamma and dBeta are sums over all rows (overwritten).
import { argError, check, options } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { alloc, expectShape, fmt, sameDevice, tensorArg } from './common';
import { zeroFill } from './strided';

export interface LayerNormOptions {
  /** added to the variance; a finite number >= 0, default 1e-5 */
  eps?: number;
}

interface NormPlan {
  x: Tensor;
  gamma: Tensor;
  beta: Tensor;
  rows: number;
  cols: number;
  eps: number;
}

function plan(op: string, xIn: unknown, gIn: unknown, bIn: unknown, opts: unknown): NormPlan {
  const x = tensorArg(op, 'x', xIn, { minRank: 1 });
  const gamma = tensorArg(op, 'gamma', gIn, { rank: 1 });
  const beta = tensorArg(op, 'beta', bIn, { rank: 1 });
  const o = options(op, opts);
  const eps = o.eps === undefined ? 1e-5 : o.eps;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw argError(op, 'options.eps', 'a finite number >= 0', eps);
  }
  const cols = x.shape[x.rank - 1];
  if (cols === 0) throw argError(op, 'x', 'a last dimension >= 1 (layerNorm normalises over it)', x);
  expectShape(op, 'gamma', gamma, [cols], `shape [${cols}] (the last dimension of x)`);
  expectShape(op, 'beta', beta, [cols], `shape [${cols}] (the last dimension of x)`);
  return { x, gamma, beta, rows: x.size / cols, cols, eps };
}

/** LayerNorm of x[..., C] with gamma[C], beta[C]. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, opts?: LayerNormOptions): Tensor {
  const op = 'layerNorm';
  const p = plan(op, x, gamma, beta, opts);
  const device = sameDevice(op, { x: p.x, gamma: p.gamma, beta: p.beta });
  const y = alloc(op, p.x.shape, device);
  if (y.size > 0) {
    check(op, native.layerNorm(p.x.storage(op, 'x'), p.gamma.storage(op, 'gamma'), p.beta.storage(op, 'beta'),
      y.storage(op, 'out'), p.rows, p.cols, p.eps), [y]);
  }
  return y;
}

/** Gradients of layerNorm: {dX, dGamma, dBeta} (beta's value is not needed, only checked). */
export function layerNormBackward(
  x: Tensor, gamma: Tensor, beta: Tensor, dOut: Tensor, opts?: LayerNormOptions,
): { dX: Tensor; dGamma: Tensor; dBeta: Tensor } {
  const op = 'layerNormBackward';
  const p = plan(op, x, gamma, beta, opts);
  const d = tensorArg(op, 'dOut', dOut);
  const device = sameDevice(op, { x: p.x, gamma: p.gamma, beta: p.beta, dOut: d });
  expectShape(op, 'dOut', d, p.x.shape, `shape ${fmt(p.x.shape)} (the shape of x)`);
  const dX = alloc(op, p.x.shape, device);
  const dGamma = alloc(op, [p.cols], device);
  const dBeta = alloc(op, [p.cols], device);
  try {
    if (p.rows === 0) {
      zeroFill(op, dGamma);
      zeroFill(op, dBeta);
    } else {
      check(op, native.layerNormBackward(p.x.storage(op, 'x'), p.gamma.storage(op, 'gamma'), d.storage(op, 'dOut'),
        dX.storage(op, 'dX'), dGamma.storage(op, 'dGamma'), dBeta.storage(op, 'dBeta'), p.rows, p.cols, p.eps));
    }
  } catch (e) {
    dX.dispose();
    dGamma.dispose();
    dBeta.dispose();
    throw e;
  }
  return { dX, dGamma, dBeta };
}
