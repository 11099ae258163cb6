// Parameter initialisers (PyTorch's defaults), from the counter-based generator: the same numbers on
// every device for a given seed.
import * as ops from '../ops';
import { Device, ones, rand, randn, Tensor, tensor, zeros } from '../tensor';

/** U(−bound, bound) of the given shape. */
export function uniform(shape: readonly number[], bound: number, device: Device, seed?: number, offset = 0): Tensor {
  const u = rand(shape, { device, seed, offset });
  const out = ops.affine(u, 2 * bound, -bound);
  u.dispose();
  return out;
}

export function constant(shape: readonly number[], value: 0 | 1, device: Device): Tensor {
  return value === 0 ? zeros(shape, { device }) : ones(shape, { device });
}

/**
 * N(0, std²) truncated to [a, b] in ABSOLUTE units (timm's trunc_normal_ defaults a = −2, b = 2, which
 * only bite when std is not small): draws from the counter-based generator, out-of-range draws replaced by
 * the next in-range ones of a second stream. Same numbers on every device for a given seed.
 */
export function truncNormal(
  shape: readonly number[], std: number, device: Device, seed?: number, offset = 0, a = -2, b = 2,
): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const first = randn([n], { seed, offset, std });
  const vals = first.dataSync() as Float32Array;
  first.dispose();
  const bad: number[] = [];
  vals.forEach((x, i) => {
    if (!(x >= a && x <= b)) bad.push(i);
  });
  for (let round = 0, stream = 1; bad.length > 0; round++, stream++) {
    if (round > 64) throw new Error(`truncNormal: could not draw values in [${a}, ${b}] with std ${std}`);
    const more = randn([Math.max(16, 4 * bad.length)], { seed: seed === undefined ? undefined : seed, offset: offset + stream * 2 ** 20, std });
    const extra = more.dataSync() as Float32Array;
    more.dispose();
    let e = 0;
    while (bad.length > 0 && e < extra.length) {
      const x = extra[e++];
      if (x >= a && x <= b) vals[bad.pop()!] = x;
    }
  }
  return tensor(vals, shape, { device });
}
