// Internal helpers shared by the copy-based ops (shape.ts, reduce.ts): contiguous strides, a strided
// copy with dimension coalescing (one native.copy call), and a zero fill. Not re-exported publicly.
import { check } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';

/** Row-major element strides of a contiguous tensor of this shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * dst[dstOffset + Σ t_d·dstStride_d] = scale · src[srcOffset + Σ t_d·srcStride_d] for t < shape,
 * as ONE native copy. Size-1 dimensions are dropped and adjacent dimensions that are contiguous in
 * both source and destination are merged (a stride-0 broadcast merges too), so the kernel sees the
 * fewest, longest dimensions. Nothing is enqueued when the shape is empty.
 */
export function stridedCopy(
  op: string, src: Tensor, srcArg: string, dst: Tensor, shape: readonly number[],
  srcStride: readonly number[], dstStride: readonly number[], srcOffset = 0, dstOffset = 0, scale = 1,
): void {
  let n = 1;
  for (const d of shape) n *= d;
  if (n === 0) return;
  const dims: { n: number; s: number; t: number }[] = [];
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = dims[dims.length - 1];
    if (last && last.s === srcStride[d] * shape[d] && last.t === dstStride[d] * shape[d]) {
      last.n *= shape[d];
      last.s = srcStride[d];
      last.t = dstStride[d];
    } else {
      dims.push({ n: shape[d], s: srcStride[d], t: dstStride[d] });
    }
  }
  if (dims.length === 0) dims.push({ n: 1, s: 1, t: 1 });
  check(op, native.copy(
    src.storage(op, srcArg), dst.storage(op, 'out'),
    dims.map((d) => d.n), dims.map((d) => d.s), dims.map((d) => d.t), srcOffset, dstOffset, scale,
  ));
}

/** Fills every element of t with zero bits (0.0f / 0). */
export function zeroFill(op: string, t: Tensor): void {
  if (t.size > 0) check(op, native.fill(t.storage(op, 'out'), t.size, 0));
}
