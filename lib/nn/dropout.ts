// Dropout (PyTorch nn.Dropout(p)): in training mode out = x·mask/(1 − p), the mask drawn from the
// counter-based generator (the same on every device) keyed by (seed, offset); each training forward
// uses the next offset, and backward regenerates that forward's mask. Eval mode: the identity.
// reseed(seed) restarts the stream (for reproducible runs and finite-difference checks).
import { argError, finiteNumber, options } from '../errors';
import * as ops from '../ops';
import { Tensor } from '../tensor';
import { expectGradShape, Module } from './module';

let autoDropoutSeed = 0xd50;

export interface DropoutOptions {
  /** seed of the mask stream (default: automatic) */
  seed?: number;
}

export class Dropout extends Module {
  readonly p: number;
  private seed: number;
  private nextOffset = 0;
  /** the (offset, shape) of the last training forward, for backward */
  private last: { offset: number; shape: number[] } | null = null;

  constructor(p = 0.5, opts?: DropoutOptions) {
    super();
    const op = 'Dropout';
    this.p = finiteNumber(op, 'p', p);
    if (!(this.p >= 0 && this.p < 1)) throw argError(op, 'p', 'a probability in [0, 1)', p);
    const o = options(op, opts);
    this.seed = o.seed === undefined ? autoDropoutSeed++ : Dropout.checkSeed(op, o.seed);
  }

  private static checkSeed(op: string, seed: unknown): number {
    if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
      throw argError(op, 'seed', 'an integer in [0, 2^53)', seed);
    }
    return seed;
  }

  /** Restarts the mask stream: the next training forward draws the same mask as the first after construction with this seed. */
  reseed(seed: number): void {
    this.seed = Dropout.checkSeed(`${this.opName}.reseed`, seed);
    this.nextOffset = 0;
  }

  /** The (seed, offset) the next training forward will use. */
  nextMask(): { seed: number; offset: number } {
    return { seed: this.seed, offset: this.nextOffset };
  }

  forward(xIn: Tensor): Tensor {
    const x = this.beginForward(xIn);
    this.last = null;
    if (!this.training || this.p === 0) {
      if (this.training) this.last = { offset: -1, shape: [...x.shape] };
      return x.reshape(x.shape);
    }
    const offset = this.nextOffset++;
    const y = ops.dropout(x, { p: this.p, seed: this.seed, offset });
    this.last = { offset, shape: [...x.shape] };
    return y;
  }

  backward(dyIn: Tensor): Tensor {
    const last = this.last;
    const dy = this.beginBackward(dyIn, last !== null);
    expectGradShape(`${this.opName}.backward`, dy, last!.shape);
    if (last!.offset < 0) return dy.reshape(dy.shape);
    return ops.dropoutBackward(dy, { p: this.p, seed: this.seed, offset: last!.offset }).dX;
  }

  protected override clearCache(): void {
    super.clearCache();
    this.last = null;
  }
}
