// visattn — cpu HaloNet halo attention, forward and backward (semantics: visattn/params.h): the
// threaded drivers and ISA dispatch. The kernels are in halo_kernel.inc (design notes there),
// compiled per ISA: halo_avx512.cpp, halo_avx2.cpp, and here with SSE2 vectors (the "scalar" path,
// for CPUs without AVX2/FMA).
//
// Threading (results are bit-identical for any thread count):
//  * forward: one task per (image, block, head) unit; each writes its own queries' out and lse.
//  * backward: dK and dV are zeroed, then the block rows run in `period` phases (I ≡ phase mod period,
//    period·block >= win, so two block rows of one phase have windows on disjoint image rows); a task
//    is (image, block row, head) and walks its blocks left to right, adding into dK / dV: every
//    gradient element receives its contributions in an order fixed by the shape. Tasks are grouped
//    into at most kRelChunks fixed chunks per phase, each with its own dRelH / dRelW partial; the
//    partials are summed in (phase, chunk) order at the end. dQ is written by the owning task.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "cpu/cpu_kernels.h"
#include "cpu/halo_internal.h"

#define VA_HL_LANES 4
#include "cpu/halo_kernel.inc"

namespace va {
namespace cpu {
namespace halo {

const HaloKernels& kernelsScalar() { return kHlTable; }

namespace {
constexpr int64_t kRelChunks = 32;  // dRel partials per phase (a constant: chunking depends on the shape only)

// (B == 0 is accepted: nothing to compute, the backward still zeroes the table gradients.)
bool valid(int64_t B, int64_t H, int64_t W, int heads, int dk, int dv, int block, int halo, int stride) {
  if (B < 0 || H <= 0 || W <= 0 || heads <= 0 || dk <= 0 || dv <= 0 || block <= 0 || halo < 0) return false;
  if (stride != 1 && !(stride == 2 && block % 2 == 0)) return false;
  return H % block == 0 && W % block == 0;
}

// multiply-adds of one (image, block, head) unit, roughly (for the task grain)
int64_t unitCost(int64_t block, int64_t halo, int64_t stride, int64_t dk, int64_t dv) {
  const int64_t win = block + 2 * halo, bq = block / stride;
  return std::max<int64_t>(1, bq * bq * (win * win + 2 * (win + bq)) * (dk + dv));
}
}  // namespace

void forwardWith(const HaloKernels& k, const HaloParams& p, ThreadPool& pool) {
  if (!valid(p.B, p.H, p.W, p.heads, p.dk, p.dv, p.block, p.halo, p.stride)) {
    throw std::invalid_argument("inconsistent halo attention sizes");
  }
  const int64_t units = p.B * (p.H / p.block) * (p.W / p.block) * p.heads;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 17) / unitCost(p.block, p.halo, p.stride, p.dk, p.dv));
  pool.parallelFor(units, grain, [&](int64_t b, int64_t e) { k.forwardUnits(p, b, e); });
}

void backwardWith(const HaloKernels& k, const HaloBackwardParams& p, ThreadPool& pool) {
  if (!valid(p.B, p.H, p.W, p.heads, p.dk, p.dv, p.block, p.halo, p.stride)) {
    throw std::invalid_argument("inconsistent halo attention sizes");
  }
  const int64_t nbH = p.H / p.block, win = int64_t(p.block) + 2 * int64_t(p.halo);
  // dK, dV = 0 (the tasks add into them)
  const int64_t rowK = p.W * p.heads * p.dk, rowV = p.W * p.heads * p.dv;
  pool.parallelFor(p.B * p.H, std::max<int64_t>(1, (int64_t(1) << 14) / (rowK + rowV)), [&](int64_t b, int64_t e) {
    std::fill(p.dK + b * rowK, p.dK + e * rowK, 0.0f);
    std::fill(p.dV + b * rowV, p.dV + e * rowV, 0.0f);
  });
  const int32_t period = int32_t(std::min<int64_t>(nbH, (win + p.block - 1) / p.block));
  const int64_t relN = 2 * (2 * win - 1) * int64_t(p.dk);
  const int64_t cost = unitCost(p.block, p.halo, p.stride, p.dk, p.dv) * 2 * (p.W / p.block);  // per task
  std::vector<float> total(static_cast<size_t>(relN), 0.0f), part;
  for (int32_t ph = 0; ph < period; ++ph) {
    const BwdPhase phase{period, ph, (nbH - ph + period - 1) / period};
    const int64_t tasks = p.B * phase.rows * p.heads;
    if (tasks == 0) continue;
    const int64_t cs = (tasks + kRelChunks - 1) / kRelChunks;  // tasks per chunk
    const int64_t chunks = (tasks + cs - 1) / cs;
    part.assign(static_cast<size_t>(chunks * relN), 0.0f);
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 17) / (cost * cs));
    pool.parallelFor(chunks, grain, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c)
        k.backwardTasks(p, phase, c * cs, std::min(tasks, (c + 1) * cs), part.data() + c * relN);
    });
    for (int64_t c = 0; c < chunks; ++c)  // fixed order: phase, then chunk
      for (int64_t x = 0; x < relN; ++x) total[x] += part[c * relN + x];
  }
  const int64_t tabN = (2 * win - 1) * int64_t(p.dk);
  std::memcpy(p.dRelH, total.data(), sizeof(float) * tabN);
  std::memcpy(p.dRelW, total.data() + tabN, sizeof(float) * tabN);
}

}  // namespace halo

namespace {
const halo::HaloKernels& currentKernels() {
  return pickIsa(halo::kernelsAvx512, halo::kernelsAvx2, halo::kernelsScalar);
}
}  // namespace

void haloAttention(const HaloParams& p, ThreadPool& pool) { halo::forwardWith(currentKernels(), p, pool); }

void haloAttentionBackward(const HaloBackwardParams& p, ThreadPool& pool) {
  halo::backwardWith(currentKernels(), p, pool);
}

}  // namespace cpu
}  // namespace va
