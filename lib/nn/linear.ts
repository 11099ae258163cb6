// Linear: y = x·Wᵀ + b with W [out, in] (the layout of PyTorch checkpoints), over the last axis of x.
// Init as PyTorch: W and b ~ U(−1/√in, 1/√in) (kaiming_uniform with a = √5 gives the same bound).
import { argError, bool, options } from '../errors';
import * as ops from '../ops';
import { checkDevice, Device, Tensor } from '../tensor';
import { uniform } from './init';
import { expectGradShape, Module, Parameter } from './module';

export interface LinearOptions {
  /** default true */
  bias?: boolean;
  /** default 'cpu' */
  device?: Device;
  /** seed of the initialisation (default: automatic) */
  seed?: number;
}

/** Validates a module's size argument. */
export function sizeArg(op: string, arg: string, v: unknown, min = 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 2 ** 31 - 1) {
    throw argError(op, arg, min === 1 ? 'a positive integer' : `an integer >= ${min}`, v);
  }
  return v;
}

/** Validates the device / seed module options. */
export function moduleOptions(op: string, opts: unknown): { o: Record<string, unknown>; device: Device; seed: number | undefined } {
  const o = options(op, opts);
  const device = checkDevice(op, 'options.device', o.device ?? 'cpu');
  const seed = o.seed;
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER)) {
    throw argError(op, 'options.seed', 'an integer in [0, 2^53)', seed);
  }
  return { o, device, seed: seed as number | undefined };
}

export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private x: Tensor | null = null;

  constructor(inFeatures: number, outFeatures: number, opts?: LinearOptions) {
    super();
    const op = 'Linear';
    this.inFeatures = sizeArg(op, 'inFeatures', inFeatures);
    this.outFeatures = sizeArg(op, 'outFeatures', outFeatures);
    const { o, device, seed } = moduleOptions(op, opts);
    const withBias = bool(op, 'options.bias', o.bias, true);
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter('weight', uniform([outFeatures, inFeatures], bound, device, seed, 0));
    this.bias = withBias ? this.registerParameter('bias', uniform([outFeatures], bound, device, seed, 1)) : null;
  }

  forward(xIn: Tensor): Tensor {
    const x = this.beginForward(xIn);
    this.x = null;
    const y = ops.linear(x, this.weight.value, this.bias?.value ?? null);
    if (this.training) this.x = this.keep(x);
    return y;
  }

  backward(dyIn: Tensor): Tensor {
    const x = this.x;
    const dy = this.beginBackward(dyIn, x !== null && !x.disposed);
    expectGradShape(`${this.opName}.backward`, dy, [...x!.shape.slice(0, -1), this.outFeatures]);
    const g = ops.linearBackward(x!, this.weight.value, dy, { bias: this.bias !== null });
    this.weight.accumulate(g.dW);
    if (this.bias) this.bias.accumulate(g.dBias!);
    return g.dX;
  }

  protected override clearCache(): void {
    super.clearCache();
    this.x = null;
  }
}
