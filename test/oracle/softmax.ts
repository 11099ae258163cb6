// Float64 references: softmax / log-softmax over the last axis; backward through the full Jacobian.
import { Arr } from './nd';

function rows(x: Arr): { R: number; C: number } {
  const C = x.shape[x.shape.length - 1];
  return { R: C === 0 ? 0 : x.data.length / C, C };
}

export function softmaxRef(x: Arr, log = false): Arr {
  const { R, C } = rows(x);
  const y = new Float64Array(x.data.length);
  for (let r = 0; r < R; r++) {
    let mx = -Infinity;
    for (let c = 0; c < C; c++) mx = Math.max(mx, x.data[r * C + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x.data[r * C + c] - mx);
    for (let c = 0; c < C; c++) {
      const z = x.data[r * C + c] - mx;
      y[r * C + c] = log ? z - Math.log(s) : Math.exp(z) / s;
    }
  }
  return { data: y, shape: x.shape.slice() };
}

/** dX_i = Σ_j dOut_j ∂y_j/∂x_i with ∂p_j/∂x_i = p_j(δ_ij − p_i) and ∂log p_j/∂x_i = δ_ij − p_i. */
export function softmaxBackwardRef(x: Arr, dOut: Arr, log = false): { dX: Arr } {
  const { R, C } = rows(x);
  const p = softmaxRef(x, false).data;
  const dX = new Float64Array(x.data.length);
  for (let r = 0; r < R; r++)
    for (let i = 0; i < C; i++) {
      let s = 0;
      for (let j = 0; j < C; j++) {
        const delta = i === j ? 1 : 0;
        const J = log ? delta - p[r * C + i] : p[r * C + j] * (delta - p[r * C + i]);
        s += dOut.data[r * C + j] * J;
      }
      dX[r * C + i] = s;
    }
  return { dX: { data: dX, shape: x.shape.slice() } };
}
