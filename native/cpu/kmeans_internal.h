// visattn — cpu kMaX-DeepLab k-means cross-attention and row L2 normalisation: per-ISA kernel tables
// (kmeans_kernel.inc compiled three times: kmeans_avx512.cpp, kmeans_avx2.cpp and, with SSE2 vectors,
// kmeans.cpp) and the threaded drivers that run a given table (kmeans.cpp). Declarations only.
#pragma once
#include <cstdint>

#include "runtime/thread_pool.h"
#include "visattn/params.h"

namespace va {
namespace cpu {
namespace kmeans {

struct KmKernels {
  int lanes;
  // Centres per packed panel (a multiple of `lanes`): the register tile's width.
  int panel;
  // Pixels per forward task (a multiple of every register-tile height; results never depend on it).
  int64_t block;
  // Scores, arg-max (assign) and, when p.logits, logits of the pixels [n0, n1) of image b.
  // cT: image b's centres packed in panels: centres [l0, l0 + w), l0 a multiple of `panel` and
  // w = min(panel, Lp − l0), are the w-wide rows of the panel's [D][w] block starting at cT + l0·D
  // (Lp = L rounded up to `lanes`, padding columns 0), so a tile streams its panel contiguously.
  void (*assign)(const KMeansParams& p, const float* cT, int64_t Lp, int64_t b, int64_t n0, int64_t n1);
  // U[assign[b,n], :] += values[b, n, :] for n = n0, n0+1, … n1-1 (U: an L × Dv block, row-major).
  void (*accumulate)(const KMeansParams& p, int64_t b, int64_t n0, int64_t n1, float* U);
  // dst[i] = Σ_{c < count} src[c·stride + i] in ascending c, for i ∈ [i0, i1).
  void (*sumSlices)(const float* src, int64_t count, int64_t stride, float* dst, int64_t i0, int64_t i1);
  // dValues rows r ∈ [r0, r1) (r = b·N + n) = dUpdate[b, assign[r], :] (assign already validated).
  void (*gather)(const KMeansBackwardParams& p, int64_t r0, int64_t r1);
  void (*l2Normalize)(const L2NormalizeParams& p, int64_t r0, int64_t r1);
  void (*l2NormalizeBackward)(const L2NormalizeBackwardParams& p, int64_t r0, int64_t r1);
};

const KmKernels& kernelsAvx512();
const KmKernels& kernelsAvx2();
const KmKernels& kernelsScalar();

void forwardWith(const KmKernels& k, const KMeansParams& p, ThreadPool& pool);
void backwardWith(const KmKernels& k, const KMeansBackwardParams& p, ThreadPool& pool);
void l2NormalizeWith(const KmKernels& k, const L2NormalizeParams& p, ThreadPool& pool);
void l2NormalizeBackwardWith(const KmKernels& k, const L2NormalizeBackwardParams& p, ThreadPool& pool);

}  // namespace kmeans
}  // namespace cpu
}  // namespace va
