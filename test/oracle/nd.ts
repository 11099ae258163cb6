// Float64 n-d arrays for the oracles: a flat row-major Float64Array and a shape. Nothing clever.
export interface Arr {
  data: Float64Array;
  shape: number[];
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

export function arr(data: ArrayLike<number>, shape: readonly number[]): Arr {
  if (data.length !== sizeOf(shape)) throw new Error(`arr: ${data.length} values for shape [${shape.join(', ')}]`);
  return { data: Float64Array.from(data), shape: shape.slice() };
}

export function zerosArr(shape: readonly number[]): Arr {
  return { data: new Float64Array(sizeOf(shape)), shape: shape.slice() };
}

/** Row-major strides. */
export function stridesOf(shape: readonly number[]): number[] {
  const s: number[] = new Array(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** Multi-index of flat index i. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx: number[] = new Array(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** Flat index of a multi-index. */
export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let f = 0;
  for (let d = 0; d < shape.length; d++) f = f * shape[d] + idx[d];
  return f;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
