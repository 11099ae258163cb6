// matmul (batched, broadcast, transposed) and linear, forward and every gradient, against the oracle.
import * as va from '../lib';
import {
  disposedTensor, expectTensor, floatTensor, gradcheck, intTensor, otherDevice, Rng, scoped, testDevices, toTensor,
} from './helpers';
import { linearBackwardRef, linearRef, matmulBackwardRef, matmulRef } from './oracle/matmul';

interface Case {
  name: string;
  a: number[];
  b: number[];
  tA?: boolean;
  tB?: boolean;
}
/** Shapes are the STORED shapes (transposed operands are given transposed). */
const CASES: Case[] = [
  { name: '2-D', a: [5, 7], b: [7, 3] },
  { name: '2-D transposeA', a: [7, 5], b: [7, 3], tA: true },
  { name: '2-D transposeB', a: [5, 7], b: [3, 7], tB: true },
  { name: '2-D both transposed', a: [7, 5], b: [3, 7], tA: true, tB: true },
  { name: 'vectors (M = N = 1)', a: [1, 9], b: [9, 1] },
  { name: 'outer product (K = 1)', a: [6, 1], b: [1, 5] },
  { name: 'primes', a: [13, 17], b: [17, 19] },
  { name: 'batched, equal batch dims', a: [2, 3, 4, 5], b: [2, 3, 5, 6] },
  { name: 'batch 1', a: [1, 3, 4], b: [1, 4, 2] },
  { name: 'batched, transposed', a: [3, 5, 4], b: [3, 6, 5], tA: true, tB: true },
  { name: 'a 2-D broadcast over b', a: [3, 4], b: [2, 4, 5] },
  { name: 'b 2-D broadcast over a', a: [3, 2, 5], b: [5, 4] },
  { name: 'a 2-D broadcast, transposed', a: [4, 3], b: [2, 2, 5, 4], tA: true, tB: true },
  { name: 'b 2-D broadcast, transposeB', a: [2, 7, 6], b: [3, 6], tB: true },
  { name: 'tiles with remainders', a: [2, 33, 65], b: [65, 31] },
  { name: 'several tiles, odd sizes', a: [67, 131], b: [131, 70] },
  { name: 'several tiles, transposed, broadcast', a: [129, 66], b: [2, 65, 129], tA: true, tB: true },
];

describe('matmul / linear oracle', () => {
  it.each(CASES.slice(0, 14).map((c) => [c.name, c]))('matmul backward matches finite differences: %s', (_, c) => {
    const rng = new Rng(3);
    const opts = { transposeA: c.tA, transposeB: c.tB };
    gradcheck(`matmul ${c.name}`, ([a, b]) => matmulRef(a, b, opts), ([a, b], d) => {
      const g = matmulBackwardRef(a, b, d, opts);
      return [g.dA, g.dB];
    }, [rng.arr(c.a), rng.arr(c.b)]);
  });
  it('linear backward matches finite differences', () => {
    const rng = new Rng(4);
    gradcheck('linear', ([x, w, b]) => linearRef(x, w, b), ([x, w], d) => {
      const g = linearBackwardRef(x, w, d, true);
      return [g.dX, g.dW, g.dBias];
    }, [rng.arr([2, 3, 5]), rng.arr([4, 5]), rng.arr([4])]);
  });
});

describe.each(testDevices())('matmul ops on %s', (device) => {
  it.each(CASES.map((c) => [c.name, c]))('matmul forward and backward: %s', (_, c) => scoped(() => {
    const rng = new Rng(c.a.length * 31 + c.b[0]);
    const a = rng.arr(c.a);
    const b = rng.arr(c.b);
    const opts = { transposeA: c.tA, transposeB: c.tB };
    const ref = matmulRef(a, b, opts);
    const d = rng.arr(ref.shape);
    const ta = toTensor(a, device);
    const tb = toTensor(b, device);
    expectTensor(va.ops.matmul(ta, tb, opts), ref, `matmul ${c.name} ${device}`, 2e-5);
    const g = va.ops.matmulBackward(ta, tb, toTensor(d, device), opts);
    const gr = matmulBackwardRef(a, b, d, opts);
    expectTensor(g.dA, gr.dA, `matmulBackward dA ${c.name} ${device}`, 2e-5);
    expectTensor(g.dB, gr.dB, `matmulBackward dB ${c.name} ${device}`, 2e-5);
  }));

  it('matmul with K = 0 gives zeros, with M = 0 an empty result', () => scoped(() => {
    const out = va.ops.matmul(va.zeros([3, 0], { device }), va.zeros([0, 4], { device }));
    expect(Array.from(out.dataSync())).toEqual(new Array(12).fill(0));
    const e = va.ops.matmul(va.zeros([0, 2], { device }), floatTensor([2, 4], device));
    expect(e.shape).toEqual([0, 4]);
    const g = va.ops.matmulBackward(va.zeros([0, 2], { device }), floatTensor([2, 4], device), va.zeros([0, 4], { device }));
    expect(Array.from(g.dB.dataSync())).toEqual(new Array(8).fill(0));
  }));

  it.each([
    ['3-D x with bias', [2, 3, 5], [4, 5], true],
    ['2-D x without bias', [1, 7], [3, 7], false],
    ['1-D x', [6], [2, 6], true],
    ['wide', [3, 37], [11, 37], true],
  ] as [string, number[], number[], boolean][])('linear forward and backward: %s', (_, xs, ws, withBias) => scoped(() => {
    const rng = new Rng(xs[0] * 7 + ws[0]);
    const x = rng.arr(xs);
    const w = rng.arr(ws);
    const bias = withBias ? rng.arr([ws[0]]) : null;
    const ref = linearRef(x, w, bias);
    const d = rng.arr(ref.shape);
    const tx = toTensor(x, device);
    const tw = toTensor(w, device);
    expectTensor(va.ops.linear(tx, tw, bias ? toTensor(bias, device) : undefined), ref, `linear ${device}`, 2e-5);
    const g = va.ops.linearBackward(tx, tw, toTensor(d, device), { bias: withBias });
    const gr = linearBackwardRef(x, w, d, withBias);
    expectTensor(g.dX, gr.dX, `linearBackward dX ${device}`, 2e-5);
    expectTensor(g.dW, gr.dW, `linearBackward dW ${device}`, 2e-5);
    if (withBias) expectTensor(g.dBias!, gr.dBias!, `linearBackward dBias ${device}`, 2e-5);
    else expect(g.dBias).toBeUndefined();
  }));

  it('linear edge cases: in = 0 gives the bias, zero rows give zero weight gradients', () => scoped(() => {
    const bias = va.tensor([1, 2, 3], [3], { device });
    const y = va.ops.linear(va.zeros([2, 0], { device }), va.zeros([3, 0], { device }), bias);
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 1, 2, 3]);
    const g = va.ops.linearBackward(va.zeros([0, 2], { device }), floatTensor([3, 2], device), va.zeros([0, 3], { device }), { bias: true });
    expect(Array.from(g.dW.dataSync())).toEqual(new Array(6).fill(0));
    expect(Array.from(g.dBias!.dataSync())).toEqual([0, 0, 0]);
  }));

  it('matmul rejects bad inputs', () => scoped(() => {
    const a = floatTensor([3, 4], device);
    const b = floatTensor([4, 5], device);
    const m = va.ops.matmul as (...args: unknown[]) => unknown;
    const mb = va.ops.matmulBackward as (...args: unknown[]) => unknown;
    expect(() => m(floatTensor([4], device), b)).toThrow(/^matmul: argument 'a' expected a tensor of rank >= 2/);
    expect(() => m(a, floatTensor([4], device))).toThrow(/^matmul: argument 'b' expected a tensor of rank >= 2/);
    expect(() => m(a, floatTensor([5, 5], device))).toThrow(/^matmul: argument 'b' expected second-to-last dimension 4/);
    expect(() => m(a, floatTensor([4, 5], device), { transposeB: true })).toThrow(/^matmul: argument 'b' expected last dimension 4/);
    expect(() => m(floatTensor([2, 3, 4], device), floatTensor([3, 4, 5], device))).toThrow(/^matmul: argument 'b' expected batch dimensions \[2\]/);
    expect(() => m(a, intTensor([4, 5], device))).toThrow(/^matmul: argument 'b' expected dtype float32/);
    expect(() => m(disposedTensor([3, 4], device), b)).toThrow(/^matmul: argument 'a' expected a live tensor/);
    expect(() => m(a, floatTensor([4, 5], otherDevice(device)))).toThrow(new RegExp(`^matmul: argument 'b' expected a tensor on ${device}`));
    expect(() => m(a, b, { transposeA: 1 })).toThrow(/^matmul: argument 'options.transposeA' expected a boolean, received 1/);
    expect(() => m(a, b, 'T')).toThrow(/^matmul: argument 'options' expected an options object/);
    expect(() => mb(a, b, floatTensor([3, 4], device))).toThrow(/^matmulBackward: argument 'dOut' expected shape \[3, 5\]/);
    expect(() => mb(a, b, floatTensor([3, 5], otherDevice(device)))).toThrow(new RegExp(`^matmulBackward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => mb(a, b, disposedTensor([3, 5], device))).toThrow(/^matmulBackward: argument 'dOut' expected a live tensor/);
  }));

  it('linear rejects bad inputs', () => scoped(() => {
    const x = floatTensor([2, 5], device);
    const w = floatTensor([3, 5], device);
    const l = va.ops.linear as (...args: unknown[]) => unknown;
    const lb = va.ops.linearBackward as (...args: unknown[]) => unknown;
    expect(() => l(x, floatTensor([3, 4], device))).toThrow(/^linear: argument 'w' expected shape \[\*, 5\]/);
    expect(() => l(x, floatTensor([15], device))).toThrow(/^linear: argument 'w' expected a rank-2 tensor/);
    expect(() => l(x, w, floatTensor([5], device))).toThrow(/^linear: argument 'bias' expected shape \[3\]/);
    expect(() => l(x, w, 3)).toThrow(/^linear: argument 'bias' expected a float32 Tensor/);
    expect(() => l(floatTensor([], device), w)).toThrow(/^linear: argument 'x' expected a tensor of rank >= 1/);
    expect(() => l(x, w, floatTensor([3], otherDevice(device)))).toThrow(new RegExp(`^linear: argument 'bias' expected a tensor on ${device}`));
    expect(() => l(disposedTensor([2, 5], device), w)).toThrow(/^linear: argument 'x' expected a live tensor/);
    expect(() => lb(x, w, floatTensor([2, 5], device))).toThrow(/^linearBackward: argument 'dOut' expected shape \[2, 3\]/);
    expect(() => lb(x, w, floatTensor([2, 3], device), { bias: 'yes' })).toThrow(/^linearBackward: argument 'options.bias' expected a boolean/);
    expect(() => lb(x, intTensor([3, 5], device), floatTensor([2, 3], device))).toThrow(/^linearBackward: argument 'w' expected dtype float32/);
  }));
});
