// visattn — internal interface between the GEMM driver (gemm.cpp) and its per-ISA micro-kernels
// (gemm_avx512.cpp, gemm_avx2.cpp, gemm_scalar.cpp). Only plain declarations here: no inline code,
// so nothing compiled with AVX flags can leak into other translation units.
#pragma once
#include <cstdint>

#include "runtime/thread_pool.h"
#include "visattn/params.h"

namespace va {
namespace cpu {
namespace gemm {

// Micro-kernel: acc[MR×NR] = Σ_{k<kc} Ap[k·MR + r] · Bp[k·NR + c]  (packed, zero-padded panels),
// then writes the top-left mr×nr corner of the tile into C (row stride ldc):
//   first: C = alpha·acc + (beta != 0 ? beta·C : 0) + (bias ? bias[c] : 0)   (beta == 0: C not read)
//   else:  C = C + alpha·acc
// Ap and Bp are 64-byte aligned; mr <= MR, nr <= NR; kc >= 1.
// The epilogue parameters travel through memory so that they hold no vector register during the
// k loop (AVX2 has 16 ymm registers and the 6×16 tile needs 15 of them).
struct Epilogue {
  float alpha, beta;
  const float* bias;  // already offset to the tile's first column; null: none
  bool first;
  const float* nextB;  // B micro-panel of the caller's next tile, prefetched during the k loop; or null
};
using MicroKernel = void (*)(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc,
                             int mr, int nr, const Epilogue* ep);

// Packing of full-width panels (pure data movement, so every ISA packs bit-identical panels), W
// being MR (A panels) or NR (B panels):
//   copy:  np panels, panel p at dst + p·pstride: dst_p[k·W + w] = src[k·ld + p·W + w], k < len
//          (the W values of one k are contiguous in the source: A transposed, B not transposed)
//   trans: one panel: dst[k·W + w] = src[w·ld + k], k < len
//          (each of the W source rows is contiguous in k: A not transposed, B transposed)
using PackCopy = void (*)(const float* src, int64_t ld, int64_t len, int64_t np, int64_t pstride,
                          float* dst);
using PackTrans = void (*)(const float* src, int64_t ld, int64_t len, float* dst);

struct KernelInfo {
  const char* name;
  int MR, NR;
  int KC;  // K block: the kc×NR packed B micro-panel stays in L1 while the kernel sweeps the A block
  MicroKernel kernel;
  PackCopy packCopyA, packCopyB;    // W = MR, NR
  PackTrans packTransA, packTransB;  // W = MR, NR
};

// Defined in the per-ISA translation units.
const KernelInfo& kernelAvx512();
const KernelInfo& kernelAvx2();
const KernelInfo& kernelScalar();

}  // namespace gemm
}  // namespace cpu
}  // namespace va

namespace va {
namespace cpu {
namespace detail {
// Re-reads VISATTN_ISA (isaName() caches it at first use). For the test driver.
void refreshIsa();
// The GEMM driver with an explicit micro-kernel (for the test driver).
void matmulWith(const gemm::KernelInfo& ki, const MatmulParams& p, ThreadPool& pool);
}  // namespace detail
}  // namespace cpu
}  // namespace va
