// Argument validation shared by the tensor layer and every op: small predicates and ONE error
// factory whose message names the op, the argument, what was expected and what was received.
// Errors are created here, in TypeScript, so they belong to the caller's realm.
import type { NativeResult } from './native';

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return v.length > 8 ? `an array of length ${v.length}` : `[${v.map(describe).join(', ')}]`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of length ${(v as unknown as ArrayLike<number>).length}`;
  const t = v as { shape?: unknown; dtype?: unknown; device?: unknown; disposed?: unknown };
  if (t && Array.isArray(t.shape) && typeof t.dtype === 'string') {
    return `${t.disposed ? 'a disposed ' : 'a '}${t.dtype} tensor of shape [${(t.shape as number[]).join(', ')}] on ${String(t.device)}`;
  }
  if (typeof v === 'function') return 'a function';
  return `an object (${Object.prototype.toString.call(v).slice(8, -1)})`;
}

/** The one error factory: `op: argument 'arg' expected ..., received ...`. */
export function argError(op: string, arg: string, expected: string, received: unknown, receivedIsText = false): Error {
  const got = receivedIsText ? String(received) : describe(received);
  return new Error(`${op}: argument '${arg}' expected ${expected}, received ${got}`);
}

/**
 * Throws the native error string `r` as an Error naming the op. `discard`: the outputs the failed call
 * was to fill, disposed first so that a failed op leaves no tensor behind for the garbage collector.
 */
export function check(op: string, r: NativeResult, discard: readonly ({ dispose(): void } | undefined)[] = []): void {
  if (typeof r !== 'string') return;
  for (const t of discard) t?.dispose();
  throw new Error(r.startsWith(op) ? r : `${op}: ${r}`);
}

export function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

export function finiteNumber(op: string, arg: string, v: unknown, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw argError(op, arg, 'a finite number', v);
  return v;
}

export function positiveInt(op: string, arg: string, v: unknown, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  if (!isInt(v) || v < 1) throw argError(op, arg, 'a positive integer', v);
  return v;
}

export function nonNegativeInt(op: string, arg: string, v: unknown, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  if (!isInt(v) || v < 0) throw argError(op, arg, 'a non-negative integer', v);
  return v;
}

export function bool(op: string, arg: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw argError(op, arg, 'a boolean', v);
  return v;
}

export function options(op: string, v: unknown): Record<string, unknown> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw argError(op, 'options', 'an options object', v);
  return v as Record<string, unknown>;
}
