// visattn — kMaX-DeepLab k-means cross-attention and the row L2 normalisation
// (KMeansParams / KMeansBackwardParams / L2NormalizeParams / L2NormalizeBackwardParams in
// visattn/params.h; spec §4.3–4.4, §4.2). Layouts: pixels[B,N,D], centers[B,L,D], values[B,N,Dv],
// update[B,L,Dv], assign[B,N] (int32), logits[B,L,N].
//
// Forward pipeline (no floating-point atomics anywhere; every sum has an order fixed by the data):
//   kmAssignKernel    per (b, tile of 32 pixels): scores against all L centers. A thread owns whole
//                     (pixel, center) dot products: acc = 0; acc = fmaf(p[d], c[d], acc) for
//                     d = 0, 1, 2, … (the canonical score, ARCHITECTURE.md "Numerics"); d is staged
//                     in ascending chunks, never split across threads. Arg-max = the first l
//                     holding the maximum of the non-NaN scores (a thread takes s when s > best, or
//                     when it holds nothing yet and s is not NaN; the 8 center lanes then combine
//                     by (score, lowest l)); ties → lowest l, NaN never wins, all NaN → 0 — the
//                     cpu rule (native/cpu/kmeans_kernel.inc). Writes assign and, when requested,
//                     logits.
//   kmRankKernel      per (b, chunk of 256 pixels): stable rank of each pixel among the pixels of
//                     its cluster in the chunk, and the chunk's per-cluster counts.
//   kmScanKernel      per b: counts → exclusive offsets (in place, ascending chunk per cluster),
//                     cluster starts (counting sort), segment table (clusters split into segments of
//                     kKmSeg pixels) and the segment → cluster map.
//   kmScatterKernel   order[b, start[a] + offset[chunk][a] + rank] = n: every cluster's pixels in
//                     ascending n.
//   kmSegmentKernel   per (b, segment): partial[b,s,:] = Σ values[b,n,:] over the segment's pixels,
//                     ascending n (threads over Dv: coalesced 4·Dv-byte rows).
//   kmUpdateKernel    update[b,l,:] = Σ partial over the cluster's segments, ascending (0 if empty).
// Backward: kmBackwardKernel, one warp per (b, n) row: dValues[b,n,:] = dUpdate[b,assign[b,n],:];
// an assign outside [0, L) skips its row and records the first such (b, n, value) in a
// KernelErrorRecord (common/kernel_error.cuh); the backend then reports a stream error naming the
// op. No __trap(): on a GPU a trap would poison the whole context.
#pragma once
#include "common/compat.cuh"

#include <cmath>
#include <cstdint>

#include "common/kernel_error.cuh"
#include "common/reduce.cuh"

VA_CUDA_NAMESPACE_BEGIN

constexpr int kKmTileP = 32;     // pixels per assign tile (threadIdx.x)
constexpr int kKmTileY = 8;      // center lanes (threadIdx.y)
constexpr int kKmRC = 4;         // centers per thread per chunk
constexpr int kKmTileL = kKmTileY * kKmRC;  // centers per chunk (32)
constexpr int kKmTileD = 32;     // feature dims per staged chunk
constexpr int kKmChunk = 256;    // pixels per rank chunk (= threads of kmRankKernel)
constexpr int kKmSeg = 64;       // pixels per update segment
constexpr int kKmSegThreads = 256;

// Shape of one forward call, and the workspace carve-up (int32 / float pieces, 256-byte aligned).
struct KmArgs {
  int64_t B, N, L, D, Dv;
  int64_t C;  // rank chunks per batch item: ceil(N / kKmChunk)
  int64_t S;  // segment slots per batch item: ceil(N / kKmSeg) + L
  int* counts;     // [B][C][L]  counts, then exclusive offsets
  int* rank;       // [B][N]
  int* order;      // [B][N]
  int* starts;     // [B][L+1]  cluster starts in the sorted order
  int* segStart;   // [B][L+1]  first segment of each cluster
  int* segCluster; // [B][S]    cluster of each segment slot, −1 when unused
  float* partial;  // [B][S][Dv]
};

// ------------------------------------------------------------------------------ forward: assign
static __global__ void __launch_bounds__(kKmTileP * kKmTileY)
kmAssignKernel(const float* __restrict__ pixels, const float* __restrict__ centers,
               int32_t* __restrict__ assign, float* __restrict__ logits, int64_t B, int64_t N,
               int64_t L, int64_t D) {
  __shared__ float sP[kKmTileD][kKmTileP + 1];
  __shared__ float sC[kKmTileL][kKmTileD + 1];
  __shared__ float sBest[kKmTileY][kKmTileP];
  __shared__ int sIdx[kKmTileY][kKmTileP];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kKmTileP + tx;
  constexpr int kThreads = kKmTileP * kKmTileY;
  const int64_t tilesPerB = (N + kKmTileP - 1) / kKmTileP;
  const int64_t items = B * tilesPerB;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const int64_t b = item / tilesPerB;
    const int64_t n0 = (item % tilesPerB) * kKmTileP;
    const int64_t n = n0 + tx;
    const float* P = pixels + b * N * D;
    const float* Cb = centers + b * L * D;
    float bestS = -INFINITY;
    int bestI = 0x7fffffff;  // "none yet"
    for (int64_t l0 = 0; l0 < L; l0 += kKmTileL) {
      float acc[kKmRC];
      for (int r = 0; r < kKmRC; ++r) acc[r] = 0.0f;
      for (int64_t d0 = 0; d0 < D; d0 += kKmTileD) {
        // Stage pixels [32 × 32] (row-contiguous reads) and centers [32 × 32]; zero outside.
        for (int e = tid; e < kKmTileP * kKmTileD; e += kThreads) {
          const int pi = e / kKmTileD, dd = e % kKmTileD;
          const int64_t pn = n0 + pi, pd = d0 + dd;
          sP[dd][pi] = (pn < N && pd < D) ? P[pn * D + pd] : 0.0f;
          const int64_t cl = l0 + pi;  // kKmTileL == kKmTileP
          sC[pi][dd] = (cl < L && pd < D) ? Cb[cl * D + pd] : 0.0f;
        }
        __syncthreads();
        const int dn = static_cast<int>(D - d0 < kKmTileD ? D - d0 : kKmTileD);
        for (int dd = 0; dd < dn; ++dd) {  // ascending d: the canonical order
          const float pv = sP[dd][tx];
          for (int r = 0; r < kKmRC; ++r) acc[r] = fmaf(pv, sC[ty * kKmRC + r][dd], acc[r]);
        }
        __syncthreads();
      }
      for (int r = 0; r < kKmRC; ++r) {
        const int64_t l = l0 + ty * kKmRC + r;  // ascending per thread
        if (l < L && n < N) {
          if (logits) logits[(b * L + l) * N + n] = acc[r];
          const float sc = acc[r];
          if (sc == sc && (sc > bestS || bestI == 0x7fffffff)) {  // NaN never taken
            bestS = sc;
            bestI = static_cast<int>(l);
          }
        }
      }
    }
    sBest[ty][tx] = bestS;
    sIdx[ty][tx] = bestI;
    __syncthreads();
    if (ty == 0 && n < N) {
      float s = sBest[0][tx];
      int i = sIdx[0][tx];
      for (int y = 1; y < kKmTileY; ++y) {
        const float s2 = sBest[y][tx];
        const int i2 = sIdx[y][tx];
        if (i2 != 0x7fffffff && (i == 0x7fffffff || s2 > s || (s2 == s && i2 < i))) {
          s = s2;
          i = i2;
        }
      }
      assign[b * N + n] = i == 0x7fffffff ? 0 : i;  // every score NaN → 0
    }
    __syncthreads();
  }
}

// ---------------------------------------------------------------------- forward: counting sort
// blockDim.x == kKmChunk.
static __global__ void __launch_bounds__(kKmChunk) kmRankKernel(const int32_t* __restrict__ assign, KmArgs a) {
  __shared__ int sA[kKmChunk];
  const int t = threadIdx.x;
  const int64_t items = a.B * a.C;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const int64_t b = item / a.C, c = item % a.C;
    const int64_t n0 = c * kKmChunk;
    const int cnt = static_cast<int>(a.N - n0 < kKmChunk ? a.N - n0 : kKmChunk);
    int* counts = a.counts + (b * a.C + c) * a.L;
    for (int64_t l = t; l < a.L; l += blockDim.x) counts[l] = 0;
    sA[t] = t < cnt ? assign[b * a.N + n0 + t] : -1;
    __syncthreads();
    if (t < cnt) {
      const int ai = sA[t];
      int r = 0, tot = 0;
      for (int j = 0; j < cnt; ++j) {
        if (sA[j] == ai) {
          ++tot;
          if (j < t) ++r;
        }
      }
      a.rank[b * a.N + n0 + t] = r;
      if (r == 0) counts[ai] = tot;
    }
    __syncthreads();
  }
}

static __global__ void kmScanKernel(KmArgs a) {
  for (int64_t b = blockIdx.x; b < a.B; b += gridDim.x) {
    int* starts = a.starts + b * (a.L + 1);
    int* segStart = a.segStart + b * (a.L + 1);
    for (int64_t l = threadIdx.x; l < a.L; l += blockDim.x) {
      int run = 0;
      for (int64_t c = 0; c < a.C; ++c) {
        int* p = a.counts + (b * a.C + c) * a.L + l;
        const int x = *p;
        *p = run;
        run += x;
      }
      starts[l] = run;  // cluster size for now
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int pos = 0, seg = 0;
      for (int64_t l = 0; l < a.L; ++l) {
        const int size = starts[l];
        starts[l] = pos;
        segStart[l] = seg;
        pos += size;
        seg += (size + kKmSeg - 1) / kKmSeg;
      }
      starts[a.L] = pos;
      segStart[a.L] = seg;
    }
    __syncthreads();
    int* segCluster = a.segCluster + b * a.S;
    for (int64_t l = threadIdx.x; l < a.L; l += blockDim.x)
      for (int s = segStart[l]; s < segStart[l + 1]; ++s) segCluster[s] = static_cast<int>(l);
    for (int64_t s = segStart[a.L] + threadIdx.x; s < a.S; s += blockDim.x) segCluster[s] = -1;
    __syncthreads();
  }
}

static __global__ void kmScatterKernel(const int32_t* __restrict__ assign, KmArgs a) {
  const int64_t total = a.B * a.N;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = i / a.N, n = i % a.N;
    const int cl = assign[i];
    const int64_t c = n / kKmChunk;
    const int pos = a.starts[b * (a.L + 1) + cl] + a.counts[(b * a.C + c) * a.L + cl] + a.rank[i];
    a.order[b * a.N + pos] = static_cast<int>(n);
  }
}

// blockDim.x == kKmSegThreads.
static __global__ void __launch_bounds__(kKmSegThreads)
kmSegmentKernel(const float* __restrict__ values, KmArgs a) {
  __shared__ int sN[kKmSeg];
  const int64_t items = a.B * a.S;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const int64_t b = item / a.S, s = item % a.S;
    const int cl = a.segCluster[b * a.S + s];
    if (cl < 0) continue;  // uniform over the block
    const int* starts = a.starts + b * (a.L + 1);
    const int begin = starts[cl] + static_cast<int>(s - a.segStart[b * (a.L + 1) + cl]) * kKmSeg;
    const int end = begin + kKmSeg < starts[cl + 1] ? begin + kKmSeg : starts[cl + 1];
    const int cnt = end - begin;
    if (threadIdx.x < cnt) sN[threadIdx.x] = a.order[b * a.N + begin + threadIdx.x];
    __syncthreads();
    const float* V = values + b * a.N * a.Dv;
    float* out = a.partial + (b * a.S + s) * a.Dv;
    for (int64_t dv = threadIdx.x; dv < a.Dv; dv += blockDim.x) {
      // Four independent loads in flight; the additions stay strictly in ascending order.
      float acc = 0.0f;
      int j = 0;
      for (; j + 4 <= cnt; j += 4) {
        const float v0 = V[static_cast<int64_t>(sN[j]) * a.Dv + dv];
        const float v1 = V[static_cast<int64_t>(sN[j + 1]) * a.Dv + dv];
        const float v2 = V[static_cast<int64_t>(sN[j + 2]) * a.Dv + dv];
        const float v3 = V[static_cast<int64_t>(sN[j + 3]) * a.Dv + dv];
        acc += v0;
        acc += v1;
        acc += v2;
        acc += v3;
      }
      for (; j < cnt; ++j) acc += V[static_cast<int64_t>(sN[j]) * a.Dv + dv];
      out[dv] = acc;
    }
    __syncthreads();
  }
}

static __global__ void kmUpdateKernel(float* __restrict__ update, KmArgs a) {
  const int64_t total = a.B * a.L * a.Dv;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t dv = i % a.Dv, bl = i / a.Dv;
    const int64_t b = bl / a.L, l = bl % a.L;
    const int* ss = a.segStart + b * (a.L + 1);
    float acc = 0.0f;
    for (int s = ss[l]; s < ss[l + 1]; ++s) acc += a.partial[(b * a.S + s) * a.Dv + dv];
    update[i] = acc;
  }
}

// ------------------------------------------------------------------------------------ backward
// blockDim = (32, kKmBwdRows): one warp per (b, n) row.
constexpr int kKmBwdRows = 8;
static __global__ void __launch_bounds__(32 * kKmBwdRows)
kmBackwardKernel(const int32_t* __restrict__ assign, const float* __restrict__ dUpdate,
                 float* __restrict__ dValues, int64_t B, int64_t N, int64_t L, int64_t Dv,
                 KernelErrorRecord* err) {
  const int64_t rows = B * N;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(kKmBwdRows) + threadIdx.y; row < rows;
       row += static_cast<int64_t>(gridDim.x) * kKmBwdRows) {
    const int64_t b = row / N;
    const int cl = assign[row];
    if (cl < 0 || cl >= L) {  // uniform over the warp: the row is skipped, the error recorded
      if (threadIdx.x == 0) recordKernelError(err, b, row - b * N, cl);
      continue;
    }
    const float* src = dUpdate + (b * L + cl) * Dv;
    float* dst = dValues + row * Dv;
    for (int64_t j = threadIdx.x; j < Dv; j += 32) dst[j] = src[j];
  }
}

// --------------------------------------------------------------------------- L2 normalisation
// blockDim = (32, kL2Rows): one warp per row; lanes take every 32nd column (fixed order).
constexpr int kL2Rows = 8;
static __global__ void __launch_bounds__(32 * kL2Rows)
l2NormalizeKernel(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int64_t cols,
                  float eps) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(kL2Rows) + threadIdx.y; r < rows;
       r += static_cast<int64_t>(gridDim.x) * kL2Rows) {
    const float* xr = x + r * cols;
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < cols; j += 32) ss = fmaf(xr[j], xr[j], ss);
    ss = warpReduceSum(ss);
    const float denom = fmaxf(sqrtf(ss), eps);
    float* yr = y + r * cols;
    for (int64_t j = threadIdx.x; j < cols; j += 32) yr[j] = xr[j] / denom;
  }
}

static __global__ void __launch_bounds__(32 * kL2Rows)
l2NormalizeBackwardKernel(const float* __restrict__ x, const float* __restrict__ dy,
                          float* __restrict__ dx, int64_t rows, int64_t cols, float eps) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(kL2Rows) + threadIdx.y; r < rows;
       r += static_cast<int64_t>(gridDim.x) * kL2Rows) {
    const float* xr = x + r * cols;
    const float* gr = dy + r * cols;
    float* out = dx + r * cols;
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < cols; j += 32) ss = fmaf(xr[j], xr[j], ss);
    ss = warpReduceSum(ss);
    const float nrm = sqrtf(ss);
    if (!(nrm <= eps)) {  // NaN norms take this branch (NaN propagates)
      // y = x / n;  dx = (dy − y·(y·dy)) / n
      float dot = 0.0f;
      for (int64_t j = threadIdx.x; j < cols; j += 32) dot = fmaf(xr[j] / nrm, gr[j], dot);
      dot = warpReduceSum(dot);
      for (int64_t j = threadIdx.x; j < cols; j += 32) out[j] = (gr[j] - (xr[j] / nrm) * dot) / nrm;
    } else {
      for (int64_t j = threadIdx.x; j < cols; j += 32) out[j] = gr[j] / eps;
    }
  }
}

VA_CUDA_NAMESPACE_END
