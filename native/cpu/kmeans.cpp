// visattn — cpu kMaX-DeepLab k-means cross-attention (forward: canonical scores, arg-max, optional
// logits, per-cluster segment sum; backward: gather) and row L2 normalisation. The threaded drivers and
// the ISA dispatch; the kernels are in kmeans_kernel.inc (design notes there), compiled per ISA:
// kmeans_avx512.cpp, kmeans_avx2.cpp, and here with SSE2 vectors (the "scalar" path).
//
// Threading (results are bit-identical for any thread count):
//  * forward: one task per (image, fixed chunk of pixels, at most 8 per image): the chunk's scores,
//    assign and logits (the canonical per-(pixel, centre) FMA chain, independent of tiling), and its
//    pixels' values summed per cluster (ascending n) into the chunk's partial; then the partials are
//    summed in ascending chunk order, in column blocks. (Dv = 0: blocks of 48 pixels, assign only.)
//  * backward: the assignment is validated first (sequentially: the error names the first bad entry),
//    then rows are copied in blocks. L2 normalisation: rows in blocks.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/cpu_kernels.h"
#include "cpu/kmeans_internal.h"

#define VA_KM_LANES 4
#include "cpu/kmeans_kernel.inc"

namespace va {
namespace cpu {
namespace kmeans {

const KmKernels& kernelsScalar() { return kKmTable; }

namespace {
constexpr int64_t kTaskFlops = int64_t(1) << 18;

constexpr int64_t kChunks = 8;  // pixel chunks per image in the fused forward

std::vector<float>& partialWorkspace() {
  static thread_local std::vector<float> ws;
  return ws;
}
std::vector<float>& centersWorkspace() {
  static thread_local std::vector<float> ws;
  return ws;
}
}  // namespace

void forwardWith(const KmKernels& k, const KMeansParams& p, ThreadPool& pool) {
  if (p.B < 0 || p.N < 0 || p.L <= 0 || p.D < 0 || p.Dv < 0 || p.L > INT32_MAX)
    throw std::invalid_argument("inconsistent k-means cross-attention sizes");
  if (p.B == 0) return;
  const int64_t B = p.B, N = p.N, L = p.L, D = p.D, Dv = p.Dv;
  if (N == 0) {
    if (Dv > 0) std::fill(p.update, p.update + B * L * Dv, 0.0f);
    return;
  }
  // centres per image packed in panels of k.panel transposed centres ([D][w] each, see KmKernels),
  // padding columns 0 (never chosen: masked lanes)
  const int64_t Lp = (L + k.lanes - 1) / k.lanes * k.lanes;
  std::vector<float>& ws = centersWorkspace();
  ws.assign(size_t(B * D * Lp), 0.0f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l) {
      const int64_t l0 = l / k.panel * k.panel, w = std::min<int64_t>(k.panel, Lp - l0);
      const float* c = p.centers + (b * L + l) * D;
      float* t = ws.data() + b * D * Lp + l0 * D + (l - l0);
      for (int64_t d = 0; d < D; ++d) t[d * w] = c[d];
    }
  const float* cT = ws.data();
  const int64_t blk = k.block, nblk = (N + blk - 1) / blk;
  if (Dv == 0) {
    const int64_t cost = std::max<int64_t>(1, blk * Lp * std::max<int64_t>(D, 1));
    pool.parallelFor(B * nblk, std::max<int64_t>(1, kTaskFlops / cost), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / nblk, n0 = (t % nblk) * blk;
        k.assign(p, cT + b * D * Lp, Lp, b, n0, std::min(N, n0 + blk));
      }
    });
    return;
  }
  // fixed pixel chunks (shape only): at most kChunks per image, whole blocks each
  const int64_t perChunk = (nblk + kChunks - 1) / kChunks * blk;
  const int64_t nch = (N + perChunk - 1) / perChunk;
  const int64_t slice = L * Dv;
  float* part = p.update;  // one chunk: its partial is the result
  if (nch > 1) {
    std::vector<float>& pw = partialWorkspace();
    if (int64_t(pw.size()) < B * nch * slice) pw.resize(size_t(B * nch * slice));
    part = pw.data();
  }
  pool.parallelFor(B * nch, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / nch, c = t % nch, n1 = std::min(N, (c + 1) * perChunk);
      float* U = nch > 1 ? part + t * slice : part + b * slice;
      std::fill(U, U + slice, 0.0f);
      for (int64_t n0 = c * perChunk; n0 < n1; n0 += blk) {
        const int64_t e = std::min(n1, n0 + blk);
        k.assign(p, cT + b * D * Lp, Lp, b, n0, e);
        k.accumulate(p, b, n0, e, U);
      }
    }
  });
  if (nch > 1) {
    constexpr int64_t kSum = 4096;
    const int64_t ns = (slice + kSum - 1) / kSum;
    pool.parallelFor(B * ns, 4, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / ns, i0 = (t % ns) * kSum;
        k.sumSlices(part + b * nch * slice, nch, slice, p.update + b * slice, i0, std::min(slice, i0 + kSum));
      }
    });
  }
}

void backwardWith(const KmKernels& k, const KMeansBackwardParams& p, ThreadPool& pool) {
  if (p.B < 0 || p.N < 0 || p.L <= 0 || p.Dv < 0)
    throw std::invalid_argument("inconsistent k-means cross-attention backward sizes");
  const int64_t rows = p.B * p.N;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t a = p.assign[r];
    if (a < 0 || int64_t(a) >= p.L)
      throw std::out_of_range("kmeansCrossAttentionBackward: assign[" + std::to_string(r / p.N) + ", " +
                              std::to_string(r % p.N) + "] = " + std::to_string(a) + " is outside [0, " +
                              std::to_string(p.L) + ")");
  }
  if (rows == 0 || p.Dv == 0) return;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / p.Dv);
  pool.parallelFor(rows, grain, [&](int64_t r0, int64_t r1) { k.gather(p, r0, r1); });
}

void l2NormalizeWith(const KmKernels& k, const L2NormalizeParams& p, ThreadPool& pool) {
  if (p.rows < 0 || p.cols < 0) throw std::invalid_argument("inconsistent l2Normalize sizes");
  if (p.rows == 0 || p.cols == 0) return;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / p.cols);
  pool.parallelFor(p.rows, grain, [&](int64_t r0, int64_t r1) { k.l2Normalize(p, r0, r1); });
}

void l2NormalizeBackwardWith(const KmKernels& k, const L2NormalizeBackwardParams& p, ThreadPool& pool) {
  if (p.rows < 0 || p.cols < 0) throw std::invalid_argument("inconsistent l2NormalizeBackward sizes");
  if (p.rows == 0 || p.cols == 0) return;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / p.cols);
  pool.parallelFor(p.rows, grain, [&](int64_t r0, int64_t r1) { k.l2NormalizeBackward(p, r0, r1); });
}

}  // namespace kmeans

namespace {
const kmeans::KmKernels& currentKernels() {
  return pickIsa(kmeans::kernelsAvx512, kmeans::kernelsAvx2, kmeans::kernelsScalar);
}
}  // namespace

void kmeansCrossAttention(const KMeansParams& p, ThreadPool& pool) { kmeans::forwardWith(currentKernels(), p, pool); }
void kmeansCrossAttentionBackward(const KMeansBackwardParams& p, ThreadPool& pool) {
  kmeans::backwardWith(currentKernels(), p, pool);
}
void l2Normalize(const L2NormalizeParams& p, ThreadPool& pool) { kmeans::l2NormalizeWith(currentKernels(), p, pool); }
void l2NormalizeBackward(const L2NormalizeBackwardParams& p, ThreadPool& pool) {
  kmeans::l2NormalizeBackwardWith(currentKernels(), p, pool);
}

}  // namespace cpu
}  // namespace va
