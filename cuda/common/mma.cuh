// visattn — tensor-core wrappers usable from kernels in both builds (nvcc and the emulator).
//
//   uint32_t va_f32_to_tf32(float x)
//       cvt.rna.tf32.f32: round to nearest, ties away from zero, to tf32 (10 explicit mantissa bits);
//       the result is the fp32 bit pattern with the low 13 bits zero.
//   void va_mma_tf32_m16n8k8(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4])
//       mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32, D = A(16x8) * B(8x8) + C(16x8), called by
//       all 32 lanes of a warp (converged). Fragment layout (PTX ISA, "Matrix Fragments for
//       mma.m16n8k8", .tf32), with g = lane >> 2 and t = lane & 3:
//         A: a0 = A[g][t]      a1 = A[g+8][t]      a2 = A[g][t+4]      a3 = A[g+8][t+4]
//         B: b0 = B[t][g]      b1 = B[t+4][g]                       (B is K x N)
//         C/D: c0 = C[g][2t]   c1 = C[g][2t+1]     c2 = C[g+8][2t]     c3 = C[g+8][2t+1]
//       The emulated version all-gathers the warp's fragments, rebuilds A and B, ignores the low 13
//       bits of every A/B operand (as the tensor core does) and computes in fp32 (k ascending).
//
// Include after common/compat.cuh; the functions live in the build's namespace (va_cuda / va_emu).
#pragma once

#include <cstdint>
#include <cstring>

#include "common/compat.cuh"

namespace VA_CUDA_NS {

#if defined(__CUDACC__)

__device__ __forceinline__ uint32_t va_f32_to_tf32(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
#else
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return u;
  return (u + 0x1000u) & 0xffffe000u;
#endif
}

__device__ __forceinline__ void va_mma_tf32_m16n8k8(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                    const float c[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#else
  // Not available below sm_80 (the project builds for sm_80+).
  (void)a;
  (void)b;
  d[0] = c[0];
  d[1] = c[1];
  d[2] = c[2];
  d[3] = c[3];
  __trap();
#endif
}

#else  // emulator

inline uint32_t va_f32_to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return u;  // inf / nan unchanged
  // Round the magnitude half-up at bit 13 (= ties away from zero), then clear the low 13 bits.
  // A carry into the exponent is the correct rounding to the next binade (or to infinity).
  return (u + 0x1000u) & 0xffffe000u;
}

inline void va_mma_tf32_m16n8k8(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  struct Frag {
    uint32_t a[4];
    uint32_t b[2];
  };
  Frag mine;
  for (int i = 0; i < 4; ++i) mine.a[i] = a[i];
  mine.b[0] = b[0];
  mine.b[1] = b[1];
  Frag all[32];
  ::vaemu::warpAllGather(0xffffffffu, &mine, all, sizeof(Frag), "mma.sync.m16n8k8.tf32");

  auto op = [](uint32_t bits) {
    bits &= 0xffffe000u;  // the tensor core reads only the tf32 bits
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  };
  float A[16][8], B[8][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    A[g][t] = op(all[lane].a[0]);
    A[g + 8][t] = op(all[lane].a[1]);
    A[g][t + 4] = op(all[lane].a[2]);
    A[g + 8][t + 4] = op(all[lane].a[3]);
    B[t][g] = op(all[lane].b[0]);
    B[t + 4][g] = op(all[lane].b[1]);
  }
  const int lane = (int)(::vaemu::detail::tl_lane & 31u);
  const int g = lane >> 2, t = lane & 3;
  const int rows[4] = {g, g, g + 8, g + 8};
  const int cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
  float out[4];
  for (int i = 0; i < 4; ++i) {
    float acc = 0.0f;
    for (int k = 0; k < 8; ++k) acc += A[rows[i]][k] * B[k][cols[i]];
    out[i] = acc + c[i];
  }
  for (int i = 0; i < 4; ++i) d[i] = out[i];  // d may alias c
}

#endif

}  // namespace VA_CUDA_NS
