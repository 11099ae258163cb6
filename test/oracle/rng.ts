// Deterministic test data: a seeded PRNG (mulberry32) in TypeScript, independent of va.randn.
import { Arr, sizeOf } from './nd';

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** uniform in [0, 1) */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hiExclusive: number): number {
    return lo + Math.floor(this.next() * (hiExclusive - lo));
  }
  /** standard normal (Box–Muller) */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /**
   * An array of normal(0, std) values (or uniform in [lo, hi)), rounded to float32 so that the
   * device tensor and the float64 oracle see exactly the same inputs.
   */
  arr(shape: readonly number[], opts: { std?: number; lo?: number; hi?: number } = {}): Arr {
    const n = sizeOf(shape);
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      f[i] = opts.lo !== undefined && opts.hi !== undefined ? this.uniform(opts.lo, opts.hi) : (opts.std ?? 1) * this.normal();
    }
    return { data: Float64Array.from(f), shape: shape.slice() };
  }
}
