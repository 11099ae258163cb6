// visattn — machine-limit probes for the benchmark suite (bench/): the FP32 FMA throughput and the
// streaming (DRAM) bandwidth of THIS machine, measured in the same run as the benchmarks so that
// every result can be reported as a fraction of what the hardware actually delivers.
//
// Both probes run N std::threads concurrently (not the cpu backend's pool: a probe must not depend
// on the code it is measuring) and use the instruction set the cpu kernels use (cpu::isaName():
// the best the CPU supports, lowered by VISATTN_ISA=avx2|scalar). They never exit or abort: a
// failure (e.g. the buffers cannot be allocated) comes back in `error`.
//
// Only plain declarations here (no inline code): the per-ISA loops live in probe_avx512.cpp and
// probe_avx2.cpp, compiled with their own flags, and probe.cpp (default flags) dispatches.
#pragma once
#include <cstdint>
#include <string>

namespace va {
namespace cpu {
namespace probe {

struct FmaResult {
  bool ok = false;
  std::string error;
  const char* isa = "scalar";
  int threads = 0;
  double gflops = 0;        // best measurement slice: the throughput the FMA units sustain
  double gflopsMedian = 0;  // median slice (shows how noisy the machine is)
  double seconds = 0;       // measured time (warm-up excluded)
};

// Runs `threads` threads, each issuing independent FMA chains (enough chains to cover the FMA
// latency on the pipes of current x86 cores), for about `seconds` seconds after a short warm-up.
// FLOPs count 2 per lane per FMA.
FmaResult fmaThroughput(int threads, double seconds);

struct BandwidthResult {
  bool ok = false;
  std::string error;
  const char* isa = "scalar";
  int threads = 0;
  double gbps = 0;        // best repetition (STREAM convention: min time)
  double gbpsMedian = 0;  // median repetition
  int64_t bytesPerArray = 0;
  int reps = 0;
};

// STREAM triad a[i] = b[i] + s·c[i] over three float arrays of `bytesPerArray` bytes each
// (choose >> last-level cache, e.g. 256 MB, to measure DRAM), split into contiguous slices over
// `threads` threads (each thread first-touches its slice). Bytes counted per pass: 3 × array size
// (two reads, one write; write-allocate traffic is not counted, as in STREAM). The result of the
// last pass is checked on sampled elements.
BandwidthResult streamBandwidth(int threads, int64_t bytesPerArray);

// ---- per-ISA loops (internal; defined in probe_avx512.cpp / probe_avx2.cpp / probe.cpp)
struct Kernels {
  const char* isa;
  // FLOPs performed by one iteration of fmaLoop (chains × lanes × 2).
  double flopsPerIter;
  // Runs `iters` iterations of independent FMA chains seeded from x; returns a value that depends
  // on every chain (so that nothing can be optimised away).
  float (*fmaLoop)(int64_t iters, float x);
  // a[i] = b[i] + s·c[i] for i in [0, n); pointers 64-byte aligned.
  void (*triad)(float* a, const float* b, const float* c, float s, int64_t n);
};
const Kernels& kernelsAvx512();
const Kernels& kernelsAvx2();
const Kernels& kernelsScalar();

}  // namespace probe
}  // namespace cpu
}  // namespace va
