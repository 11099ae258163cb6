// add / sub / mul (leading-dimension broadcasting), scale, affine and biasAdd, forward and every
// gradient, against the oracle.
import * as va from '../lib';
import {
  disposedTensor, expectTensor, floatTensor, gradcheck, intTensor, otherDevice, Rng, scoped, testDevices, toTensor,
} from './helpers';
import {
  affineBackwardRef, affineRef, biasAddBackwardRef, biasAddRef, binaryBackwardRef, binaryRef, BinaryKind,
} from './oracle/elementwise';

const KINDS: { name: BinaryKind; f: typeof va.ops.add; b: typeof va.ops.addBackward }[] = [
  { name: 'add', f: va.ops.add, b: va.ops.addBackward },
  { name: 'sub', f: va.ops.sub, b: va.ops.subBackward },
  { name: 'mul', f: va.ops.mul, b: va.ops.mulBackward },
];

interface Case {
  name: string;
  a: number[];
  b: number[];
  out: number[];
}
const CASES: Case[] = [
  { name: 'equal shapes', a: [4, 7], b: [4, 7], out: [4, 7] },
  { name: 'equal shapes, rank 1, prime', a: [13], b: [13], out: [13] },
  { name: 'equal shapes, rank 0', a: [], b: [], out: [] },
  { name: 'b a trailing suffix of a', a: [3, 5, 7], b: [5, 7], out: [3, 5, 7] },
  { name: 'b the last dimension of a', a: [6, 11], b: [11], out: [6, 11] },
  { name: 'b a rank-0 scalar', a: [2, 3], b: [], out: [2, 3] },
  { name: 'a broadcast over b (a smaller)', a: [7], b: [2, 3, 7], out: [2, 3, 7] },
  { name: 'a a trailing suffix of b', a: [5, 7], b: [3, 5, 7], out: [3, 5, 7] },
  { name: 'a a rank-0 scalar', a: [], b: [4, 3], out: [4, 3] },
  { name: 'leading 1s on a, equal otherwise', a: [1, 1, 4, 5], b: [4, 5], out: [1, 1, 4, 5] },
  { name: 'leading 1s on b, equal otherwise', a: [3, 4], b: [1, 1, 3, 4], out: [1, 1, 3, 4] },
  { name: 'leading 1s on the broadcast b', a: [2, 4, 5], b: [1, 4, 5], out: [2, 4, 5] },
  { name: 'leading 1s on the broadcast a', a: [1, 1, 5], b: [2, 3, 5], out: [2, 3, 5] },
  { name: 'leading 1s on both', a: [1, 6, 5], b: [1, 1, 5], out: [1, 6, 5] },
  { name: 'a broadcast, output padded to its rank', a: [1, 1, 3], b: [2, 3], out: [1, 2, 3] },
  { name: 'size-1 inner dimension', a: [3, 1, 5], b: [1, 5], out: [3, 1, 5] },
  { name: 'size-1 last dimension', a: [4, 1], b: [1], out: [4, 1] },
  { name: 'size-1 dimensions in the broadcast operand', a: [2, 3, 1], b: [3, 1], out: [2, 3, 1] },
  { name: 'all size 1', a: [1, 1], b: [1], out: [1, 1] },
  { name: 'odd sizes, b broadcast', a: [17, 31], b: [31], out: [17, 31] },
  { name: 'prime sizes, a broadcast', a: [13], b: [3, 7, 13], out: [3, 7, 13] },
  { name: 'long rows, b broadcast', a: [5, 1031], b: [1031], out: [5, 1031] },
  { name: 'many rows, a broadcast', a: [257], b: [37, 257], out: [37, 257] },
  { name: 'large equal shapes', a: [3, 4099], b: [3, 4099], out: [3, 4099] },
];

describe('elementwise oracle', () => {
  it.each(KINDS.map((k) => k.name))('%s backward matches finite differences', (name) => {
    for (const c of CASES.slice(0, 19)) {
      const rng = new Rng(c.a.length * 13 + c.b.length);
      gradcheck(`${name} ${c.name}`, ([a, b]) => binaryRef(name, a, b), ([a, b], d) => {
        const g = binaryBackwardRef(name, a, b, d);
        return [g.dA, g.dB];
      }, [rng.arr(c.a), rng.arr(c.b)]);
    }
  });
  it('the oracle broadcasts to the expected shapes', () => {
    for (const c of CASES) {
      expect({ name: c.name, shape: binaryRef('add', new Rng(1).arr(c.a), new Rng(2).arr(c.b)).shape }).toEqual({ name: c.name, shape: c.out });
    }
  });
  it('affine / scale backward matches finite differences', () => {
    const x = new Rng(8).arr([3, 5]);
    for (const [alpha, beta] of [[2.5, 0], [-0.75, 1.25], [0, 3]]) {
      gradcheck(`affine ${alpha} ${beta}`, ([a]) => affineRef(a, alpha, beta), ([a], d) => [affineBackwardRef(a, alpha, d).dX], [x]);
    }
  });
  it('biasAdd backward matches finite differences', () => {
    const rng = new Rng(9);
    for (const s of [[5], [4, 3], [2, 3, 7]]) {
      gradcheck(`biasAdd ${JSON.stringify(s)}`, ([x, b]) => biasAddRef(x, b), ([x, b], d) => {
        const g = biasAddBackwardRef(x, b, d);
        return [g.dX, g.dBias];
      }, [rng.arr(s), rng.arr([s[s.length - 1]])]);
    }
  });
});

describe.each(testDevices())('elementwise ops on %s', (device) => {
  for (const k of KINDS) {
    it.each(CASES.map((c) => [c.name, c]))(`${k.name} forward and backward: %s`, (_, c) => scoped(() => {
      const rng = new Rng(c.a.reduce((p, d) => p * 5 + d, 1) * 31 + c.b.reduce((p, d) => p * 3 + d, 7));
      const a = rng.arr(c.a);
      const b = rng.arr(c.b);
      const ref = binaryRef(k.name, a, b);
      expect(ref.shape).toEqual(c.out);
      const d = rng.arr(ref.shape);
      const ta = toTensor(a, device);
      const tb = toTensor(b, device);
      // one float32 rounding per output element
      expectTensor(k.f(ta, tb), ref, `${k.name} ${c.name} ${device}`, 1e-6);
      const g = k.b(ta, tb, toTensor(d, device));
      const gr = binaryBackwardRef(k.name, a, b, d);
      // the broadcast operand's gradient is a sum over the repeated rows
      expectTensor(g.dA, gr.dA, `${k.name}Backward dA ${c.name} ${device}`, 2e-6);
      expectTensor(g.dB, gr.dB, `${k.name}Backward dB ${c.name} ${device}`, 2e-6);
    }));
  }

  it.each([
    ['rank 1', [7], 1.5, 0],
    ['negative alpha and a beta', [3, 5, 7], -0.75, 2.25],
    ['alpha 0', [4, 3], 0, -1.5],
    ['size 1', [1], 3, 1],
    ['rank 0', [], -2, 0.5],
    ['long, odd', [2, 1031], 0.3, -0.1],
  ] as [string, number[], number, number][])('scale / affine forward and scaleBackward: %s', (_, shape, alpha, beta) => scoped(() => {
    const rng = new Rng(shape.reduce((p, d) => p * 3 + d, 11));
    const x = rng.arr(shape);
    const d = rng.arr(shape);
    const tx = toTensor(x, device);
    expectTensor(va.ops.affine(tx, alpha, beta), affineRef(x, alpha, beta), `affine ${device}`, 1e-6);
    expectTensor(va.ops.affine(tx, alpha), affineRef(x, alpha), `affine (default beta) ${device}`, 1e-6);
    expectTensor(va.ops.scale(tx, alpha), affineRef(x, alpha), `scale ${device}`, 1e-6);
    expectTensor(va.ops.scaleBackward(tx, alpha, toTensor(d, device)).dX, affineBackwardRef(x, alpha, d).dX, `scaleBackward ${device}`, 1e-6);
  }));

  it.each([
    ['rank 1', [5]],
    ['2-D', [4, 7]],
    ['3-D, prime', [2, 3, 13]],
    ['size 1', [1, 1]],
    ['C = 1', [6, 1]],
    ['many rows', [37, 129]],
  ] as [string, number[]][])('biasAdd forward and backward: %s', (_, shape) => scoped(() => {
    const rng = new Rng(shape.reduce((p, d) => p * 7 + d, 5));
    const x = rng.arr(shape);
    const bias = rng.arr([shape[shape.length - 1]]);
    const d = rng.arr(shape);
    const tx = toTensor(x, device);
    const tb = toTensor(bias, device);
    expectTensor(va.ops.biasAdd(tx, tb), biasAddRef(x, bias), `biasAdd ${device}`, 1e-6);
    const g = va.ops.biasAddBackward(tx, tb, toTensor(d, device));
    const gr = biasAddBackwardRef(x, bias, d);
    expectTensor(g.dX, gr.dX, `biasAddBackward dX ${device}`, 1e-6);
    expectTensor(g.dBias, gr.dBias, `biasAddBackward dBias ${device}`, 2e-6);
  }));

  it('empty leading dimensions broadcast: [0, 3] with [3] gives [0, 3], zero gradients for the broadcast operand', () => scoped(() => {
    const z = va.zeros([0, 3], { device });
    expect(va.ops.add(va.zeros([0, 3], { device }), va.ones([3], { device })).shape).toEqual([0, 3]);
    expect(va.ops.add(va.ones([0, 3], { device }), va.ones([3], { device })).shape).toEqual([0, 3]);
    expect(va.ops.sub(va.ones([3], { device }), z).shape).toEqual([0, 3]);
    expect(va.ops.mul(va.ones([1, 3], { device }), z).shape).toEqual([0, 3]);
    expect(va.ops.add(va.zeros([2, 0, 3], { device }), va.zeros([0, 3], { device })).shape).toEqual([2, 0, 3]);
    expect(va.ops.add(va.zeros([0, 4], { device }), va.zeros([0, 4], { device })).shape).toEqual([0, 4]);
    expect(va.ops.add(va.zeros([2, 0], { device }), va.zeros([0], { device })).shape).toEqual([2, 0]);
    expect(va.ops.mul(va.zeros([0], { device }), va.ones([], { device })).shape).toEqual([0]);
    for (const k of KINDS) {
      const g = k.b(z, va.ones([3], { device }), va.zeros([0, 3], { device }));
      expect(g.dA.shape).toEqual([0, 3]);
      expect(Array.from(g.dB.dataSync())).toEqual([0, 0, 0]);
      const h = k.b(va.ones([3], { device }), z, va.zeros([0, 3], { device }));
      expect(Array.from(h.dA.dataSync())).toEqual([0, 0, 0]);
      expect(h.dB.shape).toEqual([0, 3]);
    }
    expect(va.ops.biasAdd(z, va.ones([3], { device })).shape).toEqual([0, 3]);
    const gb = va.ops.biasAddBackward(z, va.ones([3], { device }), va.zeros([0, 3], { device }));
    expect(gb.dX.shape).toEqual([0, 3]);
    expect(Array.from(gb.dBias.dataSync())).toEqual([0, 0, 0]);
    expect(va.ops.scale(va.zeros([0, 5], { device }), 2).shape).toEqual([0, 5]);
    expect(va.ops.affine(va.zeros([0], { device }), 2, 1).shape).toEqual([0]);
    expect(va.ops.scaleBackward(va.zeros([0, 5], { device }), 2, va.zeros([0, 5], { device })).dX.shape).toEqual([0, 5]);
  }));

  it.each(KINDS.map((k) => [k.name, k]))('%s rejects bad inputs', (name, k) => scoped(() => {
    const f = k.f as (...args: unknown[]) => unknown;
    const b = k.b as (...args: unknown[]) => unknown;
    const x = floatTensor([2, 3], device);
    const y = floatTensor([3], device);
    const bc = `^${name}: argument 'b' expected a shape broadcastable with`;
    expect(() => f(x, floatTensor([2], device))).toThrow(new RegExp(`${bc} \\[2, 3\\] over leading dimensions .*received a float32 tensor of shape \\[2\\]`));
    expect(() => f(x, floatTensor([4, 3], device))).toThrow(new RegExp(bc));
    expect(() => f(floatTensor([3, 1], device), y)).toThrow(new RegExp(`${bc} \\[3, 1\\]`));
    expect(() => f(floatTensor([2, 1, 3], device), floatTensor([4, 3], device))).toThrow(new RegExp(bc));
    expect(() => f(va.zeros([0, 3], { device }), floatTensor([2, 3], device))).toThrow(new RegExp(bc));
    expect(() => f(intTensor([2, 3], device), x)).toThrow(new RegExp(`^${name}: argument 'a' expected dtype float32, received a int32 tensor`));
    expect(() => f(x, intTensor([3], device))).toThrow(new RegExp(`^${name}: argument 'b' expected dtype float32`));
    expect(() => f(x, floatTensor([3], otherDevice(device)))).toThrow(new RegExp(`^${name}: argument 'b' expected a tensor on ${device} \\(the device of 'a'\\)`));
    expect(() => f(disposedTensor([2, 3], device), y)).toThrow(new RegExp(`^${name}: argument 'a' expected a live tensor, received a disposed`));
    expect(() => f(x, disposedTensor([3], device))).toThrow(new RegExp(`^${name}: argument 'b' expected a live tensor`));
    expect(() => f(x, 2)).toThrow(new RegExp(`^${name}: argument 'b' expected a float32 Tensor, received 2`));
    const bn = `${name}Backward`;
    expect(() => b(x, y, floatTensor([3, 2], device))).toThrow(new RegExp(`^${bn}: argument 'dOut' expected shape \\[2, 3\\] \\(the forward output\\)`));
    expect(() => b(x, y, floatTensor([3], device))).toThrow(new RegExp(`^${bn}: argument 'dOut' expected shape \\[2, 3\\]`));
    expect(() => b(x, y, floatTensor([1, 2, 3], device))).toThrow(new RegExp(`^${bn}: argument 'dOut' expected shape \\[2, 3\\]`));
    expect(() => b(x, floatTensor([2], device), floatTensor([2, 3], device))).toThrow(new RegExp(`^${bn}: argument 'b' expected a shape broadcastable`));
    expect(() => b(x, y, floatTensor([2, 3], otherDevice(device)))).toThrow(new RegExp(`^${bn}: argument 'dOut' expected a tensor on ${device}`));
    expect(() => b(x, y, disposedTensor([2, 3], device))).toThrow(new RegExp(`^${bn}: argument 'dOut' expected a live tensor`));
    expect(() => b(x, y, intTensor([2, 3], device))).toThrow(new RegExp(`^${bn}: argument 'dOut' expected dtype float32`));
    expect(() => b(x, intTensor([3], device), floatTensor([2, 3], device))).toThrow(new RegExp(`^${bn}: argument 'b' expected dtype float32`));
  }));

  it('scale / affine / scaleBackward reject bad inputs', () => scoped(() => {
    const s = va.ops.scale as (...args: unknown[]) => unknown;
    const af = va.ops.affine as (...args: unknown[]) => unknown;
    const sb = va.ops.scaleBackward as (...args: unknown[]) => unknown;
    const x = floatTensor([2, 3], device);
    // scale forwards its factor to affine's alpha, and the message names it so
    expect(() => s(x, NaN)).toThrow(/^scale: argument 'alpha' expected a finite number, received NaN/);
    expect(() => s(x, Infinity)).toThrow(/^scale: argument 'alpha' expected a finite number, received Infinity/);
    expect(() => s(x, '2')).toThrow(/^scale: argument 'alpha' expected a finite number, received "2"/);
    expect(() => af(x, -Infinity)).toThrow(/^affine: argument 'alpha' expected a finite number, received -Infinity/);
    expect(() => af(x, 1, NaN)).toThrow(/^affine: argument 'beta' expected a finite number, received NaN/);
    expect(() => af(x, 1, Infinity)).toThrow(/^affine: argument 'beta' expected a finite number, received Infinity/);
    expect(() => s(intTensor([2, 3], device), 2)).toThrow(/^scale: argument 'x' expected dtype float32/);
    expect(() => af(disposedTensor([2, 3], device), 2)).toThrow(/^affine: argument 'x' expected a live tensor/);
    expect(() => s(null, 2)).toThrow(/^scale: argument 'x' expected a float32 Tensor, received null/);
    expect(() => sb(x, NaN, floatTensor([2, 3], device))).toThrow(/^scaleBackward: argument 'alpha' expected a finite number, received NaN/);
    expect(() => sb(x, 2, floatTensor([3, 3], device))).toThrow(/^scaleBackward: argument 'dOut' expected a tensor of the shape of x \[2, 3\]/);
    expect(() => sb(x, 2, floatTensor([3, 2], device))).toThrow(/^scaleBackward: argument 'dOut' expected a tensor of the shape of x \[2, 3\], received a float32 tensor of shape \[3, 2\]/);
    expect(() => sb(x, 2, floatTensor([2, 3], otherDevice(device)))).toThrow(new RegExp(`^scaleBackward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => sb(x, 2, disposedTensor([2, 3], device))).toThrow(/^scaleBackward: argument 'dOut' expected a live tensor/);
    expect(() => sb(x, 2, intTensor([2, 3], device))).toThrow(/^scaleBackward: argument 'dOut' expected dtype float32/);
    expect(() => sb(disposedTensor([2, 3], device), 2, floatTensor([2, 3], device))).toThrow(/^scaleBackward: argument 'x' expected a live tensor/);
  }));

  it('biasAdd / biasAddBackward reject bad inputs', () => scoped(() => {
    const ba = va.ops.biasAdd as (...args: unknown[]) => unknown;
    const bb = va.ops.biasAddBackward as (...args: unknown[]) => unknown;
    const x = floatTensor([2, 3], device);
    const bias = floatTensor([3], device);
    const d = floatTensor([2, 3], device);
    for (const [op, call] of [['biasAdd', (bi: unknown) => ba(x, bi)], ['biasAddBackward', (bi: unknown) => bb(x, bi, d)]] as [string, (bi: unknown) => unknown][]) {
      expect(() => call(floatTensor([1, 3], device))).toThrow(new RegExp(`^${op}: argument 'bias' expected a rank-1 tensor, received a float32 tensor of shape \\[1, 3\\]`));
      expect(() => call(floatTensor([], device))).toThrow(new RegExp(`^${op}: argument 'bias' expected a rank-1 tensor`));
      expect(() => call(floatTensor([2], device))).toThrow(new RegExp(`^${op}: argument 'bias' expected shape \\[3\\] \\(the last dimension of x\\), received a float32 tensor of shape \\[2\\]`));
      expect(() => call(floatTensor([1], device))).toThrow(new RegExp(`^${op}: argument 'bias' expected shape \\[3\\]`));
      expect(() => call(intTensor([3], device))).toThrow(new RegExp(`^${op}: argument 'bias' expected dtype float32`));
      expect(() => call(floatTensor([3], otherDevice(device)))).toThrow(new RegExp(`^${op}: argument 'bias' expected a tensor on ${device} \\(the device of 'x'\\)`));
      expect(() => call(disposedTensor([3], device))).toThrow(new RegExp(`^${op}: argument 'bias' expected a live tensor`));
    }
    expect(() => ba(floatTensor([], device), floatTensor([1], device))).toThrow(/^biasAdd: argument 'x' expected a tensor of rank >= 1/);
    expect(() => ba(intTensor([2, 3], device), bias)).toThrow(/^biasAdd: argument 'x' expected dtype float32/);
    expect(() => bb(x, bias, floatTensor([3, 2], device))).toThrow(/^biasAddBackward: argument 'dOut' expected shape \[2, 3\] \(the forward output\)/);
    expect(() => bb(x, bias, floatTensor([3], device))).toThrow(/^biasAddBackward: argument 'dOut' expected shape \[2, 3\]/);
    expect(() => bb(x, bias, floatTensor([2, 3], otherDevice(device)))).toThrow(new RegExp(`^biasAddBackward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => bb(x, bias, disposedTensor([2, 3], device))).toThrow(/^biasAddBackward: argument 'dOut' expected a live tensor/);
    expect(() => bb(disposedTensor([2, 3], device), bias, d)).toThrow(/^biasAddBackward: argument 'x' expected a live tensor/);
  }));
});
