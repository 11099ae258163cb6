// Central finite differences in float64 to verify the oracles' backward functions, and expectClose,
// the comparison used by every op test (tolerance atol + rtol·|ref|, reporting the worst index).
import { Arr, maxAbs, sizeOf } from './nd';
import { Rng } from './rng';

export interface Tolerance {
  atol: number;
  rtol: number;
}

/**
 * Throws unless |actual[i] − ref[i]| <= atol + rtol·|ref[i]| for every i (NaN/Inf always fail).
 * The message names the label, the number of failures and the worst index (by error / tolerance).
 */
export function expectClose(actual: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance, label: string): void {
  if (actual.length !== ref.length) {
    throw new Error(`${label}: length ${actual.length}, expected ${ref.length}`);
  }
  let worst = -1;
  let worstRatio = 0;
  let failures = 0;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(actual[i] - ref[i]);
    const bound = tol.atol + tol.rtol * Math.abs(ref[i]);
    const ratio = Number.isNaN(err) ? Infinity : err / bound;
    if (!(err <= bound)) failures++;
    if (ratio > worstRatio || (worst < 0 && !(err <= bound))) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (failures > 0) {
    const a = actual[worst];
    const r = ref[worst];
    throw new Error(
      `${label}: ${failures}/${ref.length} elements out of tolerance (atol ${tol.atol.toExponential(2)}, rtol ${tol.rtol.toExponential(2)}); ` +
        `worst at index ${worst}: actual ${a}, expected ${r}, error ${Math.abs(a - r).toExponential(3)}; max |ref| ${maxAbs(ref).toExponential(3)}`,
    );
  }
}

/** Maximum absolute difference (for reports). */
export function maxError(actual: ArrayLike<number>, ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(actual[i] - ref[i]));
  return m;
}

export interface GradcheckOptions {
  /** finite-difference step (default 1e-6) */
  h?: number;
  /** tolerance relative to the largest gradient magnitude (default 1e-6) and per element (1e-5) */
  rel?: number;
  rtol?: number;
  seed?: number;
  /** indices of the inputs whose gradients are checked (default: all) */
  check?: number[];
}

/**
 * Verifies a backward against central finite differences of L(xs) = Σ w ⊙ f(xs) for a fixed random w:
 * backward(xs, w)[i] must equal ∂L/∂xs[i]. f and backward work in float64 on the oracle arrays.
 */
export function gradcheck(
  label: string,
  f: (xs: Arr[]) => Arr,
  backward: (xs: Arr[], dOut: Arr) => (Arr | null | undefined)[],
  xs: Arr[],
  opts: GradcheckOptions = {},
): void {
  const h = opts.h ?? 1e-6;
  const rng = new Rng(opts.seed ?? 12345);
  const y0 = f(xs);
  const w: Arr = { data: new Float64Array(sizeOf(y0.shape)), shape: y0.shape.slice() };
  for (let i = 0; i < w.data.length; i++) w.data[i] = rng.normal();
  const loss = (): number => {
    const y = f(xs);
    let s = 0;
    for (let i = 0; i < y.data.length; i++) s += w.data[i] * y.data[i];
    return s;
  };
  const grads = backward(xs, w);
  const which = opts.check ?? xs.map((_, i) => i);
  for (const i of which) {
    const g = grads[i];
    if (!g) throw new Error(`${label}: backward returned no gradient for input ${i}`);
    const x = xs[i];
    if (g.data.length !== x.data.length) throw new Error(`${label}: gradient ${i} has ${g.data.length} elements, input ${x.data.length}`);
    const num = new Float64Array(x.data.length);
    for (let j = 0; j < x.data.length; j++) {
      const v = x.data[j];
      x.data[j] = v + h;
      const lp = loss();
      x.data[j] = v - h;
      const lm = loss();
      x.data[j] = v;
      num[j] = (lp - lm) / (2 * h);
    }
    const scale = Math.max(maxAbs(num), 1e-3);
    expectClose(g.data, num, { atol: (opts.rel ?? 1e-6) * scale, rtol: opts.rtol ?? 1e-5 }, `${label}: gradient of input ${i} vs finite differences`);
  }
}
