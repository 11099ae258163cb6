// Module and Parameter: training without autograd.
//
// Conventions (ARCHITECTURE.md "Training without autograd"):
// - forward(x) returns a tensor the CALLER owns. In training mode the module keeps what its backward
//   needs (views sharing storage with the inputs, so the caller may dispose its own handles); in eval
//   mode it keeps nothing. A new forward (or dispose(), or eval()) releases the previous cache.
// - backward(dy) uses the cache of the LAST forward, returns dx (caller-owned) and ACCUMULATES the
//   parameter gradients (grad += ∂L/∂param; a null grad starts from zero). It does not consume the
//   cache: calling backward twice accumulates twice. Intermediates it creates are disposed.
// - Containers call their children's backward in the reverse order of the forward.
// - Tensors a module owns (parameters, gradients, cached activations) are removed from any enclosing
//   va.scope(), so modules may be used inside scopes.
// - Parameter names (namedParameters, stateDict) are dotted paths that match timm / PyTorch
//   checkpoints one-to-one (children in registration order, own parameters first).
import { argError, bool, options } from '../errors';
import * as ops from '../ops';
import { stridedCopy, stridesOf } from '../ops/strided';
import { Device, empty, keep as unscope, Tensor } from '../tensor';

export class Parameter {
  /** the local name inside its module ('weight', 'bias', ...) */
  name?: string;
  value: Tensor;
  /** accumulated gradient of the value's shape, or null (no gradient yet / after zeroGrad) */
  grad: Tensor | null = null;
  /**
   * false for a FROZEN parameter (PyTorch's requires_grad = False, e.g. ML-Decoder's query table): it is
   * part of the state dict, its module's backward never accumulates a gradient into it, and an
   * optimizer must skip it.
   */
  readonly requiresGrad: boolean;

  constructor(value: Tensor, name?: string, requiresGrad = true) {
    this.value = unscope(value);
    this.name = name;
    this.requiresGrad = requiresGrad;
  }

  /** grad += g (takes ownership of g: it becomes the grad or is disposed after the add). */
  accumulate(g: Tensor): void {
    if (!this.requiresGrad) {
      g.dispose();
      throw new Error(`Parameter.accumulate: parameter '${this.name ?? ''}' is frozen (requiresGrad false)`);
    }
    const s = this.value.shape;
    if (g.rank !== s.length || !g.shape.every((d, i) => d === s[i])) {
      g.dispose();
      throw argError('Parameter.accumulate', 'g', `shape [${s.join(', ')}] (the parameter's shape)`, g);
    }
    if (this.grad === null) {
      this.grad = unscope(g);
      return;
    }
    const sum = ops.add(this.grad, g);
    this.grad.dispose();
    g.dispose();
    this.grad = unscope(sum);
  }

  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  dispose(): void {
    this.zeroGrad();
    this.value.dispose();
  }
}

export interface LoadStateDictOptions {
  /** every parameter must be present and no other key may be (default true) */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** A deep copy of t on `device` (a fresh storage that nobody else references). */
export function cloneTo(t: Tensor, device: Device): Tensor {
  if (t.device !== device) return t.to(device);
  const out = empty('clone', t.shape, 'float32', device);
  stridedCopy('clone', t, 'x', out, t.shape, stridesOf(t.shape), stridesOf(t.shape));
  return out;
}

export abstract class Module {
  /** training mode (default true): forward keeps what backward needs */
  training = true;
  private readonly ownParams = new Map<string, Parameter>();
  private readonly childModules = new Map<string, Module>();
  private readonly cache: Tensor[] = [];
  private disposedFlag = false;

  /** The forward pass; in training mode keeps what backward needs. */
  abstract forward(x: Tensor): Tensor;
  /** The backward pass of the last forward: returns dx, accumulates parameter gradients. */
  abstract backward(dy: Tensor): Tensor;

  /** The module's class name, for error messages. */
  protected get opName(): string {
    return this.constructor.name;
  }

  protected registerParameter(name: string, value: Tensor, requiresGrad = true): Parameter {
    if (this.ownParams.has(name) || this.childModules.has(name)) throw new Error(`${this.opName}: duplicate member name '${name}'`);
    const p = new Parameter(value, name, requiresGrad);
    this.ownParams.set(name, p);
    return p;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    if (this.ownParams.has(name) || this.childModules.has(name)) throw new Error(`${this.opName}: duplicate member name '${name}'`);
    this.childModules.set(name, m);
    m.training = this.training;
    return m;
  }

  /** Direct children, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.childModules.entries()];
  }

  /** [dotted name, parameter] for every parameter: own parameters first, then children's, in registration order. */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this.ownParams) out.push([prefix + n, p]);
    for (const [n, m] of this.childModules) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Drops every accumulated gradient (grad = null; the next backward starts from zero). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Sets training mode (recursively). Returns this. */
  train(mode = true): this {
    this.training = mode;
    if (!mode) this.clearCache();
    for (const m of this.childModules.values()) m.train(mode);
    return this;
  }

  /** Eval mode: forward keeps nothing, backward is unavailable; cached activations are released. */
  eval(): this {
    return this.train(false);
  }

  /**
   * name → tensor for every parameter, names matching timm's checkpoint keys. The tensors are views
   * sharing storage with the parameters: the caller owns (and should dispose) the views.
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [n, p] of this.namedParameters()) out[n] = p.value.reshape(p.value.shape);
    return out;
  }

  /**
   * Copies values into the parameters (onto each parameter's device). Every key is validated
   * (presence, tensor, float32, shape) before anything is changed. strict (default): missing or
   * unexpected keys are errors. The dict's tensors stay the caller's.
   */
  loadStateDict(dict: Record<string, Tensor>, opts?: LoadStateDictOptions): LoadStateDictResult {
    const op = `${this.opName}.loadStateDict`;
    if (dict === null || typeof dict !== 'object' || Array.isArray(dict)) throw argError(op, 'dict', 'an object mapping names to tensors', dict);
    const o = options(op, opts);
    const strict = bool(op, 'options.strict', o.strict, true);
    const named = this.namedParameters();
    const known = new Set(named.map(([n]) => n));
    const missingKeys = named.map(([n]) => n).filter((n) => !Object.prototype.hasOwnProperty.call(dict, n));
    const unexpectedKeys = Object.keys(dict).filter((k) => !known.has(k));
    if (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0)) {
      const parts: string[] = [];
      if (missingKeys.length > 0) parts.push(`missing keys: ${missingKeys.join(', ')}`);
      if (unexpectedKeys.length > 0) parts.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
      throw new Error(`${op}: the state dict does not match the module's parameters (${parts.join('; ')})`);
    }
    const updates: [Parameter, Tensor][] = [];
    for (const [n, p] of named) {
      if (!Object.prototype.hasOwnProperty.call(dict, n)) continue;
      const t = dict[n];
      const arg = `dict['${n}']`;
      if (!(t instanceof Tensor)) throw argError(op, arg, 'a float32 Tensor', t);
      if (t.disposed) throw argError(op, arg, 'a live tensor', t);
      if (t.dtype !== 'float32') throw argError(op, arg, 'dtype float32', t);
      const s = p.value.shape;
      if (t.rank !== s.length || !t.shape.every((d, i) => d === s[i])) {
        throw argError(op, arg, `shape [${s.join(', ')}] (the shape of parameter '${n}')`, t);
      }
      updates.push([p, t]);
    }
    for (const [p, t] of updates) {
      const fresh = unscope(cloneTo(t, p.value.device));
      p.value.dispose();
      p.value = fresh;
      p.zeroGrad();
    }
    return { missingKeys, unexpectedKeys };
  }

  // ------------------------------------------------------------ activation cache (for subclasses)

  /** Keeps a view of t until the next forward / eval() / dispose(); returns the view. */
  protected keep(t: Tensor): Tensor {
    const v = unscope(t.reshape(t.shape));
    this.cache.push(v);
    return v;
  }

  /** Keeps t itself (the module takes ownership). */
  protected keepOwned(t: Tensor): Tensor {
    this.cache.push(unscope(t));
    return t;
  }

  /** Releases everything kept by this module (not its children). */
  protected clearCache(): void {
    for (const t of this.cache) t.dispose();
    this.cache.length = 0;
  }

  /** Number of tensors this module (and its children) keep for backward. */
  cachedTensors(): number {
    let n = this.cache.length;
    for (const m of this.childModules.values()) n += m.cachedTensors();
    return n;
  }

  /** Call at the start of forward: validates x, releases the previous cache. */
  protected beginForward(x: unknown): Tensor {
    const op = `${this.opName}.forward`;
    this.assertLive(op);
    if (!(x instanceof Tensor)) throw argError(op, 'x', 'a float32 Tensor', x);
    if (x.disposed) throw argError(op, 'x', 'a live tensor', x);
    const first = this.namedParameters()[0];
    if (first && x.device !== first[1].value.device) {
      throw argError(op, 'x', `a tensor on ${first[1].value.device} (the device of the module's parameters)`, x);
    }
    this.clearCache();
    return x;
  }

  /** Call at the start of backward: validates dy and that a training-mode forward happened. */
  protected beginBackward(dy: unknown, hasCache: boolean): Tensor {
    const op = `${this.opName}.backward`;
    this.assertLive(op);
    if (!(dy instanceof Tensor)) throw argError(op, 'dy', 'a float32 Tensor', dy);
    if (dy.disposed) throw argError(op, 'dy', 'a live tensor', dy);
    if (!hasCache) {
      throw new Error(`${op}: no activations from a training-mode forward (call train() and forward(x) before backward(dy))`);
    }
    return dy;
  }

  private assertLive(op: string): void {
    if (this.disposedFlag) throw new Error(`${op}: the module has been disposed`);
  }

  /** Releases parameters, gradients and cached activations (recursively). The module is unusable after. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.clearCache();
    for (const p of this.ownParams.values()) p.dispose();
    for (const m of this.childModules.values()) m.dispose();
    this.disposedFlag = true;
  }

  get disposed(): boolean {
    return this.disposedFlag;
  }

  toString(): string {
    return `${this.opName}(${this.namedParameters().map(([n, p]) => `${n}: [${p.value.shape.join(', ')}]`).join(', ')})`;
  }
}

/** Registers a temporary tensor for disposal and returns it. */
export type Track = <T extends Tensor>(t: T) => T;

/**
 * Runs fn with a tracker for the temporaries of a forward/backward: every tracked tensor is disposed
 * when fn returns or throws; untrack(t) keeps one (e.g. when the module caches it).
 */
export function withTemporaries<R>(fn: (track: Track, untrack: (t: Tensor) => void) => R): R {
  const made: Tensor[] = [];
  const track: Track = (t) => {
    made.push(t);
    return t;
  };
  const untrack = (t: Tensor): void => {
    const i = made.indexOf(t);
    if (i >= 0) made.splice(i, 1);
  };
  try {
    return fn(track, untrack);
  } finally {
    for (const t of made) t.dispose();
  }
}

/** Checks that dy has the shape of the forward output. */
export function expectGradShape(op: string, dy: Tensor, shape: readonly number[]): void {
  if (dy.rank !== shape.length || !dy.shape.every((d, i) => d === shape[i])) {
    throw argError(op, 'dy', `shape [${shape.join(', ')}] (the shape of the forward output)`, dy);
  }
}

/** Derives a child seed from a module seed (undefined stays undefined: automatic seeds). */
export function childSeed(seed: number | undefined, i: number): number | undefined {
  if (seed === undefined) return undefined;
  return (seed * 1000003 + i + 1) % 2 ** 52;
}
