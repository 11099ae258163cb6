// Float64 reference of HaloNet halo attention (spec §3.2/§3.4, timm's HaloAttn semantics), written
// naively with explicit loops: for every (image, block, head, query) the win×win haloed window is read
// straight from the unpadded key/value maps, positions outside the image being zero keys/values that
// are still attended (zero padding after the projection, no mask). Relative logits come from two
// (2·win−1)×dk tables shared by the heads, with timm's uncentred indexing
//   R[i, (ky,kx)] = q_i·relW[kx − qx + win − 1] + q_i·relH[ky − qy + win − 1],
// where (qy, qx) are the query's coordinates inside its block of the QUERY map (downsampled in the
// strided mode: stride 2 with an even block → b_q = b/2) and (ky, kx) the key's window coordinates.
// Logits S = τ·(q·k) + R, or τ·(q·k + R) with scalePosEmbed; lse is the natural-log log-sum-exp of S.
// The backward retraces the same loops (spec §3.4). Checked against central finite differences in
// test/oracle.halo.test.ts.
import { Arr, zerosArr } from './nd';

export interface HaloRefOptions {
  blockSize: number;
  haloSize: number;
  /** 1 (default) or 2 with an even block (strided queries); the avg-pool path is the module's job */
  stride?: number;
  /** τ, default dk^{-1/2} */
  scale?: number;
  /** true: τ also scales the relative term (default false, as timm) */
  scalePosEmbed?: boolean;
}

export interface HaloGeometry {
  B: number;
  H: number;
  W: number;
  M: number;
  dk: number;
  dv: number;
  Hq: number;
  Wq: number;
  /** block size, halo, window b + 2h, query block size */
  b: number;
  h: number;
  win: number;
  bq: number;
  stride: number;
  /** blocks per column / per row */
  nbH: number;
  nbW: number;
  scale: number;
  scalePosEmbed: boolean;
}

/** Shapes and derived sizes; throws on inconsistent shapes (the oracle's own sanity checks only). */
export function haloGeometry(
  qShape: readonly number[],
  kShape: readonly number[],
  vShape: readonly number[],
  relHShape: readonly number[],
  relWShape: readonly number[],
  o: HaloRefOptions,
): HaloGeometry {
  const [B, H, W, M, dk] = kShape;
  const dv = vShape[4];
  const b = o.blockSize;
  const h = o.haloSize;
  const stride = o.stride ?? 1;
  const win = b + 2 * h;
  let bq: number;
  if (stride === 1) bq = b;
  else if (stride === 2 && b % 2 === 0) bq = b / 2;
  else throw new Error(`haloRef: stride ${stride} with block ${b} is not a strided-query configuration`);
  if (H % b !== 0 || W % b !== 0) throw new Error(`haloRef: map ${H}×${W} is not a multiple of block ${b}`);
  const Hq = H / stride;
  const Wq = W / stride;
  const want = (name: string, got: readonly number[], exp: number[]) => {
    if (got.length !== exp.length || got.some((d, i) => d !== exp[i])) {
      throw new Error(`haloRef: ${name} has shape [${got.join(', ')}], expected [${exp.join(', ')}]`);
    }
  };
  want('q', qShape, [B, Hq, Wq, M, dk]);
  want('v', vShape, [B, H, W, M, dv]);
  want('relH', relHShape, [2 * win - 1, dk]);
  want('relW', relWShape, [2 * win - 1, dk]);
  return {
    B, H, W, M, dk, dv, Hq, Wq, b, h, win, bq, stride,
    nbH: H / b, nbW: W / b,
    scale: o.scale ?? Math.pow(dk, -0.5),
    scalePosEmbed: o.scalePosEmbed ?? false,
  };
}

const qIdx = (g: HaloGeometry, n: number, y: number, x: number, m: number) => (((n * g.Hq + y) * g.Wq + x) * g.M + m);
const kvIdx = (g: HaloGeometry, n: number, y: number, x: number, m: number) => (((n * g.H + y) * g.W + x) * g.M + m);

/** One query row: its position and the win² window keys (image row/col, or -1 when in the padding). */
interface Row {
  /** base offset of q_i in q (times dk done by the caller) */
  qBase: number;
  qy: number;
  qx: number;
  /** for key j = ky·win + kx: kv pixel index (n,y,x,m) or -1 for padding */
  kv: Int32Array;
  /** table rows used by key j */
  rowH: Int32Array;
  rowW: Int32Array;
}

/** Visits every (image, block, head, query) with the geometry of its window. */
function forEachRow(g: HaloGeometry, fn: (row: Row) => void): void {
  const W2 = g.win * g.win;
  const kv = new Int32Array(W2);
  const rowH = new Int32Array(W2);
  const rowW = new Int32Array(W2);
  for (let n = 0; n < g.B; n++)
    for (let I = 0; I < g.nbH; I++)
      for (let J = 0; J < g.nbW; J++)
        for (let m = 0; m < g.M; m++)
          for (let qy = 0; qy < g.bq; qy++)
            for (let qx = 0; qx < g.bq; qx++) {
              const yq = I * g.bq + qy;
              const xq = J * g.bq + qx;
              for (let ky = 0; ky < g.win; ky++)
                for (let kx = 0; kx < g.win; kx++) {
                  const j = ky * g.win + kx;
                  const y = I * g.b - g.h + ky;
                  const x = J * g.b - g.h + kx;
                  kv[j] = y >= 0 && y < g.H && x >= 0 && x < g.W ? kvIdx(g, n, y, x, m) : -1;
                  rowH[j] = ky - qy + g.win - 1;
                  rowW[j] = kx - qx + g.win - 1;
                }
              fn({ qBase: qIdx(g, n, yq, xq, m), qy, qx, kv, rowH, rowW });
            }
}

function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, d: number): number {
  let s = 0;
  for (let e = 0; e < d; e++) s += a[ao + e] * b[bo + e];
  return s;
}

/** Final logits S[j] of one query row (j = ky·win + kx over the window), written into S. */
function rowLogits(g: HaloGeometry, row: Row, q: Arr, k: Arr, relH: Arr, relW: Arr, S: Float64Array): void {
  const qo = row.qBase * g.dk;
  for (let j = 0; j < g.win * g.win; j++) {
    const qk = row.kv[j] >= 0 ? dot(q.data, qo, k.data, row.kv[j] * g.dk, g.dk) : 0;
    const r = dot(q.data, qo, relW.data, row.rowW[j] * g.dk, g.dk) + dot(q.data, qo, relH.data, row.rowH[j] * g.dk, g.dk);
    S[j] = g.scalePosEmbed ? g.scale * (qk + r) : g.scale * qk + r;
  }
}

/** Softmax of S into A; returns the natural-log log-sum-exp. */
function softmaxRow(S: Float64Array, A: Float64Array): number {
  let mx = -Infinity;
  for (let j = 0; j < S.length; j++) mx = Math.max(mx, S[j]);
  let sum = 0;
  for (let j = 0; j < S.length; j++) sum += Math.exp(S[j] - mx);
  for (let j = 0; j < S.length; j++) A[j] = Math.exp(S[j] - mx) / sum;
  return mx + Math.log(sum);
}

/** The final logits [B, Hq, Wq, M, win²] (window order j = ky·win + kx), for structural tests. */
export function haloLogitsRef(q: Arr, k: Arr, v: Arr, relH: Arr, relW: Arr, o: HaloRefOptions): Arr {
  const g = haloGeometry(q.shape, k.shape, v.shape, relH.shape, relW.shape, o);
  const W2 = g.win * g.win;
  const out = zerosArr([g.B, g.Hq, g.Wq, g.M, W2]);
  const S = new Float64Array(W2);
  forEachRow(g, (row) => {
    rowLogits(g, row, q, k, relH, relW, S);
    out.data.set(S, row.qBase * W2);
  });
  return out;
}

export function haloAttentionRef(q: Arr, k: Arr, v: Arr, relH: Arr, relW: Arr, o: HaloRefOptions): { out: Arr; lse: Arr } {
  const g = haloGeometry(q.shape, k.shape, v.shape, relH.shape, relW.shape, o);
  const W2 = g.win * g.win;
  const out = zerosArr([g.B, g.Hq, g.Wq, g.M, g.dv]);
  const lse = zerosArr([g.B, g.Hq, g.Wq, g.M]);
  const S = new Float64Array(W2);
  const A = new Float64Array(W2);
  forEachRow(g, (row) => {
    rowLogits(g, row, q, k, relH, relW, S);
    lse.data[row.qBase] = softmaxRow(S, A);
    const oo = row.qBase * g.dv;
    for (let j = 0; j < W2; j++) {
      if (row.kv[j] < 0) continue; // padded value is exactly zero (its probability still counts)
      const vo = row.kv[j] * g.dv;
      for (let e = 0; e < g.dv; e++) out.data[oo + e] += A[j] * v.data[vo + e];
    }
  });
  return { out, lse };
}

export function haloAttentionBackwardRef(
  q: Arr,
  k: Arr,
  v: Arr,
  relH: Arr,
  relW: Arr,
  dOut: Arr,
  o: HaloRefOptions,
): { dQ: Arr; dK: Arr; dV: Arr; dRelH: Arr; dRelW: Arr } {
  const g = haloGeometry(q.shape, k.shape, v.shape, relH.shape, relW.shape, o);
  const W2 = g.win * g.win;
  const dQ = zerosArr(q.shape);
  const dK = zerosArr(k.shape);
  const dV = zerosArr(v.shape);
  const dRelH = zerosArr(relH.shape);
  const dRelW = zerosArr(relW.shape);
  const S = new Float64Array(W2);
  const A = new Float64Array(W2);
  const dA = new Float64Array(W2);
  forEachRow(g, (row) => {
    rowLogits(g, row, q, k, relH, relW, S);
    softmaxRow(S, A);
    const qo = row.qBase * g.dk;
    const go = row.qBase * g.dv;
    // dA[j] = dO·v_j (0 for padding); dV_j += A[j]·dO
    let rowDot = 0;
    for (let j = 0; j < W2; j++) {
      if (row.kv[j] >= 0) {
        const vo = row.kv[j] * g.dv;
        dA[j] = dot(dOut.data, go, v.data, vo, g.dv);
        for (let e = 0; e < g.dv; e++) dV.data[vo + e] += A[j] * dOut.data[go + e];
      } else {
        dA[j] = 0;
      }
      rowDot += A[j] * dA[j];
    }
    for (let j = 0; j < W2; j++) {
      const dS = A[j] * (dA[j] - rowDot);
      const dQK = g.scale * dS; // ∂L/∂(q·k)
      const dR = g.scalePosEmbed ? g.scale * dS : dS; // ∂L/∂R
      const ho = row.rowH[j] * g.dk;
      const wo = row.rowW[j] * g.dk;
      for (let e = 0; e < g.dk; e++) {
        dQ.data[qo + e] += dR * (relW.data[wo + e] + relH.data[ho + e]);
        dRelW.data[wo + e] += dR * q.data[qo + e];
        dRelH.data[ho + e] += dR * q.data[qo + e];
      }
      if (row.kv[j] >= 0) {
        const ko = row.kv[j] * g.dk;
        for (let e = 0; e < g.dk; e++) {
          dQ.data[qo + e] += dQK * k.data[ko + e];
          dK.data[ko + e] += dQK * q.data[qo + e];
        }
      }
    }
  });
  return { dQ, dK, dV, dRelH, dRelW };
}
