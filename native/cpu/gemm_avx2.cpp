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
}  // namespace
#define VA_PREFETCH(p) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0)

#define VA_KMR 6
#define VA_KNV 2
#include "cpu/gemm_kernel.inc"

namespace va {
namespace cpu {
namespace gemm {

const KernelInfo& kernelAvx2() {
  static const KernelInfo info = {"avx2", kMR, kNR, 256, &microKernel};  // kc·16·4 B = 16 KiB
  return info;
}

}  // namespace gemm
}  // namespace cpu
}  // namespace va
