// The CUDA emulator proves it runs kernels faithfully AND that it catches kernel bugs: a missing
// barrier gives wrong results, a divergent shuffle and a trap become thrown errors naming the kernel
// (never a hang, never an abort), unwritten shared memory reads as NaN poison, mma.sync is exact.
import * as va from '../lib';

const run = (name: string) => Array.from(va.testing.selfTest('emu', name));

describe('emu self-test kernels', () => {
  test('a correct block reduction gives the exact sums', () => {
    expect(run('reduce_ok')).toEqual([32640, 98176, 163712, 229248]);
  });

  test('the same reduction with one barrier removed gives wrong sums', () => {
    const got = run('reduce_missing_barrier');
    const right = [32640, 98176, 163712, 229248];
    expect(got.length).toBe(4);
    for (let i = 0; i < 4; i++) expect(got[i]).not.toBe(right[i]);
  });

  test('a divergent shuffle is a thrown error naming the kernel, not a hang', () => {
    expect(() => run('divergent_shuffle')).toThrow(/divergentShuffleKernel.*deadlock.*__shfl_xor_sync/);
    // the emulator is still usable afterwards
    expect(run('reduce_ok')).toEqual([32640, 98176, 163712, 229248]);
  });

  test('__trap() is a thrown error naming the kernel and the thread', () => {
    expect(() => run('trap')).toThrow(/trapKernel.*thread \(5,0,0\).*__trap\(\) called/);
  });

  test('warp shuffles, votes and reductions', () => {
    const out = run('warp_ops');
    expect(out.length).toBe(17 * 32);
    const expected = (k: number, lane: number): number => {
      switch (k) {
        case 0: return ((lane + 3) % 32) * 1.5;
        case 1: return lane ^ 5;
        case 2: return lane % 8 >= 2 ? lane - 2 : lane;
        case 3: return lane % 16 < 13 ? lane + 3 : lane;
        case 4: return (lane & ~3) + 1;
        case 5: return lane & 8 ? lane ^ 8 : lane;
        case 6: return 37449;
        case 7: return 18724;
        case 8: return 1;
        case 9: return 0;
        case 10: return 1;
        case 11: return (lane ^ 16) * 0.25;
        case 12: return lane < 31 ? 3 * (lane + 1) : 93;
        case 13: return 32;
        case 14: return lane < 16 ? (15 - lane) * 2 : (lane ^ 1) * 2;
        case 15: return 496;
        default: return 21;
      }
    };
    for (let k = 0; k < 17; k++) for (let lane = 0; lane < 32; lane++) {
      expect({ k, lane, v: out[k * 32 + lane] }).toEqual({ k, lane, v: expected(k, lane) });
    }
  });

  test('atomics from many blocks give exact totals', () => {
    expect(run('atomics')).toEqual([1024, 523776, 1023, -23, 2048, 3072, 523776, 512]);
  });

  test('unwritten dynamic shared memory reads as NaN poison', () => {
    const out = run('dynamic_smem');
    expect(Number.isNaN(out[0])).toBe(true);
    expect(out[1]).toBe(3);
    expect(Number.isNaN(out[2])).toBe(true);
    expect(out[3]).toBe(3);
  });

  test('mma.sync m16n8k8 tf32 follows the PTX fragment layout and rounds operands to tf32', () => {
    const out = run('mma_tf32');
    expect(out.length).toBe(128);
    for (let i = 0; i < 16; i++) for (let j = 0; j < 8; j++) {
      // A's inputs sit exactly halfway between two tf32 values; cvt.rna rounds them up to (8i+k+1)/1024
      let d = (i - j) / 2;
      for (let k = 0; k < 8; k++) d += (1 + (8 * i + k + 1) / 1024) * (((3 * k + 5 * j) % 7) - 3);
      expect({ i, j, err: Math.abs(out[i * 8 + j] - d) <= 1e-6 * Math.max(1, Math.abs(d)) }).toEqual({ i, j, err: true });
    }
  });

  test('unknown self-test names are errors', () => {
    expect(() => run('nope')).toThrow(/unknown name 'nope'/);
  });
});
