// Smoke test of the machine-limit probes used by the benchmarks (no timing thresholds: performance
// targets live in bench/, never in tests).
import { native } from '../lib/native';
import * as va from '../lib';

describe('benchmark probes', () => {
  test('FMA probe reports a positive rate with the ISA the kernels use', () => {
    const r = native.probeFma(1, 0.05);
    if (typeof r === 'string') throw new Error(r);
    expect(r.gflops).toBeGreaterThan(0);
    expect(r.gflopsMedian).toBeGreaterThan(0);
    expect(r.isa).toBe(va.info().cpu.isa);
    expect(r.threads).toBe(1);
  });
  test('bandwidth probe reports a positive rate', () => {
    const r = native.probeBandwidth(1, 1 << 20);
    if (typeof r === 'string') throw new Error(r);
    expect(r.gbps).toBeGreaterThan(0);
  });
  test('bad probe arguments are error strings, not crashes', () => {
    expect(typeof native.probeFma(0, 0.05)).toBe('string');
    expect(typeof native.probeFma(1, -1)).toBe('string');
    expect(typeof native.probeBandwidth(1, 0)).toBe('string');
  });
});
