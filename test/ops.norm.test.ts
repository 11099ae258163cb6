// layerNorm forward and backward (dX, dGamma, dBeta) against the oracle.
import * as va from '../lib';
import {
  disposedTensor, expectTensor, floatTensor, gradcheck, intTensor, otherDevice, Rng, scoped, testDevices, toTensor,
} from './helpers';
import { layerNormBackwardRef, layerNormRef } from './oracle/norm';

describe('layerNorm oracle', () => {
  it('backward matches finite differences (x, gamma, beta)', () => {
    const rng = new Rng(6);
    const C = 5;
    gradcheck('layerNorm', ([x, g, b]) => layerNormRef(x, g, b, 1e-3), ([x, g], d) => {
      const r = layerNormBackwardRef(x, g, d, 1e-3);
      return [r.dX, r.dGamma, r.dBeta];
    }, [rng.arr([3, C], { std: 2 }), rng.arr([C]), rng.arr([C])]);
  });
});

describe.each(testDevices())('layerNorm on %s', (device) => {
  const cases: [number[], number][] = [
    [[1, 1], 1e-5], [[3, 1], 1e-5], [[1, 8], 1e-5], [[4, 7], 1e-5], [[2, 3, 33], 1e-5], [[5, 128], 1e-3], [[3, 257], 1e-5],
    [[2, 1030], 0.1], [[9], 1e-5],
  ];
  it.each(cases)('forward and backward, shape %j, eps %p', (shape, eps) => scoped(() => {
    const rng = new Rng(shape.reduce((p, d) => p * 5 + d, 2));
    const C = shape[shape.length - 1];
    // An offset mean (tests the variance computation) and per-row scales.
    const x = rng.arr(shape, { std: 2 });
    for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(x.data[i] + 3);
    const gamma = rng.arr([C]);
    const beta = rng.arr([C]);
    const d = rng.arr(shape);
    const [tx, tg, tb] = [toTensor(x, device), toTensor(gamma, device), toTensor(beta, device)];
    expectTensor(va.ops.layerNorm(tx, tg, tb, { eps }), layerNormRef(x, gamma, beta, eps), `layerNorm ${device}`, 2e-5);
    const g = va.ops.layerNormBackward(tx, tg, tb, toTensor(d, device), { eps });
    const r = layerNormBackwardRef(x, gamma, d, eps);
    expectTensor(g.dX, r.dX, `layerNormBackward dX ${device}`, 2e-5);
    expectTensor(g.dGamma, r.dGamma, `layerNormBackward dGamma ${device}`, 2e-5);
    expectTensor(g.dBeta, r.dBeta, `layerNormBackward dBeta ${device}`, 2e-5);
  }));
  it('uses eps = 1e-5 by default; constant rows give beta', () => scoped(() => {
    const x = { data: Float64Array.from([2, 2, 2, 2, 1, 2, 3, 4]), shape: [2, 4] };
    const gamma = { data: Float64Array.from([1, 2, 3, 4]), shape: [4] };
    const beta = { data: Float64Array.from([0.5, -0.5, 0, 1]), shape: [4] };
    expectTensor(va.ops.layerNorm(toTensor(x, device), toTensor(gamma, device), toTensor(beta, device)),
      layerNormRef(x, gamma, beta, 1e-5), `layerNorm default eps ${device}`, 1e-5);
  }));
  it('zero rows give empty dX and zero dGamma/dBeta', () => scoped(() => {
    const x = va.zeros([0, 3], { device });
    const g = va.ops.layerNormBackward(x, va.ones([3], { device }), va.zeros([3], { device }), x);
    expect(g.dX.shape).toEqual([0, 3]);
    expect(Array.from(g.dGamma.dataSync())).toEqual([0, 0, 0]);
    expect(Array.from(g.dBeta.dataSync())).toEqual([0, 0, 0]);
  }));
  it('rejects bad inputs', () => scoped(() => {
    const x = floatTensor([2, 3], device);
    const g = floatTensor([3], device);
    const b = floatTensor([3], device);
    const ln = va.ops.layerNorm as (...a: unknown[]) => unknown;
    const lb = va.ops.layerNormBackward as (...a: unknown[]) => unknown;
    expect(() => ln(x, floatTensor([4], device), b)).toThrow(/^layerNorm: argument 'gamma' expected shape \[3\]/);
    expect(() => ln(x, g, floatTensor([1, 3], device))).toThrow(/^layerNorm: argument 'beta' expected a rank-1 tensor/);
    expect(() => ln(floatTensor([], device), g, b)).toThrow(/^layerNorm: argument 'x' expected a tensor of rank >= 1/);
    expect(() => ln(va.zeros([2, 0], { device }), va.zeros([0], { device }), va.zeros([0], { device }))).toThrow(/^layerNorm: argument 'x' expected a last dimension >= 1/);
    expect(() => ln(x, g, b, { eps: NaN })).toThrow(/^layerNorm: argument 'options.eps' expected a finite number >= 0, received NaN/);
    expect(() => ln(x, g, b, { eps: Infinity })).toThrow(/^layerNorm: argument 'options.eps' expected a finite number/);
    expect(() => ln(x, g, b, { eps: -1 })).toThrow(/^layerNorm: argument 'options.eps' expected a finite number >= 0/);
    expect(() => ln(x, g, b, { eps: '1e-5' })).toThrow(/^layerNorm: argument 'options.eps' expected a finite number/);
    expect(() => ln(intTensor([2, 3], device), g, b)).toThrow(/^layerNorm: argument 'x' expected dtype float32/);
    expect(() => ln(x, floatTensor([3], otherDevice(device)), b)).toThrow(new RegExp(`^layerNorm: argument 'gamma' expected a tensor on ${device}`));
    expect(() => ln(x, g, disposedTensor([3], device))).toThrow(/^layerNorm: argument 'beta' expected a live tensor/);
    expect(() => lb(x, g, b, floatTensor([3, 2], device))).toThrow(/^layerNormBackward: argument 'dOut' expected shape \[2, 3\]/);
    expect(() => lb(x, g, b, floatTensor([2, 3], otherDevice(device)))).toThrow(new RegExp(`^layerNormBackward: argument 'dOut' expected a tensor on ${device}`));
    expect(() => lb(x, g, b, x, { eps: NaN })).toThrow(/^layerNormBackward: argument 'options.eps' expected a finite number/);
  }));
});
