// visattn — AVX-512 loops of the machine-limit probes (probe.h). Compiled with -mavx512f ... (CMake:
// *_avx512.cpp); only called after the runtime check in probe.cpp (cpu::isaName() == "avx512").
#include <immintrin.h>

#include <cstdint>

#include "cpu/probe.h"

namespace va {
namespace cpu {
namespace probe {

namespace {

// 16 independent 512-bit chains: 2 FMA pipes × 4-cycle latency needs 8; 16 leaves headroom for
// cores with more pipes or longer latency, and still fits the 32 zmm registers with the constants.
constexpr int kChains = 16;
constexpr int kLanes = 16;

float fmaLoop(int64_t iters, float x) {
  const __m512 m = _mm512_set1_ps(0.99999f);
  const __m512 a = _mm512_set1_ps(1e-5f);
  __m512 acc[kChains];
#pragma GCC unroll 16
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(x + 0.001f * static_cast<float>(c));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], m, a);
  }
  __m512 s = acc[0];
#pragma GCC unroll 16
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  alignas(64) float t[16];
  _mm512_store_ps(t, s);
  float sum = 0;
  for (int i = 0; i < 16; ++i) sum += t[i];
  return sum;
}

void triad(float* a, const float* b, const float* c, float s, int64_t n) {
  const __m512 vs = _mm512_set1_ps(s);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 b0 = _mm512_load_ps(b + i), b1 = _mm512_load_ps(b + i + 16);
    __m512 c0 = _mm512_load_ps(c + i), c1 = _mm512_load_ps(c + i + 16);
    _mm512_store_ps(a + i, _mm512_fmadd_ps(vs, c0, b0));
    _mm512_store_ps(a + i + 16, _mm512_fmadd_ps(vs, c1, b1));
  }
  for (; i < n; ++i) a[i] = b[i] + s * c[i];
}

}  // namespace

const Kernels& kernelsAvx512() {
  static const Kernels k{"avx512", 2.0 * kChains * kLanes, fmaLoop, triad};
  return k;
}

}  // namespace probe
}  // namespace cpu
}  // namespace va
