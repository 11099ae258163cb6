// visattn — cpu VOLO outlook attention kernels, AVX2 build (8 lanes). Compiled with the *_avx2.cpp
// flags; only used after the runtime check in isaName().
#define VA_OL_LANES 8
#include "cpu/outlook_kernel.inc"

namespace va {
namespace cpu {
namespace outlook {
const OutlookKernels& kernelsAvx2() { return kOlTable; }
}  // namespace outlook
}  // namespace cpu
}  // namespace va
