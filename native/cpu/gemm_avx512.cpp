// visattn — AVX-512 GEMM micro-kernel (12×32 register tile: 24 zmm accumulators).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2 (CMake: *_avx512.cpp); only
// called after the runtime check in isaName(). VA_GEMM_AVX512_EMULATE (tests only) replaces the
// intrinsics by plain arrays so the logic can be checked on machines without AVX-512.
#include <cstdint>

#include "cpu/gemm_internal.h"

#if defined(VA_GEMM_AVX512_EMULATE)
namespace {
constexpr int VL = 16;
struct V {
  float v[VL];
};
inline V vzero() { V r; for (int i = 0; i < VL; ++i) r.v[i] = 0.0f; return r; }
inline V vload(const float* p) { V r; for (int i = 0; i < VL; ++i) r.v[i] = p[i]; return r; }
inline void vstore(float* p, V a) { for (int i = 0; i < VL; ++i) p[i] = a.v[i]; }
inline V vset1(float x) { V r; for (int i = 0; i < VL; ++i) r.v[i] = x; return r; }
inline V vfma(V a, V b, V c) { for (int i = 0; i < VL; ++i) c.v[i] = __builtin_fmaf(a.v[i], b.v[i], c.v[i]); return c; }
inline V vmul(V a, V b) { for (int i = 0; i < VL; ++i) a.v[i] *= b.v[i]; return a; }
inline V vadd(V a, V b) { for (int i = 0; i < VL; ++i) a.v[i] += b.v[i]; return a; }
}  // namespace
#define VA_GEMM_AVX512_ENTRY kernelAvx512Emulated
#else
#include <immintrin.h>
namespace {
constexpr int VL = 16;
typedef __m512 V;
inline V vzero() { return _mm512_setzero_ps(); }
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, V a) { _mm512_storeu_ps(p, a); }
inline V vset1(float x) { return _mm512_set1_ps(x); }
inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
}  // namespace
#define VA_PREFETCH(p) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0)
#define VA_GEMM_AVX512_ENTRY kernelAvx512
#endif

#define VA_KMR 12
#define VA_KNV 2
#include "cpu/gemm_kernel.inc"

namespace va {
namespace cpu {
namespace gemm {

const KernelInfo& VA_GEMM_AVX512_ENTRY() {
  static const KernelInfo info = VA_GEMM_KERNEL_INFO("avx512", 192);  // kc·32·4 B = 24 KiB of the 48 KiB Zen 5 L1D
  return info;
}

}  // namespace gemm
}  // namespace cpu
}  // namespace va
