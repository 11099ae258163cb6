// Parameter initialisers (PyTorch's defaults), from the counter-based generator: the same numbers on
// every device for a given seed.
import * as ops from '../ops';
import { Device, ones, rand, Tensor, zeros } from '../tensor';

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
