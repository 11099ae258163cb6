// Shared validation and allocation for ops. Validation happens once, here in TypeScript, with
// messages naming the op, the argument, what was expected and what was received.
import { argError } from '../errors';
import { Device, DType, empty, Tensor } from '../tensor';

export interface TensorSpec {
  dtype?: DType;
  /** exact rank */
  rank?: number;
  /** minimum rank */
  minRank?: number;
}

/** Checks that v is a live tensor of the expected dtype/rank; returns it typed. */
export function tensorArg(op: string, arg: string, v: unknown, spec: TensorSpec = {}): Tensor {
  const dtype = spec.dtype ?? 'float32';
  if (!(v instanceof Tensor)) throw argError(op, arg, `a ${dtype} Tensor`, v);
  if (v.disposed) throw argError(op, arg, 'a live tensor', v);
  if (v.dtype !== dtype) throw argError(op, arg, `dtype ${dtype}`, v);
  if (spec.rank !== undefined && v.rank !== spec.rank) throw argError(op, arg, `a rank-${spec.rank} tensor`, v);
  if (spec.minRank !== undefined && v.rank < spec.minRank) {
    throw argError(op, arg, `a tensor of rank >= ${spec.minRank}`, v);
  }
  return v;
}

/** All tensors must live on one device; returns it. */
export function sameDevice(op: string, args: Record<string, Tensor | null | undefined>): Device {
  let device: Device | undefined;
  let first = '';
  for (const [name, t] of Object.entries(args)) {
    if (!t) continue;
    if (device === undefined) {
      device = t.device;
      first = name;
    } else if (t.device !== device) {
      throw argError(op, name, `a tensor on ${device} (the device of '${first}')`, t);
    }
  }
  if (device === undefined) throw new Error(`${op}: no tensor arguments`);
  return device;
}

export function shapeEq(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Requires every dimension of `t` to match `expected` (null = any). */
export function expectShape(op: string, arg: string, t: Tensor, expected: readonly (number | null)[], what?: string): void {
  const ok = t.rank === expected.length && expected.every((d, i) => d === null || d === t.shape[i]);
  if (!ok) {
    const exp = `[${expected.map((d) => (d === null ? '*' : String(d))).join(', ')}]`;
    throw argError(op, arg, what ?? `shape ${exp}`, t);
  }
}

/** Normalises an axis (negative counts from the end) against a rank. */
export function axisArg(op: string, arg: string, axis: unknown, rank: number): number {
  if (typeof axis !== 'number' || !Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw argError(op, arg, `an integer axis in [${-rank}, ${rank - 1}]`, axis);
  }
  return axis < 0 ? axis + rank : axis;
}

export function alloc(op: string, shape: readonly number[], device: Device, dtype: DType = 'float32'): Tensor {
  return empty(op, shape, dtype, device);
}

/**
 * Runs `fill`, the launches that write the freshly allocated `outs`; if it throws, `outs` are disposed
 * before the error propagates, so a failed op leaves no tensor behind for the garbage collector.
 */
export function fillOrDispose<T>(outs: readonly Tensor[], fill: () => T): T {
  try {
    return fill();
  } catch (e) {
    for (const t of outs) t.dispose();
    throw e;
  }
}

export function prod(shape: readonly number[], from = 0, to = shape.length): number {
  let n = 1;
  for (let i = from; i < to; i++) n *= shape[i];
  return n;
}
