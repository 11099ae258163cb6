// visattn — vectorised math, AVX-512 build (16 lanes). Compiled with the *_avx512.cpp flags; only
// used after the runtime check in isaName(). VA_MATH_AVX512_EMULATE (tests only): the same source
// compiled without AVX flags (GCC lowers the 16-lane vectors to SSE2) under another entry name.
#include "cpu/math_internal.h"

#define VA_VM_LANES 16
#include "cpu/vmath.inc"

namespace va {
namespace cpu {
namespace math {
#if defined(VA_MATH_AVX512_EMULATE)
const MathKernels& mathAvx512Emulated() { return kVmTable; }
#else
const MathKernels& mathAvx512() { return kVmTable; }
#endif
}  // namespace math
}  // namespace cpu
}  // namespace va
