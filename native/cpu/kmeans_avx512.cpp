// visattn — cpu k-means cross-attention / L2 normalisation kernels, AVX-512 build (16 lanes).
// Compiled with the *_avx512.cpp flags; only used after the runtime check in isaName().
#define VA_KM_LANES 16
#include "cpu/kmeans_kernel.inc"

namespace va {
namespace cpu {
namespace kmeans {
const KmKernels& kernelsAvx512() { return kKmTable; }
}  // namespace kmeans
}  // namespace cpu
}  // namespace va
