// visattn — VOLO outlook attention (OutlookParams / OutlookBackwardParams in visattn/params.h).
// Channels-last v[B,H,W,C]; logits[B,h,w,heads,K2(q),K2(r)], K2 = kernel².
//
// Kernels (all deterministic gathers, no atomics, no unfolded tensor in global memory):
//   outlookCellKernel<K,S,false>    forward: softmax rows + weighted sum + fold, one pass
//   outlookFusedBackwardKernel<3,2> backward in one pass (dLogits and dV; the VOLO geometry)
//   outlookWindowBackwardKernel<K> + outlookCellKernel<K,S,true>
//                                   two-pass backward for k ∈ {3,5}, s ∈ {1,2} otherwise
//   outlook*SimpleKernel            any k / pad / stride (one thread per output element)
// The launchers (outlook.cu) pick the path from the shape.
#pragma once
#include "common/compat.cuh"

#include <cmath>
#include <cstdint>

// The emulator does not fault on misaligned vector accesses; check them there.
#if VA_IS_EMU
#define VA_OUTLOOK_CHECK_ALIGN16(ptr) \
  do {                                \
    if (reinterpret_cast<uintptr_t>(ptr) % 16 != 0) __trap(); \
  } while (0)
#else
#define VA_OUTLOOK_CHECK_ALIGN16(ptr) \
  do {                                \
  } while (0)
#endif

// Full unrolling (register arrays indexed by compile-time positions) for both compilers.
#if defined(__CUDACC__)
#define VA_OUTLOOK_UNROLL _Pragma("unroll")
#else
#define VA_OUTLOOK_UNROLL _Pragma("GCC unroll 32")
#endif

VA_CUDA_NAMESPACE_BEGIN

struct OutlookArgs {
  int64_t B, H, W, C, h, w;
  int heads, d, kernel, K2, pad, stride;
  float scale;
};

// Window rows i (0 <= i < n) whose span [s·i − pad, s·i − pad + k) contains y: [*lo, *hi].
__device__ __forceinline__ void outlookWindowRange(int64_t y, int64_t n, int k, int pad, int s,
                                                   int64_t* lo, int64_t* hi) {
  const int64_t t = y + pad;  // window i covers y iff 0 <= t − s·i < k
  const int64_t a = t - k + 1;
  int64_t l = a > 0 ? (a + s - 1) / s : 0;
  int64_t u = t >= 0 ? t / s : -1;
  if (u > n - 1) u = n - 1;
  *lo = l;
  *hi = u;
}

// ---------------------------------------------------------------------------- simple kernels
// Forward, one thread per output element (b, y, x, channel); gathers over covering windows and
// recomputes the softmax row of the destination position.
// Element t of a channels-last [B,H,W,C] tensor: its pixel, channel and head.
struct OutlookPixel {
  int64_t b, y, x, ch;
  int m;
};
__device__ __forceinline__ OutlookPixel outlookPixel(int64_t t, const OutlookArgs& a) {
  OutlookPixel px;
  px.ch = t % a.C;
  int64_t rest = t / a.C;
  px.x = rest % a.W;
  rest /= a.W;
  px.y = rest % a.H;
  px.b = rest / a.H;
  px.m = static_cast<int>(px.ch / a.d);
  return px;
}

// Calls f(i, j, y0, x0, pos) for every window (i, j) whose k×k footprint covers pixel (y, x), rows then
// columns ascending: (y0, x0) is the window's top-left source pixel, pos the pixel's index in it.
template <typename F>
__device__ __forceinline__ void outlookForCoveringWindows(int64_t y, int64_t x, const OutlookArgs& a, F&& f) {
  int64_t iLo, iHi, jLo, jHi;
  outlookWindowRange(y, a.h, a.kernel, a.pad, a.stride, &iLo, &iHi);
  outlookWindowRange(x, a.w, a.kernel, a.pad, a.stride, &jLo, &jHi);
  for (int64_t i = iLo; i <= iHi; ++i) {
    for (int64_t j = jLo; j <= jHi; ++j) {
      const int64_t y0 = i * a.stride - a.pad, x0 = j * a.stride - a.pad;
      f(i, j, y0, x0, static_cast<int>((y - y0) * a.kernel + (x - x0)));
    }
  }
}

template <int DUMMY>
__global__ void outlookForwardSimpleKernel(const float* __restrict__ v,
                                           const float* __restrict__ logits,
                                           float* __restrict__ out, OutlookArgs a) {
  const int64_t total = a.B * a.H * a.W * a.C;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const OutlookPixel px = outlookPixel(t, a);
    const int64_t b = px.b, ch = px.ch;
    const int m = px.m;
    float acc = 0.0f;
    outlookForCoveringWindows(px.y, px.x, a, [&](int64_t i, int64_t j, int64_t y0, int64_t x0, int q) {
      const float* row = logits + ((((b * a.h + i) * a.w + j) * a.heads + m) * a.K2 + q) * a.K2;
      float mx = -INFINITY;
      for (int r = 0; r < a.K2; ++r) mx = fmaxf(mx, a.scale * row[r]);
      float sum = 0.0f, dot = 0.0f;
      for (int r = 0; r < a.K2; ++r) {
        const float e = expf(a.scale * row[r] - mx);
        sum += e;
        const int64_t sy = y0 + r / a.kernel, sx = x0 + r % a.kernel;
        if (sy >= 0 && sy < a.H && sx >= 0 && sx < a.W)
          dot += e * v[((b * a.H + sy) * a.W + sx) * a.C + ch];
      }
      acc += dot / sum;
    });
    out[t] = acc;
  }
}

// Backward pass 1, one thread per softmax row (b, i, j, m, q): A row → workspace, dLogits row.
template <int DUMMY>
__global__ void outlookBackwardRowSimpleKernel(const float* __restrict__ v,
                                               const float* __restrict__ logits,
                                               const float* __restrict__ dOut,
                                               float* __restrict__ attn,
                                               float* __restrict__ dLogits, OutlookArgs a) {
  const int64_t total = a.B * a.h * a.w * a.heads * a.K2;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int q = static_cast<int>(t % a.K2);
    int64_t rest = t / a.K2;
    const int m = static_cast<int>(rest % a.heads);
    rest /= a.heads;
    const int64_t j = rest % a.w;
    rest /= a.w;
    const int64_t i = rest % a.h;
    const int64_t b = rest / a.h;
    const int64_t y0 = i * a.stride - a.pad, x0 = j * a.stride - a.pad;
    const float* row = logits + t * a.K2;
    float* arow = attn + t * a.K2;
    float* drow = dLogits + t * a.K2;
    float mx = -INFINITY;
    for (int r = 0; r < a.K2; ++r) mx = fmaxf(mx, a.scale * row[r]);
    float sum = 0.0f;
    for (int r = 0; r < a.K2; ++r) sum += expf(a.scale * row[r] - mx);
    const float inv = 1.0f / sum;
    const int64_t qy = y0 + q / a.kernel, qx = x0 + q % a.kernel;
    const bool qIn = qy >= 0 && qy < a.H && qx >= 0 && qx < a.W;
    const float* g = qIn ? dOut + ((b * a.H + qy) * a.W + qx) * a.C + static_cast<int64_t>(m) * a.d
                         : nullptr;
    // dA[r] stored temporarily in drow; rowsum Σ A·dA.
    float rs = 0.0f;
    for (int r = 0; r < a.K2; ++r) {
      const float A = expf(a.scale * row[r] - mx) * inv;
      arow[r] = A;
      const int64_t sy = y0 + r / a.kernel, sx = x0 + r % a.kernel;
      float dA = 0.0f;
      if (qIn && sy >= 0 && sy < a.H && sx >= 0 && sx < a.W) {
        const float* vv = v + ((b * a.H + sy) * a.W + sx) * a.C + static_cast<int64_t>(m) * a.d;
        for (int e = 0; e < a.d; ++e) dA += g[e] * vv[e];
      }
      drow[r] = dA;
      rs += A * dA;
    }
    for (int r = 0; r < a.K2; ++r) drow[r] = a.scale * arow[r] * (drow[r] - rs);
  }
}

// Backward pass 2, one thread per dV element: Σ over windows reading (y,x) as source r of
// Σ_q A[q,r]·G[dest(q)].
template <int DUMMY>
__global__ void outlookBackwardDvSimpleKernel(const float* __restrict__ attn,
                                              const float* __restrict__ dOut,
                                              float* __restrict__ dV, OutlookArgs a) {
  const int64_t total = a.B * a.H * a.W * a.C;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const OutlookPixel px = outlookPixel(t, a);
    const int64_t b = px.b, ch = px.ch;
    const int m = px.m;
    float acc = 0.0f;
    outlookForCoveringWindows(px.y, px.x, a, [&](int64_t i, int64_t j, int64_t y0, int64_t x0, int r) {
      const float* A = attn + (((b * a.h + i) * a.w + j) * a.heads + m) * a.K2 * a.K2 + r;
      for (int q = 0; q < a.K2; ++q) {
        const int64_t qy = y0 + q / a.kernel, qx = x0 + q % a.kernel;
        if (qy >= 0 && qy < a.H && qx >= 0 && qx < a.W)
          acc += A[static_cast<int64_t>(q) * a.K2] * dOut[((b * a.H + qy) * a.W + qx) * a.C + ch];
      }
    });
    dV[t] = acc;
  }
}

// ---------------------------------------------------------------------------- fused kernels
// Cells: pixel row y belongs to cell cy = floor((y + pad) / S), i.e. cell cy owns the rows
// [S·cy − pad, S·cy − pad + S) (columns likewise). The windows covering any pixel of cell cy are
// i = cy − NWIN + 1 + wi, wi < NWIN = (K − 1)/S + 1; pixel dy of the cell sits at row
// S·(NWIN − 1 − wi) + dy of window wi (a window position iff < K). Every (window, position) pair
// therefore belongs to exactly one cell, and all sources of the cell's windows fit in a P×P patch,
// P = S·(NWIN − 1) + K, whose row py = S·wi + a is row a of window wi.
template <int K, int S>
struct OutlookGeom {
  static constexpr int K2 = K * K;
  static constexpr int KP = (K2 + 3) / 4 * 4;  // a slot's row, padded for float4 reads
  static constexpr int NWIN = (K - 1) / S + 1;
  static constexpr int P = S * (NWIN - 1) + K;
  // Slots of one cell-head: (wi, wj, dy, dx); geometrically valid iff both window offsets < K.
  static constexpr int SLOTS = NWIN * NWIN * S * S;
};

// Cell and tile counts are 32-bit (the launcher checks total · heads < 2³¹, else the simple
// kernels run); element offsets stay 64-bit.
struct OutlookCells {
  int nCy, nCx;  // cells per image along y and x
  int c0y, c0x;  // first cell with an in-image pixel (floor(pad / S))
  int total;     // B · nCy · nCx
  int cellsPerBlock;  // NC: consecutive cells (row-major over b, cy, cx) of one tile
  int headsPerBlock;  // HB: a tile covers the channels of HB consecutive heads (HB divides heads)
};

// The P×P patch of X (one channel) under cell (cy, cx) of image b; 0 outside the image.
template <int K, int S>
__device__ __forceinline__ void outlookLoadPatch(const float* __restrict__ X, const OutlookArgs& a,
                                                 int64_t b, int64_t cy, int64_t cx, int ch,
                                                 float* patch) {
  using G = OutlookGeom<K, S>;
  constexpr int NWIN = G::NWIN, P = G::P;
  const int64_t py0 = S * (cy - NWIN + 1) - a.pad, px0 = S * (cx - NWIN + 1) - a.pad;
  const float* xb = X + b * a.H * a.W * a.C + ch;
  VA_OUTLOOK_UNROLL
  for (int py = 0; py < P; ++py) {
    const int64_t y = py0 + py;
    const bool rowIn = y >= 0 && y < a.H;
    const float* xr = xb + y * a.W * a.C;
    VA_OUTLOOK_UNROLL
    for (int px = 0; px < P; ++px) {
      const int64_t x = px0 + px;
      patch[py * P + px] = (rowIn && x >= 0 && x < a.W) ? __ldg(xr + x * a.C) : 0.0f;
    }
  }
}

// Σ over the cell's slots of row·patch, written to the in-image pixels of the cell.
template <int K, int S>
__device__ __forceinline__ void outlookCellOutput(const float* slotBase, const float* patch,
                                                  float* __restrict__ out, const OutlookArgs& a,
                                                  int64_t b, int64_t cy, int64_t cx, int ch) {
  using G = OutlookGeom<K, S>;
  constexpr int KP = G::KP, NWIN = G::NWIN, P = G::P;
  float acc[S * S];
  VA_OUTLOOK_UNROLL
  for (int o = 0; o < S * S; ++o) acc[o] = 0.0f;
  VA_OUTLOOK_UNROLL
  for (int wi = 0; wi < NWIN; ++wi) {
    VA_OUTLOOK_UNROLL
    for (int wj = 0; wj < NWIN; ++wj) {
      VA_OUTLOOK_UNROLL
      for (int dy = 0; dy < S; ++dy) {
        VA_OUTLOOK_UNROLL
        for (int dx = 0; dx < S; ++dx) {
          const int qy = S * (NWIN - 1 - wi) + dy, qx = S * (NWIN - 1 - wj) + dx;
          if (qy < K && qx < K) {
            // one broadcast float4 read per 4 probabilities (all lanes of a head share the row)
            const float4* row4 = reinterpret_cast<const float4*>(
                slotBase + (((wi * NWIN + wj) * S + dy) * S + dx) * KP);
            VA_OUTLOOK_CHECK_ALIGN16(row4);
            float row[KP];
            VA_OUTLOOK_UNROLL
            for (int t4 = 0; t4 < KP / 4; ++t4) {
              const float4 f = row4[t4];
              row[4 * t4] = f.x;
              row[4 * t4 + 1] = f.y;
              row[4 * t4 + 2] = f.z;
              row[4 * t4 + 3] = f.w;
            }
            float s = 0.0f;
            VA_OUTLOOK_UNROLL
            for (int ra = 0; ra < K; ++ra)
              VA_OUTLOOK_UNROLL
              for (int rc = 0; rc < K; ++rc)
                s += row[ra * K + rc] * patch[(S * wi + ra) * P + S * wj + rc];
            acc[dy * S + dx] += s;
          }
        }
      }
    }
  }
  float* ob = out + b * a.H * a.W * a.C + ch;
  VA_OUTLOOK_UNROLL
  for (int dy = 0; dy < S; ++dy) {
    const int64_t y = S * cy - a.pad + dy;
    if (y < 0 || y >= a.H) continue;
    VA_OUTLOOK_UNROLL
    for (int dx = 0; dx < S; ++dx) {
      const int64_t x = S * cx - a.pad + dx;
      if (x >= 0 && x < a.W) ob[(y * a.W + x) * a.C] = acc[dy * S + dx];
    }
  }
}

// Gather over the cells. BWD = false (forward): out = Σ_windows Σ_r A[q(p), r] · X[src(r)] with
// A = softmax_r(scale · L) recomputed per row, X = v. BWD = true (dV): out = Σ_windows
// Σ_q A[q, r(p)] · X[dest(q)] with A = exp(scale · L − max[q]) · inv[q], X = dOut, where
// lse holds (max, 1/sum) per softmax row (written by outlookWindowBackwardKernel).
// Tile = NC consecutive cells × the HB·d channels of HB consecutive heads (d = 32: 8 cells of a
// row × one head, 256 threads; neighbouring cells' patches overlap, so most patch loads hit L1).
// Thread → (cell, channel), channels fastest: each pixel's channel run is read and written
// coalesced. Each thread first issues the loads of its P×P patch of X (registers), then phase 1
// stages the softmax rows (or columns) of the tile's slots in shared memory, one thread per slot
// (zero where the window or pixel does not exist), so both loads are in flight together; after the
// barrier every thread accumulates its cell's S×S pixels. Shared: NC · HB · SLOTS · KP floats.
constexpr int kOutlookMaxThreads = 256;  // both fused kernels launch at most this many threads

template <int K, int S, bool BWD>
__global__ void __launch_bounds__(kOutlookMaxThreads, K <= 3 ? 3 : 1)
    outlookCellKernel(const float* __restrict__ X, const float* __restrict__ L,
                      const float* __restrict__ lse, float* __restrict__ out, OutlookArgs a,
                      OutlookCells cells) {
  using G = OutlookGeom<K, S>;
  constexpr int K2 = G::K2, KP = G::KP, NWIN = G::NWIN, P = G::P, SLOTS = G::SLOTS;
  VA_DYNAMIC_SHARED(float, As);
  const int NC = cells.cellsPerBlock, HB = cells.headsPerBlock;
  const int heads = a.heads, d = a.d;
  const int CB = HB * d;  // channels of a tile
  const int nHG = heads / HB;
  const int nTiles = (cells.total + NC - 1) / NC * nHG;
  const int perImage = cells.nCy * cells.nCx;
  const int nItems = NC * CB;
  const int nSlots = NC * HB * SLOTS;
  for (int tile = blockIdx.x; tile < nTiles; tile += gridDim.x) {
    const int cellBase = tile / nHG * NC;
    const int hg = tile % nHG;
    const int chBase = hg * CB;
    // ---- the first item's patch: loads issued before phase 1
    float patch[P * P];
    const int tid = static_cast<int>(threadIdx.x);
    const bool have0 = tid < nItems && cellBase + tid / CB < cells.total;
    if (have0) {
      const int g = cellBase + tid / CB;
      const int pix = g % perImage;
      outlookLoadPatch<K, S>(X, a, g / perImage, cells.c0y + pix / cells.nCx,
                             cells.c0x + pix % cells.nCx, chBase + tid % CB, patch);
    }
    // ---- phase 1: softmax rows / columns of every slot of the tile
    for (int sl = tid; sl < nSlots; sl += blockDim.x) {
      const int inCell = sl % SLOTS;
      const int m = hg * HB + (sl / SLOTS) % HB;
      const int cl = sl / (SLOTS * HB);
      const int dx = inCell % S, dy = (inCell / S) % S;
      const int wj = (inCell / (S * S)) % NWIN, wi = inCell / (S * S * NWIN);
      const int qy = S * (NWIN - 1 - wi) + dy, qx = S * (NWIN - 1 - wj) + dx;
      if (qy >= K || qx >= K) continue;  // never read
      float* dst = As + static_cast<int64_t>(sl) * KP;
      const int g = cellBase + cl;
      bool ok = g < cells.total;
      int64_t b = 0, i = 0, j = 0;
      if (ok) {
        const int pix = g % perImage;
        b = g / perImage;
        const int cy = cells.c0y + pix / cells.nCx, cx = cells.c0x + pix % cells.nCx;
        i = cy - NWIN + 1 + wi;
        j = cx - NWIN + 1 + wj;
        const int64_t y = int64_t(S) * cy - a.pad + dy, x = int64_t(S) * cx - a.pad + dx;
        ok = i >= 0 && i < a.h && j >= 0 && j < a.w && y >= 0 && y < a.H && x >= 0 && x < a.W;
      }
      float z[KP];
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < KP; ++t) z[t] = 0.0f;
      if (ok) {
        const int64_t wh = ((b * a.h + i) * a.w + j) * heads + m;
        const int pos = qy * K + qx;
        const float* lw = L + wh * (K2 * K2);
        if (!BWD) {
          const float* row = lw + pos * K2;
          float mx = -INFINITY;
          VA_OUTLOOK_UNROLL
          for (int t = 0; t < K2; ++t) {
            z[t] = a.scale * __ldg(row + t);
            mx = fmaxf(mx, z[t]);
          }
          float sum = 0.0f;
          VA_OUTLOOK_UNROLL
          for (int t = 0; t < K2; ++t) {
            z[t] = expf(z[t] - mx);
            sum += z[t];
          }
          const float inv = 1.0f / sum;
          VA_OUTLOOK_UNROLL
          for (int t = 0; t < K2; ++t) z[t] *= inv;
        } else {
          const float* ls = lse + wh * K2 * 2;
          VA_OUTLOOK_UNROLL
          for (int t = 0; t < K2; ++t)
            z[t] = expf(a.scale * __ldg(lw + t * K2 + pos) - __ldg(ls + 2 * t)) *
                   __ldg(ls + 2 * t + 1);
        }
      }
      float4* dst4 = reinterpret_cast<float4*>(dst);
      VA_OUTLOOK_CHECK_ALIGN16(dst4);
      VA_OUTLOOK_UNROLL
      for (int t4 = 0; t4 < KP / 4; ++t4)
        dst4[t4] = make_float4(z[4 * t4], z[4 * t4 + 1], z[4 * t4 + 2], z[4 * t4 + 3]);
    }
    __syncthreads();
    // ---- phase 2: one thread per (cell, channel); (cell, channel) recomputed rather than kept
    // live through phase 1
    for (int it = tid; it < nItems; it += blockDim.x) {
      const int cl = it / CB, cc = it % CB;
      const int g = cellBase + cl;
      if (g >= cells.total) continue;
      const int pix = g % perImage;
      const int64_t b = g / perImage, cy = cells.c0y + pix / cells.nCx;
      const int64_t cx = cells.c0x + pix % cells.nCx;
      if (it != tid) outlookLoadPatch<K, S>(X, a, b, cy, cx, chBase + cc, patch);  // CB > 256
      outlookCellOutput<K, S>(As + static_cast<int64_t>(cl * HB + cc / d) * SLOTS * KP, patch,
                              out, a, b, cy, cx, chBase + cc);
    }
    __syncthreads();  // As is rewritten by the next tile
  }
}

// Fused backward for NWIN <= 2 (e.g. k = 3, s = 2): one pass computes dLogits and dV, reading
// v, dOut and logits once from memory. Cells start at 0 here (cell (i, j) owns window (i, j), the
// slot (NWIN−1, NWIN−1); every window has an owner). Tile = NC cells × HB heads as in
// outlookCellKernel. Shared memory (floats): As [NC·HB·SLOTS·KP] (A columns of the slots),
// Gs, Vs [NC·HB·K2·ld] (Gw, Vw of the owned windows), Ls [NC·HB·NWIN²·K2·2] (max and 1/sum of
// every row of every slot window, recomputed from the logits: ≤ NWIN² windows per cell; A is
// then exp(scale·z − max)·(1/sum), the forward's own formula).
//   phase 0: thread (cell, channel) loads Gw/Vw of its owned window → Gs/Vs; rows → Ls
//   phase 1: slot threads: A columns → As; row threads (cell, head, q) of the owned window: A row,
//            dA = Gw[q]·Vwᵀ (shared), dLogits row → global
//   phase 2: thread (cell, channel): dV of the cell's pixels from As and the P×P patch of dOut.
// dA[t] += Σ_e gq[e]·vw[t·ld + e] for t < K2 (one Gw row against a window's K2 Vw rows in shared
// memory). float4 reads when ld allows: with ld/4 odd, the rows a quarter warp reads fall in distinct
// bank groups, and one window-head's Vw rows are broadcast to its K2 threads.
template <int K2>
__device__ __forceinline__ void outlookRowDots(const float* gq, const float* vw, int ld, int d, float* dA) {
  if (ld % 4 == 0) {
    const float4* g4 = reinterpret_cast<const float4*>(gq);
    const float4* v4 = reinterpret_cast<const float4*>(vw);
    VA_OUTLOOK_CHECK_ALIGN16(g4);
    VA_OUTLOOK_CHECK_ALIGN16(v4);
    const int ld4 = ld / 4;
    for (int e4 = 0; e4 < d / 4; ++e4) {
      const float4 g = g4[e4];
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) {
        const float4 x = v4[t * ld4 + e4];
        dA[t] += g.x * x.x + g.y * x.y + g.z * x.z + g.w * x.w;
      }
    }
  } else {
    for (int e = 0; e < d; ++e) {
      const float g = gq[e];
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) dA[t] += g * vw[t * ld + e];
    }
  }
}

template <int K, int S>
__global__ void __launch_bounds__(kOutlookMaxThreads, 3)
    outlookFusedBackwardKernel(const float* __restrict__ v, const float* __restrict__ L,
                               const float* __restrict__ dOut, float* __restrict__ dV,
                               float* __restrict__ dLogits, OutlookArgs a, OutlookCells cells,
                               int ld) {
  using G = OutlookGeom<K, S>;
  constexpr int K2 = G::K2, KP = G::KP, NWIN = G::NWIN, P = G::P, SLOTS = G::SLOTS;
  constexpr int NW2 = NWIN * NWIN;
  VA_DYNAMIC_SHARED(float, sm);
  const int NC = cells.cellsPerBlock, HB = cells.headsPerBlock;
  const int heads = a.heads, d = a.d;
  const int CB = HB * d;
  const int nHG = heads / HB;
  float* As = sm;
  float* Gs = As + NC * HB * SLOTS * KP;
  float* Vs = Gs + NC * HB * K2 * ld;
  float* Ls = Vs + NC * HB * K2 * ld;
  const int nTiles = (cells.total + NC - 1) / NC * nHG;
  const int perImage = cells.nCy * cells.nCx;
  const int nItems = NC * CB;
  const int nSlots = NC * HB * SLOTS;
  const int nRows = NC * HB * K2;
  const int nLse = NC * HB * NW2 * K2;
  const int tid = static_cast<int>(threadIdx.x), nth = static_cast<int>(blockDim.x);
  for (int tile = blockIdx.x; tile < nTiles; tile += gridDim.x) {
    const int cellBase = tile / nHG * NC;
    const int hg = tile % nHG;
    const int chBase = hg * CB;
    // ---- phase 0a: Gw / Vw of the owned windows (zero outside the image or without window)
    for (int it = tid; it < nItems; it += nth) {
      const int cl = it / CB, cc = it % CB;
      const int g = cellBase + cl;
      float gb[K2], vb[K2];
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) gb[t] = vb[t] = 0.0f;
      if (g < cells.total) {
        const int pix = g % perImage;
        const int64_t b = g / perImage;
        const int64_t i = cells.c0y + pix / cells.nCx, j = cells.c0x + pix % cells.nCx;
        if (i < a.h && j < a.w) {
          const int64_t y0 = i * S - a.pad, x0 = j * S - a.pad;
          const int64_t base = b * a.H * a.W * a.C + chBase + cc;
          VA_OUTLOOK_UNROLL
          for (int t = 0; t < K2; ++t) {
            const int64_t y = y0 + t / K, x = x0 + t % K;
            if (y >= 0 && y < a.H && x >= 0 && x < a.W) {
              const int64_t off = base + (y * a.W + x) * a.C;
              gb[t] = __ldg(dOut + off);
              vb[t] = __ldg(v + off);
            }
          }
        }
      }
      float* gs = Gs + (cl * HB + cc / d) * K2 * ld + cc % d;
      float* vs = Vs + (cl * HB + cc / d) * K2 * ld + cc % d;
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) {
        gs[t * ld] = gb[t];
        vs[t * ld] = vb[t];
      }
    }
    // ---- phase 0b: log-sum-exp of the rows of every slot window
    for (int u = tid; u < nLse; u += nth) {
      const int q = u % K2;
      const int w2 = (u / K2) % NW2;
      const int ml = (u / (K2 * NW2)) % HB;
      const int cl = u / (K2 * NW2 * HB);
      const int g = cellBase + cl;
      if (g >= cells.total) continue;
      const int pix = g % perImage;
      const int64_t b = g / perImage;
      const int64_t i = cells.c0y + pix / cells.nCx - NWIN + 1 + w2 / NWIN;
      const int64_t j = cells.c0x + pix % cells.nCx - NWIN + 1 + w2 % NWIN;
      if (i < 0 || i >= a.h || j < 0 || j >= a.w) continue;  // never read
      const int64_t wh = ((b * a.h + i) * a.w + j) * heads + hg * HB + ml;
      const float* row = L + wh * (K2 * K2) + q * K2;
      float z[K2];
      float mx = -INFINITY;
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) {
        z[t] = a.scale * __ldg(row + t);
        mx = fmaxf(mx, z[t]);
      }
      float sum = 0.0f;
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) sum += expf(z[t] - mx);
      Ls[2 * u] = mx;
      Ls[2 * u + 1] = 1.0f / sum;
    }
    __syncthreads();
    // ---- phase 1: A columns of the slots (dV) and dLogits rows of the owned windows
    for (int u = tid; u < nSlots + nRows; u += nth) {
      if (u < nSlots) {
        const int sl = u;
        const int inCell = sl % SLOTS;
        const int ml = (sl / SLOTS) % HB;
        const int cl = sl / (SLOTS * HB);
        const int dx = inCell % S, dy = (inCell / S) % S;
        const int wj = (inCell / (S * S)) % NWIN, wi = inCell / (S * S * NWIN);
        const int qy = S * (NWIN - 1 - wi) + dy, qx = S * (NWIN - 1 - wj) + dx;
        if (qy >= K || qx >= K) continue;  // never read
        const int g = cellBase + cl;
        bool ok = g < cells.total;
        int64_t b = 0, i = 0, j = 0;
        if (ok) {
          const int pix = g % perImage;
          b = g / perImage;
          const int cy = cells.c0y + pix / cells.nCx, cx = cells.c0x + pix % cells.nCx;
          i = cy - NWIN + 1 + wi;
          j = cx - NWIN + 1 + wj;
          const int64_t y = int64_t(S) * cy - a.pad + dy, x = int64_t(S) * cx - a.pad + dx;
          ok = i >= 0 && i < a.h && j >= 0 && j < a.w && y >= 0 && y < a.H && x >= 0 && x < a.W;
        }
        float z[KP];
        VA_OUTLOOK_UNROLL
        for (int t = 0; t < KP; ++t) z[t] = 0.0f;
        if (ok) {
          const int64_t wh = ((b * a.h + i) * a.w + j) * heads + hg * HB + ml;
          const float* lw = L + wh * (K2 * K2) + (qy * K + qx);
          const float* ls = Ls + ((cl * HB + ml) * NW2 + wi * NWIN + wj) * K2 * 2;
          VA_OUTLOOK_UNROLL
          for (int t = 0; t < K2; ++t)
            z[t] = expf(a.scale * __ldg(lw + t * K2) - ls[2 * t]) * ls[2 * t + 1];
        }
        float4* dst4 = reinterpret_cast<float4*>(As + sl * KP);
        VA_OUTLOOK_CHECK_ALIGN16(dst4);
        VA_OUTLOOK_UNROLL
        for (int t4 = 0; t4 < KP / 4; ++t4)
          dst4[t4] = make_float4(z[4 * t4], z[4 * t4 + 1], z[4 * t4 + 2], z[4 * t4 + 3]);
      } else {
        const int rr = u - nSlots;
        const int q = rr % K2;
        const int ml = (rr / K2) % HB;
        const int cl = rr / (K2 * HB);
        const int g = cellBase + cl;
        if (g >= cells.total) continue;
        const int pix = g % perImage;
        const int64_t b = g / perImage;
        const int64_t i = cells.c0y + pix / cells.nCx, j = cells.c0x + pix % cells.nCx;
        if (i >= a.h || j >= a.w) continue;  // the cell owns no window
        const int64_t wh = ((b * a.h + i) * a.w + j) * heads + hg * HB + ml;
        float dA[K2];
        VA_OUTLOOK_UNROLL
        for (int t = 0; t < K2; ++t) dA[t] = 0.0f;
        const float* gq = Gs + ((cl * HB + ml) * K2 + q) * ld;
        const float* vw = Vs + (cl * HB + ml) * K2 * ld;
        outlookRowDots<K2>(gq, vw, ld, d, dA);
        // the A row after the dA loop (fewer live registers there)
        const float* row = L + wh * (K2 * K2) + q * K2;
        const float* ls = Ls + (((cl * HB + ml) * NW2 + NW2 - 1) * K2 + q) * 2;
        const float mx = ls[0], inv = ls[1];
        float A[K2];
        float rs = 0.0f;
        VA_OUTLOOK_UNROLL
        for (int t = 0; t < K2; ++t) {
          A[t] = expf(a.scale * __ldg(row + t) - mx) * inv;
          rs += A[t] * dA[t];
        }
        float* drow = dLogits + wh * (K2 * K2) + q * K2;
        VA_OUTLOOK_UNROLL
        for (int t = 0; t < K2; ++t) drow[t] = a.scale * A[t] * (dA[t] - rs);
      }
    }
    __syncthreads();
    // ---- phase 2: dV of the cells' pixels
    for (int it = tid; it < nItems; it += nth) {
      const int cl = it / CB, cc = it % CB;
      const int g = cellBase + cl;
      if (g >= cells.total) continue;
      const int pix = g % perImage;
      const int64_t b = g / perImage, cy = cells.c0y + pix / cells.nCx;
      const int64_t cx = cells.c0x + pix % cells.nCx;
      float patch[P * P];
      outlookLoadPatch<K, S>(dOut, a, b, cy, cx, chBase + cc, patch);
      outlookCellOutput<K, S>(As + (cl * HB + cc / d) * SLOTS * KP, patch, dV, a, b, cy, cx,
                              chBase + cc);
    }
    __syncthreads();  // shared memory is rewritten by the next tile
  }
}

// Backward per window-head (wh = ((b·h + i)·w + j)·heads + m, the logits' own order): a block
// takes `perBlock` consecutive window-heads. Shared memory: the tile's global pixel offsets (one
// per window position), its logits (one contiguous chunk, loaded coalesced, overwritten in place
// by dLogits and stored coalesced), and the Gw / Vw tiles [wh][position][e] (row stride `ld`: odd,
// or when d % 4 == 0 a multiple of 4 with ld/4 odd for float4 reads; either way the rows read by
// one warp sit in distinct banks). Global loads go in batches of kOutlookBatch independent loads
// per thread (float4 when `vec`: d % 4 == 0 and v, dOut 16-byte aligned).
// One thread per softmax row (wh, q): A row in registers, dA[q, :] = Gw[q]·Vwᵀ from shared
// memory, dLogits row, and the row's (max, 1/Σ exp) pair → lse[2·row] (for the dV kernel).
constexpr int kOutlookBatch = 8;

// Bytes of the offset table at the start of the window kernel's shared memory (16-byte multiple).
__host__ __device__ constexpr int outlookRowTableBytes(int rows) { return (rows * 8 + 15) / 16 * 16; }

template <int K>
__global__ void __launch_bounds__(kOutlookMaxThreads)
    outlookWindowBackwardKernel(const float* __restrict__ v, const float* __restrict__ logits,
                                const float* __restrict__ dOut, float* __restrict__ dLogits,
                                float* __restrict__ lse, OutlookArgs a, int perBlock, int ld,
                                bool vec) {
  constexpr int K2 = K * K;
  VA_DYNAMIC_SHARED(unsigned char, smRaw);
  int64_t* rowOff = reinterpret_cast<int64_t*>(smRaw);  // perBlock · K2 (−1: outside the image)
  float* Ls = reinterpret_cast<float*>(smRaw + outlookRowTableBytes(perBlock * K2));
  // Ls: perBlock · K2 · K2, rounded up to a multiple of 4 floats (float4 alignment of Gs)
  float* Gs = Ls + (perBlock * K2 * K2 + 3) / 4 * 4;  // perBlock · K2 · ld
  float* Vs = Gs + perBlock * K2 * ld;
  const int d = a.d, heads = a.heads;
  const int tid = static_cast<int>(threadIdx.x), nth = static_cast<int>(blockDim.x);
  const int64_t totalWh = a.B * a.h * a.w * heads;
  const int64_t nTiles = (totalWh + perBlock - 1) / perBlock;
  for (int64_t tile = blockIdx.x; tile < nTiles; tile += gridDim.x) {
    const int64_t whBase = tile * perBlock;
    const int nWh = static_cast<int>(totalWh - whBase < perBlock ? totalWh - whBase : perBlock);
    const int nRows = nWh * K2;
    // ---- pixel offsets of the tile's window positions (head channel offset included)
    if (tid < nRows) {
      const int64_t wh = whBase + tid / K2;
      const int pos = tid % K2;
      const int m = static_cast<int>(wh % heads);
      int64_t r = wh / heads;
      const int64_t j = r % a.w;
      r /= a.w;
      const int64_t i = r % a.h;
      const int64_t b = r / a.h;
      const int64_t y = i * a.stride - a.pad + pos / K, x = j * a.stride - a.pad + pos % K;
      rowOff[tid] = (y >= 0 && y < a.H && x >= 0 && x < a.W)
                        ? ((b * a.H + y) * a.W + x) * a.C + static_cast<int64_t>(m) * d
                        : int64_t(-1);
    }
    // ---- logits chunk (contiguous), kOutlookBatch loads in flight per thread
    const int nL = nRows * K2;
    const float* lsrc = logits + whBase * (K2 * K2);
    for (int t0 = tid; t0 < nL; t0 += kOutlookBatch * nth) {
      float buf[kOutlookBatch];
      VA_OUTLOOK_UNROLL
      for (int u = 0; u < kOutlookBatch; ++u) {
        const int t = t0 + u * nth;
        buf[u] = t < nL ? __ldg(lsrc + t) : 0.0f;
      }
      VA_OUTLOOK_UNROLL
      for (int u = 0; u < kOutlookBatch; ++u) {
        const int t = t0 + u * nth;
        if (t < nL) Ls[t] = buf[u];
      }
    }
    __syncthreads();
    // ---- Gw / Vw tiles
    if (vec) {
      const int d4 = d / 4, n4 = nRows * d4, ld4 = ld / 4;
      float4* G4 = reinterpret_cast<float4*>(Gs);
      float4* V4 = reinterpret_cast<float4*>(Vs);
      VA_OUTLOOK_CHECK_ALIGN16(G4);
      VA_OUTLOOK_CHECK_ALIGN16(V4);
      for (int t0 = tid; t0 < n4; t0 += kOutlookBatch * nth) {
        float4 gb[kOutlookBatch], vb[kOutlookBatch];
        VA_OUTLOOK_UNROLL
        for (int u = 0; u < kOutlookBatch; ++u) {
          const int t = t0 + u * nth;
          gb[u] = vb[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          if (t < n4) {
            const int row = t / d4;
            const int64_t off = rowOff[row];
            if (off >= 0) {
              const float4* gsrc = reinterpret_cast<const float4*>(dOut + off) + (t - row * d4);
              const float4* vsrc = reinterpret_cast<const float4*>(v + off) + (t - row * d4);
              VA_OUTLOOK_CHECK_ALIGN16(gsrc);
              gb[u] = __ldg(gsrc);
              vb[u] = __ldg(vsrc);
            }
          }
        }
        VA_OUTLOOK_UNROLL
        for (int u = 0; u < kOutlookBatch; ++u) {
          const int t = t0 + u * nth;
          if (t < n4) {
            const int row = t / d4;
            G4[row * ld4 + (t - row * d4)] = gb[u];
            V4[row * ld4 + (t - row * d4)] = vb[u];
          }
        }
      }
    } else {
      const int nT = nRows * d;
      for (int t0 = tid; t0 < nT; t0 += kOutlookBatch * nth) {
        float gb[kOutlookBatch], vb[kOutlookBatch];
        VA_OUTLOOK_UNROLL
        for (int u = 0; u < kOutlookBatch; ++u) {
          const int t = t0 + u * nth;
          gb[u] = vb[u] = 0.0f;
          if (t < nT) {
            const int row = t / d;
            const int64_t off = rowOff[row];
            if (off >= 0) {
              gb[u] = __ldg(dOut + off + (t - row * d));
              vb[u] = __ldg(v + off + (t - row * d));
            }
          }
        }
        VA_OUTLOOK_UNROLL
        for (int u = 0; u < kOutlookBatch; ++u) {
          const int t = t0 + u * nth;
          if (t < nT) {
            const int row = t / d;
            Gs[row * ld + (t - row * d)] = gb[u];
            Vs[row * ld + (t - row * d)] = vb[u];
          }
        }
      }
    }
    __syncthreads();
    // ---- one thread per softmax row
    const int row = tid;
    if (row < nRows) {
      const int whl = row / K2;
      float* lrow = Ls + row * K2;
      float A[K2];
      float mx = -INFINITY;
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) {
        A[t] = a.scale * lrow[t];
        mx = fmaxf(mx, A[t]);
      }
      float sum = 0.0f;
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) {
        A[t] = expf(A[t] - mx);
        sum += A[t];
      }
      const float inv = 1.0f / sum;
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) A[t] *= inv;
      lse[(whBase * K2 + row) * 2] = mx;
      lse[(whBase * K2 + row) * 2 + 1] = inv;
      float dA[K2];
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) dA[t] = 0.0f;
      const float* gq = Gs + row * ld;
      const float* vw = Vs + whl * K2 * ld;
      outlookRowDots<K2>(gq, vw, ld, d, dA);
      float rs = 0.0f;
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) rs += A[t] * dA[t];
      VA_OUTLOOK_UNROLL
      for (int t = 0; t < K2; ++t) lrow[t] = a.scale * A[t] * (dA[t] - rs);
    }
    __syncthreads();
    float* ldst = dLogits + whBase * (K2 * K2);
    for (int t = tid; t < nL; t += nth) ldst[t] = Ls[t];
    __syncthreads();  // shared tiles are reloaded by the next tile
  }
}

VA_CUDA_NAMESPACE_END
