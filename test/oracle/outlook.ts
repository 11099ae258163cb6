// Float64 reference of VOLO outlook attention (spec §2.2/§2.3), written the unfused way on purpose:
// explicit unfold of v into windows → softmax over the source axis → weighted sum → fold (scatter-add).
// The backward retraces the same steps in reverse (unfold G, dA = Gw·Vwᵀ, dVw = Aᵀ·Gw, fold dVw,
// softmax backward). Checked against central finite differences in test/ops.outlook.test.ts.
import { Arr, zerosArr } from './nd';

export interface OutlookRefOptions {
  kernelSize?: number;
  padding?: number;
  stride?: number;
  scale?: number;
}

export interface OutlookGeometry {
  B: number;
  H: number;
  W: number;
  C: number;
  M: number;
  d: number;
  k: number;
  K2: number;
  p: number;
  s: number;
  h: number;
  w: number;
  scale: number;
}

/** Window grid length ⌊(n + 2p − k)/s⌋ + 1. */
export function outlookGridLen(n: number, k: number, p: number, s: number): number {
  return Math.floor((n + 2 * p - k) / s) + 1;
}

export function outlookGeometry(vShape: readonly number[], heads: number, o: OutlookRefOptions = {}): OutlookGeometry {
  const [B, H, W, C] = vShape;
  const k = o.kernelSize ?? 3;
  const p = o.padding ?? (k - 1) / 2;
  const s = o.stride ?? 1;
  const M = heads;
  const d = C / M;
  return {
    B, H, W, C, M, d, k, K2: k * k, p, s,
    h: outlookGridLen(H, k, p, s), w: outlookGridLen(W, k, p, s),
    scale: o.scale ?? Math.pow(d, -0.5),
  };
}

/** The logits shape [B, h, w, M, k², k²] for v of shape vShape. */
export function outlookLogitsShape(vShape: readonly number[], heads: number, o: OutlookRefOptions = {}): number[] {
  const g = outlookGeometry(vShape, heads, o);
  return [g.B, g.h, g.w, g.M, g.K2, g.K2];
}

/** Pixel (y, x) read by window (i, j) at position r, or null in the padding. */
function pixel(g: OutlookGeometry, i: number, j: number, r: number): [number, number] | null {
  const y = g.s * i - g.p + Math.floor(r / g.k);
  const x = g.s * j - g.p + (r % g.k);
  return y >= 0 && y < g.H && x >= 0 && x < g.W ? [y, x] : null;
}

const vIdx = (g: OutlookGeometry, b: number, y: number, x: number, ch: number) => ((b * g.H + y) * g.W + x) * g.C + ch;
/** Index into a per-window tensor [B, h, w, M, k², n] (n = k² for logits, d for unfolded values). */
const wIdx = (g: OutlookGeometry, b: number, i: number, j: number, m: number, q: number, n: number, t: number) =>
  ((((b * g.h + i) * g.w + j) * g.M + m) * g.K2 + q) * n + t;

/** unfold: Vw[b,i,j,m,r,e] = v[b, pixel(i,j,r), m·d+e] or 0 in the padding. */
function unfold(g: OutlookGeometry, v: Arr): Arr {
  const out = zerosArr([g.B, g.h, g.w, g.M, g.K2, g.d]);
  for (let b = 0; b < g.B; b++)
    for (let i = 0; i < g.h; i++)
      for (let j = 0; j < g.w; j++)
        for (let r = 0; r < g.K2; r++) {
          const px = pixel(g, i, j, r);
          if (!px) continue;
          for (let m = 0; m < g.M; m++)
            for (let e = 0; e < g.d; e++) out.data[wIdx(g, b, i, j, m, r, g.d, e)] = v.data[vIdx(g, b, px[0], px[1], m * g.d + e)];
        }
  return out;
}

/** fold (adjoint of unfold): out[b, pixel(i,j,q), m·d+e] += Yw[b,i,j,m,q,e]; padding positions dropped. */
function fold(g: OutlookGeometry, yw: Arr): Arr {
  const out = zerosArr([g.B, g.H, g.W, g.C]);
  for (let b = 0; b < g.B; b++)
    for (let i = 0; i < g.h; i++)
      for (let j = 0; j < g.w; j++)
        for (let q = 0; q < g.K2; q++) {
          const px = pixel(g, i, j, q);
          if (!px) continue;
          for (let m = 0; m < g.M; m++)
            for (let e = 0; e < g.d; e++) out.data[vIdx(g, b, px[0], px[1], m * g.d + e)] += yw.data[wIdx(g, b, i, j, m, q, g.d, e)];
        }
  return out;
}

/** A = softmax over the last axis of scale·logits. */
function attention(g: OutlookGeometry, logits: Arr): Arr {
  const A = zerosArr(logits.shape);
  const rows = logits.data.length / g.K2;
  for (let row = 0; row < rows; row++) {
    const o = row * g.K2;
    let mx = -Infinity;
    for (let r = 0; r < g.K2; r++) mx = Math.max(mx, g.scale * logits.data[o + r]);
    let sum = 0;
    for (let r = 0; r < g.K2; r++) sum += Math.exp(g.scale * logits.data[o + r] - mx);
    for (let r = 0; r < g.K2; r++) A.data[o + r] = Math.exp(g.scale * logits.data[o + r] - mx) / sum;
  }
  return A;
}

function heads(logits: Arr): number {
  return logits.shape[3];
}

export function outlookAttentionRef(v: Arr, logits: Arr, o: OutlookRefOptions = {}): Arr {
  const g = outlookGeometry(v.shape, heads(logits), o);
  const vw = unfold(g, v);
  const A = attention(g, logits);
  // Yw[.., q, e] = Σ_r A[.., q, r] · Vw[.., r, e]
  const yw = zerosArr(vw.shape);
  const windows = g.B * g.h * g.w * g.M;
  for (let n = 0; n < windows; n++)
    for (let q = 0; q < g.K2; q++)
      for (let e = 0; e < g.d; e++) {
        let acc = 0;
        for (let r = 0; r < g.K2; r++) acc += A.data[(n * g.K2 + q) * g.K2 + r] * vw.data[(n * g.K2 + r) * g.d + e];
        yw.data[(n * g.K2 + q) * g.d + e] = acc;
      }
  return fold(g, yw);
}

export function outlookAttentionBackwardRef(v: Arr, logits: Arr, dOut: Arr, o: OutlookRefOptions = {}): { dV: Arr; dLogits: Arr } {
  const g = outlookGeometry(v.shape, heads(logits), o);
  const vw = unfold(g, v);
  const gw = unfold(g, dOut); // adjoint of fold
  const A = attention(g, logits);
  const dvw = zerosArr(vw.shape);
  const dLogits = zerosArr(logits.shape);
  const windows = g.B * g.h * g.w * g.M;
  const dA = new Float64Array(g.K2);
  for (let n = 0; n < windows; n++) {
    // dVw[r, e] = Σ_q A[q, r] · Gw[q, e]
    for (let r = 0; r < g.K2; r++)
      for (let e = 0; e < g.d; e++) {
        let acc = 0;
        for (let q = 0; q < g.K2; q++) acc += A.data[(n * g.K2 + q) * g.K2 + r] * gw.data[(n * g.K2 + q) * g.d + e];
        dvw.data[(n * g.K2 + r) * g.d + e] = acc;
      }
    for (let q = 0; q < g.K2; q++) {
      // dA[q, r] = Σ_e Gw[q, e] · Vw[r, e]; dZ = scale · A ⊙ (dA − Σ_r' A·dA)
      let dot = 0;
      for (let r = 0; r < g.K2; r++) {
        let acc = 0;
        for (let e = 0; e < g.d; e++) acc += gw.data[(n * g.K2 + q) * g.d + e] * vw.data[(n * g.K2 + r) * g.d + e];
        dA[r] = acc;
        dot += A.data[(n * g.K2 + q) * g.K2 + r] * acc;
      }
      for (let r = 0; r < g.K2; r++) {
        const a = A.data[(n * g.K2 + q) * g.K2 + r];
        dLogits.data[(n * g.K2 + q) * g.K2 + r] = g.scale * a * (dA[r] - dot);
      }
    }
  }
  return { dV: fold(g, dvw), dLogits };
}
