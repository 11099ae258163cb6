// visattn — ML-Decoder group fully-connected layer (GroupFCParams / GroupFCBackwardParams in
// visattn/params.h; spec §1.2 step 4, §1.3). x[B,K,D], w[K,D,g], bias[N] (may be null), out[B,N];
// class c ↦ group ⌊c/g⌋, slot c mod g; slots k·g + j ≥ N are neither computed nor written.
//
// Both directions are ONE batched kernel each (every group in the same grid) and read w once for
// B ≤ 8 (the OpenImages head, B = 8, K = 100, D = 768, g = 97, is bound by the 30 MB of w).
//
// gfcForwardKernel: work item = (group k, chunk of SJ slots). 256 threads = SJ slots × SD = 256/SJ
//   splits of the D axis (SJ = min(32, next power of two ≥ g): lanes run along the contiguous slot
//   axis of w for wide groups and along D for g = 1). x[b0 … b0+7, k, :] is staged in shared memory
//   in chunks of kGfcDC rows of D, stored [d][8] (two float4 broadcasts per w element); each thread
//   keeps 8 batch accumulators. The SD partial sums are added in ascending split order.
// gfcBackwardKernel: work item = (group k, chunk of kGfcBD = 32 rows of D); slots in chunks of
//   kGfcBJ = 64, batch in chunks of 8. Per chunk: xs [8][32], gs [8][64] (dOut of the valid slots,
//   0 elsewhere), ws [32][64 + 1] (w of the valid slots). dW (thread = element, coalesced along the
//   slot axis) = Σ_b xs·gs, accumulated over batch chunks in place (same thread, fixed order; the
//   unused slots get exact zeros); dX (thread = (b, d) pair) = Σ_j ws·gs in registers over the slot
//   chunks. The item with d-chunk 0 also writes dBias of the group's valid classes (Σ_b ascending).
#pragma once
#include "common/compat.cuh"

#include <cstdint>

VA_CUDA_NAMESPACE_BEGIN

constexpr int kGfcThreads = 256;
constexpr int kGfcBB = 8;    // batch rows per chunk (both directions)
constexpr int kGfcDC = 256;  // forward: rows of D staged per chunk
constexpr int kGfcBD = 32;   // backward: rows of D per work item (kGfcBB · kGfcBD = 256 threads)
constexpr int kGfcBJ = 64;   // backward: slots per chunk

struct GfcArgs {
  int64_t B, K, D, g, N;
  int SJ;         // forward: slot lanes per item
  int64_t nJC;    // forward: slot chunks per group (ceil(g / SJ))
  int64_t nDC;    // backward: D chunks per group (ceil(D / kGfcBD))
  int64_t items;  // work items of the kernel being launched
};

template <int DUMMY>
__global__ void __launch_bounds__(kGfcThreads)
    gfcForwardKernel(const float* __restrict__ x, const float* __restrict__ w,
                     const float* __restrict__ bias, float* __restrict__ out, GfcArgs a) {
  __shared__ float4 xs4[kGfcDC * kGfcBB / 4];  // [d][b] (float4 storage: 16-byte aligned)
  float* xs = reinterpret_cast<float*>(xs4);
  __shared__ float red[kGfcThreads * kGfcBB];           // [split][slot lane][b]
  const int tid = static_cast<int>(threadIdx.x);
  const int SJ = a.SJ, SD = kGfcThreads / SJ;
  const int jl = tid % SJ, ds = tid / SJ;
  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t k = item / a.nJC, jc = item % a.nJC;
    const int64_t j = jc * SJ + jl;
    const bool slot = j < a.g;
    const float* wk = w + k * a.D * a.g;
    for (int64_t b0 = 0; b0 < a.B; b0 += kGfcBB) {
      float acc[kGfcBB];
      for (int t = 0; t < kGfcBB; ++t) acc[t] = 0.0f;
      for (int64_t d0 = 0; d0 < a.D; d0 += kGfcDC) {
        const int dn = static_cast<int>(a.D - d0 < kGfcDC ? a.D - d0 : kGfcDC);
        __syncthreads();  // the previous chunk (or item) is done with xs and red
        for (int idx = tid; idx < kGfcBB * kGfcDC; idx += kGfcThreads) {
          const int bb = idx / kGfcDC, dd = idx % kGfcDC;  // consecutive threads: consecutive d
          float val = 0.0f;
          if (b0 + bb < a.B && dd < dn) val = __ldg(x + ((b0 + bb) * a.K + k) * a.D + d0 + dd);
          xs[dd * kGfcBB + bb] = val;
        }
        __syncthreads();
        if (slot) {
          for (int dd = ds; dd < dn; dd += SD) {
            const float wv = __ldg(wk + (d0 + dd) * a.g + j);
            const float4 x0 = *reinterpret_cast<const float4*>(xs + dd * kGfcBB);
            const float4 x1 = *reinterpret_cast<const float4*>(xs + dd * kGfcBB + 4);
            acc[0] += wv * x0.x;
            acc[1] += wv * x0.y;
            acc[2] += wv * x0.z;
            acc[3] += wv * x0.w;
            acc[4] += wv * x1.x;
            acc[5] += wv * x1.y;
            acc[6] += wv * x1.z;
            acc[7] += wv * x1.w;
          }
        }
      }
      for (int t = 0; t < kGfcBB; ++t) red[(ds * SJ + jl) * kGfcBB + t] = acc[t];
      __syncthreads();
      for (int o = tid; o < SJ * kGfcBB; o += kGfcThreads) {
        const int ol = o / kGfcBB, bb = o % kGfcBB;
        const int64_t jj = jc * SJ + ol, c = k * a.g + jj, b = b0 + bb;
        if (jj >= a.g || c >= a.N || b >= a.B) continue;
        float sum = 0.0f;
        for (int s = 0; s < SD; ++s) sum += red[(s * SJ + ol) * kGfcBB + bb];
        out[b * a.N + c] = sum + (bias ? __ldg(bias + c) : 0.0f);
      }
    }
  }
}

template <int DUMMY>
__global__ void __launch_bounds__(kGfcThreads)
    gfcBackwardKernel(const float* __restrict__ x, const float* __restrict__ w,
                      const float* __restrict__ dOut, float* __restrict__ dX, float* __restrict__ dW,
                      float* __restrict__ dBias, GfcArgs a) {
  __shared__ float xs[kGfcBB * kGfcBD];         // [b][d]
  __shared__ float gs[kGfcBB * kGfcBJ];         // [b][j]
  __shared__ float ws[kGfcBD * (kGfcBJ + 1)];   // [d][j], odd stride: column reads conflict-free
  const int tid = static_cast<int>(threadIdx.x);
  const int bx = tid / kGfcBD, dx = tid % kGfcBD;  // dX pair of this thread
  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t k = item / a.nDC, d0 = (item % a.nDC) * kGfcBD;
    const int dn = static_cast<int>(a.D - d0 < kGfcBD ? a.D - d0 : kGfcBD);
    const int64_t gk = a.N - k * a.g < a.g ? a.N - k * a.g : a.g;  // valid slots of group k (≥ 1)
    if (d0 == 0) {
      for (int64_t j = tid; j < gk; j += kGfcThreads) {
        const int64_t c = k * a.g + j;
        float acc = 0.0f;
        for (int64_t b = 0; b < a.B; ++b) acc += __ldg(dOut + b * a.N + c);
        dBias[c] = acc;
      }
    }
    for (int64_t b0 = 0; b0 < a.B; b0 += kGfcBB) {
      __syncthreads();  // the previous batch chunk (or item) is done with xs
      for (int idx = tid; idx < kGfcBB * kGfcBD; idx += kGfcThreads) {
        const int bb = idx / kGfcBD, dd = idx % kGfcBD;
        float val = 0.0f;
        if (b0 + bb < a.B && dd < dn) val = __ldg(x + ((b0 + bb) * a.K + k) * a.D + d0 + dd);
        xs[idx] = val;
      }
      float dxAcc = 0.0f;
      for (int64_t j0 = 0; j0 < a.g; j0 += kGfcBJ) {
        const int jn = static_cast<int>(a.g - j0 < kGfcBJ ? a.g - j0 : kGfcBJ);
        const int64_t jvLong = gk - j0;
        const int jv = jvLong <= 0 ? 0 : (jvLong < jn ? static_cast<int>(jvLong) : jn);  // valid slots
        __syncthreads();  // previous slot chunk is done with gs / ws; xs is staged
        for (int idx = tid; idx < kGfcBB * kGfcBJ; idx += kGfcThreads) {
          const int bb = idx / kGfcBJ, jj = idx % kGfcBJ;
          float val = 0.0f;
          if (b0 + bb < a.B && jj < jv) val = __ldg(dOut + (b0 + bb) * a.N + k * a.g + j0 + jj);
          gs[idx] = val;
        }
        for (int idx = tid; idx < dn * jv; idx += kGfcThreads) {
          const int dd = idx / jv, jj = idx % jv;
          ws[dd * (kGfcBJ + 1) + jj] = __ldg(w + ((k * a.D + d0 + dd) * a.g + j0 + jj));
        }
        __syncthreads();
        // dW over the chunk's [dn][jn] elements (row-major: coalesced along the slot axis)
        for (int idx = tid; idx < dn * jn; idx += kGfcThreads) {
          const int dd = idx / jn, jj = idx % jn;
          float val = 0.0f;
          if (jj < jv)
            for (int bb = 0; bb < kGfcBB; ++bb) val += xs[bb * kGfcBD + dd] * gs[bb * kGfcBJ + jj];
          float* dst = dW + (k * a.D + d0 + dd) * a.g + j0 + jj;
          *dst = (b0 == 0 ? 0.0f : *dst) + val;
        }
        // dX of this thread's (b, d)
        if (dx < dn)
          for (int jj = 0; jj < jv; ++jj) dxAcc += ws[dx * (kGfcBJ + 1) + jj] * gs[bx * kGfcBJ + jj];
      }
      if (dx < dn && b0 + bx < a.B) dX[((b0 + bx) * a.K + k) * a.D + d0 + dx] = dxAcc;
    }
  }
}

VA_CUDA_NAMESPACE_END
