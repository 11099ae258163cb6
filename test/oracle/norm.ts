// Float64 references: layerNorm over the last axis (biased variance) and its backward.
import { Arr, zerosArr } from './nd';

export function layerNormRef(x: Arr, gamma: Arr, beta: Arr, eps = 1e-5): Arr {
  const C = x.shape[x.shape.length - 1];
  const R = x.data.length / C;
  const y = zerosArr(x.shape);
  for (let r = 0; r < R; r++) {
    let mu = 0;
    for (let c = 0; c < C; c++) mu += x.data[r * C + c];
    mu /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x.data[r * C + c] - mu) ** 2;
    v /= C;
    const rstd = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) y.data[r * C + c] = (x.data[r * C + c] - mu) * rstd * gamma.data[c] + beta.data[c];
  }
  return y;
}

/**
 * x̂ = (x − μ)·rstd, g = dOut ⊙ γ:  dX = rstd·(g − mean(g) − x̂·mean(g ⊙ x̂)),
 * dγ = Σ_rows dOut ⊙ x̂, dβ = Σ_rows dOut.
 */
export function layerNormBackwardRef(x: Arr, gamma: Arr, dOut: Arr, eps = 1e-5): { dX: Arr; dGamma: Arr; dBeta: Arr } {
  const C = x.shape[x.shape.length - 1];
  const R = x.data.length / C;
  const dX = zerosArr(x.shape);
  const dGamma = zerosArr([C]);
  const dBeta = zerosArr([C]);
  for (let r = 0; r < R; r++) {
    let mu = 0;
    for (let c = 0; c < C; c++) mu += x.data[r * C + c];
    mu /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x.data[r * C + c] - mu) ** 2;
    v /= C;
    const rstd = 1 / Math.sqrt(v + eps);
    let mg = 0;
    let mgx = 0;
    for (let c = 0; c < C; c++) {
      const xh = (x.data[r * C + c] - mu) * rstd;
      const g = dOut.data[r * C + c] * gamma.data[c];
      mg += g / C;
      mgx += (g * xh) / C;
      dGamma.data[c] += dOut.data[r * C + c] * xh;
      dBeta.data[c] += dOut.data[r * C + c];
    }
    for (let c = 0; c < C; c++) {
      const xh = (x.data[r * C + c] - mu) * rstd;
      const g = dOut.data[r * C + c] * gamma.data[c];
      dX.data[r * C + c] = rstd * (g - mg - xh * mgx);
    }
  }
  return { dX, dGamma, dBeta };
}
