// The benchmarks' own validation (bench/reference.ts and the fused ops' checks): a benchmark must refuse
// a wrong result and report a finite worst-error ratio for a right one. Small shapes, no timing.
import * as va from '../lib';
import { haloBench } from '../bench/halo';
import { kmeansBench } from '../bench/kmeans';
import { groupFCBench, headBench, xattnBench } from '../bench/mldecoder';
import { compare, compareToMax, merge, ValidationError } from '../bench/reference';
import { testDevices } from './helpers';

describe('bench/reference compare', () => {
  test('exact entries with tolerance 0 (gathers) give worst 0, not NaN', () => {
    const r = compare('exact', [1, 2, 3], [0, 2], [1, 3], [0, 0]);
    expect(r).toEqual({ checked: 2, worst: 0, maxAbsErr: 0 });
  });
  test('the worst ratio and the largest error are reported', () => {
    const r = compare('near', [1, 2.5, 3], [0, 1], [1.25, 2], [1, 1]);
    expect(r.worst).toBeCloseTo(0.5, 12);
    expect(r.maxAbsErr).toBeCloseTo(0.5, 12);
    expect(merge([r, { checked: 3, worst: 0.75, maxAbsErr: 0.1 }])).toEqual({ checked: 5, worst: 0.75, maxAbsErr: 0.5 });
  });
  test('an entry outside its tolerance, a NaN or an inexact gather is refused, naming the entry', () => {
    expect(() => compare('far', [1, 5], [1], [2], [1])).toThrow(ValidationError);
    expect(() => compare('far', [1, 5], [1], [2], [1])).toThrow(/far: element 1 is 5, expected 2/);
    expect(() => compare('nan', [NaN], [0], [0], [1])).toThrow(/nan: element 0 is NaN/);
    expect(() => compare('gather', [1 + 2 ** -20], [0], [1], [0])).toThrow(/gather: element 0/);
    const ref = Float64Array.from([10, -20, 30]);
    expect(compareToMax('max', [10, -20, 30.001], ref, 1, 4).worst).toBeLessThan(1);
    expect(() => compareToMax('max', [10, -20, 31], ref, 1, 4)).toThrow(/max: element 2 is 31/);
  });
});

describe.each(testDevices())('fused-op benchmarks validate on %s', (device) => {
  const cases = [
    kmeansBench(false, { B: 2, N: 37, L: 5, D: 8, Dv: 6 }),
    kmeansBench(true, { B: 2, N: 37, L: 5, D: 8, Dv: 6 }),
    haloBench(false, { B: 1, H: 8, W: 8, M: 2, dk: 8, dv: 8, b: 4, h: 1, s: 1 }),
    haloBench(true, { B: 1, H: 8, W: 8, M: 2, dk: 8, dv: 8, b: 4, h: 1, s: 1 }),
    xattnBench('fwd', { B: 2, Lq: 5, Lk: 9, M: 2, d: 8 }),
    xattnBench('fwdbwd', { B: 2, Lq: 5, Lk: 9, M: 2, d: 8 }),
    xattnBench('b1', { B: 2, Lq: 5, Lk: 9, M: 2, d: 8 }),
    groupFCBench(false, { B: 2, K: 4, D: 8, g: 3, N: 11 }),
    groupFCBench(true, { B: 2, K: 4, D: 8, g: 3, N: 11 }),
    headBench('mld.head.small', { B: 2, T: 6, inDim: 12, N: 11, K: 4, D: 8, M: 2, F: 16 }, false),
    headBench('mld.head.small.train', { B: 2, T: 6, inDim: 12, N: 11, K: 4, D: 8, M: 2, F: 16 }, true),
  ];
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_, def) => {
    const inst = def.setup(device);
    try {
      const r = await inst.validate();
      expect(r.checked).toBeGreaterThan(0);
      expect(Number.isFinite(r.worst)).toBe(true);
      expect(r.worst).toBeLessThanOrEqual(1);
    } finally {
      inst.dispose();
    }
    await va.synchronize(device);
  });
});
