// visattn — cpu ML-Decoder kernels (semantics: visattn/params.h): cross-attention forward/backward,
// group fully-connected forward/backward, dropout and the multi-label losses. The threaded drivers and
// the ISA dispatch; the kernels are in group_decoder_kernel.inc (design notes there), compiled per ISA:
// group_decoder_avx512.cpp, group_decoder_avx2.cpp, and here with SSE2 vectors (the "scalar" path, for
// CPUs without AVX2/FMA).
//
// Threading (results are bit-identical for any thread count: every output element is computed by one
// task, in an order fixed by the shape):
//  * cross-attention forward: one task per (image, head, query block); each writes its out rows and lse.
//  * backward: one task per (image, head): dK, dV of the image's keys and dQ of its queries; with shared
//    queries (Bq = 1, B > 1) dQ goes to a per-image workspace that is then summed over the batch in
//    ascending image order (no floating-point atomics).
//  * group FC: one task per group (its output columns / dX rows / dW slice); dBias sums the batch in
//    ascending order.
//  * dropout, losses: element-wise, in blocks.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "cpu/cpu_kernels.h"
#include "cpu/group_decoder_internal.h"

#define VA_MD_LANES 4
#include "cpu/group_decoder_kernel.inc"

namespace va {
namespace cpu {
namespace mld {

const MldKernels& kernelsScalar() { return kMdTable; }

AttnBlocking attnBlocking(int64_t Lq, int64_t Lk, int lanes) {
  // Query blocks whose Sᵀ (Lk × qb floats) stays within ~256 KiB; at least one vector of queries.
  constexpr int64_t kBudget = int64_t(1) << 16;
  int64_t qb = std::max<int64_t>(lanes, kBudget / std::max<int64_t>(1, Lk) / lanes * lanes);
  if (qb >= Lq) qb = Lq;
  return AttnBlocking{qb, (Lq + qb - 1) / qb};
}

namespace {
constexpr int64_t kTaskFlops = int64_t(1) << 18;  // minimum work per task (multiply-adds)

// (B == 0 is accepted: nothing to compute.)
template <class P>
void checkAttn(const P& p) {
  if (p.B < 0 || p.Lq <= 0 || p.Lk <= 0 || p.heads <= 0 || p.d <= 0 || p.dv <= 0 || !(p.Bq == 1 || p.Bq == p.B))
    throw std::invalid_argument("inconsistent cross-attention sizes");
  if (!(p.dropout >= 0.0f && p.dropout < 1.0f)) throw std::invalid_argument("cross-attention dropout must be in [0, 1)");
}
// (B == 0 is accepted: the backward still overwrites dW and dBias, with zeros.)
template <class P>
void checkGroup(const P& p) {
  if (p.B < 0 || p.K <= 0 || p.D <= 0 || p.g <= 0 || p.N <= (p.K - 1) * p.g || p.N > p.K * p.g)
    throw std::invalid_argument("inconsistent group FC sizes");
}

// A batch-sized dQ buffer for shared queries, per calling thread, kept between calls.
std::vector<float>& dqWorkspace() {
  static thread_local std::vector<float> ws;
  return ws;
}
}  // namespace

void crossAttentionWith(const MldKernels& k, const CrossAttentionParams& p, ThreadPool& pool) {
  checkAttn(p);
  if (p.B == 0) return;
  const AttnBlocking blk = attnBlocking(p.Lq, p.Lk, k.lanes);
  const int64_t tasks = p.B * p.heads * blk.nqb;
  const int64_t cost = std::max<int64_t>(1, p.Lk * blk.qb * (int64_t(p.d) + p.dv));
  pool.parallelFor(tasks, std::max<int64_t>(1, kTaskFlops / cost),
                   [&](int64_t b, int64_t e) { k.attnForward(p, blk, b, e); });
}

void crossAttentionBackwardWith(const MldKernels& k, const CrossAttentionBackwardParams& p, ThreadPool& pool) {
  checkAttn(p);
  if (p.B == 0) return;
  const AttnBlocking blk = attnBlocking(p.Lq, p.Lk, k.lanes);
  const int64_t units = p.B * p.heads;
  const int64_t cost = std::max<int64_t>(1, p.Lk * p.Lq * (3 * int64_t(p.d) + 2 * int64_t(p.dv)));
  const bool shared = p.Bq == 1 && p.B > 1;
  const int64_t nq = p.Lq * p.heads * int64_t(p.d);  // one image's dQ
  float* dq = p.dQ;
  if (shared) {
    std::vector<float>& ws = dqWorkspace();
    if (int64_t(ws.size()) < p.B * nq) ws.resize(size_t(p.B * nq));
    dq = ws.data();
  }
  pool.parallelFor(units, std::max<int64_t>(1, kTaskFlops / cost),
                   [&](int64_t b, int64_t e) { k.attnBackward(p, blk, dq, b, e); });
  if (shared) {
    constexpr int64_t kChunk = 4096;
    pool.parallelFor((nq + kChunk - 1) / kChunk, std::max<int64_t>(1, 64 / p.B), [&](int64_t b, int64_t e) {
      k.sumSlices(dq, p.B, nq, p.dQ, b * kChunk, std::min(nq, e * kChunk));
    });
  }
}

void groupFCWith(const MldKernels& k, const GroupFCParams& p, ThreadPool& pool) {
  checkGroup(p);
  if (p.B == 0) return;
  const int64_t cost = std::max<int64_t>(1, p.B * p.D * p.g);
  pool.parallelFor(p.K, std::max<int64_t>(1, kTaskFlops / cost), [&](int64_t b, int64_t e) { k.groupFC(p, b, e); });
}

void groupFCBackwardWith(const MldKernels& k, const GroupFCBackwardParams& p, ThreadPool& pool) {
  checkGroup(p);
  if (p.B == 0) {
    std::fill(p.dW, p.dW + p.K * p.D * p.g, 0.0f);
    if (p.dBias) std::fill(p.dBias, p.dBias + p.N, 0.0f);
    return;
  }
  const int64_t cost = std::max<int64_t>(1, 2 * p.B * p.D * p.g);
  pool.parallelFor(p.K, std::max<int64_t>(1, kTaskFlops / cost),
                   [&](int64_t b, int64_t e) { k.groupFCBackward(p, b, e); });
  if (p.dBias) {
    constexpr int64_t kChunk = 4096;
    pool.parallelFor((p.N + kChunk - 1) / kChunk, std::max<int64_t>(1, 64 / p.B), [&](int64_t b, int64_t e) {
      k.sumSlices(p.dOut, p.B, p.N, p.dBias, b * kChunk, std::min(p.N, e * kChunk));
    });
  }
}

void dropoutWith(const MldKernels& k, const DropoutParams& p, ThreadPool& pool) {
  if (!(p.p >= 0.0f && p.p < 1.0f)) throw std::invalid_argument("dropout probability must be in [0, 1)");
  if (p.n <= 0) return;
  constexpr int64_t kBlock = 4096;  // a multiple of 4·16: blocks start on a Philox group
  pool.parallelFor((p.n + kBlock - 1) / kBlock, 4,
                   [&](int64_t b, int64_t e) { k.dropout(p, b * kBlock, std::min(p.n, e * kBlock)); });
}

void multiLabelLossWith(const MldKernels& k, const MultiLabelLossParams& p, ThreadPool& pool) {
  if (p.n <= 0) return;
  constexpr int64_t kBlock = 1024;  // a multiple of every lane count: each element takes the same path
  pool.parallelFor((p.n + kBlock - 1) / kBlock, 4,
                   [&](int64_t b, int64_t e) { k.loss(p, b * kBlock, std::min(p.n, e * kBlock)); });
}

}  // namespace mld

namespace {
const mld::MldKernels& currentKernels() {
  return pickIsa(mld::kernelsAvx512, mld::kernelsAvx2, mld::kernelsScalar);
}
}  // namespace

void dropout(const DropoutParams& p, ThreadPool& pool) { mld::dropoutWith(currentKernels(), p, pool); }
void crossAttention(const CrossAttentionParams& p, ThreadPool& pool) {
  mld::crossAttentionWith(currentKernels(), p, pool);
}
void crossAttentionBackward(const CrossAttentionBackwardParams& p, ThreadPool& pool) {
  mld::crossAttentionBackwardWith(currentKernels(), p, pool);
}
void groupFC(const GroupFCParams& p, ThreadPool& pool) { mld::groupFCWith(currentKernels(), p, pool); }
void groupFCBackward(const GroupFCBackwardParams& p, ThreadPool& pool) {
  mld::groupFCBackwardWith(currentKernels(), p, pool);
}
void multiLabelLoss(const MultiLabelLossParams& p, ThreadPool& pool) {
  mld::multiLabelLossWith(currentKernels(), p, pool);
}

}  // namespace cpu
}  // namespace va
