// Float64 references: permute / transpose / slice / concat and their backward, by multi-index.
import { Arr, ravel, sizeOf, unravel, zerosArr } from './nd';

const norm = (a: number, rank: number): number => (a < 0 ? a + rank : a);

/** out[t] = x[s] with s[perm[d]] = t[d]. */
export function permuteRef(x: Arr, perm: number[]): Arr {
  const r = x.shape.length;
  const p = perm.map((a) => norm(a, r));
  const outShape = p.map((a) => x.shape[a]);
  const y = zerosArr(outShape);
  for (let i = 0; i < y.data.length; i++) {
    const t = unravel(i, outShape);
    const s = new Array<number>(r);
    p.forEach((a, d) => (s[a] = t[d]));
    y.data[i] = x.data[ravel(s, x.shape)];
  }
  return y;
}
export function permuteBackwardRef(x: Arr, dOut: Arr, perm: number[]): { dX: Arr } {
  const r = x.shape.length;
  const p = perm.map((a) => norm(a, r));
  const dX = zerosArr(x.shape);
  for (let i = 0; i < dOut.data.length; i++) {
    const t = unravel(i, dOut.shape);
    const s = new Array<number>(r);
    p.forEach((a, d) => (s[a] = t[d]));
    dX.data[ravel(s, x.shape)] += dOut.data[i];
  }
  return { dX };
}

export function swapPerm(rank: number, a0 = -2, a1 = -1): number[] {
  const p = Array.from({ length: rank }, (_, i) => i);
  const i0 = norm(a0, rank);
  const i1 = norm(a1, rank);
  p[i0] = i1;
  p[i1] = i0;
  return p;
}

export function sliceRef(x: Arr, axisIn: number, startIn: number, endIn: number): Arr {
  const r = x.shape.length;
  const axis = norm(axisIn, r);
  const len = x.shape[axis];
  const start = startIn < 0 ? startIn + len : startIn;
  const end = endIn < 0 ? endIn + len : endIn;
  const outShape = x.shape.map((d, i) => (i === axis ? end - start : d));
  const y = zerosArr(outShape);
  for (let i = 0; i < y.data.length; i++) {
    const t = unravel(i, outShape);
    t[axis] += start;
    y.data[i] = x.data[ravel(t, x.shape)];
  }
  return y;
}
export function sliceBackwardRef(x: Arr, dOut: Arr, axisIn: number, startIn: number): { dX: Arr } {
  const axis = norm(axisIn, x.shape.length);
  const start = startIn < 0 ? startIn + x.shape[axis] : startIn;
  const dX = zerosArr(x.shape);
  for (let i = 0; i < dOut.data.length; i++) {
    const t = unravel(i, dOut.shape);
    t[axis] += start;
    dX.data[ravel(t, x.shape)] += dOut.data[i];
  }
  return { dX };
}

export function concatRef(xs: Arr[], axisIn: number): Arr {
  const axis = norm(axisIn, xs[0].shape.length);
  const total = xs.reduce((n, x) => n + x.shape[axis], 0);
  const outShape = xs[0].shape.map((d, i) => (i === axis ? total : d));
  const y = zerosArr(outShape);
  let off = 0;
  for (const x of xs) {
    for (let i = 0; i < x.data.length; i++) {
      const t = unravel(i, x.shape);
      t[axis] += off;
      y.data[ravel(t, outShape)] = x.data[i];
    }
    off += x.shape[axis];
  }
  return y;
}
export function concatBackwardRef(xs: Arr[], dOut: Arr, axisIn: number): { dXs: Arr[] } {
  const axis = norm(axisIn, xs[0].shape.length);
  let off = 0;
  const dXs = xs.map((x) => {
    const d = zerosArr(x.shape);
    for (let i = 0; i < sizeOf(x.shape); i++) {
      const t = unravel(i, x.shape);
      t[axis] += off;
      d.data[i] = dOut.data[ravel(t, dOut.shape)];
    }
    off += x.shape[axis];
    return d;
  });
  return { dXs };
}
