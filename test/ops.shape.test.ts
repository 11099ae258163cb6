// transpose / permute / slice / concat (float32 and bit-exact int32), forward and backward, against the oracle.
import * as va from '../lib';
import {
  disposedTensor, expectTensor, floatTensor, gradcheck, intTensor, otherDevice, Rng, scoped, testDevices, toTensor,
} from './helpers';
import { Arr } from './oracle/nd';
import {
  concatBackwardRef, concatRef, permuteBackwardRef, permuteRef, sliceBackwardRef, sliceRef, swapPerm,
} from './oracle/shape';

/** Exact comparison (copies are bit-exact). */
function expectExact(t: va.Tensor, ref: Arr, label: string): void {
  expect({ label, shape: [...t.shape] }).toEqual({ label, shape: ref.shape });
  expect(Array.from(t.dataSync())).toEqual(Array.from(ref.data));
}

const PERMS: [number[], number[]][] = [
  [[5], [0]],
  [[3, 4], [1, 0]],
  [[2, 3, 4], [2, 0, 1]],
  [[2, 3, 4], [0, 2, 1]],
  [[2, 1, 3, 5], [3, 1, 0, 2]],
  [[2, 3, 2, 3, 2], [4, 3, 2, 1, 0]],
  [[7, 1, 13], [-1, 0, 1]],
];
// Rows are complete (jest passes a done callback in place of missing trailing arguments).
const TRANSPOSES: [number[], number | undefined, number | undefined][] = [
  [[3, 4], undefined, undefined], [[2, 5, 3], undefined, undefined], [[2, 5, 3], 0, 2], [[2, 3, 4, 5], 1, -1], [[4, 1], 0, 1],
];
const SLICES: [number[], { axis: number; start?: number; end?: number }][] = [
  [[7], { axis: 0, start: 2, end: 5 }],
  [[4, 6], { axis: 1, start: 1 }],
  [[4, 6], { axis: 0, end: -1 }],
  [[3, 5, 4], { axis: 1, start: -3, end: -1 }],
  [[3, 5, 4], { axis: -1, start: 3, end: 4 }],
  [[3, 5, 4], { axis: 2, start: 2, end: 2 }],
  [[3, 5, 4], { axis: 0 }],
];
const CONCATS: [number[][], number][] = [
  [[[3], [4]], 0],
  [[[2, 3], [2, 1], [2, 4]], 1],
  [[[2, 3], [5, 3]], 0],
  [[[2, 3, 4], [2, 2, 4], [2, 0, 4], [2, 1, 4]], -2],
  [[[1, 2, 3]], 2],
];

describe('shape oracle', () => {
  it('backwards match finite differences', () => {
    const rng = new Rng(8);
    for (const [shape, perm] of PERMS) {
      gradcheck(`permute ${perm}`, ([a]) => permuteRef(a, perm), ([a], d) => [permuteBackwardRef(a, d, perm).dX], [rng.arr(shape)]);
    }
    for (const [shape, o] of SLICES) {
      const len = shape[o.axis < 0 ? o.axis + shape.length : o.axis];
      gradcheck(`slice ${JSON.stringify(o)}`, ([a]) => sliceRef(a, o.axis, o.start ?? 0, o.end ?? len),
        ([a], d) => [sliceBackwardRef(a, d, o.axis, o.start ?? 0).dX], [rng.arr(shape)]);
    }
    for (const [shapes, axis] of CONCATS) {
      gradcheck(`concat ${axis}`, (xs) => concatRef(xs, axis), (xs, d) => concatBackwardRef(xs, d, axis).dXs, shapes.map((s) => rng.arr(s)));
    }
  });
});

describe.each(testDevices())('shape ops on %s', (device) => {
  it.each(PERMS)('permute %j by %j, forward and backward (float32 and int32)', (shape, perm) => scoped(() => {
    const rng = new Rng(shape.length * 11 + perm[0]);
    const x = rng.arr(shape);
    const ref = permuteRef(x, perm);
    const d = rng.arr(ref.shape);
    const tx = toTensor(x, device);
    expectExact(va.ops.permute(tx, perm), ref, `permute ${device}`);
    expectExact(va.ops.permuteBackward(tx, toTensor(d, device), perm).dX, permuteBackwardRef(x, d, perm).dX, `permuteBackward ${device}`);
    const xi: Arr = { data: x.data.map((_, i) => i * 2654435761 | 0), shape };
    const ti = va.tensor(Int32Array.from(xi.data), shape, { device, dtype: 'int32' });
    const pi = va.ops.permute(ti, perm);
    expect(pi.dtype).toBe('int32');
    expectExact(pi, permuteRef(xi, perm), `permute int32 ${device}`);
  }));

  it.each(TRANSPOSES)('transpose %j axes %p %p, forward and backward', (shape, a0, a1) => scoped(() => {
    const rng = new Rng(shape.length * 13 + (a0 ?? 9));
    const x = rng.arr(shape);
    const perm = swapPerm(shape.length, a0 ?? -2, a1 ?? -1);
    const ref = permuteRef(x, perm);
    const d = rng.arr(ref.shape);
    const tx = toTensor(x, device);
    expectExact(va.ops.transpose(tx, a0, a1), ref, `transpose ${device}`);
    expectExact(va.ops.transposeBackward(tx, toTensor(d, device), a0, a1).dX, permuteBackwardRef(x, d, perm).dX, `transposeBackward ${device}`);
  }));

  it.each(SLICES)('slice %j %j, forward and backward', (shape, o) => scoped(() => {
    const rng = new Rng(shape.length * 17 + (o.start ?? 0));
    const x = rng.arr(shape);
    const len = shape[o.axis < 0 ? o.axis + shape.length : o.axis];
    const ref = sliceRef(x, o.axis, o.start ?? 0, o.end ?? len);
    const d = rng.arr(ref.shape);
    const tx = toTensor(x, device);
    expectExact(va.ops.slice(tx, o), ref, `slice ${device}`);
    expectExact(va.ops.sliceBackward(tx, toTensor(d, device), o).dX, sliceBackwardRef(x, d, o.axis, o.start ?? 0).dX, `sliceBackward ${device}`);
    const ti = intTensor(shape, device);
    const xi: Arr = { data: Float64Array.from(ti.dataSync()), shape };
    expectExact(va.ops.slice(ti, o), sliceRef(xi, o.axis, o.start ?? 0, o.end ?? len), `slice int32 ${device}`);
  }));

  it.each(CONCATS)('concat %j along %p, forward and backward', (shapes, axis) => scoped(() => {
    const rng = new Rng(shapes.length * 19 + axis);
    const xs = shapes.map((s) => rng.arr(s));
    const ref = concatRef(xs, axis);
    const d = rng.arr(ref.shape);
    const ts = xs.map((x) => toTensor(x, device));
    expectExact(va.ops.concat(ts, { axis }), ref, `concat ${device}`);
    const g = va.ops.concatBackward(ts, toTensor(d, device), { axis }).dXs;
    const gr = concatBackwardRef(xs, d, axis).dXs;
    expect(g.length).toBe(gr.length);
    g.forEach((t, i) => expectExact(t, gr[i], `concatBackward dXs[${i}] ${device}`));
    const ti = shapes.map((s) => intTensor(s, device));
    const xi = ti.map((t): Arr => ({ data: Float64Array.from(t.dataSync()), shape: [...t.shape] }));
    expectExact(va.ops.concat(ti, { axis }), concatRef(xi, axis), `concat int32 ${device}`);
  }));

  it('concat defaults to axis 0; rank-0 permute is a copy', () => scoped(() => {
    const c = va.ops.concat([va.tensor([1, 2], [1, 2], { device }), va.tensor([3, 4], [1, 2], { device })]);
    expect(c.shape).toEqual([2, 2]);
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3, 4]);
    const s = va.ops.permute(va.tensor([5], [], { device }), []);
    expect(s.shape).toEqual([]);
    expect(Array.from(s.dataSync())).toEqual([5]);
  }));

  it('int32 copies are bit-exact, including bit patterns that are NaNs as floats', () => scoped(() => {
    // 0x7fc00001 (quiet NaN with payload), 0xff800001 (signalling NaN), -1 (0xffffffff), 0x7f800000 (+Inf)
    const vals = [0x7fc00001, 0xff800001 | 0, -1, 0x7f800000, 0, 1, -2147483648, 2147483647];
    const t = va.tensor(Int32Array.from(vals), [2, 4], { device, dtype: 'int32' });
    expect(Array.from(va.ops.transpose(va.ops.transpose(t)).dataSync())).toEqual(vals);
    expect(Array.from(va.ops.slice(t, { axis: 1, start: 0, end: 4 }).dataSync())).toEqual(vals);
    expect(Array.from(va.ops.concat([t, t], { axis: 0 }).dataSync())).toEqual([...vals, ...vals]);
    expect(Array.from(va.ops.permuteBackward(t, va.ops.permute(t, [1, 0]), [1, 0]).dX.dataSync())).toEqual(vals);
    expect(Array.from(va.ops.sliceBackward(t, va.ops.slice(t, { axis: 1, start: 1, end: 3 }), { axis: 1, start: 1, end: 3 }).dX.dataSync()))
      .toEqual([0, vals[1], vals[2], 0, 0, vals[5], vals[6], 0]);
  }));

  it('larger copies agree with the oracle', () => scoped(() => {
    const rng = new Rng(99);
    const x = rng.arr([3, 17, 9, 5]);
    const perm = [2, 0, 3, 1];
    expectTensor(va.ops.permute(toTensor(x, device), perm), permuteRef(x, perm), `permute large ${device}`, 0);
  }));

  it('rejects bad inputs', () => scoped(() => {
    const x = floatTensor([2, 3, 4], device);
    const o = otherDevice(device);
    const ops = va.ops as unknown as Record<string, (...a: unknown[]) => unknown>;
    expect(() => ops.permute(x, [0, 1])).toThrow(/^permute: argument 'perm' expected a permutation of the 3 axes/);
    expect(() => ops.permute(x, [0, 1, 1])).toThrow(/^permute: argument 'perm' expected a permutation.*received \[0, 1, 1\]/);
    expect(() => ops.permute(x, [0, 1, 3])).toThrow(/^permute: argument 'perm' expected a permutation/);
    expect(() => ops.permute(x, [0, 1, 1.5])).toThrow(/^permute: argument 'perm' expected a permutation/);
    expect(() => ops.permute(disposedTensor([2], device), [0])).toThrow(/^permute: argument 'x' expected a live tensor/);
    expect(() => ops.permute([1, 2], [0])).toThrow(/^permute: argument 'x' expected a Tensor/);
    expect(() => ops.permuteBackward(x, floatTensor([2, 3, 4], device), [2, 0, 1])).toThrow(/^permuteBackward: argument 'dOut' expected shape \[4, 2, 3\]/);
    expect(() => ops.permuteBackward(x, floatTensor([4, 2, 3], o), [2, 0, 1])).toThrow(new RegExp(`^permuteBackward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => ops.transpose(floatTensor([3], device))).toThrow(/^transpose: argument 'axis0' expected an integer axis in \[-1, 0\], received -2/);
    expect(() => ops.transpose(x, 0, 3)).toThrow(/^transpose: argument 'axis1' expected an integer axis in \[-3, 2\], received 3/);
    expect(() => ops.transpose(x, NaN, 1)).toThrow(/^transpose: argument 'axis0' expected an integer axis.*NaN/);
    expect(() => ops.transposeBackward(x, floatTensor([2, 3, 4], device))).toThrow(/^transposeBackward: argument 'dOut' expected shape \[2, 4, 3\]/);
    expect(() => ops.transposeBackward(x, disposedTensor([2, 4, 3], device))).toThrow(/^transposeBackward: argument 'dOut' expected a live tensor/);
    expect(() => ops.slice(x, { axis: 1, start: 4 })).toThrow(/^slice: argument 'options.start' expected an integer in \[-3, 3\]/);
    expect(() => ops.slice(x, { axis: 1, start: 2, end: 1 })).toThrow(/^slice: argument 'options.end' expected an index >= start \(2\)/);
    expect(() => ops.slice(x, { axis: 1, end: Infinity })).toThrow(/^slice: argument 'options.end' expected an integer/);
    expect(() => ops.slice(x, { axis: 3 })).toThrow(/^slice: argument 'options.axis' expected an integer axis in \[-3, 2\]/);
    expect(() => ops.slice(x, { start: 0 })).toThrow(/^slice: argument 'options.axis' expected an integer axis.*undefined/);
    expect(() => ops.slice(x)).toThrow(/^slice: argument 'options.axis' expected an integer axis/);
    expect(() => ops.sliceBackward(x, floatTensor([2, 3, 4], device), { axis: 1, start: 1 })).toThrow(/^sliceBackward: argument 'dOut' expected shape \[2, 2, 4\]/);
    expect(() => ops.sliceBackward(x, floatTensor([2, 2, 4], o), { axis: 1, start: 1 })).toThrow(new RegExp(`^sliceBackward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => ops.concat([])).toThrow(/^concat: argument 'tensors' expected a non-empty array of tensors/);
    expect(() => ops.concat(x)).toThrow(/^concat: argument 'tensors' expected a non-empty array/);
    expect(() => ops.concat([x, floatTensor([2, 5, 4], device)], { axis: 0 })).toThrow(/^concat: argument 'tensors\[1\]' expected shape \[\*, 3, 4\]/);
    expect(() => ops.concat([x, floatTensor([2, 3], device)], { axis: 0 })).toThrow(/^concat: argument 'tensors\[1\]' expected shape/);
    expect(() => ops.concat([x, intTensor([2, 3, 4], device)])).toThrow(/^concat: argument 'tensors\[1\]' expected dtype float32/);
    expect(() => ops.concat([x, floatTensor([2, 3, 4], o)])).toThrow(new RegExp(`^concat: argument 'tensors\\[1\\]' expected a tensor on ${device}`));
    expect(() => ops.concat([x, disposedTensor([2, 3, 4], device)])).toThrow(/^concat: argument 'tensors\[1\]' expected a live tensor/);
    expect(() => ops.concat([x, 5])).toThrow(/^concat: argument 'tensors\[1\]' expected a Tensor/);
    expect(() => ops.concat([x], { axis: 3 })).toThrow(/^concat: argument 'options.axis' expected an integer axis in \[-3, 2\]/);
    expect(() => ops.concat([floatTensor([], device)])).toThrow(/^concat: argument 'tensors\[0\]' expected a tensor of rank >= 1/);
    expect(() => ops.concatBackward([x, x], floatTensor([2, 3, 4], device), { axis: 0 })).toThrow(/^concatBackward: argument 'dOut' expected shape \[4, 3, 4\]/);
    expect(() => ops.concatBackward([x, x], floatTensor([4, 3, 4], o), { axis: 0 })).toThrow(new RegExp(`^concatBackward: argument 'dOut' expected a tensor on ${device}`));
  }));
});
