// visattn — AVX2+FMA loops of the machine-limit probes (probe.h). Compiled with -mavx2 -mfma (CMake:
// *_avx2.cpp); only called after the runtime check in probe.cpp (cpu::isaName() == "avx2").
#include <immintrin.h>

#include <cstdint>

#include "cpu/probe.h"

namespace va {
namespace cpu {
namespace probe {

namespace {

// 12 independent 256-bit chains (2 FMA pipes × 4-5 cycles latency needs 8-10); 12 accumulators
// plus the two constants fit the 16 ymm registers without spilling.
constexpr int kChains = 12;
constexpr int kLanes = 8;

float fmaLoop(int64_t iters, float x) {
  const __m256 m = _mm256_set1_ps(0.99999f);
  const __m256 a = _mm256_set1_ps(1e-5f);
  __m256 acc[kChains];
#pragma GCC unroll 12
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(x + 0.001f * static_cast<float>(c));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, a);
  }
  __m256 s = acc[0];
#pragma GCC unroll 12
  for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

void triad(float* a, const float* b, const float* c, float s, int64_t n) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 b0 = _mm256_load_ps(b + i), b1 = _mm256_load_ps(b + i + 8);
    __m256 b2 = _mm256_load_ps(b + i + 16), b3 = _mm256_load_ps(b + i + 24);
    __m256 c0 = _mm256_load_ps(c + i), c1 = _mm256_load_ps(c + i + 8);
    __m256 c2 = _mm256_load_ps(c + i + 16), c3 = _mm256_load_ps(c + i + 24);
    _mm256_store_ps(a + i, _mm256_fmadd_ps(vs, c0, b0));
    _mm256_store_ps(a + i + 8, _mm256_fmadd_ps(vs, c1, b1));
    _mm256_store_ps(a + i + 16, _mm256_fmadd_ps(vs, c2, b2));
    _mm256_store_ps(a + i + 24, _mm256_fmadd_ps(vs, c3, b3));
  }
  for (; i < n; ++i) a[i] = b[i] + s * c[i];
}

}  // namespace

const Kernels& kernelsAvx2() {
  static const Kernels k{"avx2", 2.0 * kChains * kLanes, fmaLoop, triad};
  return k;
}

}  // namespace probe
}  // namespace cpu
}  // namespace va
