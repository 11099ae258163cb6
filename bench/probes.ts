// Machine-limit probes (native/cpu/probe.h through native/binding/probes.cpp): the FP32 FMA
// throughput and the streaming (DRAM) bandwidth of THIS machine, measured in the same run as the
// benchmarks. Benchmarks report their GFLOP/s or GB/s as a fraction of these numbers.
//   probeFma: best measurement slice, GFLOP/s over all threads (FMA = 2 FLOPs per lane), with the
//             instruction set the cpu kernels use ('avx512' | 'avx2' | 'scalar');
//   probeBandwidth: best of the triad passes, GB/s (3 arrays counted per pass, STREAM convention).
import { native, NativeProbeBandwidth, NativeProbeFma } from '../lib/native';

export type ProbeFmaResult = NativeProbeFma;
export type ProbeBandwidthResult = NativeProbeBandwidth;

/** FMA throughput with `threads` concurrent threads for about `seconds` seconds. Throws on failure. */
export function probeFma(threads: number, seconds: number): ProbeFmaResult {
  const r = native.probeFma(threads, seconds);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

/** STREAM-triad bandwidth over 3 arrays of `bytesPerArray` bytes with `threads` threads. Throws on failure. */
export function probeBandwidth(threads: number, bytesPerArray: number): ProbeBandwidthResult {
  const r = native.probeBandwidth(threads, bytesPerArray);
  if (typeof r === 'string') throw new Error(r);
  return r;
}
