// visattn — AVX2/FMA GEMM micro-kernel (6×16 register tile: 12 ymm accumulators).
// Compiled with -mavx2 -mfma (CMake: *_avx2.cpp); only called after the runtime check in isaName().
#include <immintrin.h>

#include <cstdint>

#include "cpu/gemm_internal.h"

namespace {
constexpr int VL = 8;
typedef __m256 V;
inline V vzero() { return _mm256_setzero_ps(); }
inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, V a) { _mm256_storeu_ps(p, a); }
inline V vset1(float x) { return _mm256_set1_ps(x); }
inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }

// 8×8 transpose: on entry r[i] = row i (8 consecutive k), on exit r[k] = (row 0..7 at k).
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// packTrans<W> for blocks of 8 k: dst[k·W + w] = src[w·ld + k]. W = 16 (B panels): two 8×8
// transposes per block. W = 6 (A panels): one 8×8 transpose with two zero rows, stored with
// overlapping 8-float stores in ascending k (each one's two extra floats are overwritten by the
// next; the last one is stored as 4 + 2 so nothing past the block is written).
template <int W>
int64_t packTrans8(const float* __restrict src, int64_t ld, int64_t len, float* __restrict dst) {
  int64_t k = 0;
  if constexpr (W == 16) {
    for (; k + 8 <= len; k += 8) {
      float* d = dst + k * 16;
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        __m256 r[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (8 * h + i) * ld + k);
        transpose8(r);
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(d + i * 16 + 8 * h, r[i]);
      }
    }
  } else if constexpr (W == 6) {
    for (; k + 8 <= len; k += 8) {
      float* d = dst + k * 6;
      __m256 r[8];
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(src + i * ld + k);
      r[6] = r[7] = _mm256_setzero_ps();
      transpose8(r);
#pragma GCC unroll 7
      for (int i = 0; i < 7; ++i) _mm256_storeu_ps(d + i * 6, r[i]);
      _mm_storeu_ps(d + 42, _mm256_castps256_ps128(r[7]));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 46), _mm256_extractf128_ps(r[7], 1));
    }
  }
  return k;
}
}  // namespace
#define VA_PACK_TRANS8 packTrans8
#define VA_PREFETCH(p) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0)

#define VA_KMR 6
#define VA_KNV 2
#include "cpu/gemm_kernel.inc"

namespace va {
namespace cpu {
namespace gemm {

const KernelInfo& kernelAvx2() {
  // kc·16·4 B = 24 KiB of B micro-panel (+ 9 KiB of A micro-panel streaming through the 32 KiB
  // L1D); K = 1024 splits into three blocks of 342.
  static const KernelInfo info = VA_GEMM_KERNEL_INFO("avx2", 384);
  return info;
}

}  // namespace gemm
}  // namespace cpu
}  // namespace va
