// visattn — cpu VOLO outlook attention kernels, AVX-512 build (16 lanes). Compiled with the *_avx512.cpp
// flags; only used after the runtime check in isaName().
#define VA_OL_LANES 16
#include "cpu/outlook_kernel.inc"

namespace va {
namespace cpu {
namespace outlook {
const OutlookKernels& kernelsAvx512() { return kOlTable; }
}  // namespace outlook
}  // namespace cpu
}  // namespace va
