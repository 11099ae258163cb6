// relu / gelu / silu forward and backward on every device against the float64 oracle.
import * as va from '../lib';
import {
  disposedTensor, expectTensor, floatTensor, gradcheck, intTensor, otherDevice, Rng, scoped, testDevices, toTensor,
} from './helpers';
import { activationBackwardRef, activationRef, ActivationName, erf } from './oracle/activation';
import { Arr } from './oracle/nd';

const NAMES: ActivationName[] = ['relu', 'gelu', 'silu'];
const fwd = { relu: va.ops.relu, gelu: va.ops.gelu, silu: va.ops.silu };
const bwd = { relu: va.ops.reluBackward, gelu: va.ops.geluBackward, silu: va.ops.siluBackward };

/** Inputs away from relu's kink at 0 (finite differences straddle it otherwise). */
function awayFromZero(a: Arr): Arr {
  return { data: a.data.map((v) => (Math.abs(v) < 0.05 ? v + 0.1 * Math.sign(v || 1) : v)), shape: a.shape };
}

describe('activation oracle', () => {
  it('erf matches known values', () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 14);
    expect(erf(-2)).toBeCloseTo(-0.9953222650189527, 14);
    expect(erf(3.5)).toBeCloseTo(0.9999992569016276, 14);
  });
  it.each(NAMES)('%s backward matches finite differences', (name) => {
    const x = awayFromZero(new Rng(1).arr([3, 7], { std: 2 }));
    gradcheck(name, ([a]) => activationRef(name, a), ([a], d) => [activationBackwardRef(name, a, d).dX], [x]);
  });
});

describe.each(testDevices())('activation ops on %s', (device) => {
  const shapes: number[][] = [[1], [7], [3, 5], [2, 3, 17], [1, 1, 1, 1], [4, 257]];
  for (const name of NAMES) {
    it.each(shapes.map((s) => [s]))(`${name} forward and backward, shape %j`, (shape) => scoped(() => {
      const rng = new Rng(shape.length * 100 + shape[shape.length - 1]);
      const x = rng.arr(shape, { std: 3 });
      const d = rng.arr(shape);
      // Exact zeros and large magnitudes (relu'(0) = 0; saturation of gelu and silu).
      x.data[0] = 0;
      if (x.data.length > 2) {
        x.data[1] = 12;
        x.data[2] = -12;
      }
      const tx = toTensor(x, device);
      expectTensor(fwd[name](tx), activationRef(name, x), `${name} ${device}`, 1e-5);
      expectTensor(bwd[name](tx, toTensor(d, device)).dX, activationBackwardRef(name, x, d).dX, `${name}Backward ${device}`, 1e-5);
    }));
  }
  it('handles empty tensors', () => scoped(() => {
    const x = va.zeros([0, 3], { device });
    expect(va.ops.gelu(x).shape).toEqual([0, 3]);
    expect(va.ops.siluBackward(x, x).dX.shape).toEqual([0, 3]);
  }));

  it.each(NAMES)('%s rejects bad inputs', (name) => scoped(() => {
    const x = floatTensor([2, 3], device);
    const f = fwd[name] as (x: unknown) => unknown;
    const b = bwd[name] as (x: unknown, d: unknown) => unknown;
    expect(() => f(intTensor([2, 3], device))).toThrow(new RegExp(`^${name}: argument 'x' expected dtype float32`));
    expect(() => f([1, 2])).toThrow(new RegExp(`^${name}: argument 'x' expected a float32 Tensor`));
    expect(() => f(disposedTensor([2], device))).toThrow(new RegExp(`^${name}: argument 'x' expected a live tensor.*disposed`));
    expect(() => b(x, floatTensor([3, 2], device))).toThrow(new RegExp(`^${name}Backward: argument 'dOut' expected shape \\[2, 3\\]`));
    expect(() => b(x, floatTensor([2, 3], otherDevice(device)))).toThrow(new RegExp(`^${name}Backward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => b(disposedTensor([2, 3], device), x)).toThrow(new RegExp(`^${name}Backward: argument 'x' expected a live tensor`));
    expect(() => b(x, intTensor([2, 3], device))).toThrow(new RegExp(`^${name}Backward: argument 'dOut' expected dtype float32`));
  }));
});
