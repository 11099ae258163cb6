// visattn — vectorised math, AVX2/FMA build (8 lanes). Compiled with the *_avx2.cpp flags; only used
// after the runtime check in isaName().
#include "cpu/math_internal.h"

#define VA_VM_LANES 8
#include "cpu/vmath.inc"

namespace va {
namespace cpu {
namespace math {
const MathKernels& mathAvx2() { return kVmTable; }
}  // namespace math
}  // namespace cpu
}  // namespace va
