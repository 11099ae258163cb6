// Shared test helpers: the devices to test, tensor construction from oracle arrays, readback and the
// tolerance rule (relative to the largest reference magnitude).
import * as va from '../lib';
import type { Device, Tensor } from '../lib';
import { expectClose } from './oracle/gradcheck';
import { Arr, maxAbs } from './oracle/nd';

export { Rng } from './oracle/rng';
export { expectClose, gradcheck } from './oracle/gradcheck';
export type { Arr } from './oracle/nd';

/**
 * 'cpu' and 'emu' always; 'cuda' when a GPU is usable. VISATTN_TEST_DEVICES (comma-separated)
 * narrows the list, e.g. CI's per-ISA reruns of the cpu suites.
 */
export function testDevices(): Device[] {
  const d: Device[] = ['cpu', 'emu'];
  if (va.info().cuda.available) d.push('cuda');
  const only = process.env.VISATTN_TEST_DEVICES;
  if (!only) return d;
  const wanted = only.split(',').map((s) => s.trim());
  return d.filter((x) => wanted.includes(x));
}

/** A device other than `d` (to provoke mixed-device errors). */
export function otherDevice(d: Device): Device {
  return d === 'cpu' ? 'emu' : 'cpu';
}

/** A float32 tensor holding an oracle array (its values are float32-exact when made by Rng.arr). */
export function toTensor(a: Arr, device: Device): Tensor {
  return va.tensor(Float32Array.from(a.data), a.shape, { device });
}

/** An int32 tensor of the given shape (values 0, 1, 2, ...). */
export function intTensor(shape: number[], device: Device): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  return va.tensor(Int32Array.from({ length: n }, (_, i) => i), shape, { device, dtype: 'int32' });
}

/** A float32 tensor of the given shape (values from a fixed ramp). */
export function floatTensor(shape: number[], device: Device): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  return va.tensor(Float32Array.from({ length: n }, (_, i) => ((i * 7) % 11) / 11 - 0.5), shape, { device });
}

/** A disposed float32 tensor. */
export function disposedTensor(shape: number[], device: Device): Tensor {
  const t = floatTensor(shape, device);
  t.dispose();
  return t;
}

export function read(t: Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

/**
 * Expects t to have ref's shape and values within rel·max|ref| (+ rel·|ref| per element).
 * Returns the maximum absolute error (for reports).
 */
export function expectTensor(t: Tensor, ref: Arr, label: string, rel = 2e-4): number {
  expect({ label, shape: [...t.shape] }).toEqual({ label, shape: ref.shape });
  const got = read(t);
  const scale = Math.max(maxAbs(ref.data), 1e-6);
  expectClose(got, ref.data, { atol: rel * scale, rtol: rel }, label);
  let m = 0;
  for (let i = 0; i < got.length; i++) m = Math.max(m, Math.abs(got[i] - ref.data[i]));
  return m;
}

/** Runs fn in a va.scope so that every tensor it creates is disposed. */
export function scoped(fn: () => void): void {
  va.scope(fn);
}

// A full garbage collection on demand (jest runs without --expose-gc): allowing the flag at run time
// and reading `gc` from a fresh context is the documented V8 way to obtain it.
let forceGc: (() => void) | undefined;
function fullGc(): void {
  if (!forceGc) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('v8').setFlagsFromString('--expose-gc');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    forceGc = require('vm').runInNewContext('gc') as () => void;
  }
  forceGc();
}

/**
 * Collects the garbage that earlier tests (possibly earlier test files in the same jest worker) left
 * behind and lets its finalizers run, so that a test comparing va.memory() or va.pendingOps() against
 * a baseline does not see a tensor dropped elsewhere being reclaimed in the middle of it.
 */
export async function settleGarbage(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    fullGc();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
