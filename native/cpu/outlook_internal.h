// visattn — cpu VOLO outlook attention: per-ISA kernel tables (outlook_kernel.inc compiled three
// times: outlook_avx512.cpp, outlook_avx2.cpp and, with SSE2 vectors, outlook.cpp) and the threaded
// drivers that run a given table (outlook.cpp). Declarations only.
#pragma once
#include <cstdint>

#include "cpu/math_internal.h"
#include "runtime/thread_pool.h"
#include "visattn/params.h"

namespace va {
namespace cpu {
namespace outlook {

struct OutlookKernels {
  int lanes;
  // Output rows t in [t0, t1) of the flattened (b, y) grid, each written completely by this call.
  void (*forwardRows)(const OutlookParams& p, const math::MathKernels& vm, int64_t t0, int64_t t1);
  // dV rows t in [t0, t1) of the flattened (b, y) grid, plus dLogits of the window rows they own.
  void (*backwardRows)(const OutlookBackwardParams& p, const math::MathKernels& vm, int64_t t0, int64_t t1);
  // dLogits of the window rows t in [t0, t1) of the flattened (b, i) grid that no dV row owns
  // (windows wholly below the image: only possible when h > ⌈H/stride⌉-ish grids are passed).
  void (*orphanWindowRows)(const OutlookBackwardParams& p, const math::MathKernels& vm, int64_t t0, int64_t t1);
};

const OutlookKernels& kernelsAvx512();
const OutlookKernels& kernelsAvx2();
const OutlookKernels& kernelsScalar();

// The threaded drivers with a given table and math table (the public functions pass the tables of
// isaName(); tests pass others, e.g. a 16-lane table built without AVX-512).
void forwardWith(const OutlookKernels& k, const math::MathKernels& vm, const OutlookParams& p, ThreadPool& pool);
void backwardWith(const OutlookKernels& k, const math::MathKernels& vm, const OutlookBackwardParams& p,
                  ThreadPool& pool);

}  // namespace outlook
}  // namespace cpu
}  // namespace va
