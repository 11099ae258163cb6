// visattn — cpu ML-Decoder kernels, AVX2 build (8 lanes). Compiled with the *_avx2.cpp flags; only used
// after the runtime check in isaName().
#define VA_MD_LANES 8
#include "cpu/group_decoder_kernel.inc"

namespace va {
namespace cpu {
namespace mld {
const MldKernels& kernelsAvx2() { return kMdTable; }
}  // namespace mld
}  // namespace cpu
}  // namespace va
