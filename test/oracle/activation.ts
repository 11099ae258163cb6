// Float64 references: relu, gelu (erf form), silu and their derivatives.
import { Arr } from './nd';

/**
 * erf(x) = 2/√π · e^{−x²} · Σ_n 2^n x^{2n+1} / (1·3·5···(2n+1)) — a series of positive terms
 * (no cancellation), summed until the terms stop mattering; |x| >= 6 rounds to ±1 in float64.
 */
export function erf(x: number): number {
  if (x === 0) return 0;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 500; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const Phi = (x: number): number => 0.5 * (1 + erf(x / Math.SQRT2));
const phi = (x: number): number => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

export const activations = {
  relu: { f: (x: number) => (x > 0 ? x : 0), df: (x: number) => (x > 0 ? 1 : 0) },
  gelu: { f: (x: number) => x * Phi(x), df: (x: number) => Phi(x) + x * phi(x) },
  silu: { f: (x: number) => x * sigmoid(x), df: (x: number) => sigmoid(x) * (1 + x * (1 - sigmoid(x))) },
};
export type ActivationName = keyof typeof activations;

export function activationRef(name: ActivationName, x: Arr): Arr {
  return { data: x.data.map(activations[name].f), shape: x.shape.slice() };
}

export function activationBackwardRef(name: ActivationName, x: Arr, dOut: Arr): { dX: Arr } {
  const df = activations[name].df;
  return { dX: { data: x.data.map((v, i) => dOut.data[i] * df(v)), shape: x.shape.slice() } };
}
