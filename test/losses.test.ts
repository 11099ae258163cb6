// va.losses on every device against the float64 oracles (test/oracle/group_decoder.ts, checked against
// finite differences in test/oracle.group_decoder.test.ts): the asymmetric loss (sum over batch and
// classes) with γ+ ∈ {0, 1}, the focusing-weight gradient detached or not, large logits, soft targets;
// sigmoid BCE with mean and sum reductions; the upstream scalar dLoss; empty inputs; argument validation.
import * as va from '../lib';
import type { Device } from '../lib';
import { disposedTensor, expectTensor, floatTensor, intTensor, otherDevice, read, Rng, scoped, testDevices, toTensor } from './helpers';
import { aslGradRef, aslRef, AslRefOptions, bceGradRef, bceRef } from './oracle/group_decoder';
import { Arr, zerosArr } from './oracle/nd';

const scalar = (v: number): Arr => ({ data: Float64Array.of(v), shape: [] });

interface LossCase {
  name: string;
  shape: number[];
  /** logits std, or explicit values cycled through */
  std?: number;
  values?: number[];
  /** binary targets with this positive rate, or soft targets */
  soft?: boolean;
  o: AslRefOptions;
}

function lossData(c: LossCase, seed = 1) {
  const rng = new Rng(c.shape.reduce((p, x) => p * 13 + x, seed) + c.name.length);
  const logits = rng.arr(c.shape, { std: c.std ?? 2 });
  if (c.values) for (let i = 0; i < logits.data.length; i++) logits.data[i] = Math.fround(c.values[i % c.values.length]);
  const targets = zerosArr(c.shape);
  for (let i = 0; i < targets.data.length; i++) targets.data[i] = c.soft ? Math.fround(rng.next()) : rng.next() < 0.3 ? 1 : 0;
  return { logits, targets };
}

// logits hitting every regime: p < eps (positives clamp), p <= clip (negatives give 0), p = 1 in float32
const LARGE = [-60, -30, -20, -3.5, -1, 0, 0.5, 3, 17, 30, 60, -2.9444, 2.5];

const ASL: LossCase[] = [
  { name: 'defaults (γ− 4, γ+ 1, clip 0.05), 4×80', shape: [4, 80], o: {} },
  { name: 'γ+ 0 (training scripts)', shape: [4, 80], o: { gammaPos: 0 } },
  { name: 'γ+ 1, focalGrad', shape: [3, 37], o: { gammaPos: 1, focalGrad: true } },
  { name: 'γ+ 0, focalGrad', shape: [3, 37], o: { gammaPos: 0, focalGrad: true } },
  { name: 'γ− 2, clip 0, batch 1', shape: [1, 50], o: { gammaNeg: 2, clip: 0 } },
  { name: 'γ− 2.5, clip 0.1, focalGrad, odd sizes', shape: [5, 9], o: { gammaNeg: 2.5, clip: 0.1, focalGrad: true } },
  { name: 'γ± 0, clip 0 (plain BCE)', shape: [2, 33], o: { gammaPos: 0, gammaNeg: 0, clip: 0 } },
  { name: 'large logits, defaults', shape: [4, 39], values: LARGE, o: {} },
  { name: 'large logits, γ+ 0', shape: [4, 39], values: LARGE, o: { gammaPos: 0 } },
  { name: 'large logits, γ+ 1, focalGrad', shape: [4, 39], values: LARGE, o: { focalGrad: true } },
  { name: 'large logits, γ+ 0, focalGrad, clip 0', shape: [4, 39], values: LARGE, o: { gammaPos: 0, focalGrad: true, clip: 0 } },
  { name: 'logits of std 8', shape: [6, 40], std: 8, o: { gammaPos: 0 } },
  { name: 'soft targets (params.h form), defaults', shape: [3, 21], soft: true, o: {} },
  { name: 'soft targets, focalGrad, γ+ 0', shape: [3, 21], soft: true, o: { gammaPos: 0, focalGrad: true } },
  { name: 'eps 1e-4', shape: [3, 21], values: LARGE, o: { eps: 1e-4, focalGrad: true } },
  { name: 'OpenImages-like 2×9605', shape: [2, 9605], o: { gammaPos: 0 } },
];

describe.each(testDevices())('asymmetricLoss on %s', (device) => {
  it.each(ASL.map((c) => [c.name, c] as const))('loss (sum) and dLogits: %s', (_, c) => scoped(() => {
    const x = lossData(c);
    const logits = toTensor(x.logits, device);
    const targets = toTensor(x.targets, device);
    const loss = va.losses.asymmetricLoss(logits, targets, c.o);
    expect(loss.shape).toEqual([]);
    expectTensor(loss, scalar(aslRef(x.logits, x.targets, c.o)), `asymmetricLoss ${device}`);
    const { dLogits } = va.losses.asymmetricLossBackward(logits, targets, c.o);
    expectTensor(dLogits, aslGradRef(x.logits, x.targets, c.o), `asymmetricLossBackward ${device}`);
  }));

  it('defaults are γ− 4, γ+ 1, clip 0.05, eps 1e-8, focalGrad false; dLoss scales the gradient', () => scoped(() => {
    const c = ASL[0];
    const x = lossData(c, 5);
    const logits = toTensor(x.logits, device);
    const targets = toTensor(x.targets, device);
    const explicit = { gammaNeg: 4, gammaPos: 1, clip: 0.05, eps: 1e-8, focalGrad: false };
    expectTensor(va.losses.asymmetricLoss(logits, targets), scalar(aslRef(x.logits, x.targets, explicit)), `asl defaults ${device}`);
    const g = aslGradRef(x.logits, x.targets, explicit);
    expectTensor(va.losses.asymmetricLossBackward(logits, targets).dLogits, g, `asl backward defaults ${device}`);
    const scaled = { data: g.data.map((v) => v * -0.25), shape: g.shape };
    expectTensor(va.losses.asymmetricLossBackward(logits, targets, undefined, -0.25).dLogits, scaled, `asl backward dLoss ${device}`);
  }));

  it('is a sum, not a mean: doubling the batch doubles the loss', () => scoped(() => {
    const c = ASL[1];
    const x = lossData(c, 6);
    const two = (a: Arr): Arr => ({ data: Float64Array.from([...a.data, ...a.data]), shape: [a.shape[0] * 2, a.shape[1]] });
    const l1 = read(va.losses.asymmetricLoss(toTensor(x.logits, device), toTensor(x.targets, device), c.o))[0];
    const l2 = read(va.losses.asymmetricLoss(toTensor(two(x.logits), device), toTensor(two(x.targets), device), c.o))[0];
    expect(Math.abs(l2 - 2 * l1)).toBeLessThan(2e-4 * Math.abs(l2));
  }));

  it('empty input: a zero loss and an empty gradient', () => scoped(() => {
    const z = va.zeros([0, 80], { device });
    const loss = va.losses.asymmetricLoss(z, z);
    expect(loss.shape).toEqual([]);
    expect(Array.from(read(loss))).toEqual([0]);
    expect(va.losses.asymmetricLossBackward(z, z, {}, 2).dLogits.shape).toEqual([0, 80]);
  }));

  it('rejects bad inputs', () => scoped(() => {
    const al = va.losses.asymmetricLoss as (...a: unknown[]) => unknown;
    const ab = va.losses.asymmetricLossBackward as (...a: unknown[]) => unknown;
    const logits = floatTensor([4, 6], device);
    const targets = floatTensor([4, 6], device);
    expect(() => al(logits, targets)).not.toThrow();
    expect(() => al(logits, floatTensor([4, 5], device))).toThrow(
      /^asymmetricLoss: argument 'targets' expected shape \[4, 6\] \(the shape of logits; float32 values in \[0, 1\]\), received a float32 tensor of shape \[4, 5\]/);
    expect(() => ab(logits, floatTensor([24], device))).toThrow(/^asymmetricLossBackward: argument 'targets' expected shape \[4, 6\] \(the shape of logits/);
    expect(() => al(logits, intTensor([4, 6], device))).toThrow(/^asymmetricLoss: argument 'targets' expected dtype float32, received a int32 tensor of shape \[4, 6\]/);
    expect(() => al(logits, floatTensor([4, 6], otherDevice(device)))).toThrow(new RegExp(`^asymmetricLoss: argument 'targets' expected a tensor on ${device} \\(the device of 'logits'\\)`));
    expect(() => al(disposedTensor([4, 6], device), targets)).toThrow(/^asymmetricLoss: argument 'logits' expected a live tensor/);
    expect(() => al(logits, disposedTensor([4, 6], device))).toThrow(/^asymmetricLoss: argument 'targets' expected a live tensor/);
    expect(() => al(logits, targets, { gammaNeg: -1 })).toThrow(/^asymmetricLoss: argument 'options.gammaNeg' expected a finite number >= 0, received -1$/);
    expect(() => al(logits, targets, { gammaPos: NaN })).toThrow(/^asymmetricLoss: argument 'options.gammaPos' expected a finite number, received NaN$/);
    expect(() => al(logits, targets, { clip: 1 })).toThrow(/^asymmetricLoss: argument 'options.clip' expected a number in \[0, 1\), received 1$/);
    expect(() => al(logits, targets, { clip: -0.05 })).toThrow(/^asymmetricLoss: argument 'options.clip' expected a number in \[0, 1\)/);
    expect(() => al(logits, targets, { eps: 0 })).toThrow(/^asymmetricLoss: argument 'options.eps' expected a number in \(0, 1\) \(positive in float32\), received 0$/);
    expect(() => al(logits, targets, { focalGrad: 'yes' })).toThrow(/^asymmetricLoss: argument 'options.focalGrad' expected a boolean, received "yes"$/);
    expect(() => al(logits, targets, 'sum')).toThrow(/^asymmetricLoss: argument 'options' expected an options object, received "sum"$/);
    expect(() => ab(logits, targets, {}, NaN)).toThrow(/^asymmetricLossBackward: argument 'dLoss' expected a finite number, received NaN$/);
    expect(() => ab(logits, targets, {}, floatTensor([], device))).toThrow(/^asymmetricLossBackward: argument 'dLoss' expected a finite number, received a float32 tensor of shape \[\]/);
  }));
});

describe.each(testDevices())('bceWithLogits on %s', (device) => {
  const BCE: [string, number[], number | undefined, number[] | undefined, boolean][] = [
    ['binary targets, 4×80', [4, 80], 2, undefined, false],
    ['soft targets, odd 5×9', [5, 9], 2, undefined, true],
    ['large logits', [4, 39], undefined, LARGE, false],
    ['rank 1, 1000 logits of std 6', [1000], 6, undefined, true],
  ];
  it.each(BCE)('mean and sum, forward and backward with dLoss: %s', (name, shape, std, values, soft) => scoped(() => {
    const x = lossData({ name, shape, std, values, soft, o: {} }, 3);
    const logits = toTensor(x.logits, device);
    const targets = toTensor(x.targets, device);
    for (const reduction of ['mean', 'sum'] as const) {
      const loss = va.losses.bceWithLogits(logits, targets, { reduction });
      expect(loss.shape).toEqual([]);
      expectTensor(loss, scalar(bceRef(x.logits, x.targets, reduction)), `bce ${reduction} ${device}`);
      for (const dLoss of [1, 2.5]) {
        const g = va.losses.bceWithLogitsBackward(logits, targets, { reduction }, dLoss).dLogits;
        expectTensor(g, bceGradRef(x.logits, x.targets, reduction, dLoss), `bce backward ${reduction} dLoss ${dLoss} ${device}`);
      }
    }
    // the default reduction is the mean
    expectTensor(va.losses.bceWithLogits(logits, targets), scalar(bceRef(x.logits, x.targets, 'mean')), `bce default ${device}`);
    expectTensor(va.losses.bceWithLogitsBackward(logits, targets).dLogits, bceGradRef(x.logits, x.targets, 'mean'), `bce backward default ${device}`);
  }));

  it("empty input: 'sum' gives 0, 'mean' is rejected", () => scoped(() => {
    const z = va.zeros([3, 0], { device });
    expect(Array.from(read(va.losses.bceWithLogits(z, z, { reduction: 'sum' })))).toEqual([0]);
    expect(va.losses.bceWithLogitsBackward(z, z, { reduction: 'sum' }).dLogits.shape).toEqual([3, 0]);
    expect(() => va.losses.bceWithLogits(z, z)).toThrow(
      /^bceWithLogits: argument 'logits' expected a non-empty tensor \(reduction 'mean' over no element is undefined; use 'sum'\), received a float32 tensor of shape \[3, 0\]/);
    expect(() => va.losses.bceWithLogitsBackward(z, z)).toThrow(/^bceWithLogitsBackward: argument 'logits' expected a non-empty tensor/);
  }));

  it('rejects bad inputs', () => scoped(() => {
    const bl = va.losses.bceWithLogits as (...a: unknown[]) => unknown;
    const bb = va.losses.bceWithLogitsBackward as (...a: unknown[]) => unknown;
    const logits = floatTensor([4, 6], device);
    expect(() => bl(logits, floatTensor([6, 4], device))).toThrow(
      /^bceWithLogits: argument 'targets' expected shape \[4, 6\] \(the shape of logits; float32 values in \[0, 1\]\), received a float32 tensor of shape \[6, 4\]/);
    expect(() => bl(logits, floatTensor([4, 6], device), { reduction: 'none' })).toThrow(/^bceWithLogits: argument 'options.reduction' expected 'mean' or 'sum', received "none"$/);
    expect(() => bl(logits, floatTensor([4, 6], otherDevice(device)))).toThrow(new RegExp(`^bceWithLogits: argument 'targets' expected a tensor on ${device}`));
    expect(() => bb(logits, intTensor([4, 6], device))).toThrow(/^bceWithLogitsBackward: argument 'targets' expected dtype float32/);
    expect(() => bb(disposedTensor([4, 6], device), floatTensor([4, 6], device))).toThrow(/^bceWithLogitsBackward: argument 'logits' expected a live tensor/);
    expect(() => bb(logits, floatTensor([4, 6], device), {}, Infinity)).toThrow(/^bceWithLogitsBackward: argument 'dLoss' expected a finite number, received Infinity$/);
  }));
});

describe('va.losses surface', () => {
  it('exports the four functions', () => {
    expect(Object.keys(va.losses).sort()).toEqual(['asymmetricLoss', 'asymmetricLossBackward', 'bceWithLogits', 'bceWithLogitsBackward']);
  });
  it.each(testDevices())('a scalar loss on %s is a [] tensor that reads back one value', (device: Device) => scoped(() => {
    const l = va.losses.bceWithLogits(va.zeros([2, 2], { device }), va.ones([2, 2], { device }));
    expect(l.shape).toEqual([]);
    expect(l.size).toBe(1);
    expect(read(l)[0]).toBeCloseTo(Math.log(2), 6);
  }));
});
