// sum / mean over one axis or every element (keepDims or not), forward and backward, against the oracle.
import * as va from '../lib';
import {
  disposedTensor, expectTensor, floatTensor, gradcheck, intTensor, otherDevice, Rng, scoped, testDevices, toTensor,
} from './helpers';
import { reduceBackwardRef, reduceRef, ReduceRefOptions } from './oracle/reduce';

const KINDS = [
  { name: 'sum', mean: false, f: va.ops.sum, b: va.ops.sumBackward },
  { name: 'mean', mean: true, f: va.ops.mean, b: va.ops.meanBackward },
];

const CASES: [number[], ReduceRefOptions][] = [
  [[7], { axis: 0 }],
  [[7], {}],
  [[4, 5], { axis: 0 }],
  [[4, 5], { axis: 1, keepDims: true }],
  [[4, 5], { axis: -1 }],
  [[2, 3, 5], { axis: 1 }],
  [[2, 3, 5], { axis: 1, keepDims: true }],
  [[2, 3, 5], {}],
  [[2, 3, 5], { keepDims: true }],
  [[3, 1, 4], { axis: 1 }],
  [[1, 1], { axis: 0 }],
  [[2, 1031], { axis: -1 }],
  [[1031, 3], { axis: 0 }],
  [[2, 3, 2, 5], { axis: 2, keepDims: true }],
];

describe('reduce oracle', () => {
  it.each(KINDS.map((k) => [k.name, k.mean]))('%s backward matches finite differences', (name, mean) => {
    for (const [shape, o] of CASES.slice(0, 9)) {
      const x = new Rng(7).arr(shape);
      gradcheck(`${name} ${JSON.stringify(o)}`, ([a]) => reduceRef(a, o, mean as boolean),
        ([a], d) => [reduceBackwardRef(a, d, o, mean as boolean).dX], [x]);
    }
  });
});

describe.each(testDevices())('reduce ops on %s', (device) => {
  for (const k of KINDS) {
    it.each(CASES)(`${k.name} forward and backward, shape %j, options %j`, (shape, o) => scoped(() => {
      const rng = new Rng(shape.reduce((p, d) => p * 7 + d, 3));
      const x = rng.arr(shape);
      const ref = reduceRef(x, o, k.mean);
      const d = rng.arr(ref.shape);
      const tx = toTensor(x, device);
      expectTensor(k.f(tx, o), ref, `${k.name} ${device}`, 1e-5);
      expectTensor(k.b(tx, toTensor(d, device), o).dX, reduceBackwardRef(x, d, o, k.mean).dX, `${k.name}Backward ${device}`, 1e-6);
    }));
  }
  it('reducing a non-empty axis of a tensor with another empty axis gives an empty result', () => scoped(() => {
    const y = va.ops.sum(va.zeros([0, 3], { device }), { axis: 1 });
    expect(y.shape).toEqual([0]);
    expect(va.ops.meanBackward(va.zeros([0, 3], { device }), y, { axis: 1 }).dX.shape).toEqual([0, 3]);
  }));
  it.each(KINDS.map((k) => [k.name, k]))('%s rejects bad inputs', (name, k) => scoped(() => {
    const f = k.f as (...a: unknown[]) => unknown;
    const b = k.b as (...a: unknown[]) => unknown;
    const x = floatTensor([2, 3], device);
    expect(() => f(va.zeros([2, 0], { device }), { axis: 1 })).toThrow(new RegExp(`^${name}: argument 'x' expected a non-empty axis 1`));
    expect(() => f(va.zeros([0], { device }))).toThrow(new RegExp(`^${name}: argument 'x' expected a non-empty tensor`));
    expect(() => f(x, { axis: 2 })).toThrow(new RegExp(`^${name}: argument 'options.axis' expected an integer axis in \\[-2, 1\\], received 2`));
    expect(() => f(x, { axis: 0.5 })).toThrow(new RegExp(`^${name}: argument 'options.axis' expected an integer axis`));
    expect(() => f(x, { axis: NaN })).toThrow(new RegExp(`^${name}: argument 'options.axis' expected an integer axis.*NaN`));
    expect(() => f(x, { axis: 0, keepDims: 1 })).toThrow(new RegExp(`^${name}: argument 'options.keepDims' expected a boolean`));
    expect(() => f(intTensor([2, 3], device), { axis: 0 })).toThrow(new RegExp(`^${name}: argument 'x' expected dtype float32`));
    expect(() => f(disposedTensor([2, 3], device), { axis: 0 })).toThrow(new RegExp(`^${name}: argument 'x' expected a live tensor`));
    expect(() => b(x, floatTensor([2], device), { axis: 0 })).toThrow(new RegExp(`^${name}Backward: argument 'dOut' expected shape \\[3\\]`));
    expect(() => b(x, floatTensor([3], device), { axis: 0, keepDims: true })).toThrow(new RegExp(`^${name}Backward: argument 'dOut' expected shape \\[1, 3\\]`));
    expect(() => b(x, floatTensor([3], otherDevice(device)), { axis: 0 })).toThrow(new RegExp(`^${name}Backward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => b(x, disposedTensor([3], device), { axis: 0 })).toThrow(new RegExp(`^${name}Backward: argument 'dOut' expected a live tensor`));
    expect(() => b(va.zeros([0, 2], { device }), va.zeros([2], { device }), { axis: 0 })).toThrow(new RegExp(`^${name}Backward: argument 'x' expected a non-empty axis 0`));
  }));
});
