// Float64 references: sum / mean over one axis (or every element) and their backward (a broadcast).
import { Arr, ravel, sizeOf, unravel, zerosArr } from './nd';

export interface ReduceRefOptions {
  axis?: number;
  keepDims?: boolean;
}

function outShapeOf(shape: number[], o: ReduceRefOptions): { axis: number | null; out: number[]; len: number } {
  if (o.axis === undefined) return { axis: null, out: o.keepDims ? shape.map(() => 1) : [], len: sizeOf(shape) };
  const axis = o.axis < 0 ? o.axis + shape.length : o.axis;
  const out = o.keepDims ? shape.map((d, i) => (i === axis ? 1 : d)) : shape.filter((_, i) => i !== axis);
  return { axis, out, len: shape[axis] };
}

/** The output element that input multi-index idx contributes to. */
function target(idx: number[], axis: number | null, out: number[], keepDims: boolean): number {
  if (axis === null) return 0;
  const o = keepDims ? idx.map((v, i) => (i === axis ? 0 : v)) : idx.filter((_, i) => i !== axis);
  return ravel(o, out);
}

export function reduceRef(x: Arr, o: ReduceRefOptions, mean: boolean): Arr {
  const { axis, out, len } = outShapeOf(x.shape, o);
  const y = zerosArr(out);
  for (let i = 0; i < x.data.length; i++) {
    y.data[target(unravel(i, x.shape), axis, out, !!o.keepDims)] += x.data[i] / (mean ? len : 1);
  }
  return y;
}

export function reduceBackwardRef(x: Arr, dOut: Arr, o: ReduceRefOptions, mean: boolean): { dX: Arr } {
  const { axis, out, len } = outShapeOf(x.shape, o);
  const dX = zerosArr(x.shape);
  for (let i = 0; i < x.data.length; i++) {
    dX.data[i] = dOut.data[target(unravel(i, x.shape), axis, out, !!o.keepDims)] / (mean ? len : 1);
  }
  return { dX };
}
