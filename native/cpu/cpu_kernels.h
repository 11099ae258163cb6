// visattn — cpu kernels: one function per param struct of visattn/params.h (same semantics).
// Every function runs synchronously on the calling thread plus `pool`'s workers; small problems run
// inline on the caller. Results never depend on the number of threads.
#pragma once
#include <cstring>

#include "runtime/thread_pool.h"
#include "visattn/params.h"

namespace va {
namespace cpu {

void binary(const BinaryParams& p, ThreadPool& pool);
void affine(const AffineParams& p, ThreadPool& pool);
void unary(const UnaryParams& p, ThreadPool& pool);
void unaryBackward(const UnaryBackwardParams& p, ThreadPool& pool);
void matmul(const MatmulParams& p, ThreadPool& pool);
void softmax(const SoftmaxParams& p, ThreadPool& pool);
void softmaxBackward(const SoftmaxBackwardParams& p, ThreadPool& pool);
void layerNorm(const LayerNormParams& p, ThreadPool& pool);
void layerNormBackward(const LayerNormBackwardParams& p, ThreadPool& pool);
void reduce(const ReduceParams& p, ThreadPool& pool);
void copy(const CopyParams& p, ThreadPool& pool);
void fill(const FillParams& p, ThreadPool& pool);
void avgPool2d(const AvgPool2dParams& p, ThreadPool& pool);
void avgPool2dBackward(const AvgPool2dBackwardParams& p, ThreadPool& pool);
void random(const RandomParams& p, ThreadPool& pool);

// Fused attention operators (native/cpu/outlook.cpp, ...).
void outlookAttention(const OutlookParams& p, ThreadPool& pool);
void outlookAttentionBackward(const OutlookBackwardParams& p, ThreadPool& pool);
void haloAttention(const HaloParams& p, ThreadPool& pool);
void haloAttentionBackward(const HaloBackwardParams& p, ThreadPool& pool);
void dropout(const DropoutParams& p, ThreadPool& pool);
void crossAttention(const CrossAttentionParams& p, ThreadPool& pool);
void crossAttentionBackward(const CrossAttentionBackwardParams& p, ThreadPool& pool);
void groupFC(const GroupFCParams& p, ThreadPool& pool);
void groupFCBackward(const GroupFCBackwardParams& p, ThreadPool& pool);
void multiLabelLoss(const MultiLabelLossParams& p, ThreadPool& pool);
// throws std::out_of_range for an assign outside [0, L)
void kmeansCrossAttention(const KMeansParams& p, ThreadPool& pool);
void kmeansCrossAttentionBackward(const KMeansBackwardParams& p, ThreadPool& pool);
void l2Normalize(const L2NormalizeParams& p, ThreadPool& pool);
void l2NormalizeBackward(const L2NormalizeBackwardParams& p, ThreadPool& pool);

// The instruction set the GEMM uses: "avx512" | "avx2" | "scalar" — the best this CPU supports,
// lowered (never raised) by the environment variable VISATTN_ISA=avx2|scalar. Read once.
const char* isaName();

// The kernel table of a family's per-ISA builds (avx512 / avx2 / SSE2 "scalar") that matches isaName().
template <typename Table>
const Table& pickIsa(const Table& (*avx512)(), const Table& (*avx2)(), const Table& (*scalar)()) {
  const char* isa = isaName();
  if (std::strcmp(isa, "avx512") == 0) return avx512();
  if (std::strcmp(isa, "avx2") == 0) return avx2();
  return scalar();
}

}  // namespace cpu
}  // namespace va
