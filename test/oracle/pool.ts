// Float64 reference: channels-last avgPool2d without padding (floor / ceil mode, PyTorch's output-size
// rule) where each window averages the in-image pixels it covers; backward by scattering.
import { Arr, zerosArr } from './nd';

export interface PoolRefOptions {
  kernelSize: number;
  stride?: number;
  ceilMode?: boolean;
}

/** PyTorch's pooling_output_shape with padding 0 and dilation 1. */
export function poolOutLen(n: number, k: number, s: number, ceil: boolean): number {
  const num = n - k + (ceil ? s - 1 : 0);
  let o = Math.floor(num / s) + 1;
  if (ceil && (o - 1) * s >= n) o--;
  return o;
}

function geometry(x: Arr, o: PoolRefOptions) {
  const [B, H, W, C] = x.shape;
  const k = o.kernelSize;
  const s = o.stride ?? k;
  const Ho = poolOutLen(H, k, s, !!o.ceilMode);
  const Wo = poolOutLen(W, k, s, !!o.ceilMode);
  return { B, H, W, C, k, s, Ho, Wo };
}

/** Visits every (output, input) pixel pair of every window with the window's pixel count. */
function forEachWindow(
  g: ReturnType<typeof geometry>,
  fn: (b: number, i: number, j: number, y: number, x: number, count: number) => void,
): void {
  for (let b = 0; b < g.B; b++)
    for (let i = 0; i < g.Ho; i++)
      for (let j = 0; j < g.Wo; j++) {
        const y0 = i * g.s;
        const y1 = Math.min(y0 + g.k, g.H);
        const x0 = j * g.s;
        const x1 = Math.min(x0 + g.k, g.W);
        const count = (y1 - y0) * (x1 - x0);
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) fn(b, i, j, y, x, count);
      }
}

export function avgPool2dRef(x: Arr, o: PoolRefOptions): Arr {
  const g = geometry(x, o);
  const out = zerosArr([g.B, g.Ho, g.Wo, g.C]);
  forEachWindow(g, (b, i, j, y, xx, count) => {
    for (let c = 0; c < g.C; c++) {
      out.data[((b * g.Ho + i) * g.Wo + j) * g.C + c] += x.data[((b * g.H + y) * g.W + xx) * g.C + c] / count;
    }
  });
  return out;
}

export function avgPool2dBackwardRef(x: Arr, dOut: Arr, o: PoolRefOptions): { dX: Arr } {
  const g = geometry(x, o);
  const dX = zerosArr(x.shape);
  forEachWindow(g, (b, i, j, y, xx, count) => {
    for (let c = 0; c < g.C; c++) {
      dX.data[((b * g.H + y) * g.W + xx) * g.C + c] += dOut.data[((b * g.Ho + i) * g.Wo + j) * g.C + c] / count;
    }
  });
  return { dX };
}
