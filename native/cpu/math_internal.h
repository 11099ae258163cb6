// visattn — per-ISA vectorised math used by the cpu kernels (vmath.inc compiled three times:
// math_avx512.cpp, math_avx2.cpp, math_scalar.cpp). Declarations only: no inline code here.
#pragma once
#include <cstdint>

namespace va {
namespace cpu {
namespace math {

struct MathKernels {
  float (*rowMax)(const float* x, int64_t n);                      // n >= 1
  double (*sum)(const float* x, int64_t n);                        // fixed lane order
  double (*dot)(const float* x, const float* y, int64_t n);        // fixed lane order
  double (*sumSqDiff)(const float* x, int64_t n, float mu);        // Σ (x − mu)², fixed lane order
  void (*expShift)(const float* x, float* y, int64_t n, float sub);  // y = exp(x − sub); y may be x
  void (*gelu)(const float* x, float* y, int64_t n);
  void (*geluBackward)(const float* x, const float* dy, float* dx, int64_t n);
  void (*silu)(const float* x, float* y, int64_t n);
  void (*siluBackward)(const float* x, const float* dy, float* dx, int64_t n);
};

const MathKernels& mathAvx512();
const MathKernels& mathAvx2();
const MathKernels& mathScalar();
// The table for isaName() (or the one set by setKernelsForTesting).
const MathKernels& kernels();
// Test hook: force a table (nullptr: back to isaName()'s).
void setKernelsForTesting(const MathKernels* k);

}  // namespace math
}  // namespace cpu
}  // namespace va
