// avgPool2d (channels-last, floor / ceil mode, partial windows, stride != kernel), forward and backward.
import * as va from '../lib';
import {
  disposedTensor, expectTensor, floatTensor, gradcheck, intTensor, otherDevice, Rng, scoped, testDevices, toTensor,
} from './helpers';
import { avgPool2dBackwardRef, avgPool2dRef, poolOutLen, PoolRefOptions } from './oracle/pool';

const CASES: [string, number[], PoolRefOptions, number[]][] = [
  // name, x shape, options, expected output shape
  ['2x2 stride 2', [1, 4, 4, 1], { kernelSize: 2 }, [1, 2, 2, 1]],
  ['overlapping windows (stride 1)', [2, 5, 7, 3], { kernelSize: 2, stride: 1 }, [2, 4, 6, 3]],
  ['floor mode drops the remainder', [1, 5, 7, 2], { kernelSize: 2 }, [1, 2, 3, 2]],
  ['ceil mode, partial last window in H', [2, 6, 7, 3], { kernelSize: 3, stride: 2, ceilMode: true }, [2, 3, 3, 3]],
  ['ceil mode, partial last window in W', [1, 6, 5, 2], { kernelSize: 2, ceilMode: true }, [1, 3, 3, 2]],
  ['ceil mode, the last window would start outside (decrement)', [1, 7, 5, 2], { kernelSize: 2, stride: 4, ceilMode: true }, [1, 2, 2, 2]],
  ['stride > kernel', [2, 7, 7, 3], { kernelSize: 2, stride: 3 }, [2, 2, 2, 3]],
  ['global (kernel = image)', [2, 3, 3, 4], { kernelSize: 3 }, [2, 1, 1, 4]],
  ['identity (kernel 1)', [1, 2, 3, 5], { kernelSize: 1 }, [1, 2, 3, 5]],
  ['ceil mode, image smaller than the kernel', [1, 2, 3, 1], { kernelSize: 3, stride: 2, ceilMode: true }, [1, 1, 1, 1]],
  ['ceil mode, many channels', [2, 9, 8, 33], { kernelSize: 3, stride: 2, ceilMode: true }, [2, 4, 4, 33]],
  ['1x1 image', [3, 1, 1, 2], { kernelSize: 1 }, [3, 1, 1, 2]],
];

describe('avgPool2d oracle', () => {
  it('output sizes follow PyTorch (padding 0)', () => {
    expect(poolOutLen(7, 2, 2, false)).toBe(3);
    expect(poolOutLen(7, 2, 2, true)).toBe(4);
    expect(poolOutLen(7, 2, 4, true)).toBe(2);
    expect(poolOutLen(6, 3, 2, true)).toBe(3);
    expect(poolOutLen(6, 3, 2, false)).toBe(2);
  });
  it.each(CASES.slice(0, 10))('backward matches finite differences: %s', (_, shape, o) => {
    const x = new Rng(10).arr(shape);
    gradcheck('avgPool2d', ([a]) => avgPool2dRef(a, o), ([a], d) => [avgPool2dBackwardRef(a, d, o).dX], [x]);
  });
});

describe.each(testDevices())('avgPool2d on %s', (device) => {
  it.each(CASES)('forward and backward: %s', (_, shape, o, outShape) => scoped(() => {
    const rng = new Rng(shape.reduce((p, d) => p * 3 + d, 4));
    const x = rng.arr(shape);
    const ref = avgPool2dRef(x, o);
    expect(ref.shape).toEqual(outShape);
    const d = rng.arr(ref.shape);
    const tx = toTensor(x, device);
    expectTensor(va.ops.avgPool2d(tx, o), ref, `avgPool2d ${device}`, 1e-5);
    expectTensor(va.ops.avgPool2dBackward(tx, toTensor(d, device), o).dX, avgPool2dBackwardRef(x, d, o).dX, `avgPool2dBackward ${device}`, 1e-5);
  }));

  it('empty batch or channels give empty results', () => scoped(() => {
    expect(va.ops.avgPool2d(va.zeros([0, 4, 4, 3], { device }), { kernelSize: 2 }).shape).toEqual([0, 2, 2, 3]);
    const x = va.zeros([1, 4, 4, 0], { device });
    expect(va.ops.avgPool2dBackward(x, va.zeros([1, 2, 2, 0], { device }), { kernelSize: 2 }).dX.shape).toEqual([1, 4, 4, 0]);
  }));

  it('rejects bad inputs', () => scoped(() => {
    const x = floatTensor([1, 4, 4, 2], device);
    const p = va.ops.avgPool2d as (...a: unknown[]) => unknown;
    const pb = va.ops.avgPool2dBackward as (...a: unknown[]) => unknown;
    expect(() => p(floatTensor([4, 4, 2], device), { kernelSize: 2 })).toThrow(/^avgPool2d: argument 'x' expected a rank-4 tensor/);
    expect(() => p(intTensor([1, 4, 4, 2], device), { kernelSize: 2 })).toThrow(/^avgPool2d: argument 'x' expected dtype float32/);
    expect(() => p(disposedTensor([1, 4, 4, 2], device), { kernelSize: 2 })).toThrow(/^avgPool2d: argument 'x' expected a live tensor/);
    expect(() => p(x)).toThrow(/^avgPool2d: argument 'options.kernelSize' expected a positive integer, received undefined/);
    expect(() => p(x, { kernelSize: 0 })).toThrow(/^avgPool2d: argument 'options.kernelSize' expected a positive integer, received 0/);
    expect(() => p(x, { kernelSize: 1.5 })).toThrow(/^avgPool2d: argument 'options.kernelSize' expected a positive integer/);
    expect(() => p(x, { kernelSize: NaN })).toThrow(/^avgPool2d: argument 'options.kernelSize' expected a positive integer, received NaN/);
    expect(() => p(x, { kernelSize: Infinity })).toThrow(/^avgPool2d: argument 'options.kernelSize' expected a positive integer/);
    expect(() => p(x, { kernelSize: 2, stride: 0 })).toThrow(/^avgPool2d: argument 'options.stride' expected a positive integer/);
    expect(() => p(x, { kernelSize: 2, ceilMode: 'yes' })).toThrow(/^avgPool2d: argument 'options.ceilMode' expected a boolean/);
    expect(() => p(x, { kernelSize: 5 })).toThrow(/^avgPool2d: argument 'x' expected a spatial size H of at least kernelSize 5/);
    expect(() => p(floatTensor([1, 4, 2, 1], device), { kernelSize: 3 })).toThrow(/^avgPool2d: argument 'x' expected a spatial size W of at least kernelSize 3/);
    expect(() => p(x, { kernelSize: 7, stride: 2, ceilMode: true })).toThrow(/^avgPool2d: argument 'x' expected a spatial size H/);
    expect(() => pb(x, floatTensor([1, 2, 2, 3], device), { kernelSize: 2 })).toThrow(/^avgPool2dBackward: argument 'dOut' expected shape \[1, 2, 2, 2\]/);
    expect(() => pb(x, floatTensor([1, 2, 2, 2], otherDevice(device)), { kernelSize: 2 })).toThrow(new RegExp(`^avgPool2dBackward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => pb(x, disposedTensor([1, 2, 2, 2], device), { kernelSize: 2 })).toThrow(/^avgPool2dBackward: argument 'dOut' expected a live tensor/);
    expect(() => pb(x, floatTensor([1, 2, 2, 2], device), { kernelSize: 2, stride: -1 })).toThrow(/^avgPool2dBackward: argument 'options.stride' expected a positive integer/);
  }));
});
