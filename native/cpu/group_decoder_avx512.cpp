// visattn — cpu ML-Decoder kernels, AVX512 build (16 lanes). Compiled with the *_avx512.cpp flags; only used
// after the runtime check in isaName().
#define VA_MD_LANES 16
#include "cpu/group_decoder_kernel.inc"

namespace va {
namespace cpu {
namespace mld {
const MldKernels& kernelsAvx512() { return kMdTable; }
}  // namespace mld
}  // namespace cpu
}  // namespace va
