// visattn — cpu k-means cross-attention / L2 normalisation kernels, AVX2 build (8 lanes, FMA).
// Compiled with the *_avx2.cpp flags; only used after the runtime check in isaName().
#define VA_KM_LANES 8
#include "cpu/kmeans_kernel.inc"

namespace va {
namespace cpu {
namespace kmeans {
const KmKernels& kernelsAvx2() { return kKmTable; }
}  // namespace kmeans
}  // namespace cpu
}  // namespace va
