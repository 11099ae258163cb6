// visattn — portable GEMM micro-kernel (4×8 tile of plain floats; the compiler may use SSE2).
#include <cstdint>

#include "cpu/gemm_internal.h"

namespace {
constexpr int VL = 8;
struct V {
  float v[VL];
};
inline V vzero() { V r; for (int i = 0; i < VL; ++i) r.v[i] = 0.0f; return r; }
inline V vload(const float* p) { V r; for (int i = 0; i < VL; ++i) r.v[i] = p[i]; return r; }
inline void vstore(float* p, V a) { for (int i = 0; i < VL; ++i) p[i] = a.v[i]; }
inline V vset1(float x) { V r; for (int i = 0; i < VL; ++i) r.v[i] = x; return r; }
inline V vfma(V a, V b, V c) { for (int i = 0; i < VL; ++i) c.v[i] += a.v[i] * b.v[i]; return c; }
inline V vmul(V a, V b) { for (int i = 0; i < VL; ++i) a.v[i] *= b.v[i]; return a; }
inline V vadd(V a, V b) { for (int i = 0; i < VL; ++i) a.v[i] += b.v[i]; return a; }
}  // namespace

#define VA_KMR 4
#define VA_KNV 1
#include "cpu/gemm_kernel.inc"

namespace va {
namespace cpu {
namespace gemm {

const KernelInfo& kernelScalar() {
  static const KernelInfo info = VA_GEMM_KERNEL_INFO("scalar", 256);
  return info;
}

}  // namespace gemm
}  // namespace cpu
}  // namespace va
