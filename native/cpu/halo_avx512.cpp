// visattn — cpu HaloNet halo attention kernels, AVX-512 build (16 lanes). Compiled with the
// *_avx512.cpp flags; only used after the runtime check in isaName().
#define VA_HL_LANES 16
#include "cpu/halo_kernel.inc"

namespace va {
namespace cpu {
namespace halo {
const HaloKernels& kernelsAvx512() { return kHlTable; }
}  // namespace halo
}  // namespace cpu
}  // namespace va
