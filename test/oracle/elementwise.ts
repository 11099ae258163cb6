// Float64 references: add / sub / mul with broadcasting, affine (alpha·x + beta), scale and biasAdd,
// forward and backward. Broadcasting is the textbook rule (shapes aligned at the right, a dimension
// of 1 or a missing dimension repeats), written out index by index; the backward of a broadcast
// operand sums the output gradient over every output element that read it.
import { Arr, sizeOf, unravel, zerosArr } from './nd';

export type BinaryKind = 'add' | 'sub' | 'mul';

/** The broadcast shape of a and b (right-aligned; each pair of dimensions equal, or one of them 1). */
export function broadcastShapeRef(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < rank; k++) {
    const da = k < rank - a.length ? 1 : a[k - (rank - a.length)];
    const db = k < rank - b.length ? 1 : b[k - (rank - b.length)];
    if (da !== db && da !== 1 && db !== 1) throw new Error(`broadcastShapeRef: [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** The flat index into an operand of shape `s` read by output multi-index `idx` (right-aligned). */
function source(idx: readonly number[], s: readonly number[]): number {
  const off = idx.length - s.length;
  let f = 0;
  for (let d = 0; d < s.length; d++) f = f * s[d] + (s[d] === 1 ? 0 : idx[off + d]);
  return f;
}

function apply(kind: BinaryKind, x: number, y: number): number {
  return kind === 'add' ? x + y : kind === 'sub' ? x - y : x * y;
}

export function binaryRef(kind: BinaryKind, a: Arr, b: Arr): Arr {
  const out = zerosArr(broadcastShapeRef(a.shape, b.shape));
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, out.shape);
    out.data[i] = apply(kind, a.data[source(idx, a.shape)], b.data[source(idx, b.shape)]);
  }
  return out;
}

/**
 * ∂L/∂a[j] = Σ_{i reads a[j]} dOut[i]·∂out_i/∂a, with ∂(a+b)/∂a = 1, ∂(a−b)/∂a = 1, ∂(a⊙b)/∂a = b
 * and ∂(a+b)/∂b = 1, ∂(a−b)/∂b = −1, ∂(a⊙b)/∂b = a.
 */
export function binaryBackwardRef(kind: BinaryKind, a: Arr, b: Arr, dOut: Arr): { dA: Arr; dB: Arr } {
  const shape = broadcastShapeRef(a.shape, b.shape);
  if (sizeOf(shape) !== dOut.data.length) throw new Error('binaryBackwardRef: dOut has the wrong size');
  const dA = zerosArr(a.shape);
  const dB = zerosArr(b.shape);
  for (let i = 0; i < dOut.data.length; i++) {
    const idx = unravel(i, shape);
    const ja = source(idx, a.shape);
    const jb = source(idx, b.shape);
    const g = dOut.data[i];
    dA.data[ja] += kind === 'mul' ? g * b.data[jb] : g;
    dB.data[jb] += kind === 'mul' ? g * a.data[ja] : kind === 'sub' ? -g : g;
  }
  return { dA, dB };
}

/** alpha·x + beta */
export function affineRef(x: Arr, alpha: number, beta = 0): Arr {
  return { data: x.data.map((v) => alpha * v + beta), shape: x.shape.slice() };
}

/** ∂(alpha·x + beta)/∂x = alpha (scaleBackward is this with beta irrelevant). */
export function affineBackwardRef(x: Arr, alpha: number, dOut: Arr): { dX: Arr } {
  if (dOut.data.length !== x.data.length) throw new Error('affineBackwardRef: dOut has the wrong size');
  return { dX: { data: dOut.data.map((g) => alpha * g), shape: x.shape.slice() } };
}

/** x[..., c] + bias[c] */
export function biasAddRef(x: Arr, bias: Arr): Arr {
  const C = x.shape[x.shape.length - 1];
  if (bias.shape.length !== 1 || bias.shape[0] !== C) throw new Error('biasAddRef: bias must have shape [C]');
  return { data: x.data.map((v, i) => v + bias.data[i % C]), shape: x.shape.slice() };
}

/** dX = dOut; dBias[c] = Σ over every leading index of dOut[..., c]. */
export function biasAddBackwardRef(x: Arr, bias: Arr, dOut: Arr): { dX: Arr; dBias: Arr } {
  const C = bias.shape[0];
  const dBias = zerosArr([C]);
  for (let i = 0; i < dOut.data.length; i++) dBias.data[i % C] += dOut.data[i];
  return { dX: { data: Float64Array.from(dOut.data), shape: x.shape.slice() }, dBias };
}
