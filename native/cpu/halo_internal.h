// visattn — cpu HaloNet halo attention: per-ISA kernel tables (halo_kernel.inc compiled three times:
// halo_avx512.cpp, halo_avx2.cpp and, with SSE2 vectors, halo.cpp) and the threaded drivers that run
// a given table (halo.cpp). Declarations only: no inline code, so nothing compiled with AVX flags can
// leak into another translation unit.
#pragma once
#include <cstdint>

#include "runtime/thread_pool.h"
#include "visattn/params.h"

namespace va {
namespace cpu {
namespace halo {

// One backward phase. The block rows I of the map (nbH = H / block of them) are split into `period`
// phases, I ≡ phase (mod period), with period·block >= win: the key windows of two block rows of one
// phase share no image row, so the tasks of a phase accumulate into disjoint parts of dK / dV.
// Task t of the phase, t < B · rows · heads, is (image n, block row I, head m) with
//   n = t / (rows·heads), I = phase + period · ((t / heads) % rows), m = t % heads,
// and covers the blocks J = 0, 1, … of that block row, in this order.
struct BwdPhase {
  int32_t period, phase;
  int64_t rows;  // block rows in this phase: ⌈(nbH − phase) / period⌉
};

struct HaloKernels {
  int lanes;
  // Forward of the units u in [u0, u1), u = ((n·nbH + I)·nbW + J)·heads + m (image n, block (I, J),
  // head m): out and lse of the unit's queries, each written once.
  void (*forwardUnits)(const HaloParams& p, int64_t u0, int64_t u1);
  // Backward of tasks [t0, t1) of phase ph, in order: dQ of their queries (written), dK and dV of their
  // windows' in-image pixels ADDED (+=) into p.dK / p.dV, and their dRelH / dRelW contributions added
  // into rel (layout [2][2·win − 1][dk]: relH's gradient, then relW's).
  void (*backwardTasks)(const HaloBackwardParams& p, const BwdPhase& ph, int64_t t0, int64_t t1, float* rel);
};

const HaloKernels& kernelsAvx512();
const HaloKernels& kernelsAvx2();
const HaloKernels& kernelsScalar();

// The threaded drivers with a given table (the public functions pass the table of isaName(); tests
// pass others, e.g. a 16-lane table built without AVX-512).
void forwardWith(const HaloKernels& k, const HaloParams& p, ThreadPool& pool);
void backwardWith(const HaloKernels& k, const HaloBackwardParams& p, ThreadPool& pool);

}  // namespace halo
}  // namespace cpu
}  // namespace va
