// softmax / logSoftmax over the last axis, forward and backward, against the oracle.
import * as va from '../lib';
import {
  disposedTensor, expectClose, expectTensor, floatTensor, gradcheck, intTensor, otherDevice, read, Rng, scoped, testDevices,
  toTensor,
} from './helpers';
import { softmaxBackwardRef, softmaxRef } from './oracle/softmax';

const KINDS = [
  { name: 'softmax', log: false, f: va.ops.softmax, b: va.ops.softmaxBackward },
  { name: 'logSoftmax', log: true, f: va.ops.logSoftmax, b: va.ops.logSoftmaxBackward },
];

describe('softmax oracle', () => {
  it.each(KINDS.map((k) => [k.name, k.log]))('%s backward matches finite differences', (name, log) => {
    const x = new Rng(5).arr([3, 6], { std: 2 });
    gradcheck(String(name), ([a]) => softmaxRef(a, log as boolean), ([a], d) => [softmaxBackwardRef(a, d, log as boolean).dX], [x]);
  });
});

describe.each(testDevices())('softmax ops on %s', (device) => {
  const shapes: number[][] = [[1], [5], [1, 1], [3, 1], [4, 7], [2, 3, 33], [2, 129], [1, 1024], [3, 1031]];
  for (const k of KINDS) {
    it.each(shapes.map((s) => [s]))(`${k.name} forward and backward, shape %j`, (shape) => scoped(() => {
      const rng = new Rng(shape.reduce((p, d) => p * 3 + d, 1));
      const x = rng.arr(shape, { std: 3 });
      const d = rng.arr(shape);
      const tx = toTensor(x, device);
      expectTensor(k.f(tx), softmaxRef(x, k.log), `${k.name} ${device}`, 1e-5);
      expectTensor(k.b(tx, toTensor(d, device)).dX, softmaxBackwardRef(x, d, k.log).dX, `${k.name}Backward ${device}`, 1e-5);
    }));
    it(`${k.name} is stable for large logits`, () => scoped(() => {
      const x = { data: Float64Array.from([1000, 999, -1000, 0, 80, 88]), shape: [2, 3] };
      const out = k.f(toTensor(x, device));
      expectTensor(out, softmaxRef(x, k.log), `${k.name} large ${device}`, 1e-5);
    }));
    it(`${k.name} keeps its precision for logits with large offsets (2e4, -3e4)`, () => scoped(() => {
      // Rows of offset + N(0, 3) (float32-exact). The tolerance is relative to the spread of the
      // OUTPUT values (≈ 20 for logSoftmax), not to the inputs' magnitude: forming the log-sum-exp
      // m + log Σ in float32 first (ulp(2e4) ≈ 2e-3) is off by ~1e-3 and must fail.
      const rng = new Rng(77);
      const C = 37;
      const offsets = [2e4, 2e4, 2e4, 2e4, -3e4, -3e4, -3e4, -3e4, 1.7e4, -2.1e4];
      const data = new Float64Array(offsets.length * C);
      offsets.forEach((o, r) => {
        for (let c = 0; c < C; c++) data[r * C + c] = Math.fround(o + 3 * rng.normal());
      });
      const x = { data, shape: [offsets.length, C] };
      const ref = softmaxRef(x, k.log);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of ref.data) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      const spread = hi - lo;
      expect(spread).toBeGreaterThan(k.log ? 5 : 0.1);
      const got = read(k.f(toTensor(x, device)));
      expectClose(got, ref.data, { atol: 2e-6 * spread, rtol: 1e-6 }, `${k.name} offset logits ${device}`);
    }));
  }
  it('empty tensors give empty results', () => scoped(() => {
    expect(va.ops.softmax(va.zeros([0, 4], { device })).shape).toEqual([0, 4]);
    expect(va.ops.logSoftmaxBackward(va.zeros([2, 0], { device }), va.zeros([2, 0], { device })).dX.shape).toEqual([2, 0]);
  }));
  it.each(KINDS.map((k) => [k.name, k]))('%s rejects bad inputs', (name, k) => scoped(() => {
    const f = k.f as (...a: unknown[]) => unknown;
    const b = k.b as (...a: unknown[]) => unknown;
    const x = floatTensor([2, 3], device);
    expect(() => f(floatTensor([], device))).toThrow(new RegExp(`^${name}: argument 'x' expected a tensor of rank >= 1`));
    expect(() => f(intTensor([2, 3], device))).toThrow(new RegExp(`^${name}: argument 'x' expected dtype float32`));
    expect(() => f(disposedTensor([2, 3], device))).toThrow(new RegExp(`^${name}: argument 'x' expected a live tensor`));
    expect(() => f(null)).toThrow(new RegExp(`^${name}: argument 'x' expected a float32 Tensor, received null`));
    expect(() => b(x, floatTensor([2, 4], device))).toThrow(new RegExp(`^${name}Backward: argument 'dOut' expected shape \\[2, 3\\]`));
    expect(() => b(x, floatTensor([2, 3], otherDevice(device)))).toThrow(new RegExp(`^${name}Backward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => b(x, disposedTensor([2, 3], device))).toThrow(new RegExp(`^${name}Backward: argument 'dOut' expected a live tensor`));
  }));
});
