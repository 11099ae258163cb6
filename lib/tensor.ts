// Tensor, creation, device moves, readback, dispose/scope and memory accounting.
// A Tensor is a shape + dtype + device over a native storage handle. reshape() makes a view that
// shares the storage (native reference count); the allocation is freed (stream-ordered) when the last
// view is disposed. Ops enqueue work and return tensors at once; only readback and synchronize wait.
import { argError, bool, describe, finiteNumber, isInt, options } from './errors';
import { native, NativeStorage } from './native';

export type Device = 'cpu' | 'emu' | 'cuda';
export type DType = 'float32' | 'int32';
export type TypedArrayOf<D extends DType> = D extends 'int32' ? Int32Array : Float32Array;

export const DEVICES: readonly Device[] = ['cpu', 'emu', 'cuda'];
const DEVICE_INDEX: Record<Device, number> = { cpu: 0, emu: 1, cuda: 2 };

export interface CreateOptions {
  device?: Device;
  dtype?: DType;
}

// ---------------------------------------------------------------- leak accounting and scopes
let leakedTensors = 0;
const liveTensors: Record<Device, number> = { cpu: 0, emu: 0, cuda: 0 };
const leakRegistry = new FinalizationRegistry<Device>((device) => {
  leakedTensors += 1;
  liveTensors[device] -= 1;
});
const scopeStack: Set<Tensor>[] = [];

export function deviceIndex(device: Device): number {
  return DEVICE_INDEX[device];
}

export function checkDevice(op: string, arg: string, v: unknown): Device {
  if (v !== 'cpu' && v !== 'emu' && v !== 'cuda') throw argError(op, arg, "one of 'cpu', 'emu', 'cuda'", v);
  const err = native.initDevice(DEVICE_INDEX[v]);
  if (typeof err === 'string') throw argError(op, arg, 'an available device', `'${v}' (${err})`, true);
  return v;
}

function checkDtype(op: string, v: unknown, dflt: DType): DType {
  if (v === undefined) return dflt;
  if (v !== 'float32' && v !== 'int32') throw argError(op, 'dtype', "'float32' or 'int32'", v);
  return v;
}

export function checkShape(op: string, arg: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => isInt(d) && d >= 0)) {
    throw argError(op, arg, 'an array of non-negative integers', shape);
  }
  if (shape.length > 8) throw argError(op, arg, 'at most 8 dimensions', shape);
  return shape.slice();
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  readonly size: number;
  #handle: NativeStorage | null;

  /** @internal Use the creation functions (tensor, zeros, ...) or ops. */
  constructor(handle: NativeStorage, shape: readonly number[], dtype: DType, device: Device) {
    this.#handle = handle;
    this.shape = Object.freeze(shape.slice());
    this.dtype = dtype;
    this.device = device;
    this.size = sizeOf(shape);
    liveTensors[device] += 1;
    leakRegistry.register(this, device, this);
    if (scopeStack.length > 0) scopeStack[scopeStack.length - 1].add(this);
    Object.freeze(this); // shape/dtype/device/size cannot be changed from JS (the native side also bounds-checks)
  }

  get rank(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this.#handle === null;
  }
  get byteLength(): number {
    return this.size * 4;
  }

  /** @internal The native storage, or a clear error naming the op and argument if disposed. */
  storage(op: string, arg: string): NativeStorage {
    if (this.#handle === null) throw argError(op, arg, 'a live tensor', this);
    return this.#handle;
  }

  /** A view with another shape over the same storage (one dimension may be -1). */
  reshape(shape: readonly number[]): Tensor {
    const op = 'reshape';
    const h = this.storage(op, 'this');
    if (!Array.isArray(shape) || !shape.every((d) => isInt(d) && d >= -1)) {
      throw argError(op, 'shape', 'an array of non-negative integers (one may be -1)', shape);
    }
    const infer = shape.filter((d) => d === -1).length;
    if (infer > 1) throw argError(op, 'shape', 'at most one -1', shape);
    let s = shape.slice();
    if (infer === 1) {
      const known = sizeOf(s.filter((d) => d !== -1));
      if (known === 0 || this.size % known !== 0) {
        throw argError(op, 'shape', `a shape with ${this.size} elements`, shape);
      }
      s = s.map((d) => (d === -1 ? this.size / known : d));
    }
    checkShape(op, 'shape', s);
    if (sizeOf(s) !== this.size) {
      throw argError(op, 'shape', `a shape with ${this.size} elements (the size of [${this.shape.join(', ')}])`, shape);
    }
    const view = native.retain(h);
    if (typeof view === 'string') throw new Error(`${op}: ${view}`);
    return new Tensor(view, s, this.dtype, this.device);
  }

  /**
   * A copy on another device (a view when already there). It returns at once: the source device
   * reads the data back after the work queued before this call, and the destination's stream waits
   * for it before running anything queued after. A failure on the source surfaces on the
   * destination's next readback or synchronize.
   */
  to(device: Device): Tensor {
    const op = 'to';
    const h = this.storage(op, 'this');
    checkDevice(op, 'device', device);
    if (device === this.device) return this.reshape(this.shape);
    const out = empty(op, this.shape, this.dtype, device);
    if (this.size > 0) {
      const r = native.transfer(h, out.storage(op, 'out'));
      if (typeof r === 'string') {
        out.dispose();
        throw new Error(`${op}: ${r}`);
      }
    }
    return out;
  }

  /** Resolves with a fresh flat row-major copy once every queued op on the device has finished. */
  async data(): Promise<TypedArrayOf<DType>> {
    const h = this.storage('data', 'this');
    const r = await native.download(h, this.byteLength);
    if (typeof r === 'string') throw new Error(`data: ${this.device} device error: ${r}`);
    return this.dtype === 'int32' ? new Int32Array(r) : new Float32Array(r);
  }

  /** Blocking readback (for scripts and worker threads). */
  dataSync(): TypedArrayOf<DType> {
    const h = this.storage('dataSync', 'this');
    const r = native.downloadSync(h, this.byteLength);
    if (typeof r === 'string') throw new Error(`dataSync: ${this.device} device error: ${r}`);
    return this.dtype === 'int32' ? new Int32Array(r) : new Float32Array(r);
  }

  /** Releases this view; the storage is freed when its last view is released. Idempotent. */
  dispose(): void {
    if (this.#handle === null) return;
    native.release(this.#handle);
    this.#handle = null;
    liveTensors[this.device] -= 1;
    leakRegistry.unregister(this);
    for (const s of scopeStack) s.delete(this);
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device}${this.disposed ? ', disposed' : ''})`;
  }
}

/** @internal Allocates an uninitialised tensor (contents are garbage — NaN poison on emu). */
export function empty(op: string, shape: readonly number[], dtype: DType, device: Device): Tensor {
  const bytes = Math.max(4, sizeOf(shape) * 4);
  const h = native.alloc(DEVICE_INDEX[device], bytes);
  if (typeof h === 'string') throw new Error(`${op}: ${h}`);
  return new Tensor(h, shape, dtype, device);
}

function fromTyped(op: string, data: Float32Array | Int32Array, shape: readonly number[], dtype: DType, device: Device): Tensor {
  const t = empty(op, shape, dtype, device);
  if (data.length > 0) {
    const r = native.upload(t.storage(op, 'out'), data);
    if (typeof r === 'string') {
      t.dispose();
      throw new Error(`${op}: ${r}`);
    }
  }
  return t;
}

function creationOptions(op: string, opts: unknown): { device: Device; dtype: DType | undefined; o: Record<string, unknown> } {
  const o = options(op, opts);
  const device = checkDevice(op, 'options.device', o.device ?? 'cpu');
  const dtype = o.dtype === undefined ? undefined : checkDtype(op, o.dtype, 'float32');
  return { device, dtype, o };
}

/** A tensor holding a COPY of `values` (number[] or a typed array), row-major. */
export function tensor(values: ArrayLike<number>, shape?: readonly number[], opts?: CreateOptions): Tensor {
  const op = 'tensor';
  const { device, dtype: dt } = creationOptions(op, opts);
  const isTyped = ArrayBuffer.isView(values) && !(values instanceof DataView);
  if (!Array.isArray(values) && !isTyped) throw argError(op, 'values', 'a number[] or a typed array', values);
  const dtype: DType = dt ?? (values instanceof Int32Array ? 'int32' : 'float32');
  const s = shape === undefined ? [values.length] : checkShape(op, 'shape', shape);
  if (sizeOf(s) !== values.length) {
    throw argError(op, 'values', `${sizeOf(s)} values for shape [${s.join(', ')}]`, `${values.length} values`, true);
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || (dtype === 'int32' && !(Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX))) {
      throw argError(op, `values[${i}]`, dtype === 'int32' ? 'an integer in the int32 range' : 'a number', v);
    }
  }
  const data = dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values);
  return fromTyped(op, data, s, dtype, device);
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const FLOAT32_MAX = 3.4028234663852886e38;

function filled(op: string, shape: readonly number[], opts: unknown, value: number): Tensor {
  const { device, dtype } = creationOptions(op, opts);
  const s = checkShape(op, 'shape', shape);
  const dt = dtype ?? 'float32';
  if (dt === 'int32' && !(Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX)) {
    throw argError(op, 'value', 'an integer in the int32 range (dtype int32)', value);
  }
  if (dt === 'float32' && Number.isFinite(value) && Math.abs(value) > FLOAT32_MAX) {
    throw argError(op, 'value', 'a value representable in float32 (|value| <= 3.4e38) or ±Infinity', value);
  }
  const t = empty(op, s, dt, device);
  if (t.size > 0) {
    const bits = dt === 'int32' ? value >>> 0 : new Uint32Array(new Float32Array([value]).buffer)[0];
    const r = native.fill(t.storage(op, 'out'), t.size, bits);
    if (typeof r === 'string') throw new Error(`${op}: ${r}`);
  }
  return t;
}

export function zeros(shape: readonly number[], opts?: CreateOptions): Tensor {
  return filled('zeros', shape, opts, 0);
}
export function ones(shape: readonly number[], opts?: CreateOptions): Tensor {
  return filled('ones', shape, opts, 1);
}
/** A tensor filled with `value` (±Infinity allowed for float32, e.g. attention masks; NaN is not). */
export function full(shape: readonly number[], value: number, opts?: CreateOptions): Tensor {
  if (typeof value !== 'number' || Number.isNaN(value)) throw argError('full', 'value', 'a number (not NaN)', value);
  return filled('full', shape, opts, value);
}

export interface RandomOptions {
  device?: Device;
  seed?: number;
  /** Stream offset (counter high word); distinct offsets give independent streams for one seed. */
  offset?: number;
  mean?: number;
  std?: number;
}

let autoSeed = 0x5eed;
function randomTensor(op: string, shape: readonly number[], opts: unknown, kind: 0 | 1): Tensor {
  const { device, o } = creationOptions(op, opts);
  if (o.dtype !== undefined && o.dtype !== 'float32') throw argError(op, 'options.dtype', "'float32'", o.dtype);
  const s = checkShape(op, 'shape', shape);
  const seed = o.seed === undefined ? autoSeed++ : o.seed;
  if (!isInt(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw argError(op, 'options.seed', 'an integer in [0, 2^53)', seed);
  }
  const offset = o.offset === undefined ? 0 : o.offset;
  if (!isInt(offset) || offset < 0 || offset > Number.MAX_SAFE_INTEGER) {
    throw argError(op, 'options.offset', 'an integer in [0, 2^53)', offset);
  }
  const mean = finiteNumber(op, 'options.mean', o.mean, kind === 0 ? 0 : 0);
  const std = finiteNumber(op, 'options.std', o.std, 1);
  const t = empty(op, s, 'float32', device);
  if (t.size > 0) {
    const r = native.random(t.storage(op, 'out'), t.size, seed, offset, kind, mean, std);
    if (typeof r === 'string') throw new Error(`${op}: ${r}`);
  }
  return t;
}

/** Standard normal (·std + mean) from the counter-based generator: the same numbers on every device. */
export function randn(shape: readonly number[], opts?: RandomOptions): Tensor {
  return randomTensor('randn', shape, opts, 0);
}
/** Uniform in [0, 1) from the counter-based generator: the same numbers on every device. */
export function rand(shape: readonly number[], opts?: RandomOptions): Tensor {
  return randomTensor('rand', shape, opts, 1);
}

// ---------------------------------------------------------------- synchronisation, scope, memory

function activeDevices(): Device[] {
  return native.memory().map((m) => m.device);
}

/** Resolves when all work queued on the device (or on every device in use) has finished. */
export async function synchronize(device?: Device): Promise<void> {
  const devices = device === undefined ? activeDevices() : [checkDevice('synchronize', 'device', device)];
  for (const d of devices) {
    const r = await native.synchronize(DEVICE_INDEX[d]);
    if (typeof r === 'string') throw new Error(`synchronize: ${d} device error: ${r}`);
  }
}

/** Blocking variant of synchronize (scripts, worker threads). */
export function synchronizeSync(device?: Device): void {
  const devices = device === undefined ? activeDevices() : [checkDevice('synchronizeSync', 'device', device)];
  for (const d of devices) {
    const r = native.synchronizeSync(DEVICE_INDEX[d]);
    if (typeof r === 'string') throw new Error(`synchronizeSync: ${d} device error: ${r}`);
  }
}

/** Number of operations queued on a device that have not finished (0 for an unused device). */
export function pendingOps(device: Device): number {
  if (device !== 'cpu' && device !== 'emu' && device !== 'cuda') {
    throw argError('pendingOps', 'device', "one of 'cpu', 'emu', 'cuda'", device);
  }
  return native.pending(DEVICE_INDEX[device]);
}

// Finds the tensors reachable from a scope's result: through arrays, Maps, Sets and the own
// enumerable properties of any object (plain or class instance), cycle-safe.
function collectTensors(v: unknown, out: Set<Tensor>, seen = new Set<object>()): void {
  if (v === null || typeof v !== 'object' || seen.has(v)) return;
  seen.add(v);
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (ArrayBuffer.isView(v)) return;
  const values = Array.isArray(v) ? v : v instanceof Map || v instanceof Set ? [...v.values()] : Object.values(v as object);
  for (const x of values) collectTensors(x, out, seen);
}

/**
 * Runs fn and disposes every tensor it created that is not part of its (synchronous) result.
 * Returned tensors (also inside arrays, Maps, Sets and objects, at any depth) move to the enclosing scope.
 */
export function scope<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw argError('scope', 'fn', 'a function', fn);
  const mine = new Set<Tensor>();
  scopeStack.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopeStack.pop();
    for (const t of mine) t.dispose();
    throw e;
  }
  scopeStack.pop();
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    for (const t of mine) t.dispose();
    throw argError('scope', 'fn', 'a synchronous function (tensors cannot be tracked across await)', 'a function returning a Promise', true);
  }
  const keep = new Set<Tensor>();
  collectTensors(result, keep);
  for (const t of mine) if (!keep.has(t)) t.dispose();
  if (scopeStack.length > 0) for (const t of keep) if (mine.has(t)) scopeStack[scopeStack.length - 1].add(t);
  return result;
}

/** Removes tensors from the enclosing scopes so that scope() does not dispose them. */
export function keep<T extends Tensor | Tensor[]>(t: T): T {
  const list = Array.isArray(t) ? t : [t];
  for (const x of list) for (const s of scopeStack) s.delete(x);
  return t;
}

export interface DeviceMemory {
  /** live Tensor objects (views count separately) */
  tensors: number;
  /** unique live storages and their bytes */
  storages: number;
  bytes: number;
  /** allocator view: bytes handed out, and handed out + cached for reuse */
  allocatedBytes: number;
  reservedBytes: number;
}
export interface MemoryInfo {
  cpu: DeviceMemory;
  emu: DeviceMemory;
  cuda: DeviceMemory;
  /** tensors garbage-collected without dispose() (their memory was reclaimed by the safety net) */
  leakedTensors: number;
}

export function memory(): MemoryInfo {
  const blank = (d: Device): DeviceMemory => ({ tensors: liveTensors[d], storages: 0, bytes: 0, allocatedBytes: 0, reservedBytes: 0 });
  const out: MemoryInfo = { cpu: blank('cpu'), emu: blank('emu'), cuda: blank('cuda'), leakedTensors };
  for (const m of native.memory()) {
    Object.assign(out[m.device], { storages: m.storages, bytes: m.bytes, allocatedBytes: m.allocatedBytes, reservedBytes: m.reservedBytes });
  }
  return out;
}

export function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}

export { describe, bool };

/** Testing hooks (not part of the stable API). */
export const testing = {
  /** Enqueues an op that fails asynchronously: the next readback/synchronize on the device throws. */
  injectFault(device: Device): void {
    checkDevice('testing.injectFault', 'device', device);
    const r = native.injectFault(DEVICE_INDEX[device]);
    if (typeof r === 'string') throw new Error(`testing.injectFault: ${r}`);
  },
  /** Runs an emulator self-test kernel (cuda/selftest) on 'emu' or 'cuda'; resolves its output. */
  selfTest(device: Device, name: string): Float32Array {
    if (device !== 'emu' && device !== 'cuda') throw argError('testing.selfTest', 'device', "'emu' or 'cuda'", device);
    if (typeof name !== 'string') throw argError('testing.selfTest', 'name', 'a string', name);
    checkDevice('testing.selfTest', 'device', device);
    const r = native.selfTest(DEVICE_INDEX[device], name);
    if (typeof r === 'string') throw new Error(`testing.selfTest: ${r}`);
    return r;
  },
};
