// Float64 references on SAMPLED entries, used to validate every benchmark's result before it is
// timed (llm.c habit): the full float64 product of a 1024³ GEMM in JS would take seconds, 64 sampled
// elements take microseconds and still catch any indexing, transpose or accumulation bug.
//
// Tolerances (ARCHITECTURE.md "Numerics": fp32 paths match float64 to ~1e-4 relative to the largest
// magnitude): a GEMM element is checked against 1e-4·Σ_k|a_ik·b_kj| (+1e-6), which is far above fp32
// rounding (≈ √K·2⁻²⁴ of that sum) and far below the error of a wrong index (≈ |c|, ~30× larger).
// Row ops are checked against 1e-4·max|ref| of the row (+1e-7).

/** Deterministic 32-bit PRNG (mulberry32) for the sample positions. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function sampleIndices(n: number, count: number, seed: number): number[] {
  const r = rng(seed);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(Math.min(n - 1, Math.floor(r() * n)));
  // always include the corners: edge tiles are where blocked kernels go wrong
  out.push(0, n - 1);
  return out;
}

export interface CheckReport {
  /** entries compared */
  checked: number;
  /** largest |got − ref| / tol over the checked entries (≤ 1 passes) */
  worst: number;
  maxAbsErr: number;
}

export class ValidationError extends Error {}

/** Throws a ValidationError naming the first failing entry; returns the worst error ratio otherwise. */
export function compare(
  what: string, got: ArrayLike<number>, idx: readonly number[], ref: readonly number[], tol: readonly number[],
): CheckReport {
  let worst = 0;
  let maxAbsErr = 0;
  for (let s = 0; s < idx.length; s++) {
    const g = got[idx[s]];
    const err = Math.abs(g - ref[s]);
    if (!Number.isFinite(g) || !(err <= tol[s])) {
      throw new ValidationError(
        `${what}: element ${idx[s]} is ${g}, expected ${ref[s]} (|error| ${err.toExponential(2)} > tolerance ${tol[s].toExponential(2)})`,
      );
    }
    maxAbsErr = Math.max(maxAbsErr, err);
    worst = Math.max(worst, err === 0 ? 0 : err / tol[s]); // tolerance 0 = must be exact (gathers)
  }
  return { checked: idx.length, worst, maxAbsErr };
}

/**
 * Compares sampled entries of a full float64 reference within 2e-4 of its largest magnitude (+1e-6):
 * the ops' test tolerance, for outputs whose reference is computed in full (fused attention ops).
 */
export function compareToMax(what: string, got: ArrayLike<number>, ref: Float64Array, seed: number, samples = 64): CheckReport {
  let mx = 0;
  for (let i = 0; i < ref.length; i++) mx = Math.max(mx, Math.abs(ref[i]));
  const idx = sampleIndices(ref.length, samples, seed);
  return compare(what, got, idx, idx.map((i) => ref[i]), idx.map(() => 2e-4 * mx + 1e-6));
}

export function merge(reports: CheckReport[]): CheckReport {
  return reports.reduce(
    (acc, r) => ({ checked: acc.checked + r.checked, worst: Math.max(acc.worst, r.worst), maxAbsErr: Math.max(acc.maxAbsErr, r.maxAbsErr) }),
    { checked: 0, worst: 0, maxAbsErr: 0 },
  );
}

/**
 * Checks sampled elements of C[M,N] = op(A)·op(B), with op(A)(i,k) = transA ? a[k·M+i] : a[i·K+k]
 * and op(B)(k,j) = transB ? b[j·K+k] : b[k·N+j] (row-major storage).
 */
export function checkGemm(
  what: string, c: ArrayLike<number>, a: ArrayLike<number>, b: ArrayLike<number>,
  M: number, N: number, K: number, transA: boolean, transB: boolean, samples = 64, seed = 1,
): CheckReport {
  const idx = sampleIndices(M * N, samples, seed);
  const ref: number[] = [];
  const tol: number[] = [];
  for (const e of idx) {
    const i = Math.floor(e / N);
    const j = e % N;
    let s = 0;
    let abs = 0;
    for (let k = 0; k < K; k++) {
      const x = transA ? a[k * M + i] : a[i * K + k];
      const y = transB ? b[j * K + k] : b[k * N + j];
      s += x * y;
      abs += Math.abs(x * y);
    }
    ref.push(s);
    tol.push(1e-4 * abs + 1e-6);
  }
  return compare(what, c, idx, ref, tol);
}

function rowsOf(rows: number, count: number, seed: number): number[] {
  return [...new Set(sampleIndices(rows, count, seed))];
}

function rowTol(ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i]));
  return 1e-4 * m + 1e-7;
}

function softmaxRow(x: ArrayLike<number>, off: number, cols: number): Float64Array {
  let mx = -Infinity;
  for (let j = 0; j < cols; j++) mx = Math.max(mx, x[off + j]);
  const y = new Float64Array(cols);
  let s = 0;
  for (let j = 0; j < cols; j++) {
    y[j] = Math.exp(x[off + j] - mx);
    s += y[j];
  }
  for (let j = 0; j < cols; j++) y[j] /= s;
  return y;
}

function checkRows(what: string, got: ArrayLike<number>, cols: number, rows: number[], refRow: (r: number) => Float64Array): CheckReport {
  const reports: CheckReport[] = [];
  for (const r of rows) {
    const ref = refRow(r);
    const t = rowTol(ref);
    const idx: number[] = [];
    for (let j = 0; j < cols; j++) idx.push(r * cols + j);
    reports.push(compare(`${what} (row ${r})`, got, idx, Array.from(ref), new Array<number>(cols).fill(t)));
  }
  return merge(reports);
}

/** softmax over the last axis, on `samples` sampled rows (every column of each). */
export function checkSoftmax(what: string, y: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number, samples = 16): CheckReport {
  return checkRows(what, y, cols, rowsOf(rows, samples, 2), (r) => softmaxRow(x, r * cols, cols));
}

/** dX = y ⊙ (dY − Σ dY⊙y), y = softmax(x), on sampled rows. */
export function checkSoftmaxBackward(
  what: string, dx: ArrayLike<number>, x: ArrayLike<number>, dy: ArrayLike<number>, rows: number, cols: number, samples = 16,
): CheckReport {
  return checkRows(what, dx, cols, rowsOf(rows, samples, 3), (r) => {
    const y = softmaxRow(x, r * cols, cols);
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += dy[r * cols + j] * y[j];
    const out = new Float64Array(cols);
    for (let j = 0; j < cols; j++) out[j] = y[j] * (dy[r * cols + j] - dot);
    return out;
  });
}

function rowStats(x: ArrayLike<number>, off: number, cols: number, eps: number): { mean: number; rstd: number } {
  let mean = 0;
  for (let j = 0; j < cols; j++) mean += x[off + j];
  mean /= cols;
  let v = 0;
  for (let j = 0; j < cols; j++) v += (x[off + j] - mean) ** 2;
  v /= cols;
  return { mean, rstd: 1 / Math.sqrt(v + eps) };
}

/** y = (x − μ)·rstd·γ + β over the last axis (biased variance), on sampled rows. */
export function checkLayerNorm(
  what: string, y: ArrayLike<number>, x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>,
  rows: number, cols: number, eps: number, samples = 16,
): CheckReport {
  return checkRows(what, y, cols, rowsOf(rows, samples, 4), (r) => {
    const { mean, rstd } = rowStats(x, r * cols, cols, eps);
    const out = new Float64Array(cols);
    for (let j = 0; j < cols; j++) out[j] = (x[r * cols + j] - mean) * rstd * gamma[j] + beta[j];
    return out;
  });
}

/**
 * layerNorm backward: dX on sampled rows; dGamma = Σ_rows dY⊙x̂ and dBeta = Σ_rows dY in full (they
 * are sums over every row, so every row is visited once in float64).
 */
export function checkLayerNormBackward(
  what: string, dx: ArrayLike<number>, dGamma: ArrayLike<number>, dBeta: ArrayLike<number>,
  x: ArrayLike<number>, gamma: ArrayLike<number>, dy: ArrayLike<number>, rows: number, cols: number, eps: number, samples = 16,
): CheckReport {
  const rDx = checkRows(`${what} dX`, dx, cols, rowsOf(rows, samples, 5), (r) => {
    const off = r * cols;
    const { mean, rstd } = rowStats(x, off, cols, eps);
    let m1 = 0;
    let m2 = 0;
    for (let j = 0; j < cols; j++) {
      const g = gamma[j] * dy[off + j];
      m1 += g;
      m2 += g * (x[off + j] - mean) * rstd;
    }
    m1 /= cols;
    m2 /= cols;
    const out = new Float64Array(cols);
    for (let j = 0; j < cols; j++) out[j] = rstd * (gamma[j] * dy[off + j] - m1 - (x[off + j] - mean) * rstd * m2);
    return out;
  });
  const dg = new Float64Array(cols);
  const db = new Float64Array(cols);
  const dgAbs = new Float64Array(cols);
  const dbAbs = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    const { mean, rstd } = rowStats(x, off, cols, eps);
    for (let j = 0; j < cols; j++) {
      const t = dy[off + j] * (x[off + j] - mean) * rstd;
      dg[j] += t;
      dgAbs[j] += Math.abs(t);
      db[j] += dy[off + j];
      dbAbs[j] += Math.abs(dy[off + j]);
    }
  }
  const all = Array.from({ length: cols }, (_, j) => j);
  const rG = compare(`${what} dGamma`, dGamma, all, Array.from(dg), Array.from(dgAbs, (s) => 1e-4 * s + 1e-6));
  const rB = compare(`${what} dBeta`, dBeta, all, Array.from(db), Array.from(dbAbs, (s) => 1e-4 * s + 1e-6));
  return merge([rDx, rG, rB]);
}
