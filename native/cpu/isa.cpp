// visattn — cpu instruction-set selection (see cpu_kernels.h: isaName).
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "cpu/cpu_kernels.h"
#include "cpu/gemm_internal.h"
#include "cpu/math_internal.h"

namespace va {
namespace cpu {

namespace {

enum Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

int cpuBest() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kAvx2;
#endif
  return kScalar;
}

int computeIsa() {
  int best = cpuBest();
  const char* env = std::getenv("VISATTN_ISA");
  if (env && *env) {
    int want = best;
    if (std::strcmp(env, "scalar") == 0) want = kScalar;
    else if (std::strcmp(env, "avx2") == 0) want = kAvx2;
    else if (std::strcmp(env, "avx512") == 0) want = kAvx512;
    if (want < best) best = want;  // lower only, never raise
  }
  return best;
}

std::atomic<int> g_isa{-1};

}  // namespace

const char* isaName() {
  int v = g_isa.load(std::memory_order_acquire);
  if (v < 0) {
    v = computeIsa();
    g_isa.store(v, std::memory_order_release);
  }
  return v == kAvx512 ? "avx512" : v == kAvx2 ? "avx2" : "scalar";
}

namespace math {
namespace {
std::atomic<const MathKernels*> g_mathOverride{nullptr};
}  // namespace
void setKernelsForTesting(const MathKernels* k) { g_mathOverride.store(k, std::memory_order_release); }
const MathKernels& kernels() {
  if (const MathKernels* o = g_mathOverride.load(std::memory_order_acquire)) return *o;
  const char* isa = isaName();
  if (std::strcmp(isa, "avx512") == 0) return mathAvx512();
  if (std::strcmp(isa, "avx2") == 0) return mathAvx2();
  return mathScalar();
}
}  // namespace math

namespace detail {
void refreshIsa() { g_isa.store(computeIsa(), std::memory_order_release); }
}  // namespace detail

}  // namespace cpu
}  // namespace va
