// visattn — cpu ML-Decoder kernels (cross-attention, group FC, dropout, multi-label losses): per-ISA
// kernel tables (group_decoder_kernel.inc compiled three times: group_decoder_avx512.cpp,
// group_decoder_avx2.cpp and, with SSE2 vectors, group_decoder.cpp) and the threaded drivers that run
// a given table (group_decoder.cpp). Declarations only: no inline code, so nothing compiled with AVX
// flags can leak into another translation unit.
#pragma once
#include <cstdint>

#include "runtime/thread_pool.h"
#include "visattn/params.h"

namespace va {
namespace cpu {
namespace mld {

// Query blocking of the cross-attention (a function of the shape only, so results never depend on
// the thread count): queries are processed in blocks of qb (the last one shorter).
struct AttnBlocking {
  int64_t qb, nqb;
};
AttnBlocking attnBlocking(int64_t Lq, int64_t Lk, int lanes);

struct MldKernels {
  int lanes;
  // Forward of tasks [t0, t1), task t = (b·M + m)·nqb + block: out rows and lse of those queries,
  // each written once.
  void (*attnForward)(const CrossAttentionParams& p, const AttnBlocking& blk, int64_t t0, int64_t t1);
  // Backward of the (image, head) units [u0, u1), u = b·M + m: dK and dV of the unit (written; the
  // query blocks are added in ascending order), and dQ of its queries written to dq, a tensor laid
  // out like q with Bq = B (the driver passes p.dQ itself when Bq == B or B == 1, else a workspace
  // that it then sums over the batch).
  void (*attnBackward)(const CrossAttentionBackwardParams& p, const AttnBlocking& blk, float* dq, int64_t u0,
                       int64_t u1);
  // dst[i] = Σ_{c < count} src[c·stride + i] (ascending c) for i in [i0, i1).
  void (*sumSlices)(const float* src, int64_t count, int64_t stride, float* dst, int64_t i0, int64_t i1);
  // Group FC forward of the groups [k0, k1) (their out columns, bias included).
  void (*groupFC)(const GroupFCParams& p, int64_t k0, int64_t k1);
  // Group FC backward of the groups [k0, k1): their dX rows and dW slices (dBias: the driver).
  void (*groupFCBackward)(const GroupFCBackwardParams& p, int64_t k0, int64_t k1);
  // Dropout of the elements [i0, i1).
  void (*dropout)(const DropoutParams& p, int64_t i0, int64_t i1);
  // Multi-label loss (and gradient) of the elements [i0, i1).
  void (*loss)(const MultiLabelLossParams& p, int64_t i0, int64_t i1);
};

const MldKernels& kernelsAvx512();
const MldKernels& kernelsAvx2();
const MldKernels& kernelsScalar();

// The threaded drivers with a given table (the public functions pass the table of isaName(); tests
// pass others, e.g. a 16-lane table built without AVX-512).
void crossAttentionWith(const MldKernels& k, const CrossAttentionParams& p, ThreadPool& pool);
void crossAttentionBackwardWith(const MldKernels& k, const CrossAttentionBackwardParams& p, ThreadPool& pool);
void groupFCWith(const MldKernels& k, const GroupFCParams& p, ThreadPool& pool);
void groupFCBackwardWith(const MldKernels& k, const GroupFCBackwardParams& p, ThreadPool& pool);
void dropoutWith(const MldKernels& k, const DropoutParams& p, ThreadPool& pool);
void multiLabelLossWith(const MldKernels& k, const MultiLabelLossParams& p, ThreadPool& pool);

}  // namespace mld
}  // namespace cpu
}  // namespace va
