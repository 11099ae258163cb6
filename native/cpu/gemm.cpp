// visattn — packed GEMM driver (BLIS-style) for cpu::matmul.
//
// Loops: jc (NC columns of C) → pc (KC of K; B block packed into kc×NR micro-panels, shared) →
// ic (MC rows; A block packed into kc×MR micro-panels, shared) → parallel over (NR panel, MR panel
// group) tasks, each calling the ISA micro-kernel. Packing zero-pads edges, so the kernel always
// computes full tiles and only its store is clipped. transA/transB are absorbed by the packing.
// Results do not depend on the thread count: each C element is accumulated over p ascending, then
// K blocks ascending, then k ascending inside the kernel, whatever thread computes it.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cpu/cpu_kernels.h"
#include "cpu/gemm_internal.h"
#include "cpu/math_internal.h"

// The gemv loops need the dynamic vectoriser cost model (see rows.cpp).
#pragma GCC optimize("vect-cost-model=dynamic")

namespace va {
namespace cpu {

namespace {

constexpr int64_t kMC = 192;   // multiple of every MR (12, 6, 4)
constexpr int64_t kNC = 2048;  // multiple of every NR (32, 16, 8)
// Work (flops) below which a phase is not worth splitting across threads.
constexpr int64_t kParallelFlops = 1 << 16;

struct AlignedBuf {
  float* p = nullptr;
  size_t cap = 0;
  ~AlignedBuf() { std::free(p); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      p = nullptr;
      cap = 0;
      size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) throw std::bad_alloc();
      cap = n;
    }
    return p;
  }
};
thread_local AlignedBuf tl_packA, tl_packB;

// One GEMM on a (sub-)matrix: C(i,j) (+)= alpha Σ_k A(i,k) B(k,j) with
//   A(i,k) = transA ? a[k·lda + i] : a[i·lda + k];  B(k,j) = transB ? b[j·ldb + k] : b[k·ldb + j].
struct Gemm {
  const float* a;
  const float* b;
  float* c;
  const float* bias;
  int64_t M, N, K, lda, ldb, ldc;
  int64_t kSeg, sA, sB;  // K = segments·kSeg; segment q reads a + q·sA, b + q·sB (see forSegments)
  bool transA, transB;
  float alpha, beta;
};

// Runs fn over [0, n) on the pool when `pool` is set and the work is large enough, else inline.
template <class F>
void par(ThreadPool* pool, int64_t n, int64_t flopsPerItem, F&& fn) {
  if (!pool || pool->size() == 1 || n <= 1 || n * flopsPerItem < 2 * kParallelFlops) {
    fn(int64_t(0), n);
    return;
  }
  int64_t grain = std::max<int64_t>(1, kParallelFlops / std::max<int64_t>(1, flopsPerItem));
  pool->parallelFor(n, grain, [&](int64_t b, int64_t e) { fn(b, e); });
}

// K may be a concatenation of batch segments (reduction over the batch): k = q·kSeg + kk reads
// A_q = a + q·sA and B_q = b + q·sB at kk. Calls f(q, kk, len, off) for the segments of [k0, k0+kc),
// off being the position inside the packed block.
template <class F>
inline void forSegments(const Gemm& g, int64_t k0, int64_t kc, F&& f) {
  int64_t k = k0;
  const int64_t end = k0 + kc;
  while (k < end) {
    const int64_t q = k / g.kSeg, kk = k - q * g.kSeg;
    const int64_t len = std::min(g.kSeg - kk, end - k);
    f(q, kk, len, k - k0);
    k += len;
  }
}

// Packs rows [i0, i0+mc) × k [k0, k0+kc) of A into panels of MR rows: panel ip at dst + ip·MR·kc,
// element (k, r) at [k·MR + r]; rows past mc are zero. Panels [pb, pe) only. Full panels go through
// the ISA's packing routines, the last partial one through the generic loop here.
void packA(const gemm::KernelInfo& ki, const Gemm& g, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
           float* dst, int64_t pb, int64_t pe) {
  const int MR = ki.MR;
  const int64_t full = std::max(pb, std::min(pe, mc / MR));  // panels [pb, full) are full
  forSegments(g, k0, kc, [&](int64_t q, int64_t kk, int64_t len, int64_t off) {
    const float* a = g.a + q * g.sA;
    if (full > pb) {
      if (!g.transA) {
        for (int64_t ip = pb; ip < full; ++ip)
          ki.packTransA(a + (i0 + ip * MR) * g.lda + kk, g.lda, len, dst + ip * MR * kc + off * MR);
      } else {
        ki.packCopyA(a + kk * g.lda + i0 + pb * MR, g.lda, len, full - pb, MR * kc,
                     dst + pb * MR * kc + off * MR);
      }
    }
    for (int64_t ip = full; ip < pe; ++ip) {
      float* __restrict dd = dst + ip * MR * kc + off * MR;
      const int64_t r0 = i0 + ip * MR;
      const int mr = static_cast<int>(std::min<int64_t>(MR, i0 + mc - r0));
      for (int64_t k = 0; k < len; ++k)
        for (int r = 0; r < MR; ++r)
          dd[k * MR + r] = r >= mr ? 0.0f : g.transA ? a[(kk + k) * g.lda + r0 + r] : a[(r0 + r) * g.lda + kk + k];
    }
  });
}

// Packs k [k0, k0+kc) × columns [j0, j0+nc) of B into panels of NR columns: panel jp at
// dst + jp·NR·kc, element (k, c) at [k·NR + c]; columns past nc are zero. Panels [pb, pe) only.
void packB(const gemm::KernelInfo& ki, const Gemm& g, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
           float* dst, int64_t pb, int64_t pe) {
  const int NR = ki.NR;
  const int64_t full = std::max(pb, std::min(pe, nc / NR));  // panels [pb, full) are full
  forSegments(g, k0, kc, [&](int64_t q, int64_t kk, int64_t len, int64_t off) {
    const float* b = g.b + q * g.sB;
    if (full > pb) {
      if (g.transB) {
        for (int64_t jp = pb; jp < full; ++jp)
          ki.packTransB(b + (j0 + jp * NR) * g.ldb + kk, g.ldb, len, dst + jp * NR * kc + off * NR);
      } else {
        ki.packCopyB(b + kk * g.ldb + j0 + pb * NR, g.ldb, len, full - pb, NR * kc,
                     dst + pb * NR * kc + off * NR);
      }
    }
    for (int64_t jp = full; jp < pe; ++jp) {
      float* __restrict dd = dst + jp * NR * kc + off * NR;
      const int64_t c0 = j0 + jp * NR;
      const int nr = static_cast<int>(std::min<int64_t>(NR, j0 + nc - c0));
      for (int64_t k = 0; k < len; ++k)
        for (int c = 0; c < NR; ++c)
          dd[k * NR + c] = c >= nr ? 0.0f : g.transB ? b[(c0 + c) * g.ldb + kk + k] : b[(kk + k) * g.ldb + c0 + c];
    }
  });
}

// Matrix-vector shapes (M == 1 or N == 1, one K segment): no packing, memory-bound dot products
// (fixed-lane vectorised sums) or axpy sweeps (ascending k per element).
void gemv(const Gemm& g, ThreadPool* pool) {
  const math::MathKernels& vm = math::kernels();
  auto store = [&](int64_t i, int64_t j, float acc) {
    float* c = g.c + i * g.ldc + j;
    float v = g.alpha * acc;
    if (g.beta != 0.0f) v += g.beta * *c;
    if (g.bias) v += g.bias[j];
    *c = v;
  };
  const int64_t K = g.K;
  if (g.M == 1) {
    // A(0, k) = a[k] in both layouts.
    if (g.transB || g.N == 1) {  // C(0, j) = dot(a, B(:, j)), B(:, j) contiguous
      par(pool, g.N, 2 * K, [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; ++j) {
          const float* col = g.N == 1 && !g.transB ? g.b : g.b + j * g.ldb;
          store(0, j, static_cast<float>(vm.dot(g.a, col, K)));
        }
      });
    } else {  // rows of B are contiguous: acc[j] += a[k]·B(k, j), k ascending
      constexpr int64_t kCols = 2048;
      par(pool, (g.N + kCols - 1) / kCols, 2 * K * kCols, [&](int64_t tb, int64_t te) {
        float acc[kCols];
        for (int64_t t = tb; t < te; ++t) {
          const int64_t j0 = t * kCols, w = std::min(kCols, g.N - j0);
          for (int64_t j = 0; j < w; ++j) acc[j] = 0.0f;
          int64_t k = 0;
          for (; k + 4 <= K; k += 4) {  // four rows per sweep of acc (fixed grouping)
            const float a0 = g.a[k], a1 = g.a[k + 1], a2 = g.a[k + 2], a3 = g.a[k + 3];
            const float* __restrict r0 = g.b + k * g.ldb + j0;
            const float* __restrict r1 = r0 + g.ldb;
            const float* __restrict r2 = r1 + g.ldb;
            const float* __restrict r3 = r2 + g.ldb;
            for (int64_t j = 0; j < w; ++j) acc[j] += ((a0 * r0[j] + a1 * r1[j]) + (a2 * r2[j] + a3 * r3[j]));
          }
          for (; k < K; ++k) {
            const float ak = g.a[k];
            const float* __restrict row = g.b + k * g.ldb + j0;
            for (int64_t j = 0; j < w; ++j) acc[j] += ak * row[j];
          }
          for (int64_t j = 0; j < w; ++j) store(0, j0 + j, acc[j]);
        }
      });
    }
    return;
  }
  // N == 1: B(k, 0) = b[k] in both layouts.
  if (!g.transA) {  // C(i, 0) = dot(A(i, :), b)
    par(pool, g.M, 2 * K, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) store(i, 0, static_cast<float>(vm.dot(g.a + i * g.lda, g.b, K)));
    });
  } else {  // A stored [K, M]: acc[i] += b[k]·a[k·M + i], k ascending
    constexpr int64_t kRows = 2048;
    par(pool, (g.M + kRows - 1) / kRows, 2 * K * kRows, [&](int64_t tb, int64_t te) {
      float acc[kRows];
      for (int64_t t = tb; t < te; ++t) {
        const int64_t i0 = t * kRows, w = std::min(kRows, g.M - i0);
        for (int64_t i = 0; i < w; ++i) acc[i] = 0.0f;
        int64_t k = 0;
        for (; k + 4 <= K; k += 4) {  // four rows per sweep of acc (fixed grouping)
          const float b0 = g.b[k], b1 = g.b[k + 1], b2 = g.b[k + 2], b3 = g.b[k + 3];
          const float* __restrict r0 = g.a + k * g.lda + i0;
          const float* __restrict r1 = r0 + g.lda;
          const float* __restrict r2 = r1 + g.lda;
          const float* __restrict r3 = r2 + g.lda;
          for (int64_t i = 0; i < w; ++i) acc[i] += ((b0 * r0[i] + b1 * r1[i]) + (b2 * r2[i] + b3 * r3[i]));
        }
        for (; k < K; ++k) {
          const float bk = g.b[k];
          const float* __restrict row = g.a + k * g.lda + i0;
          for (int64_t i = 0; i < w; ++i) acc[i] += bk * row[i];
        }
        for (int64_t i = 0; i < w; ++i) store(i0 + i, 0, acc[i]);
      }
    });
  }
}

// first: this call's contribution is the first one to C (apply beta and bias); otherwise
// accumulate. pool == nullptr: run on this thread only.
void gemmBlocked(const gemm::KernelInfo& ki, const Gemm& g, bool first, ThreadPool* pool) {
  const int MR = ki.MR, NR = ki.NR;
  const int64_t M = g.M, N = g.N, K = g.K;
  if (K == 0) {  // no products: C = beta·C + bias (or += 0)
    if (!first) return;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float v = 0.0f;
        if (g.beta != 0.0f) v = g.beta * g.c[i * g.ldc + j];
        if (g.bias) v += g.bias[j];
        g.c[i * g.ldc + j] = v;
      }
    return;
  }
  if ((M == 1 || N == 1) && first && g.kSeg >= K) {
    gemv(g, pool);
    return;
  }
  // Even splits of K and M into blocks (the K split depends on K only: fixed summation order).
  const int64_t kKC = ki.KC;
  const int64_t nKb = (K + kKC - 1) / kKC;
  const int64_t KC = (K + nKb - 1) / nKb;
  const int64_t nMb = (M + kMC - 1) / kMC;
  const int64_t MC = ((M + nMb - 1) / nMb + MR - 1) / MR * MR;
  const int64_t nNb = (N + kNC - 1) / kNC;
  const int64_t NC = ((N + nNb - 1) / nNb + NR - 1) / NR * NR;

  float* bufB = tl_packB.get(static_cast<size_t>(KC * std::min(NC, (N + NR - 1) / NR * NR)));
  float* bufA = tl_packA.get(static_cast<size_t>(KC * std::min(MC, (M + MR - 1) / MR * MR)));
  const int threads = pool ? pool->size() : 1;

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t nJr = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool firstK = first && pc == 0;
      par(pool, nJr, 8 * NR * kc, [&](int64_t b, int64_t e) { packB(ki, g, pc, kc, jc, nc, bufB, b, e); });
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        const int64_t nIr = (mc + MR - 1) / MR;
        auto runTile = [&](int64_t jr, int64_t irb, int64_t ire) {
          const int64_t j = jc + jr * NR;
          const int nr = static_cast<int>(std::min<int64_t>(NR, N - j));
          const float* Bp = bufB + jr * NR * kc;
          gemm::Epilogue ep{g.alpha, g.beta, (firstK && g.bias) ? g.bias + j : nullptr, firstK, nullptr};
          for (int64_t ir = irb; ir < ire; ++ir) {
            const int64_t i = ic + ir * MR;
            const int mr = static_cast<int>(std::min<int64_t>(MR, M - i));
            // The B panel's last tile: fetch the next B micro-panel (the next task's) meanwhile.
            if (ir == nIr - 1 && jr + 1 < nJr) ep.nextB = Bp + NR * kc;
            ki.kernel(kc, bufA + ir * MR * kc, Bp, g.c + i * g.ldc + j, g.ldc, mr, nr, &ep);
          }
        };
        // Pack the A block (shared), then split the B panels (and the row panels when there are
        // few B panels) across threads. Each task keeps one B micro-panel in L1 while it sweeps
        // its row panels.
        par(pool, nIr, 8 * MR * kc, [&](int64_t b, int64_t e) { packA(ki, g, ic, mc, pc, kc, bufA, b, e); });
        int64_t groups = 1;
        if (threads > 1 && nJr < 4 * threads) groups = std::min<int64_t>(nIr, (4 * threads + nJr - 1) / nJr);
        const int64_t tasks = nJr * groups;
        const int64_t flopsPerTask = 2 * kc * NR * MR * ((nIr + groups - 1) / groups);
        par(pool, tasks, flopsPerTask, [&](int64_t tb, int64_t te) {
          for (int64_t t = tb; t < te; ++t) {
            const int64_t jr = t / groups, gi = t % groups;
            runTile(jr, gi * nIr / groups, (gi + 1) * nIr / groups);
          }
        });
      }
    }
  }
}

const gemm::KernelInfo& selectKernel() {
  const char* isa = isaName();
  if (std::strcmp(isa, "avx512") == 0) return gemm::kernelAvx512();
  if (std::strcmp(isa, "avx2") == 0) return gemm::kernelAvx2();
  return gemm::kernelScalar();
}

}  // namespace

namespace detail {

void matmulWith(const gemm::KernelInfo& ki, const MatmulParams& p, ThreadPool& pool) {
  if (p.batch <= 0 || p.M <= 0 || p.N <= 0) return;
  Gemm g;
  g.a = p.a;
  g.b = p.b;
  g.c = p.c;
  g.bias = p.bias;
  g.M = p.M;
  g.N = p.N;
  g.K = p.K < 0 ? 0 : p.K;
  g.transA = p.transA;
  g.transB = p.transB;
  g.lda = p.transA ? p.M : g.K;
  g.ldb = p.transB ? g.K : p.N;
  g.ldc = p.N;
  g.kSeg = std::max<int64_t>(g.K, 1);
  g.sA = g.sB = 0;
  g.alpha = p.alpha;
  g.beta = p.beta;
  auto at = [&](int64_t q) {
    Gemm s = g;
    s.a = p.a + q * p.strideA;
    s.b = p.b + q * p.strideB;
    s.c = p.c + q * p.strideC;
    return s;
  };
  const int threads = pool.size();
  const int64_t perMat = 2 * p.M * p.N * std::max<int64_t>(g.K, 1);
  const bool smallMat = perMat < 16 * kParallelFlops;

  if (p.batch == 1) {
    gemmBlocked(ki, g, true, &pool);
  } else if (p.strideC != 0) {
    if (smallMat || p.batch >= 4 * threads) {
      // Independent matmuls: one per task, each on one thread.
      int64_t grain = std::max<int64_t>(1, 2 * kParallelFlops / perMat);
      pool.parallelFor(p.batch, grain, [&](int64_t b, int64_t e) {
        for (int64_t q = b; q < e; ++q) gemmBlocked(ki, at(q), true, nullptr);
      });
    } else {
      for (int64_t q = 0; q < p.batch; ++q) gemmBlocked(ki, at(q), true, &pool);
    }
  } else {
    // Reduction over the batch: one GEMM whose K axis is the concatenation of the batch's K axes
    // (k = q·K + kk). Every C element accumulates its terms in ascending (q, kk) order, in K blocks
    // fixed by batch·K alone, whatever the thread count.
    Gemm r = g;
    r.K = g.K * p.batch;
    r.kSeg = std::max<int64_t>(g.K, 1);
    r.sA = p.strideA;
    r.sB = p.strideB;
    if (g.K == 0) r.K = 0;
    gemmBlocked(ki, r, true, &pool);
  }
}

}  // namespace detail

void matmul(const MatmulParams& p, ThreadPool& pool) { detail::matmulWith(selectKernel(), p, pool); }

}  // namespace cpu
}  // namespace va
