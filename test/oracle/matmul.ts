// Float64 references: batched matmul with a broadcast 2-D operand, and linear — forward and backward.
// Written element by element from the definitions: op(A)[m][k] = transA ? A[k][m] : A[m][k].
import { Arr, sizeOf, zerosArr } from './nd';

export interface MatmulRefOptions {
  transposeA?: boolean;
  transposeB?: boolean;
}

interface Geometry {
  batchShape: number[];
  batch: number;
  M: number;
  N: number;
  K: number;
  aIdx: (p: number, m: number, k: number) => number;
  bIdx: (p: number, k: number, n: number) => number;
}

function geometry(a: Arr, b: Arr, o: MatmulRefOptions): Geometry {
  const tA = !!o.transposeA;
  const tB = !!o.transposeB;
  const ar = a.shape.length;
  const br = b.shape.length;
  const [a0, a1] = [a.shape[ar - 2], a.shape[ar - 1]];
  const [b0, b1] = [b.shape[br - 2], b.shape[br - 1]];
  const M = tA ? a1 : a0;
  const K = tA ? a0 : a1;
  const N = tB ? b0 : b1;
  const aBatched = ar > 2;
  const bBatched = br > 2;
  const batchShape = aBatched ? a.shape.slice(0, -2) : b.shape.slice(0, -2);
  return {
    batchShape, batch: sizeOf(batchShape), M, N, K,
    aIdx: (p, m, k) => (aBatched ? p * a0 * a1 : 0) + (tA ? k * a1 + m : m * a1 + k),
    bIdx: (p, k, n) => (bBatched ? p * b0 * b1 : 0) + (tB ? n * b1 + k : k * b1 + n),
  };
}

export function matmulRef(a: Arr, b: Arr, o: MatmulRefOptions = {}): Arr {
  const g = geometry(a, b, o);
  const c = zerosArr([...g.batchShape, g.M, g.N]);
  for (let p = 0; p < g.batch; p++)
    for (let m = 0; m < g.M; m++)
      for (let n = 0; n < g.N; n++) {
        let s = 0;
        for (let k = 0; k < g.K; k++) s += a.data[g.aIdx(p, m, k)] * b.data[g.bIdx(p, k, n)];
        c.data[(p * g.M + m) * g.N + n] = s;
      }
  return c;
}

/** dA and dB in the stored layouts; a broadcast operand accumulates over the batch. */
export function matmulBackwardRef(a: Arr, b: Arr, dOut: Arr, o: MatmulRefOptions = {}): { dA: Arr; dB: Arr } {
  const g = geometry(a, b, o);
  const dA = zerosArr(a.shape);
  const dB = zerosArr(b.shape);
  for (let p = 0; p < g.batch; p++)
    for (let m = 0; m < g.M; m++)
      for (let n = 0; n < g.N; n++) {
        const d = dOut.data[(p * g.M + m) * g.N + n];
        for (let k = 0; k < g.K; k++) {
          dA.data[g.aIdx(p, m, k)] += d * b.data[g.bIdx(p, k, n)];
          dB.data[g.bIdx(p, k, n)] += d * a.data[g.aIdx(p, m, k)];
        }
      }
  return { dA, dB };
}

/** y[r, o] = Σ_i x[r, i]·w[o, i] + bias[o] */
export function linearRef(x: Arr, w: Arr, bias?: Arr | null): Arr {
  const inF = x.shape[x.shape.length - 1];
  const outF = w.shape[0];
  const rows = sizeOf(x.shape.slice(0, -1));
  const y = zerosArr([...x.shape.slice(0, -1), outF]);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outF; o++) {
      let s = bias ? bias.data[o] : 0;
      for (let i = 0; i < inF; i++) s += x.data[r * inF + i] * w.data[o * inF + i];
      y.data[r * outF + o] = s;
    }
  return y;
}

export function linearBackwardRef(x: Arr, w: Arr, dOut: Arr, withBias: boolean): { dX: Arr; dW: Arr; dBias?: Arr } {
  const inF = x.shape[x.shape.length - 1];
  const outF = w.shape[0];
  const rows = sizeOf(x.shape.slice(0, -1));
  const dX = zerosArr(x.shape);
  const dW = zerosArr(w.shape);
  const dBias = zerosArr([outF]);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outF; o++) {
      const d = dOut.data[r * outF + o];
      dBias.data[o] += d;
      for (let i = 0; i < inF; i++) {
        dX.data[r * inF + i] += d * w.data[o * inF + i];
        dW.data[o * inF + i] += d * x.data[r * inF + i];
      }
    }
  return withBias ? { dX, dW, dBias } : { dX, dW };
}
