// Self-tests of the test tooling (no addon needed): expectClose, gradcheck and the seeded PRNG.
import { expectClose, gradcheck } from './oracle/gradcheck';
import { Arr } from './oracle/nd';
import { Rng } from './oracle/rng';

describe('expectClose', () => {
  it('accepts values within atol + rtol·|ref|', () => {
    expect(() => expectClose(Float32Array.from([1, 2.0001, -3]), [1, 2, -3], { atol: 1e-4, rtol: 1e-5 }, 'ok')).not.toThrow();
  });
  it('reports the worst index, the values and the count', () => {
    expect(() => expectClose([1, 2.5, 3.01], [1, 2, 3], { atol: 0.02, rtol: 0 }, 'lbl')).toThrow(
      /^lbl: 1\/3 elements out of tolerance .*worst at index 1: actual 2\.5, expected 2/,
    );
  });
  it('fails on NaN, Infinity and length mismatches', () => {
    expect(() => expectClose([NaN], [0], { atol: 1, rtol: 1 }, 'nan')).toThrow(/nan: 1\/1 .*actual NaN/);
    expect(() => expectClose([Infinity], [Infinity], { atol: 1, rtol: 1 }, 'inf')).toThrow(/inf: 1\/1/);
    expect(() => expectClose([1, 2], [1], { atol: 1, rtol: 1 }, 'len')).toThrow(/len: length 2, expected 1/);
  });
});

describe('gradcheck', () => {
  const square = ([x]: Arr[]): Arr => ({ data: x.data.map((v) => v * v), shape: x.shape });
  it('accepts a correct gradient', () => {
    const x = new Rng(1).arr([4, 3]);
    gradcheck('square', square, ([a], d) => [{ data: a.data.map((v, i) => 2 * v * d.data[i]), shape: a.shape }], [x]);
  });
  it('rejects a gradient that is 1% off', () => {
    const x = new Rng(1).arr([4, 3]);
    expect(() =>
      gradcheck('square', square, ([a], d) => [{ data: a.data.map((v, i) => 2.02 * v * d.data[i]), shape: a.shape }], [x]),
    ).toThrow(/square: gradient of input 0 vs finite differences/);
  });
});

describe('Rng', () => {
  it('is deterministic and float32-exact', () => {
    const a = new Rng(7).arr([5]);
    const b = new Rng(7).arr([5]);
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    expect(Array.from(a.data)).toEqual(Array.from(Float32Array.from(a.data)));
    expect(Array.from(new Rng(8).arr([5]).data)).not.toEqual(Array.from(a.data));
  });
});
