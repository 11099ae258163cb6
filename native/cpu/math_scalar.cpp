// visattn — vectorised math, baseline build (4 lanes: SSE2 on x86-64, portable elsewhere).
#include "cpu/math_internal.h"

#define VA_VM_LANES 4
#include "cpu/vmath.inc"

namespace va {
namespace cpu {
namespace math {
const MathKernels& mathScalar() { return kVmTable; }
}  // namespace math
}  // namespace cpu
}  // namespace va
