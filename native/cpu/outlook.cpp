// visattn — cpu VOLO outlook attention, forward and backward (semantics: visattn/params.h): the
// threaded drivers and ISA dispatch. The kernels are in outlook_kernel.inc (design notes there),
// compiled per ISA: outlook_avx512.cpp, outlook_avx2.cpp, and here with SSE2 vectors (the "scalar"
// path, for CPUs without AVX2/FMA).
//
// Threading: one task per output / dV row (b, y); every element is written by exactly one task in a
// fixed order, so results are bit-identical for any thread count. Small problems run inline.
#include <algorithm>
#include <cstring>

#include "cpu/cpu_kernels.h"
#include "cpu/outlook_internal.h"

#define VA_OL_LANES 4
#include "cpu/outlook_kernel.inc"

namespace va {
namespace cpu {
namespace outlook {

const OutlookKernels& kernelsScalar() { return kOlTable; }

namespace {
// Rows per task so that a task does at least ~64k multiply-adds (tiny shapes run inline).
int64_t rowGrain(int64_t W, int64_t C, int k, int s) {
  const int64_t perRow = std::max<int64_t>(1, W * C * int64_t(k) * k * std::max(1, k / std::max(1, s)));
  return std::max<int64_t>(1, (int64_t(1) << 16) / perRow);
}
bool valid(int64_t B, int64_t H, int64_t W, int heads, int k) { return B > 0 && H >= 0 && W >= 0 && heads > 0 && k > 0; }
}  // namespace

void forwardWith(const OutlookKernels& k, const math::MathKernels& vm, const OutlookParams& p, ThreadPool& pool) {
  if (!valid(p.B, p.H, p.W, p.heads, p.kernel)) return;
  const int64_t n = p.B * p.H;
  if (n == 0 || p.W == 0 || p.C == 0) return;
  pool.parallelFor(n, rowGrain(p.W, p.C, p.kernel, p.stride),
                   [&](int64_t b, int64_t e) { k.forwardRows(p, vm, b, e); });
}

void backwardWith(const OutlookKernels& k, const math::MathKernels& vm, const OutlookBackwardParams& p,
                  ThreadPool& pool) {
  if (!valid(p.B, p.H, p.W, p.heads, p.kernel)) return;
  // window rows that no image row owns (owner row max(0, stride·i − pad) >= H)
  int64_t firstOrphan = p.h;
  for (int64_t i = 0; i < p.h; ++i)
    if (std::max<int64_t>(0, int64_t(p.stride) * i - p.pad) >= p.H) { firstOrphan = i; break; }
  if (firstOrphan < p.h) {
    const int64_t perRow = std::max<int64_t>(1, p.w * p.heads * int64_t(p.kernel) * p.kernel * p.kernel * p.kernel);
    pool.parallelFor(p.B * p.h, std::max<int64_t>(1, (int64_t(1) << 15) / perRow),
                     [&](int64_t b, int64_t e) { k.orphanWindowRows(p, vm, b, e); });
  }
  const int64_t n = p.B * p.H;
  if (n == 0) return;
  pool.parallelFor(n, rowGrain(p.W, p.C, p.kernel, p.stride),
                   [&](int64_t b, int64_t e) { k.backwardRows(p, vm, b, e); });
}

}  // namespace outlook

namespace {
const outlook::OutlookKernels& currentKernels() {
  return pickIsa(outlook::kernelsAvx512, outlook::kernelsAvx2, outlook::kernelsScalar);
}
}  // namespace

void outlookAttention(const OutlookParams& p, ThreadPool& pool) {
  outlook::forwardWith(currentKernels(), math::kernels(), p, pool);
}

void outlookAttentionBackward(const OutlookBackwardParams& p, ThreadPool& pool) {
  outlook::backwardWith(currentKernels(), math::kernels(), p, pool);
}

}  // namespace cpu
}  // namespace va
