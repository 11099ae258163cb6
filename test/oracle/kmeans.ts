// Float64 references of kMaX-DeepLab's k-means cross-attention (spec §4.3–§4.4) and of the row L2
// normalisation, written naively: scores pixel·center, arg-max over the centers with the LOWEST index
// on ties, per-cluster SUMS of the assigned values, the gather backward; y = x / max(‖x‖, eps) and its
// backward (checked by finite differences in test/ops.kmeans.test.ts).
import { Arr, zerosArr } from './nd';

export function kmeansRef(pixels: Arr, centers: Arr, values: Arr): { update: Arr; assign: Int32Array; logits: Arr } {
  const [B, N, D] = pixels.shape;
  const L = centers.shape[1];
  const Dv = values.shape[2];
  const logits = zerosArr([B, L, N]);
  const assign = new Int32Array(B * N);
  const update = zerosArr([B, L, Dv]);
  for (let b = 0; b < B; b++)
    for (let n = 0; n < N; n++) {
      let best = 0;
      let bestScore = -Infinity;
      for (let l = 0; l < L; l++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += pixels.data[(b * N + n) * D + d] * centers.data[(b * L + l) * D + d];
        logits.data[(b * L + l) * N + n] = s;
        if (s > bestScore) {
          bestScore = s;
          best = l;
        }
      }
      assign[b * N + n] = best;
      for (let e = 0; e < Dv; e++) update.data[(b * L + best) * Dv + e] += values.data[(b * N + n) * Dv + e];
    }
  return { update, assign, logits };
}

export function kmeansBackwardRef(assign: Int32Array, dUpdate: Arr, N: number): Arr {
  const [B, L, Dv] = dUpdate.shape;
  const dValues = zerosArr([B, N, Dv]);
  for (let b = 0; b < B; b++)
    for (let n = 0; n < N; n++) {
      const l = assign[b * N + n];
      if (l < 0 || l >= L) throw new Error(`kmeansBackwardRef: assign ${l} outside [0, ${L})`);
      for (let e = 0; e < Dv; e++) dValues.data[(b * N + n) * Dv + e] = dUpdate.data[(b * L + l) * Dv + e];
    }
  return dValues;
}

export function l2NormalizeRef(x: Arr, eps = 1e-12): Arr {
  const C = x.shape[x.shape.length - 1];
  const y = zerosArr(x.shape);
  for (let r = 0; r < x.data.length / C; r++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x.data[r * C + c] ** 2;
    const n = Math.max(Math.sqrt(ss), eps);
    for (let c = 0; c < C; c++) y.data[r * C + c] = x.data[r * C + c] / n;
  }
  return y;
}

export function l2NormalizeBackwardRef(x: Arr, dy: Arr, eps = 1e-12): Arr {
  const C = x.shape[x.shape.length - 1];
  const dx = zerosArr(x.shape);
  for (let r = 0; r < x.data.length / C; r++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x.data[r * C + c] ** 2;
    const n = Math.sqrt(ss);
    if (n > eps) {
      let dot = 0;
      for (let c = 0; c < C; c++) dot += (x.data[r * C + c] / n) * dy.data[r * C + c];
      for (let c = 0; c < C; c++) dx.data[r * C + c] = (dy.data[r * C + c] - (x.data[r * C + c] / n) * dot) / n;
    } else {
      for (let c = 0; c < C; c++) dx.data[r * C + c] = dy.data[r * C + c] / eps;
    }
  }
  return dx;
}
