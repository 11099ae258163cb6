// Module gradient checks shared by the nn.* test files: float64 finite differences of a layer oracle,
// module vs oracle on a device, and directional central differences of a module's own float32 forward.
// The reasoning behind each check and its tolerance is in the header of test/nn.outlook.test.ts.
import * as va from '../lib';
import type { Device, Tensor } from '../lib';
import { expectClose, expectTensor, read, Rng, toTensor } from './helpers';
import { Arr, maxAbs } from './oracle/nd';
import type { Params } from './oracle/volo';

const { nn } = va;

export type { Params };

export function toDict(P: Params, device: Device): Record<string, Tensor> {
  const d: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(P)) d[k] = toTensor(v, device);
  return d;
}

export function disposeDict(d: Record<string, Tensor>): void {
  for (const t of Object.values(d)) t.dispose();
}

export function gradsOf(m: InstanceType<typeof nn.Module>): Record<string, Float32Array | null> {
  const out: Record<string, Float32Array | null> = {};
  for (const [n, p] of m.namedParameters()) out[n] = p.grad ? read(p.grad) : null;
  return out;
}

/**
 * Float64 central finite differences of a layer oracle, for x and every parameter, of L = Σ w ⊙ f
 * (fixed random w), h = 1e-6. Inputs with more than `maxEntries` entries are checked on a random
 * sample of that many entries (always including the first and last): every entry of a tensor goes
 * through the same backward formula, and the sample still spans all heads / positions / channels;
 * this keeps the file within its time budget on a loaded machine.
 */
export function oracleGradcheck(label: string, x: Arr, P: Params, fwd: (x: Arr, P: Params) => Arr,
  bwd: (x: Arr, P: Params, d: Arr) => { dX: Arr; grads: Params }, maxEntries = Infinity): void {
  const names = Object.keys(P);
  const rng = new Rng(4242);
  const y0 = fwd(x, P);
  const w = rng.arr(y0.shape);
  const r = bwd(x, P, w);
  const h = 1e-6;
  const groups: [string, Arr, Arr][] = [['x', x, r.dX], ...names.map((n): [string, Arr, Arr] => [n, P[n], r.grads[n]])];
  for (const [name, a, g] of groups) {
    if (!g) throw new Error(`${label}: backward returned no gradient for ${name}`);
    const n = a.data.length;
    let idx = Array.from({ length: n }, (_, i) => i);
    if (n > maxEntries) {
      for (let i = n - 1; i > 0; i--) {
        const j = rng.int(0, i + 1);
        [idx[i], idx[j]] = [idx[j], idx[i]];
      }
      idx = [...new Set([0, n - 1, ...idx.slice(0, maxEntries - 2)])];
    }
    const loss = (): number => {
      const y = fwd(x, P);
      let s = 0;
      for (let i = 0; i < y.data.length; i++) s += w.data[i] * y.data[i];
      return s;
    };
    const num = new Float64Array(idx.length);
    const ana = new Float64Array(idx.length);
    idx.forEach((j, t) => {
      const v = a.data[j];
      a.data[j] = v + h;
      const lp = loss();
      a.data[j] = v - h;
      const lm = loss();
      a.data[j] = v;
      num[t] = (lp - lm) / (2 * h);
      ana[t] = g.data[j];
    });
    const scale = Math.max(maxAbs(num), 1e-3);
    expectClose(ana, num, { atol: 1e-6 * scale, rtol: 1e-5 }, `${label}: gradient of ${name} vs finite differences`);
  }
}

/** Loads P into m, runs forward + backward, compares with the oracle; returns the module's outputs. */
export function checkAgainstOracle(label: string, m: InstanceType<typeof nn.Module>, P: Params, x: Arr, d: Arr, device: Device,
  ref: { out: Arr; dX: Arr; grads: Params }): void {
  const dict = toDict(P, device);
  m.loadStateDict(dict);
  disposeDict(dict);
  const tx = toTensor(x, device);
  const td = toTensor(d, device);
  const y = m.forward(tx);
  expectTensor(y, ref.out, `${label} forward ${device}`, 2e-4);
  const dx = m.backward(td);
  expectTensor(dx, ref.dX, `${label} dx ${device}`, 2e-4);
  for (const [n, p] of m.namedParameters()) {
    expect(p.grad).not.toBeNull();
    expectTensor(p.grad!, ref.grads[n], `${label} grad ${n} ${device}`, 2e-4);
  }
  for (const t of [tx, td, y, dx]) t.dispose();
}

/**
 * Directional derivative checks of L = Σ w ⊙ m(x; θ) on the module's own float32 forward, one random
 * direction per group (x, then every parameter alone): Richardson-extrapolated central differences vs
 * ⟨∇_group L, u⟩ from backward (see the header). Returns the worst relative error.
 */
export function directionalCheck(label: string, m: InstanceType<typeof nn.Module>, x: Arr, device: Device, seed: number, eps = 0.1): number {
  const rng = new Rng(seed);
  const tx = toTensor(x, device);
  const y0 = m.forward(tx);
  const w = rng.arr([...y0.shape]);
  const tw = toTensor(w, device);
  const y0v = read(y0);
  let lScale = 0; // Σ|w·y|: one float32 rounding of every output moves L by about 2^-24 of it
  for (let i = 0; i < y0v.length; i++) lScale += Math.abs(w.data[i] * y0v[i]);
  const tdx = m.backward(tw);
  const grads: Record<string, Float32Array> = { x: read(tdx) };
  // frozen parameters (requiresGrad false) have no gradient: they are loaded as they are, never perturbed
  for (const [n, g] of Object.entries(gradsOf(m))) if (g) grads[n] = g;
  const base = m.stateDict();
  const theta: Record<string, { data: Float32Array; shape: number[] }> = { x: { data: Float32Array.from(x.data), shape: x.shape } };
  for (const [n, t] of Object.entries(base)) theta[n] = { data: read(t), shape: [...t.shape] };
  disposeDict(base);
  for (const t of [tx, y0, tw, tdx]) t.dispose();
  const lossWith = (group: string, u: Float64Array, step: number): number => {
    const shifted = (n: string) => {
      const { data, shape } = theta[n];
      return va.tensor(n === group ? data.map((v, i) => v + step * u[i]) : data, shape, { device });
    };
    const dict: Record<string, Tensor> = {};
    for (const n of Object.keys(theta)) if (n !== 'x') dict[n] = shifted(n);
    m.loadStateDict(dict);
    disposeDict(dict);
    const xp = shifted('x');
    const y = m.forward(xp);
    const yv = read(y);
    y.dispose();
    xp.dispose();
    let L = 0;
    for (let i = 0; i < yv.length; i++) L += w.data[i] * yv[i];
    return L;
  };
  const results: { group: string; numeric: number; predicted: number }[] = [];
  for (const group of Object.keys(grads)) {
    // a unit direction: every group gets a perturbation of the same norm (ε and ε/2)
    const u = rng.arr([theta[group].data.length]).data;
    const norm = Math.hypot(...u);
    for (let i = 0; i < u.length; i++) u[i] /= norm;
    let predicted = 0;
    for (let i = 0; i < u.length; i++) predicted += grads[group][i] * u[i];
    // Richardson extrapolation of two central differences cancels the ε² truncation term.
    const central = (e: number) => (lossWith(group, u, e) - lossWith(group, u, -e)) / (2 * e);
    results.push({ group, numeric: (4 * central(eps / 2) - central(eps)) / 3, predicted });
  }
  // Rounding floor of the Richardson estimate: evaluation errors η = 2^-24·Σ|w·y| per loss value give
  // (4·2η/ε + 2η/(2ε))/3 = 3η/ε. Plus 2e-4 relative (the float32 accumulation of the backward).
  const floor = (3 * 2 ** -24 * lScale) / eps;
  let worst = 0;
  for (const { group, numeric, predicted } of results) {
    const err = Math.abs(numeric - predicted);
    const tol = 2e-4 * Math.abs(predicted) + floor;
    worst = Math.max(worst, err / tol);
    if (process.env.VISATTN_TEST_VERBOSE) console.log(`${label} ${device} ${group}: numeric ${numeric}, predicted ${predicted}, error ${err.toExponential(2)}, tolerance ${tol.toExponential(2)} (floor ${floor.toExponential(2)})`);
    if (!(err <= tol)) {
      throw new Error(`${label} ${device}: directional derivative along '${group}' ${numeric} (central differences, eps ${eps}) vs ${predicted} (backward): error ${err.toExponential(3)} > tolerance ${tol.toExponential(3)}`);
    }
  }
  return worst;
}
