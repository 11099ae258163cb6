// visattn — cpu HaloNet halo attention kernels, AVX2 build (8 lanes). Compiled with the *_avx2.cpp
// flags; only used after the runtime check in isaName().
#define VA_HL_LANES 8
#include "cpu/halo_kernel.inc"

namespace va {
namespace cpu {
namespace halo {
const HaloKernels& kernelsAvx2() { return kHlTable; }
}  // namespace halo
}  // namespace cpu
}  // namespace va
