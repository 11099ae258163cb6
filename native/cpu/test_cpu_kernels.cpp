// visattn — standalone test + benchmark driver for the cpu kernels (not part of the addon).
// Checks every kernel against naive double-precision references on edge shapes, for every ISA the
// machine supports (and the AVX-512 micro-kernel's logic through its emulated build when the
// machine lacks AVX-512), checks that results do not depend on the thread count, and times the GEMM.
//
// Build (by hand; the addon's CMake excludes test_*.cpp). From the repository root, B=/tmp/cpu_build:
//   F="g++ -std=gnu++17 -O2 -Inative/include -Inative"; A512="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2"
//   $F $A512 -c native/cpu/gemm_avx512.cpp -o $B/gemm_avx512.o   (likewise math_, outlook_, halo_avx512.cpp)
//   $F -mavx2 -mfma -c native/cpu/gemm_avx2.cpp -o $B/gemm_avx2.o (likewise math_, outlook_, halo_avx2.cpp)
//   $F -Wno-psabi -DVA_GEMM_AVX512_EMULATE -c native/cpu/gemm_avx512.cpp -o $B/emu_gemm_avx512.o
//   $F -Wno-psabi -DVA_MATH_AVX512_EMULATE -c native/cpu/math_avx512.cpp -o $B/emu_math_avx512.o
//   $F -c each of native/cpu/{gemm,gemm_scalar,math_scalar,isa,elementwise,rows,outlook,halo}.cpp and
//         native/runtime/thread_pool.cpp
//   $F -DVA_TEST_HAVE_AVX512_EMULATED -c native/cpu/test_cpu_kernels.cpp, then link all with -lpthread.
// The two emulated objects let a machine without AVX-512 check the AVX-512 path's logic (the same
// source with plain vectors); on an AVX-512 machine the real path runs as well. The outlook and halo
// kernels' 16-lane logic is compiled into this driver itself (outlook_kernel.inc, halo_kernel.inc) for
// the same purpose.
// Usage: test_cpu_kernels [--no-bench] [--bench-only] [--size N] [--reps R] [--outlook-bench] [--halo-bench]
//                         [--mld-bench] [--kmeans-bench] [--verbose]
//   --outlook-bench: only time the outlook kernels (VOLO-D1 stage 1, B = 8) per ISA, 1 and 2 threads.
//   --halo-bench: only time the halo kernels (halonet50ts stage 3, B = 8) per ISA, 1 and 2 threads.
//   --mld-bench: only time the ML-Decoder kernels per ISA, 1 and 2 threads: cross-attention at the COCO
//                shape (B = 8, 80 shared queries, 196 keys, 8 heads, d = 96) and the group FC (OpenImages, COCO).
//   --kmeans-bench: only time the k-means cross-attention per ISA (not the scalar path), 1 and 2 threads, at
//                kMaX-DeepLab COCO stride 8 (B = 1, N = 161², L = 128, D = 128, Dv = 256).
//   --verbose: print the halo and ML-Decoder cases' max relative errors.
// Exit status 0 iff every check passed.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/cpu_kernels.h"
#include "cpu/gemm_internal.h"
#include "cpu/math_internal.h"
#include "cpu/group_decoder_internal.h"
#include "cpu/halo_internal.h"
#include "cpu/kmeans_internal.h"
#include "cpu/outlook_internal.h"
#include "visattn/philox.h"

// The outlook kernels' 16-lane (AVX-512) logic, built here with plain vectors (kOlTable, internal).
#pragma GCC diagnostic ignored "-Wpsabi"
#define VA_OL_LANES 16
#include "cpu/outlook_kernel.inc"
#undef VA_OL_LANES
// Likewise the halo kernels' 16-lane logic (kHlTable, internal).
#define VA_HL_LANES 16
#include "cpu/halo_kernel.inc"
#undef VA_HL_LANES
// Likewise the ML-Decoder kernels' 16-lane logic (kMdTable, internal).
#define VA_MD_LANES 16
#include "cpu/group_decoder_kernel.inc"
#undef VA_MD_LANES
// Likewise the k-means / L2 normalisation kernels' 16-lane logic (kKmTable, internal).
#define VA_KM_LANES 16
#include "cpu/kmeans_kernel.inc"
#undef VA_KM_LANES

#ifdef VA_TEST_HAVE_AVX512_EMULATED
namespace va { namespace cpu { namespace gemm { const KernelInfo& kernelAvx512Emulated(); } } }
namespace va { namespace cpu { namespace math { const MathKernels& mathAvx512Emulated(); } } }
#endif

using namespace va;

static int g_pass = 0, g_fail = 0;
static std::string g_ctx;

static void check(bool ok, const char* what, double err = 0, double tol = 0) {
  if (ok) {
    ++g_pass;
  } else {
    ++g_fail;
    std::printf("FAIL [%s] %s (err %.3g, tol %.3g)\n", g_ctx.c_str(), what, err, tol);
  }
}

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float uni() {  // [-1, 1)
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>((s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
  }
};
static std::vector<float> randVec(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = scale * r.uni();
  return v;
}

// max |got − ref| <= tol · max(1e-6, max |ref|)
static void compare(const std::vector<float>& got, const std::vector<double>& ref, const char* what,
                    double rtol = 2e-4) {
  double mx = 0, err = 0;
  bool finite = true;
  for (size_t i = 0; i < ref.size(); ++i) {
    mx = std::max(mx, std::fabs(ref[i]));
    if (!std::isfinite(got[i])) finite = false;
    err = std::max(err, std::fabs(got[i] - ref[i]));
  }
  double tol = rtol * std::max(mx, 1e-6);
  check(finite && err <= tol, what, finite ? err : INFINITY, tol);
}
static void sameBits(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  check(a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0, what);
}

static ThreadPool* g_pools[3];  // 1, 2, 3 threads
static const int kPoolSizes[3] = {1, 2, 3};

// ------------------------------------------------------------------------------------ GEMM
struct GemmCase {
  int64_t batch, M, N, K;
  bool tA, tB;
  int bcast;  // 0 none, 1 A broadcast (strideA 0), 2 B broadcast
  bool reduceC;
  float alpha, beta;
  bool bias;
};

static void testGemmCase(const cpu::gemm::KernelInfo* ki, const GemmCase& c, uint64_t seed) {
  const int64_t sa = c.M * c.K, sb = c.K * c.N, sc = c.M * c.N;
  const int64_t nA = (c.bcast == 1 ? 1 : c.batch) * sa, nB = (c.bcast == 2 ? 1 : c.batch) * sb;
  const int64_t nC = (c.reduceC ? 1 : c.batch) * sc;
  auto A = randVec(nA, seed), B = randVec(nB, seed + 1), C0 = randVec(nC, seed + 2),
       bias = randVec(c.N, seed + 3);
  MatmulParams p{};
  p.a = A.data(); p.b = B.data(); p.bias = c.bias ? bias.data() : nullptr;
  p.batch = c.batch; p.M = c.M; p.N = c.N; p.K = c.K;
  p.strideA = c.bcast == 1 ? 0 : sa; p.strideB = c.bcast == 2 ? 0 : sb; p.strideC = c.reduceC ? 0 : sc;
  p.transA = c.tA; p.transB = c.tB; p.alpha = c.alpha; p.beta = c.beta;
  // reference
  std::vector<double> ref(nC);
  for (int64_t i = 0; i < nC; ++i) ref[i] = c.beta != 0 ? double(c.beta) * C0[i] : 0.0;
  for (int64_t q = 0; q < c.batch; ++q) {
    const float* a = A.data() + q * p.strideA;
    const float* b = B.data() + q * p.strideB;
    double* r = ref.data() + q * p.strideC;
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          double av = c.tA ? a[k * c.M + i] : a[i * c.K + k];
          double bv = c.tB ? b[j * c.K + k] : b[k * c.N + j];
          s += av * bv;
        }
        r[i * c.N + j] += c.alpha * s;
      }
  }
  if (c.bias)
    for (int64_t q = 0; q < (c.reduceC ? 1 : c.batch); ++q)
      for (int64_t i = 0; i < c.M; ++i)
        for (int64_t j = 0; j < c.N; ++j) ref[q * sc + i * c.N + j] += bias[j];
  char what[200];
  std::snprintf(what, sizeof what, "matmul b%lld %lldx%lldx%lld tA%d tB%d bc%d red%d a%g b%g bias%d",
                (long long)c.batch, (long long)c.M, (long long)c.N, (long long)c.K, c.tA, c.tB, c.bcast,
                c.reduceC, c.alpha, c.beta, c.bias);
  std::vector<float> first;
  for (int t = 0; t < 3; ++t) {
    std::vector<float> C(nC);
    if (c.beta != 0) C = C0;
    else std::fill(C.begin(), C.end(), NAN);  // beta == 0: C must never be read
    p.c = C.data();
    if (ki) cpu::detail::matmulWith(*ki, p, *g_pools[t]);
    else cpu::matmul(p, *g_pools[t]);
    if (t == 0) {
      compare(C, ref, what, 2e-4);
      first = C;
    } else {
      std::string w = std::string(what) + " threads=" + std::to_string(kPoolSizes[t]) + " bit-identical";
      sameBits(C, first, w.c_str());
    }
  }
}

static void testGemm(const cpu::gemm::KernelInfo* ki) {
  std::vector<GemmCase> cases;
  const int64_t shapes[][3] = {{1, 1, 1},    {1, 17, 5},    {13, 1, 7},    {7, 13, 1},    {12, 32, 9},
                               {37, 41, 53}, {97, 101, 103}, {5, 300, 2},  {257, 263, 269}, {200, 2100, 70},
                               {31, 33, 600}};
  for (auto& s : shapes)
    for (int tr = 0; tr < 4; ++tr)
      cases.push_back({1, s[0], s[1], s[2], bool(tr & 1), bool(tr & 2), 0, false, 1.0f, 0.0f, false});
  // matrix-vector shapes (no-packing path), all layouts
  const int64_t gv[][3] = {{1, 1000, 300}, {1, 1, 5000}, {700, 1, 300}, {1, 7, 1}, {1300, 1, 1}};
  for (auto& s : gv)
    for (int tr = 0; tr < 4; ++tr)
      cases.push_back({1, s[0], s[1], s[2], bool(tr & 1), bool(tr & 2), 0, false, 1.5f, tr == 3 ? 0.5f : 0.0f, tr >= 2});
  cases.push_back({6, 1, 40, 30, false, true, 1, false, 1.0f, 0.0f, true});
  cases.push_back({6, 40, 1, 30, true, false, 2, false, 1.0f, 1.0f, false});
  cases.push_back({6, 1, 40, 30, false, false, 0, true, 1.0f, 0.0f, true});  // reduce: general path
  // alpha / beta / bias
  cases.push_back({1, 23, 29, 31, false, false, 0, false, 0.5f, 0.0f, true});
  cases.push_back({1, 23, 29, 31, true, true, 0, false, -1.5f, 0.75f, true});
  cases.push_back({1, 200, 70, 300, false, true, 0, false, 2.0f, 1.0f, true});
  // batches (small matrices: batch-parallel path), broadcast A / B
  cases.push_back({50, 9, 9, 32, false, false, 0, false, 1.0f, 0.0f, false});
  cases.push_back({50, 9, 32, 9, true, false, 1, false, 1.0f, 0.5f, true});
  cases.push_back({7, 19, 23, 11, false, true, 2, false, 1.0f, 0.0f, true});
  cases.push_back({3, 130, 140, 150, true, true, 0, false, 1.0f, 0.0f, false});  // batch < 4·threads, big
  // reduce over the batch (strideC == 0)
  cases.push_back({5, 7, 11, 13, false, false, 0, true, 1.0f, 0.0f, false});
  cases.push_back({5, 7, 11, 13, true, false, 0, true, 0.5f, 2.0f, true});
  cases.push_back({64, 40, 70, 16, true, false, 0, true, 1.0f, 0.0f, true});   // tile path
  cases.push_back({3, 150, 160, 170, false, false, 1, true, 1.0f, 0.25f, true});  // big path
  cases.push_back({4, 3, 5, 2, false, true, 2, true, 1.0f, 0.0f, false});
  uint64_t seed = 100;
  for (auto& c : cases) testGemmCase(ki, c, seed += 7);
}

// -------------------------------------------------------------------------- other kernels
static void testElementwise() {
  ThreadPool& P = *g_pools[1];
  const int64_t sizes[] = {1, 7, 1000, 100003};
  for (int64_t n : sizes) {
    auto x = randVec(n, n, 4.0f), y = randVec(n, n + 5, 2.0f);
    if (n > 3) x[3] = 0.0f;  // relu'(0) = 0
    for (int op = 0; op < 3; ++op) {
      for (int bc = 0; bc < 4; ++bc) {
        int64_t inner = n == 1 ? 1 : (n == 7 ? 7 : 1000);
        int64_t outer = n / inner;
        if (outer * inner != n) { inner = n; outer = 1; }
        std::vector<float> out(n, NAN);
        BinaryParams p{static_cast<BinaryOp>(op), x.data(), y.data(), out.data(), outer, inner, bool(bc & 1), bool(bc & 2)};
        cpu::binary(p, P);
        std::vector<double> ref(n);
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < inner; ++i) {
            double a = x[(bc & 1) ? i : o * inner + i], b = y[(bc & 2) ? i : o * inner + i];
            ref[o * inner + i] = op == 0 ? a + b : op == 1 ? a - b : a * b;
          }
        compare(out, ref, ("binary op" + std::to_string(op) + " bc" + std::to_string(bc) + " n" + std::to_string(n)).c_str(), 1e-6);
      }
      // unary / unaryBackward
      std::vector<float> out(n, NAN), dx(n, NAN);
      cpu::unary({static_cast<UnaryOp>(op), x.data(), out.data(), n}, P);
      cpu::unaryBackward({static_cast<UnaryOp>(op), x.data(), y.data(), dx.data(), n}, P);
      std::vector<double> ref(n), rdx(n);
      for (int64_t i = 0; i < n; ++i) {
        double v = x[i];
        double f, d;
        if (op == 0) { f = v > 0 ? v : 0; d = v > 0 ? 1 : 0; }
        else if (op == 1) { f = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); d = 0.5 * (1 + std::erf(v / std::sqrt(2.0))) + v * std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI); }
        else { double s = 1 / (1 + std::exp(-v)); f = v * s; d = s * (1 + v * (1 - s)); }
        ref[i] = f;
        rdx[i] = d * y[i];
      }
      compare(out, ref, ("unary op" + std::to_string(op) + " n" + std::to_string(n)).c_str(), 1e-5);
      compare(dx, rdx, ("unaryBackward op" + std::to_string(op) + " n" + std::to_string(n)).c_str(), 1e-5);
    }
    std::vector<float> out(n, NAN);
    cpu::affine({x.data(), out.data(), n, 1.5f, -0.25f}, P);
    std::vector<double> ref(n);
    for (int64_t i = 0; i < n; ++i) ref[i] = 1.5 * x[i] - 0.25;
    compare(out, ref, "affine", 1e-6);
    std::vector<uint32_t> f(n + 1, 7u);
    cpu::fill({f.data(), n, 0xDEADBEEFu}, P);
    bool ok = f[n] == 7u;
    for (int64_t i = 0; i < n; ++i) ok = ok && f[i] == 0xDEADBEEFu;
    check(ok, "fill");
  }
  // relu'(0) = 0 exactly, relu(0) = 0
  {
    float z = 0.0f, one = 1.0f, out = NAN, dx = NAN;
    cpu::unaryBackward({UnaryOp::Relu, &z, &one, &dx, 1}, P);
    cpu::unary({UnaryOp::Relu, &z, &out, 1}, P);
    check(dx == 0.0f && out == 0.0f, "relu at 0");
  }
}

static void testCopy() {
  ThreadPool& P = *g_pools[1];
  // permute [2,3,5,7] → [7,5,3,2]-ordered dst (transposes), int32 bit patterns incl. NaN payloads
  {
    const int64_t s[4] = {2, 3, 5, 70};
    int64_t n = s[0] * s[1] * s[2] * s[3];
    std::vector<uint32_t> src(n + 10);
    for (size_t i = 0; i < src.size(); ++i) src[i] = 0x7FA00001u + static_cast<uint32_t>(i) * 2654435761u;
    std::vector<uint32_t> dst(n, 0);
    CopyParams p{};
    p.src = src.data(); p.dst = dst.data(); p.ndim = 4; p.scale = 1.0f;
    for (int d = 0; d < 4; ++d) p.shape[d] = s[d];
    // src contiguous with offset 10; dst permuted: dst index = ((t3·5 + t2)·3 + t1)·2 + t0
    p.srcStride[3] = 1; p.srcStride[2] = s[3]; p.srcStride[1] = s[3] * s[2]; p.srcStride[0] = s[3] * s[2] * s[1];
    p.dstStride[0] = 1; p.dstStride[1] = 2; p.dstStride[2] = 6; p.dstStride[3] = 30;
    p.srcOffset = 10; p.dstOffset = 0;
    cpu::copy(p, P);
    bool ok = true;
    for (int64_t a = 0; a < s[0]; ++a) for (int64_t b = 0; b < s[1]; ++b) for (int64_t c = 0; c < s[2]; ++c) for (int64_t d = 0; d < s[3]; ++d)
      ok = ok && dst[a + 2 * b + 6 * c + 30 * d] == src[10 + ((a * s[1] + b) * s[2] + c) * s[3] + d];
    check(ok, "copy permute int32 bits");
  }
  // broadcast (src stride 0) with scale, slice into a bigger dst, 1-D and 8-D
  {
    std::vector<float> src = randVec(40, 3);
    std::vector<float> dst(4 * 3 * 20, NAN);
    CopyParams p{};
    p.src = src.data(); p.dst = dst.data(); p.ndim = 3; p.scale = 0.5f;
    p.shape[0] = 4; p.shape[1] = 3; p.shape[2] = 10;
    p.srcStride[0] = 0; p.srcStride[1] = 10; p.srcStride[2] = 1;  // broadcast over dim 0
    p.dstStride[0] = 60; p.dstStride[1] = 20; p.dstStride[2] = 2;  // every other element
    p.srcOffset = 5; p.dstOffset = 1;
    cpu::copy(p, P);
    bool ok = true;
    for (int a = 0; a < 4; ++a) for (int b = 0; b < 3; ++b) for (int c = 0; c < 10; ++c)
      ok = ok && dst[1 + 60 * a + 20 * b + 2 * c] == 0.5f * src[5 + 10 * b + c] && std::isnan(dst[60 * a + 20 * b + 2 * c]);
    check(ok, "copy broadcast+scale+strided dst");
  }
  {
    std::vector<float> src = randVec(256, 4), dst(256, NAN);
    CopyParams p{};
    p.src = src.data(); p.dst = dst.data(); p.ndim = 8; p.scale = 1.0f;
    for (int d = 0; d < 8; ++d) { p.shape[d] = 2; p.srcStride[d] = int64_t(1) << d; p.dstStride[d] = int64_t(1) << (7 - d); }
    cpu::copy(p, P);
    bool ok = true;
    for (int i = 0; i < 256; ++i) {
      int j = 0;
      for (int d = 0; d < 8; ++d) if (i & (1 << d)) j |= 1 << (7 - d);
      ok = ok && dst[j] == src[i];
    }
    check(ok, "copy 8-D bit reversal");
    std::vector<float> d1(1, NAN);
    CopyParams q{};
    q.src = src.data(); q.dst = d1.data(); q.ndim = 1; q.shape[0] = 1; q.srcStride[0] = 1; q.dstStride[0] = 1; q.scale = -2.0f; q.srcOffset = 3;
    cpu::copy(q, P);
    check(d1[0] == -2.0f * src[3], "copy 1 element scaled");
    // large broadcast (threads) from a scalar
    std::vector<float> big(300000, NAN);
    CopyParams r{};
    r.src = src.data(); r.dst = big.data(); r.ndim = 2; r.shape[0] = 3000; r.shape[1] = 100; r.srcStride[0] = 0; r.srcStride[1] = 0;
    r.dstStride[0] = 100; r.dstStride[1] = 1; r.scale = 1.0f;
    cpu::copy(r, P);
    ok = true;
    for (float v : big) ok = ok && v == src[0];
    check(ok, "copy scalar broadcast 300000");
  }
}

static void testRows() {
  ThreadPool& P = *g_pools[1];
  const int64_t shapes[][2] = {{1, 1}, {1, 7}, {5, 1}, {13, 97}, {300, 1000}, {1031, 3}};
  for (auto& s : shapes) {
    int64_t R = s[0], Cn = s[1], n = R * Cn;
    auto x = randVec(n, R * 31 + Cn, 6.0f), dy = randVec(n, R + Cn * 7);
    auto gamma = randVec(Cn, 11), beta = randVec(Cn, 12);
    for (int lg = 0; lg < 2; ++lg) {
      std::vector<float> y(n, NAN), dx(n, NAN);
      cpu::softmax({x.data(), y.data(), R, Cn, bool(lg)}, P);
      cpu::softmaxBackward({x.data(), dy.data(), dx.data(), R, Cn, bool(lg)}, P);
      std::vector<double> ry(n), rdx(n);
      for (int64_t r = 0; r < R; ++r) {
        const float* xr = x.data() + r * Cn;
        double m = -INFINITY, s = 0, sdy = 0, dot = 0;
        for (int64_t j = 0; j < Cn; ++j) m = std::max(m, double(xr[j]));
        for (int64_t j = 0; j < Cn; ++j) s += std::exp(xr[j] - m);
        for (int64_t j = 0; j < Cn; ++j) {
          double pj = std::exp(xr[j] - m) / s;
          ry[r * Cn + j] = lg ? (xr[j] - m - std::log(s)) : pj;
          sdy += dy[r * Cn + j];
          dot += dy[r * Cn + j] * pj;
        }
        for (int64_t j = 0; j < Cn; ++j) {
          double pj = std::exp(xr[j] - m) / s;
          rdx[r * Cn + j] = lg ? dy[r * Cn + j] - pj * sdy : pj * (dy[r * Cn + j] - dot);
        }
      }
      std::string tag = std::string(lg ? "logsoftmax" : "softmax") + " " + std::to_string(R) + "x" + std::to_string(Cn);
      compare(y, ry, tag.c_str(), 1e-5);
      compare(dx, rdx, (tag + " backward").c_str(), 1e-5);
    }
    // layerNorm
    {
      std::vector<float> xs = x;
      for (auto& v : xs) v += 3.0f;  // non-zero mean
      std::vector<float> y(n, NAN), dx(n, NAN), dg(Cn, NAN), db(Cn, NAN);
      float eps = 1e-5f;
      cpu::layerNorm({xs.data(), gamma.data(), beta.data(), y.data(), R, Cn, eps}, P);
      std::vector<double> ry(n), rdx(n), rdg(Cn, 0), rdb(Cn, 0);
      for (int64_t r = 0; r < R; ++r) {
        const float* xr = xs.data() + r * Cn;
        double mu = 0, var = 0;
        for (int64_t j = 0; j < Cn; ++j) mu += xr[j];
        mu /= Cn;
        for (int64_t j = 0; j < Cn; ++j) var += (xr[j] - mu) * (xr[j] - mu);
        var /= Cn;
        double rs = 1 / std::sqrt(var + eps), mg = 0, mgx = 0;
        for (int64_t j = 0; j < Cn; ++j) {
          double xh = (xr[j] - mu) * rs, g = dy[r * Cn + j] * double(gamma[j]);
          ry[r * Cn + j] = xh * gamma[j] + beta[j];
          mg += g; mgx += g * xh;
          rdg[j] += dy[r * Cn + j] * xh;
          rdb[j] += dy[r * Cn + j];
        }
        mg /= Cn; mgx /= Cn;
        for (int64_t j = 0; j < Cn; ++j) {
          double xh = (xr[j] - mu) * rs;
          rdx[r * Cn + j] = rs * (dy[r * Cn + j] * double(gamma[j]) - mg - xh * mgx);
        }
      }
      std::string tag = "layerNorm " + std::to_string(R) + "x" + std::to_string(Cn);
      compare(y, ry, tag.c_str(), 1e-5);
      std::vector<float> firstDx, firstDg;
      for (int t = 0; t < 3; ++t) {
        std::fill(dx.begin(), dx.end(), NAN); std::fill(dg.begin(), dg.end(), NAN); std::fill(db.begin(), db.end(), NAN);
        cpu::layerNormBackward({xs.data(), gamma.data(), dy.data(), dx.data(), dg.data(), db.data(), R, Cn, eps}, *g_pools[t]);
        if (t == 0) {
          // Cn == 1: dx is exactly 0 in exact arithmetic; float rounding leaves ~eps·|dy|·rstd.
          if (Cn > 1) compare(dx, rdx, (tag + " backward dx").c_str(), 2e-4);
          compare(dg, rdg, (tag + " backward dgamma").c_str(), 2e-4);
          compare(db, rdb, (tag + " backward dbeta").c_str(), 2e-4);
          firstDx = dx; firstDg = dg;
        } else {
          sameBits(dx, firstDx, (tag + " backward dx thread-independent").c_str());
          sameBits(dg, firstDg, (tag + " backward dgamma thread-independent").c_str());
        }
      }
    }
  }
  // reduce
  const int64_t rshapes[][3] = {{1, 1, 1}, {3, 7, 1}, {2, 1, 5}, {5, 13, 1031}, {1, 100000, 1}, {7, 3, 2}};
  for (auto& s : rshapes) {
    int64_t O = s[0], L = s[1], I = s[2];
    auto x = randVec(O * L * I, O + L + I);
    std::vector<float> y(O * I, NAN);
    cpu::reduce({x.data(), y.data(), O, L, I, 0.25f}, P);
    std::vector<double> ref(O * I, 0);
    for (int64_t o = 0; o < O; ++o) for (int64_t l = 0; l < L; ++l) for (int64_t i = 0; i < I; ++i) ref[o * I + i] += x[(o * L + l) * I + i];
    for (auto& v : ref) v *= 0.25;
    compare(y, ref, ("reduce " + std::to_string(O) + "x" + std::to_string(L) + "x" + std::to_string(I)).c_str(), 1e-5);
  }
}

static void testPool() {
  ThreadPool& P = *g_pools[1];
  struct PC { int64_t B, H, W, C; int k, s; bool ceil; };
  const PC cases[] = {{1, 1, 1, 1, 1, 1, false}, {2, 7, 5, 3, 2, 2, true}, {1, 7, 7, 1, 3, 2, true},
                      {3, 9, 11, 17, 3, 3, true}, {2, 8, 8, 5, 2, 2, false}, {1, 10, 9, 4, 3, 1, false},
                      {2, 14, 14, 64, 3, 2, true}, {1, 5, 5, 2, 5, 5, false}};
  for (auto& c : cases) {
    auto outSize = [&](int64_t L) {
      int64_t o = c.ceil ? (L - c.k + c.s - 1) / c.s + 1 : (L - c.k) / c.s + 1;
      if (c.ceil && (o - 1) * c.s >= L) --o;  // PyTorch: last window must start inside the input
      return o;
    };
    int64_t Ho = outSize(c.H), Wo = outSize(c.W);
    auto x = randVec(c.B * c.H * c.W * c.C, c.H * 13 + c.C);
    auto dy = randVec(c.B * Ho * Wo * c.C, c.W * 17 + c.C);
    std::vector<float> y(c.B * Ho * Wo * c.C, NAN), dx(x.size(), NAN);
    cpu::avgPool2d({x.data(), y.data(), c.B, c.H, c.W, c.C, Ho, Wo, c.k, c.s}, P);
    cpu::avgPool2dBackward({dy.data(), dx.data(), c.B, c.H, c.W, c.C, Ho, Wo, c.k, c.s}, P);
    std::vector<double> ry(y.size(), 0), rdx(x.size(), 0);
    for (int64_t b = 0; b < c.B; ++b) for (int64_t i = 0; i < Ho; ++i) for (int64_t j = 0; j < Wo; ++j) {
      int64_t h0 = i * c.s, h1 = std::min(c.H, h0 + c.k), w0 = j * c.s, w1 = std::min(c.W, w0 + c.k);
      double cnt = double((h1 - h0) * (w1 - w0));
      for (int64_t h = h0; h < h1; ++h) for (int64_t w = w0; w < w1; ++w) for (int64_t ch = 0; ch < c.C; ++ch) {
        ry[((b * Ho + i) * Wo + j) * c.C + ch] += x[((b * c.H + h) * c.W + w) * c.C + ch] / cnt;
        rdx[((b * c.H + h) * c.W + w) * c.C + ch] += dy[((b * Ho + i) * Wo + j) * c.C + ch] / cnt;
      }
    }
    char tag[128];
    std::snprintf(tag, sizeof tag, "avgPool2d B%lld H%lld W%lld C%lld k%d s%d ceil%d", (long long)c.B, (long long)c.H,
                  (long long)c.W, (long long)c.C, c.k, c.s, c.ceil);
    compare(y, ry, tag, 1e-5);
    compare(dx, rdx, (std::string(tag) + " backward").c_str(), 1e-5);
  }
}

static void testRandom() {
  const int64_t sizes[] = {1, 3, 4, 5, 1001, 100003};
  for (int64_t n : sizes)
    for (int kind = 0; kind < 2; ++kind) {
      std::vector<float> a(n, NAN), b(n, NAN);
      RandomParams p{a.data(), n, 0x123456789abcdefull, 42, static_cast<RandomKind>(kind), 0.5f, 2.0f};
      cpu::random(p, *g_pools[0]);
      p.out = b.data();
      cpu::random(p, *g_pools[2]);
      bool ok = std::memcmp(a.data(), b.data(), n * 4) == 0;
      for (int64_t i = 0; i < n && ok; ++i) {
        philox::U4 r = philox::philox4x32_10(uint64_t(i / 4), 42, 0x123456789abcdefull);
        float want = kind == 0 ? (float)(2.0f * philox::normalAt(r, int(i % 4))) + 0.5f : philox::uniform24(r.v[i % 4]);
        ok = a[i] == want;
      }
      check(ok, ("random kind" + std::to_string(kind) + " n" + std::to_string(n)).c_str());
      if (n == 100003) {
        double m = 0, v = 0;
        for (float x : a) m += x;
        m /= n;
        for (float x : a) v += (x - m) * (x - m);
        v /= n;
        bool stats = kind == 0 ? (std::fabs(m - 0.5) < 0.05 && std::fabs(std::sqrt(v) - 2.0) < 0.05)
                               : (std::fabs(m - 0.5) < 0.01 && std::fabs(v - 1.0 / 12) < 0.005);
        check(stats, "random moments");
      }
    }
}

// ------------------------------------------------------------------- VOLO outlook attention
struct OutlookCase { int64_t B, H, W, C; int heads, k, pad, s; int64_t extraH = 0, extraW = 0; };  // extra: windows beyond ⌈H/s⌉

// Naive double references of visattn/params.h OutlookParams / OutlookBackwardParams.
static void outlookRef(const OutlookCase& c, int64_t h, int64_t w, float scale, const std::vector<float>& v,
                       const std::vector<float>& lg, const std::vector<float>& g, std::vector<double>& out,
                       std::vector<double>& dV, std::vector<double>& dL) {
  const int64_t K2 = int64_t(c.k) * c.k, d = c.C / c.heads;
  out.assign(v.size(), 0.0); dV.assign(v.size(), 0.0); dL.assign(lg.size(), 0.0);
  std::vector<double> A(K2 * K2), dA(K2 * K2);
  auto pix = [&](int64_t b, int64_t y, int64_t x) -> int64_t {
    return (y < 0 || y >= c.H || x < 0 || x >= c.W) ? -1 : ((b * c.H + y) * c.W + x) * c.C;
  };
  for (int64_t b = 0; b < c.B; ++b) for (int64_t i = 0; i < h; ++i) for (int64_t j = 0; j < w; ++j)
    for (int m = 0; m < c.heads; ++m) {
      const int64_t base = (((b * h + i) * w + j) * c.heads + m) * K2 * K2;
      for (int64_t q = 0; q < K2; ++q) {
        double mx = -1e300, sum = 0;
        for (int64_t r = 0; r < K2; ++r) mx = std::max(mx, double(scale) * lg[base + q * K2 + r]);
        for (int64_t r = 0; r < K2; ++r) sum += A[q * K2 + r] = std::exp(double(scale) * lg[base + q * K2 + r] - mx);
        for (int64_t r = 0; r < K2; ++r) A[q * K2 + r] /= sum;
      }
      for (int64_t q = 0; q < K2; ++q) {
        const int64_t dq = pix(b, c.s * i - c.pad + q / c.k, c.s * j - c.pad + q % c.k);
        double dot = 0;
        for (int64_t r = 0; r < K2; ++r) {
          const int64_t sr = pix(b, c.s * i - c.pad + r / c.k, c.s * j - c.pad + r % c.k);
          double da = 0;
          if (dq >= 0 && sr >= 0)
            for (int64_t e = 0; e < d; ++e) {
              out[dq + m * d + e] += A[q * K2 + r] * v[sr + m * d + e];
              dV[sr + m * d + e] += A[q * K2 + r] * g[dq + m * d + e];
              da += double(g[dq + m * d + e]) * v[sr + m * d + e];
            }
          dA[q * K2 + r] = da;
          dot += A[q * K2 + r] * da;
        }
        for (int64_t r = 0; r < K2; ++r) dL[base + q * K2 + r] = scale * A[q * K2 + r] * (dA[q * K2 + r] - dot);
      }
    }
}

static void testOutlook(const cpu::outlook::OutlookKernels* ki = nullptr) {
  const OutlookCase cases[] = {
      {2, 5, 7, 64, 2, 3, 1, 2},   {1, 4, 4, 32, 1, 3, 1, 2},   {2, 6, 5, 16, 2, 3, 1, 1},
      {1, 7, 6, 8, 1, 5, 2, 1},    {2, 9, 7, 24, 2, 5, 2, 2},   {2, 1, 9, 32, 2, 3, 1, 2},
      {1, 8, 1, 32, 1, 3, 1, 2},   {1, 1, 1, 8, 2, 3, 1, 2},    {1, 1, 7, 16, 1, 3, 1, 1},
      {1, 6, 6, 12, 3, 1, 0, 1},   {1, 7, 7, 8, 1, 2, 1, 2},    {2, 6, 8, 20, 2, 3, 0, 3},
      {1, 11, 9, 40, 2, 3, 2, 2},  {3, 14, 14, 192, 6, 3, 1, 2}, {1, 5, 5, 6, 2, 4, 3, 1},
      {1, 13, 10, 96, 3, 3, 1, 2}, {1, 3, 3, 4, 1, 1, 0, 2},   {2, 7, 9, 128, 2, 3, 1, 2},
      {1, 6, 5, 48, 2, 3, 1, 2, 3, 2}, {1, 4, 3, 12, 1, 2, 0, 1, 2, 1},
  };
  uint64_t seed = 9000;
  for (const auto& c : cases) {
    const int64_t h = (c.H + c.s - 1) / c.s + c.extraH, w = (c.W + c.s - 1) / c.s + c.extraW;
    const int64_t K2 = int64_t(c.k) * c.k;
    const float scale = 1.0f / std::sqrt(float(c.C / c.heads));
    auto v = randVec(c.B * c.H * c.W * c.C, seed += 3);
    auto lg = randVec(c.B * h * w * c.heads * K2 * K2, seed + 1, 6.0f);
    auto g = randVec(v.size(), seed + 2);
    if (c.H * c.W > 20) lg[5] = 80.0f / scale;  // a saturated softmax row: must stay stable
    std::vector<double> rOut, rdV, rdL;
    outlookRef(c, h, w, scale, v, lg, g, rOut, rdV, rdL);
    char tag[160];
    std::snprintf(tag, sizeof tag, "outlook B%lld H%lld W%lld C%lld heads%d k%d pad%d s%d h%lld w%lld", (long long)c.B,
                  (long long)c.H, (long long)c.W, (long long)c.C, c.heads, c.k, c.pad, c.s, (long long)h, (long long)w);
    std::vector<float> out0, dV0, dL0;
    for (int t = 0; t < 3; ++t) {
      std::vector<float> out(v.size(), NAN), dV(v.size(), NAN), dL(lg.size(), NAN);
      OutlookParams fp{v.data(), lg.data(), out.data(), c.B, c.H, c.W, c.C, h, w, c.heads, c.k, c.pad, c.s, scale};
      if (ki) cpu::outlook::forwardWith(*ki, cpu::math::kernels(), fp, *g_pools[t]);
      else cpu::outlookAttention(fp, *g_pools[t]);
      OutlookBackwardParams bp{v.data(), lg.data(), g.data(), dV.data(), dL.data(), c.B, c.H, c.W, c.C,
                               h, w, c.heads, c.k, c.pad, c.s, scale};
      if (ki) cpu::outlook::backwardWith(*ki, cpu::math::kernels(), bp, *g_pools[t]);
      else cpu::outlookAttentionBackward(bp, *g_pools[t]);
      if (t == 0) {
        compare(out, rOut, tag, 1e-5);
        compare(dV, rdV, (std::string(tag) + " dV").c_str(), 1e-5);
        compare(dL, rdL, (std::string(tag) + " dLogits").c_str(), 1e-5);
        out0 = out; dV0 = dV; dL0 = dL;
      } else {
        std::string th = " threads=" + std::to_string(kPoolSizes[t]) + " bit-identical";
        sameBits(out, out0, (std::string(tag) + " out" + th).c_str());
        sameBits(dV, dV0, (std::string(tag) + " dV" + th).c_str());
        sameBits(dL, dL0, (std::string(tag) + " dLogits" + th).c_str());
      }
    }
  }
}

// ------------------------------------------------------------------- HaloNet halo attention
struct HaloCase {
  int64_t B, H, W;
  int heads, dk, dv, block, halo, stride;
  bool spe;            // scalePosEmbed
  float inScale = 1;   // input magnitude (larger: sharper softmax)
};

// Naive double reference of visattn/params.h HaloParams / HaloBackwardParams (test/oracle/halo.ts).
static void haloRef(const HaloCase& c, float scale, const std::vector<float>& q, const std::vector<float>& k,
                    const std::vector<float>& v, const std::vector<float>& rH, const std::vector<float>& rW,
                    const std::vector<float>& g, std::vector<double>& out, std::vector<double>& lse,
                    std::vector<double>& dQ, std::vector<double>& dK, std::vector<double>& dV,
                    std::vector<double>& dRH, std::vector<double>& dRW) {
  const int64_t b = c.block, hh = c.halo, win = b + 2 * hh, W2 = win * win, bq = b / c.stride;
  const int64_t Hq = c.H / c.stride, Wq = c.W / c.stride, M = c.heads, dk = c.dk, dv = c.dv;
  const double rs = c.spe ? scale : 1.0;
  out.assign(q.size() / dk * dv, 0.0); lse.assign(q.size() / dk, 0.0);
  dQ.assign(q.size(), 0.0); dK.assign(k.size(), 0.0); dV.assign(v.size(), 0.0);
  dRH.assign(rH.size(), 0.0); dRW.assign(rW.size(), 0.0);
  std::vector<double> S(W2), A(W2), dA(W2);
  std::vector<int64_t> kv(W2), rowH(W2), rowW(W2);
  for (int64_t n = 0; n < c.B; ++n)
    for (int64_t I = 0; I < c.H / b; ++I)
      for (int64_t J = 0; J < c.W / b; ++J)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t qy = 0; qy < bq; ++qy)
            for (int64_t qx = 0; qx < bq; ++qx) {
              const int64_t qrow = ((n * Hq + I * bq + qy) * Wq + J * bq + qx) * M + m;
              const float* qi = &q[qrow * dk];
              for (int64_t ky = 0; ky < win; ++ky)
                for (int64_t kx = 0; kx < win; ++kx) {
                  const int64_t j = ky * win + kx, y = I * b - hh + ky, x = J * b - hh + kx;
                  kv[j] = (y >= 0 && y < c.H && x >= 0 && x < c.W) ? ((n * c.H + y) * c.W + x) * M + m : -1;
                  rowH[j] = ky - qy + win - 1;
                  rowW[j] = kx - qx + win - 1;
                  double qk = 0, r = 0;
                  if (kv[j] >= 0)
                    for (int64_t e = 0; e < dk; ++e) qk += double(qi[e]) * k[kv[j] * dk + e];
                  for (int64_t e = 0; e < dk; ++e)
                    r += double(qi[e]) * rW[rowW[j] * dk + e] + double(qi[e]) * rH[rowH[j] * dk + e];
                  S[j] = c.spe ? scale * (qk + r) : scale * qk + r;
                }
              double mx = -1e300, sum = 0;
              for (int64_t j = 0; j < W2; ++j) mx = std::max(mx, S[j]);
              for (int64_t j = 0; j < W2; ++j) sum += A[j] = std::exp(S[j] - mx);
              for (int64_t j = 0; j < W2; ++j) A[j] /= sum;
              lse[qrow] = mx + std::log(sum);
              const float* gi = &g[qrow * dv];
              double rowDot = 0;
              for (int64_t j = 0; j < W2; ++j) {
                dA[j] = 0;
                if (kv[j] >= 0)
                  for (int64_t e = 0; e < dv; ++e) {
                    out[qrow * dv + e] += A[j] * v[kv[j] * dv + e];
                    dV[kv[j] * dv + e] += A[j] * gi[e];
                    dA[j] += double(gi[e]) * v[kv[j] * dv + e];
                  }
                rowDot += A[j] * dA[j];
              }
              for (int64_t j = 0; j < W2; ++j) {
                const double dS = A[j] * (dA[j] - rowDot), dQK = scale * dS, dR = rs * dS;
                for (int64_t e = 0; e < dk; ++e) {
                  dQ[qrow * dk + e] += dR * (double(rW[rowW[j] * dk + e]) + rH[rowH[j] * dk + e]);
                  dRW[rowW[j] * dk + e] += dR * qi[e];
                  dRH[rowH[j] * dk + e] += dR * qi[e];
                }
                if (kv[j] >= 0)
                  for (int64_t e = 0; e < dk; ++e) {
                    dQ[qrow * dk + e] += dQK * k[kv[j] * dk + e];
                    dK[kv[j] * dk + e] += dQK * qi[e];
                  }
              }
            }
}

static bool g_verbose = false;

// max |got − ref| / max(floor, max |ref|), inf when got has a non-finite value
static double relErr(const std::vector<float>& got, const std::vector<double>& ref, double floor = 1e-6) {
  double mx = 0, err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    mx = std::max(mx, std::fabs(ref[i]));
    if (!std::isfinite(got[i])) return INFINITY;
    err = std::max(err, std::fabs(got[i] - ref[i]));
  }
  return err / std::max(mx, floor);
}

static void testHalo(const char* label, const cpu::halo::HaloKernels* ki = nullptr) {
  const HaloCase cases[] = {
      {2, 16, 16, 2, 32, 32, 8, 3, 1, false},     // several blocks (2×2), the benchmark's geometry
      {1, 24, 24, 1, 8, 8, 8, 3, 1, false},       // 3×3 blocks: an interior window wholly in the map
      {2, 8, 8, 2, 16, 16, 8, 2, 1, false},       // one all-border block, b = H = W
      {2, 8, 12, 2, 8, 8, 4, 2, 2, false},        // stride 2, non-square
      {1, 16, 8, 1, 8, 8, 8, 3, 2, true},         // stride 2 with b = 8 (b_q = 4), one head, batch 1
      {1, 6, 9, 1, 5, 7, 3, 1, 1, true},          // odd block, dk = 5, dv = 7, one head, batch 1
      {1, 8, 8, 3, 4, 4, 4, 0, 1, false},         // halo 0
      {1, 6, 6, 2, 3, 9, 2, 3, 1, true},          // halo > block
      {2, 12, 8, 2, 12, 20, 4, 4, 2, true},       // stride 2, halo = block
      {1, 12, 12, 2, 4, 4, 2, 5, 1, false},       // halo ≫ block (window 12 over a 12×12 map)
      {1, 10, 10, 2, 17, 9, 5, 2, 1, false},      // odd block 5, dk 17 (tails of every lane width)
      {3, 7, 14, 2, 6, 6, 7, 2, 1, true},         // b = 7, one block row, two block columns
      {1, 4, 4, 1, 1, 1, 1, 1, 1, false},         // block 1, dk = dv = 1
      {1, 2, 2, 1, 2, 3, 2, 0, 2, false},         // b_q = 1, halo 0
      {1, 16, 16, 2, 32, 24, 8, 3, 1, false, 4.0f},  // sharp softmax (large logits)
      {1, 16, 16, 2, 32, 32, 8, 3, 1, true, 4.0f},   // … with scalePosEmbed
      {3, 8, 8, 6, 4, 4, 2, 1, 1, false},         // 72 backward tasks: chunks of several tasks
      {1, 32, 32, 1, 8, 8, 8, 2, 2, true},        // stride 2 with interior blocks
  };
  uint64_t seed = 12000;
  for (const auto& c : cases) {
    const int64_t win = int64_t(c.block) + 2 * c.halo, Hq = c.H / c.stride, Wq = c.W / c.stride;
    const float scale = 1.0f / std::sqrt(float(c.dk));
    auto q = randVec(c.B * Hq * Wq * c.heads * c.dk, seed += 11, c.inScale);
    auto k = randVec(c.B * c.H * c.W * c.heads * c.dk, seed + 1, c.inScale);
    auto v = randVec(c.B * c.H * c.W * c.heads * c.dv, seed + 2);
    auto rH = randVec((2 * win - 1) * c.dk, seed + 3, c.inScale);
    auto rW = randVec((2 * win - 1) * c.dk, seed + 4, c.inScale);
    auto g = randVec(c.B * Hq * Wq * c.heads * c.dv, seed + 5);
    std::vector<double> rOut, rLse, rdQ, rdK, rdV, rdRH, rdRW;
    haloRef(c, scale, q, k, v, rH, rW, g, rOut, rLse, rdQ, rdK, rdV, rdRH, rdRW);
    char tag[200];
    std::snprintf(tag, sizeof tag, "halo B%lld %lldx%lld M%d dk%d dv%d b%d h%d s%d spe%d x%g", (long long)c.B,
                  (long long)c.H, (long long)c.W, c.heads, c.dk, c.dv, c.block, c.halo, c.stride, c.spe, c.inScale);
    std::vector<float> r0[7];
    for (int t = 0; t < 3; ++t) {
      std::vector<float> out(rOut.size(), NAN), lse(rLse.size(), NAN), dQ(q.size(), NAN), dK(k.size(), NAN),
          dV(v.size(), NAN), dRH(rH.size(), NAN), dRW(rW.size(), NAN);
      HaloParams fp{q.data(), k.data(), v.data(), rH.data(), rW.data(), out.data(), lse.data(), c.B, c.H, c.W,
                    c.heads, c.dk, c.dv, c.block, c.halo, c.stride, scale, c.spe};
      if (ki) cpu::halo::forwardWith(*ki, fp, *g_pools[t]);
      else cpu::haloAttention(fp, *g_pools[t]);
      HaloBackwardParams bp{q.data(), k.data(), v.data(), rH.data(), rW.data(), out.data(), lse.data(), g.data(),
                            dQ.data(), dK.data(), dV.data(), dRH.data(), dRW.data(), c.B, c.H, c.W, c.heads, c.dk,
                            c.dv, c.block, c.halo, c.stride, scale, c.spe};
      if (ki) cpu::halo::backwardWith(*ki, bp, *g_pools[t]);
      else cpu::haloAttentionBackward(bp, *g_pools[t]);
      std::vector<float>* got[7] = {&out, &lse, &dQ, &dK, &dV, &dRH, &dRW};
      if (t == 0) {
        const std::vector<double>* ref[7] = {&rOut, &rLse, &rdQ, &rdK, &rdV, &rdRH, &rdRW};
        const char* names[7] = {"out", "lse", "dQ", "dK", "dV", "dRelH", "dRelW"};
        const double tol[7] = {2e-5, 2e-6, 1e-4, 1e-4, 5e-5, 1e-4, 1e-4};
        std::string line;
        for (int o = 0; o < 7; ++o) {
          const double e = relErr(*got[o], *ref[o]);
          check(e <= tol[o], (std::string(tag) + " " + names[o]).c_str(), e, tol[o]);
          char buf[48];
          std::snprintf(buf, sizeof buf, " %s %.1e", names[o], e);
          line += buf;
          r0[o] = *got[o];
        }
        if (g_verbose) std::printf("  [%s] %s:%s\n", label, tag, line.c_str());
      } else {
        const char* names[7] = {"out", "lse", "dQ", "dK", "dV", "dRelH", "dRelW"};
        for (int o = 0; o < 7; ++o)
          sameBits(*got[o], r0[o],
                   (std::string(tag) + " " + names[o] + " threads=" + std::to_string(kPoolSizes[t]) + " bit-identical").c_str());
      }
    }
  }
}

// B == 0: nothing to compute, the table gradients are still overwritten with zeros.
static void testHaloEmpty(const cpu::halo::HaloKernels* ki = nullptr) {
  const int win = 4 + 2 * 1, dk = 5;
  std::vector<float> dRH((2 * win - 1) * dk, NAN), dRW(dRH.size(), NAN), rel(dRH.size(), 1.0f);
  float dummy = 0.0f;
  HaloBackwardParams bp{&dummy, &dummy, &dummy, rel.data(), rel.data(), &dummy, &dummy, &dummy, &dummy, &dummy,
                        &dummy, dRH.data(), dRW.data(), 0, 8, 8, 2, dk, 3, 4, 1, 1, 0.5f, false};
  if (ki) cpu::halo::backwardWith(*ki, bp, *g_pools[1]);
  else cpu::haloAttentionBackward(bp, *g_pools[1]);
  bool ok = true;
  for (size_t i = 0; i < dRH.size(); ++i) ok = ok && dRH[i] == 0.0f && dRW[i] == 0.0f;
  check(ok, "halo B = 0: zero table gradients");
}

// ------------------------------------------------------------------- ML-Decoder (issue 5)
// Calls through a given 16-lane table (the emulated AVX-512 logic) or the public functions.
struct MldRun {
  const cpu::mld::MldKernels* ki;
  void attn(const CrossAttentionParams& p, ThreadPool& P) const {
    if (ki) cpu::mld::crossAttentionWith(*ki, p, P); else cpu::crossAttention(p, P);
  }
  void attnBwd(const CrossAttentionBackwardParams& p, ThreadPool& P) const {
    if (ki) cpu::mld::crossAttentionBackwardWith(*ki, p, P); else cpu::crossAttentionBackward(p, P);
  }
  void gfc(const GroupFCParams& p, ThreadPool& P) const {
    if (ki) cpu::mld::groupFCWith(*ki, p, P); else cpu::groupFC(p, P);
  }
  void gfcBwd(const GroupFCBackwardParams& p, ThreadPool& P) const {
    if (ki) cpu::mld::groupFCBackwardWith(*ki, p, P); else cpu::groupFCBackward(p, P);
  }
  void drop(const DropoutParams& p, ThreadPool& P) const {
    if (ki) cpu::mld::dropoutWith(*ki, p, P); else cpu::dropout(p, P);
  }
  void loss(const MultiLabelLossParams& p, ThreadPool& P) const {
    if (ki) cpu::mld::multiLabelLossWith(*ki, p, P); else cpu::multiLabelLoss(p, P);
  }
};

struct AttnCase {
  int64_t B, Bq, Lq, Lk;
  int heads, d, dv;
  float drop;
  float inScale = 1;  // q/k magnitude (larger: sharper softmax)
};

// Naive double reference of visattn/params.h CrossAttentionParams / CrossAttentionBackwardParams.
// Also returns the number of kept mask elements (dropout > 0).
static int64_t attnRef(const AttnCase& c, float scale, uint64_t seed, const std::vector<float>& q,
                       const std::vector<float>& k, const std::vector<float>& v, const std::vector<float>& g,
                       std::vector<double>& out, std::vector<double>& lse, std::vector<double>& dQ,
                       std::vector<double>& dK, std::vector<double>& dV) {
  const int64_t M = c.heads, d = c.d, dv = c.dv, Lq = c.Lq, Lk = c.Lk;
  out.assign(c.B * Lq * M * dv, 0.0); lse.assign(c.B * M * Lq, 0.0);
  dQ.assign(q.size(), 0.0); dK.assign(k.size(), 0.0); dV.assign(v.size(), 0.0);
  std::vector<double> P(Lk), keep(Lk), dP(Lk);
  int64_t kept = 0;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < Lq; ++i) {
        const int64_t bq = c.Bq == 1 ? 0 : b;
        const float* qi = &q[((bq * Lq + i) * M + m) * d];
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < Lk; ++j) {
          const float* kj = &k[((b * Lk + j) * M + m) * d];
          double s = 0;
          for (int64_t e = 0; e < d; ++e) s += double(qi[e]) * kj[e];
          P[j] = scale * s;
          mx = std::max(mx, P[j]);
        }
        for (int64_t j = 0; j < Lk; ++j) sum += P[j] = std::exp(P[j] - mx);
        for (int64_t j = 0; j < Lk; ++j) {
          P[j] /= sum;
          const bool kp = c.drop == 0.0f ||
                          philox::dropoutKeep(uint64_t(((b * M + m) * Lq + i) * Lk + j), seed, 0, c.drop);
          kept += kp;
          keep[j] = kp ? 1.0 / (1.0 - double(c.drop)) : 0.0;
        }
        lse[(b * M + m) * Lq + i] = mx + std::log(sum);
        const int64_t orow = ((b * Lq + i) * M + m) * dv;
        for (int64_t j = 0; j < Lk; ++j)
          for (int64_t e = 0; e < dv; ++e) out[orow + e] += P[j] * keep[j] * v[((b * Lk + j) * M + m) * dv + e];
        // backward
        double D = 0;
        for (int64_t j = 0; j < Lk; ++j) {
          double s = 0;
          for (int64_t e = 0; e < dv; ++e) s += double(g[orow + e]) * v[((b * Lk + j) * M + m) * dv + e];
          dP[j] = s;
          D += P[j] * keep[j] * s;
        }
        for (int64_t j = 0; j < Lk; ++j) {
          const double dS = P[j] * (dP[j] * keep[j] - D);
          const int64_t krow = ((b * Lk + j) * M + m);
          for (int64_t e = 0; e < d; ++e) {
            dQ[((bq * Lq + i) * M + m) * d + e] += scale * dS * k[krow * d + e];
            dK[krow * d + e] += scale * dS * qi[e];
          }
          for (int64_t e = 0; e < dv; ++e) dV[krow * dv + e] += P[j] * keep[j] * g[orow + e];
        }
      }
  return kept;
}

static void testCrossAttention(const char* label, const MldRun& run) {
  const AttnCase cases[] = {
      {3, 1, 7, 5, 2, 8, 8, 0.0f},          // shared queries (Bq = 1)
      {3, 3, 7, 5, 2, 8, 8, 0.0f},          // per-image queries (Bq = B)
      {2, 1, 5, 1, 2, 4, 3, 0.0f},          // Lk = 1
      {2, 2, 6, 1, 1, 5, 5, 0.3f},          // Lk = 1 with dropout
      {1, 1, 13, 11, 1, 5, 7, 0.0f},        // odd sizes, one head, B = 1
      {2, 1, 20, 49, 3, 96, 96, 0.0f},      // d = 96 (ML-Decoder), OpenImages-like T = 49
      {2, 2, 17, 33, 1, 128, 128, 0.3f},    // d = 128, dropout
      {2, 1, 80, 196, 2, 96, 96, 0.3f},     // the COCO shape (fewer images/heads), dropout 0.3
      {2, 1, 80, 196, 2, 96, 96, 0.0f},     // … without dropout
      {2, 2, 9, 300, 2, 3, 2, 0.3f},        // d, dv < lane count
      {1, 1, 40, 3000, 1, 9, 17, 0.1f},     // long Lk: several query blocks (dK/dV accumulate)
      {2, 1, 16, 20, 2, 24, 24, 0.0f, 4.0f},  // sharp softmax (large logits)
      {2, 1, 3, 4, 2, 1, 1, 0.5f},          // d = dv = 1
      {2, 2, 10, 13, 2, 20, 12, 0.3f},      // d = 20 (overlapping last vector), dv = 12
      {4, 1, 33, 7, 3, 17, 9, 0.1f},        // Bq = 1, odd everything
  };
  uint64_t seed = 31000;
  for (const auto& c : cases) {
    const float scale = 1.0f / std::sqrt(float(c.d));
    const uint64_t dseed = 0x5eed0000ull + seed;
    auto q = randVec(c.Bq * c.Lq * c.heads * c.d, seed += 13, c.inScale);
    auto k = randVec(c.B * c.Lk * c.heads * c.d, seed + 1, c.inScale);
    auto v = randVec(c.B * c.Lk * c.heads * c.dv, seed + 2);
    auto g = randVec(c.B * c.Lq * c.heads * c.dv, seed + 3);
    std::vector<double> rOut, rLse, rdQ, rdK, rdV;
    const int64_t kept = attnRef(c, scale, dseed, q, k, v, g, rOut, rLse, rdQ, rdK, rdV);
    char tag[200];
    std::snprintf(tag, sizeof tag, "crossAttention B%lld Bq%lld Lq%lld Lk%lld M%d d%d dv%d p%g x%g", (long long)c.B,
                  (long long)c.Bq, (long long)c.Lq, (long long)c.Lk, c.heads, c.d, c.dv, c.drop, c.inScale);
    if (c.drop > 0.0f) {
      const double total = double(c.B) * c.heads * c.Lq * c.Lk, frac = kept / total;
      const double sd = std::sqrt(c.drop * (1.0 - c.drop) / total);
      check(std::fabs(frac - (1.0 - c.drop)) <= 5 * sd + 1e-9, (std::string(tag) + " kept fraction").c_str(), frac,
            1.0 - c.drop);
    }
    std::vector<float> r0[5];
    for (int t = 0; t < 3; ++t) {
      std::vector<float> out(rOut.size(), NAN), lse(rLse.size(), NAN), dQ(q.size(), NAN), dK(k.size(), NAN),
          dV(v.size(), NAN);
      CrossAttentionParams fp{q.data(), k.data(), v.data(), out.data(), lse.data(), c.B, c.Bq, c.Lq, c.Lk,
                              c.heads, c.d, c.dv, scale, c.drop, dseed};
      run.attn(fp, *g_pools[t]);
      CrossAttentionBackwardParams bp{q.data(), k.data(), v.data(), out.data(), lse.data(), g.data(), dQ.data(),
                                      dK.data(), dV.data(), c.B, c.Bq, c.Lq, c.Lk, c.heads, c.d, c.dv, scale,
                                      c.drop, dseed};
      run.attnBwd(bp, *g_pools[t]);
      std::vector<float>* got[5] = {&out, &lse, &dQ, &dK, &dV};
      const char* names[5] = {"out", "lse", "dQ", "dK", "dV"};
      if (t == 0) {
        const std::vector<double>* ref[5] = {&rOut, &rLse, &rdQ, &rdK, &rdV};
        const double tol[5] = {2e-5, 2e-6, 1e-4, 1e-4, 5e-5};
        std::string line;
        for (int o = 0; o < 5; ++o) {
          // Lk = 1: P = 1 and dS = 0 exactly, so dQ and dK are pure rounding noise: an absolute bound
          const double e = relErr(*got[o], *ref[o], c.Lk == 1 && (o == 2 || o == 3) ? 1.0 : 1e-6);
          check(e <= tol[o], (std::string(tag) + " " + names[o]).c_str(), e, tol[o]);
          char buf[48];
          std::snprintf(buf, sizeof buf, " %s %.1e", names[o], e);
          line += buf;
          r0[o] = *got[o];
        }
        if (g_verbose) std::printf("  [%s] %s:%s\n", label, tag, line.c_str());
      } else {
        for (int o = 0; o < 5; ++o)
          sameBits(*got[o], r0[o],
                   (std::string(tag) + " " + names[o] + " threads=" + std::to_string(kPoolSizes[t]) + " bit-identical").c_str());
      }
    }
  }
}

struct GfcCase { int64_t B, K, D, g, N; bool bias; };

static void testGroupFC(const char* label, const MldRun& run) {
  const GfcCase cases[] = {
      {3, 10, 40, 13, 125, true},     // N = (K − 1)·g + 8: not a multiple of K, a short last group
      {2, 7, 33, 5, 31, false},       // g < lane count (dot path), null bias, last group 1 slot
      {4, 80, 96, 1, 80, true},       // K = N (COCO: g = 1)
      {3, 5, 7, 20, 81, true},        // last group has 1 slot; D < lane count
      {2, 4, 50, 17, 68, false},      // N = K·g, g = 17 (overlapping last vector)
      {1, 3, 16, 16, 40, true},       // g = 16, batch 1
      {5, 1, 9, 3, 2, true},          // one group, N < g
      {12, 6, 20, 9, 50, true},       // batch > 8 (the dW product's general path), g > 8
      {11, 4, 24, 20, 77, false},     // batch > 8, g = 20
      {8, 100, 768, 97, 9605, true},  // OpenImages
  };
  uint64_t seed = 47000;
  for (const auto& c : cases) {
    auto x = randVec(c.B * c.K * c.D, seed += 7), w = randVec(c.K * c.D * c.g, seed + 1),
         bias = randVec(c.N, seed + 2), g = randVec(c.B * c.N, seed + 3);
    std::vector<double> rOut(c.B * c.N, 0.0), rdX(x.size(), 0.0), rdW(w.size(), 0.0), rdB(c.N, 0.0);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t col = 0; col < c.N; ++col) {
        const int64_t kk = col / c.g, j = col % c.g;
        double s = c.bias ? bias[col] : 0.0;
        for (int64_t e = 0; e < c.D; ++e) {
          s += double(x[(b * c.K + kk) * c.D + e]) * w[(kk * c.D + e) * c.g + j];
          rdX[(b * c.K + kk) * c.D + e] += double(w[(kk * c.D + e) * c.g + j]) * g[b * c.N + col];
          rdW[(kk * c.D + e) * c.g + j] += double(x[(b * c.K + kk) * c.D + e]) * g[b * c.N + col];
        }
        rOut[b * c.N + col] = s;
        rdB[col] += g[b * c.N + col];
      }
    char tag[160];
    std::snprintf(tag, sizeof tag, "groupFC B%lld K%lld D%lld g%lld N%lld bias%d", (long long)c.B, (long long)c.K,
                  (long long)c.D, (long long)c.g, (long long)c.N, c.bias);
    std::vector<float> r0[4];
    for (int t = 0; t < 3; ++t) {
      std::vector<float> out(rOut.size(), NAN), dX(x.size(), NAN), dW(w.size(), NAN), dB(c.N, NAN);
      run.gfc({x.data(), w.data(), c.bias ? bias.data() : nullptr, out.data(), c.B, c.K, c.D, c.g, c.N}, *g_pools[t]);
      run.gfcBwd({x.data(), w.data(), g.data(), dX.data(), dW.data(), dB.data(), c.B, c.K, c.D, c.g, c.N}, *g_pools[t]);
      std::vector<float>* got[4] = {&out, &dX, &dW, &dB};
      const char* names[4] = {"out", "dX", "dW", "dBias"};
      if (t == 0) {
        const std::vector<double>* ref[4] = {&rOut, &rdX, &rdW, &rdB};
        std::string line;
        for (int o = 0; o < 4; ++o) {
          const double e = relErr(*got[o], *ref[o]);
          check(e <= 2e-5, (std::string(tag) + " " + names[o]).c_str(), e, 2e-5);
          char buf[48];
          std::snprintf(buf, sizeof buf, " %s %.1e", names[o], e);
          line += buf;
          r0[o] = *got[o];
        }
        bool zeros = true;  // the unused slots of the last group: exactly +0
        for (int64_t e = 0; e < c.D; ++e)
          for (int64_t j = c.N - (c.K - 1) * c.g; j < c.g; ++j) {
            const float z = dW[((c.K - 1) * c.D + e) * c.g + j];
            zeros = zeros && z == 0.0f && !std::signbit(z);
          }
        check(zeros, (std::string(tag) + " dW unused slots exactly 0").c_str());
        if (g_verbose) std::printf("  [%s] %s:%s\n", label, tag, line.c_str());
      } else {
        for (int o = 0; o < 4; ++o)
          sameBits(*got[o], r0[o],
                   (std::string(tag) + " " + names[o] + " threads=" + std::to_string(kPoolSizes[t]) + " bit-identical").c_str());
      }
    }
  }
}

static void testDropoutOp(const MldRun& run) {
  const int64_t sizes[] = {1, 5, 67, 1000, 100003};
  const float probs[] = {0.0f, 0.3f, 0.9f, 0.5f};
  uint64_t seed = 0xABCDEF0123ull;
  for (int64_t n : sizes)
    for (float pr : probs) {
      const uint64_t offset = n == 67 ? (1ull << 40) + 3 : 7;  // a 64-bit offset
      auto x = randVec(n, n + 3, 3.0f);
      std::vector<float> first;
      bool exact = true;
      int64_t kept = 0;
      for (int t = 0; t < 3; ++t) {
        std::vector<float> out(n, NAN);
        run.drop({x.data(), out.data(), n, pr, seed, offset}, *g_pools[t]);
        if (t == 0) {
          const float kp = 1.0f - pr;
          for (int64_t i = 0; i < n; ++i) {
            const bool keep = philox::dropoutKeep(uint64_t(i), seed, offset, pr);
            kept += keep;
            const float want = keep ? x[i] / kp : 0.0f;
            exact = exact && std::memcmp(&want, &out[i], 4) == 0;
          }
          first = out;
        } else {
          sameBits(out, first, ("dropout n" + std::to_string(n) + " threads=" + std::to_string(kPoolSizes[t])).c_str());
        }
      }
      char tag[96];
      std::snprintf(tag, sizeof tag, "dropout n%lld p%g: bit-exact with philox::dropoutKeep", (long long)n, pr);
      check(exact, tag);
      if (n == 100003) {
        const double frac = double(kept) / n, sd = std::sqrt(pr * (1.0 - pr) / n);
        check(std::fabs(frac - (1.0 - pr)) <= 5 * sd + 1e-12, "dropout kept fraction", frac, 1.0 - pr);
      }
      seed += 0x9E37;
    }
  // a seed with high bits and a counter crossing 2^32 groups (the carry into the high word)
  {
    const int64_t n = 4096;
    auto x = randVec(n, 5);
    std::vector<float> out(n, NAN);
    const uint64_t offset = 0xFFFFFFFF00000001ull, sd = 0xFEDCBA9876543210ull;
    run.drop({x.data(), out.data(), n, 0.25f, sd, offset}, *g_pools[1]);
    bool exact = true;
    for (int64_t i = 0; i < n; ++i) {
      const float want = philox::dropoutKeep(uint64_t(i), sd, offset, 0.25f) ? x[i] / 0.75f : 0.0f;
      exact = exact && std::memcmp(&want, &out[i], 4) == 0;
    }
    check(exact, "dropout 64-bit seed/offset bit-exact");
  }
}

// ASL / BCE reference in double, straight from visattn/params.h (p and 1 − p both from σ, no
// cancellation); the gradient by central differences of this function.
struct LossCfg { MultiLabelLossKind kind; float gp, gn, clip, eps; bool focal; };
static double lossRef(const LossCfg& c, double x, double y, double* wPosOut = nullptr, double* wNegOut = nullptr) {
  const double p = 1.0 / (1.0 + std::exp(-x)), q = 1.0 / (1.0 + std::exp(x));
  if (c.kind == MultiLabelLossKind::Bce) return std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::fabs(x)));
  const double pn = std::min(q + c.clip, 1.0);
  const double pm = pn >= 1.0 ? 0.0 : std::max(p - c.clip, 0.0);  // 1 − p_neg without cancellation
  const double wPos = c.gp == 0 ? 1.0 : std::pow(q, c.gp), wNeg = c.gn == 0 ? 1.0 : std::pow(pm, c.gn);
  if (wPosOut) *wPosOut = wPos;
  if (wNegOut) *wNegOut = wNeg;
  return -(y * std::log(std::max(p, double(c.eps))) * wPos + (1 - y) * std::log(std::max(pn, double(c.eps))) * wNeg);
}
static double lossRefGrad(const LossCfg& c, double x, double y) {
  const double h = 1e-5 * std::max(1.0, std::fabs(x));
  if (c.focal || c.kind == MultiLabelLossKind::Bce)
    return (lossRef(c, x + h, y) - lossRef(c, x - h, y)) / (2 * h);
  // focusing weights held constant at x
  double wp, wn;
  lossRef(c, x, y, &wp, &wn);
  auto part = [&](double z) {
    const double p = 1.0 / (1.0 + std::exp(-z)), q = 1.0 / (1.0 + std::exp(z));
    const double pn = std::min(q + c.clip, 1.0);
    return -(y * std::log(std::max(p, double(c.eps))) * wp + (1 - y) * std::log(std::max(pn, double(c.eps))) * wn);
  };
  return (part(x + h) - part(x - h)) / (2 * h);
}

static void testLoss(const MldRun& run) {
  const LossCfg cfgs[] = {
      {MultiLabelLossKind::Asl, 0, 4, 0.05f, 1e-8f, false},  // the training scripts' setting
      {MultiLabelLossKind::Asl, 0, 4, 0.05f, 1e-8f, true},
      {MultiLabelLossKind::Asl, 1, 4, 0.05f, 1e-8f, false},  // the class defaults
      {MultiLabelLossKind::Asl, 1, 4, 0.05f, 1e-8f, true},
      {MultiLabelLossKind::Asl, 1, 2.5f, 0.0f, 1e-8f, true},  // no clip, fractional γ−
      {MultiLabelLossKind::Asl, 2, 1, 0.1f, 1e-8f, true},
      {MultiLabelLossKind::Bce, 0, 0, 0, 0, false},
  };
  // logits: random in [−8, 8], then large magnitudes; targets 0 / 1 and a few soft ones
  const int64_t n = 2000;
  auto x = randVec(n, 77, 8.0f);
  auto t = randVec(n, 78);
  std::vector<float> y(n);
  for (int64_t i = 0; i < n; ++i) y[i] = t[i] > 0.1f ? 1.0f : t[i] < -0.8f ? 0.3f : 0.0f;
  const float big[] = {30, -30, 60, -60, 100, -100, 1e4f, -1e4f, 17, -17, 0, 88, -88, 89, -89, 104, -104};
  for (int i = 0; i < int(sizeof big / sizeof big[0]); ++i) {
    x[2 * i] = big[i];
    y[2 * i] = 1.0f;
    x[2 * i + 1] = big[i];
    y[2 * i + 1] = 0.0f;
  }
  for (const auto& c : cfgs) {
    char tag[128];
    std::snprintf(tag, sizeof tag, "multiLabelLoss %s g+%g g-%g clip%g focal%d", c.kind == MultiLabelLossKind::Bce ? "bce" : "asl",
                  c.gp, c.gn, c.clip, c.focal);
    std::vector<float> first[2];
    double errL = 0, errG = 0;
    bool finite = true;
    for (int th = 0; th < 3; ++th) {
      std::vector<float> loss(n, NAN), grad(n, NAN), loss2(n, NAN);
      MultiLabelLossParams p{x.data(), y.data(), loss.data(), grad.data(), n, c.kind, c.gp, c.gn, c.clip, c.eps, c.focal};
      run.loss(p, *g_pools[th]);
      p.loss = loss2.data();
      p.grad = nullptr;  // no gradient requested: same loss
      run.loss(p, *g_pools[th]);
      if (th == 0) {
        for (int64_t i = 0; i < n; ++i) {
          const double rl = lossRef(c, x[i], y[i]), rg = lossRefGrad(c, x[i], y[i]);
          finite = finite && std::isfinite(loss[i]) && std::isfinite(grad[i]);
          // relative, with a small absolute floor: p − clip cancels in fp32 near p = clip (as in PyTorch)
          errL = std::max(errL, std::fabs(loss[i] - rl) / (std::fabs(rl) + 1e-3));
          errG = std::max(errG, std::fabs(grad[i] - rg) / (std::fabs(rg) + 1e-3));
        }
        check(finite && errL <= 1e-5, (std::string(tag) + " loss").c_str(), errL, 1e-5);
        check(finite && errG <= 1e-4, (std::string(tag) + " grad").c_str(), errG, 1e-4);
        sameBits(loss2, loss, (std::string(tag) + " loss without grad").c_str());
        first[0] = loss;
        first[1] = grad;
        if (g_verbose) std::printf("  %s: loss %.1e grad %.1e\n", tag, errL, errG);
      } else {
        sameBits(loss, first[0], (std::string(tag) + " loss threads=" + std::to_string(kPoolSizes[th])).c_str());
        sameBits(grad, first[1], (std::string(tag) + " grad threads=" + std::to_string(kPoolSizes[th])).c_str());
      }
    }
  }
}

// Inconsistent sizes throw std::invalid_argument; B = 0 computes nothing (group FC backward: zero dW, dBias).
static void testMldEdges(const MldRun& run) {
  float dummy[4] = {0, 0, 0, 0}, lse[4];
  auto throws = [](auto&& fn) {
    try {
      fn();
    } catch (const std::invalid_argument&) {
      return true;
    }
    return false;
  };
  CrossAttentionParams fp{dummy, dummy, dummy, dummy, lse, 2, 3, 1, 1, 1, 1, 1, 1.0f, 0.0f, 0};  // Bq ∉ {1, B}
  check(throws([&] { run.attn(fp, *g_pools[1]); }), "crossAttention rejects Bq not in {1, B}");
  fp.Bq = 1;
  fp.dropout = 1.0f;
  check(throws([&] { run.attn(fp, *g_pools[1]); }), "crossAttention rejects dropout 1");
  GroupFCParams gp{dummy, dummy, nullptr, dummy, 1, 2, 1, 2, 2};  // N <= (K − 1)·g
  check(throws([&] { run.gfc(gp, *g_pools[1]); }), "groupFC rejects N <= (K - 1)·g");
  check(throws([&] { run.drop({dummy, dummy, 4, -0.5f, 1, 0}, *g_pools[1]); }), "dropout rejects p < 0");
  std::vector<float> dW(2 * 3 * 4, NAN), dB(7, NAN);
  run.gfcBwd({dummy, dummy, dummy, dummy, dW.data(), dB.data(), 0, 2, 3, 4, 7}, *g_pools[1]);
  bool zeros = true;
  for (float v : dW) zeros = zeros && v == 0.0f;
  for (float v : dB) zeros = zeros && v == 0.0f;
  check(zeros, "groupFC backward with B = 0: zero dW and dBias");
}

static void testMld(const char* label, const cpu::mld::MldKernels* ki = nullptr) {
  const MldRun run{ki};
  testCrossAttention(label, run);
  testGroupFC(label, run);
  testDropoutOp(run);
  testLoss(run);
  testMldEdges(run);
}

// ------------------------------------------------------------------------------------ k-means (kMaX)
// ki == nullptr: the public entry points (the ISA selected by VISATTN_ISA); else the given table.
static void kmFwd(const cpu::kmeans::KmKernels* ki, const KMeansParams& p, ThreadPool& P) {
  if (ki) cpu::kmeans::forwardWith(*ki, p, P); else cpu::kmeansCrossAttention(p, P);
}
static void kmBwd(const cpu::kmeans::KmKernels* ki, const KMeansBackwardParams& p, ThreadPool& P) {
  if (ki) cpu::kmeans::backwardWith(*ki, p, P); else cpu::kmeansCrossAttentionBackward(p, P);
}

// mode: 0 random; 1 every centre identical (all ties → 0); 2 centres 2 and 4 identical and dominant;
// 3 NaNs (centre 0 all NaN: never wins; pixel 1 NaN: all-NaN row → 0)
static void testKmeansCase(const char* label, const cpu::kmeans::KmKernels* ki, int64_t B, int64_t N, int64_t L,
                           int64_t D, int64_t Dv, int mode, uint64_t seed) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "kmeans %s B=%lld N=%lld L=%lld D=%lld Dv=%lld mode=%d", label, (long long)B,
                (long long)N, (long long)L, (long long)D, (long long)Dv, mode);
  g_ctx = buf;
  auto px = randVec(B * N * D, seed), ct = randVec(B * L * D, seed + 1), val = randVec(B * N * Dv, seed + 2),
       gu = randVec(B * L * Dv, seed + 3);
  if (mode == 1)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t l = 1; l < L; ++l) std::copy_n(&ct[b * L * D], D, &ct[(b * L + l) * D]);
  if (mode == 2 && L > 4)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < D; ++d) ct[(b * L + 2) * D + d] = ct[(b * L + 4) * D + d] = 3.0f * ct[(b * L + 2) * D + d];
  if (mode == 3) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < D; ++d) ct[b * L * D + d] = NAN;
    if (N > 1)
      for (int64_t d = 0; d < D; ++d) px[(0 * N + 1) * D + d] = NAN;
  }
  // canonical scalar reference: fma chain in ascending d; first l with the maximum non-NaN score
  std::vector<int32_t> aRef(B * N);
  std::vector<float> lRef(B * L * N);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n) {
      float best = -INFINITY;
      int32_t a = -1;
      for (int64_t l = 0; l < L; ++l) {
        float s = 0.0f;
        for (int64_t d = 0; d < D; ++d) s = std::fma(px[(b * N + n) * D + d], ct[(b * L + l) * D + d], s);
        lRef[(b * L + l) * N + n] = s;
        if (s > best || (a < 0 && s == s)) { best = s; a = int32_t(l); }
      }
      aRef[b * N + n] = a < 0 ? 0 : a;
    }
  std::vector<double> uRef(B * L * Dv, 0.0), dvRef(B * N * Dv);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < Dv; ++j) {
        uRef[(b * L + aRef[b * N + n]) * Dv + j] += val[(b * N + n) * Dv + j];
        dvRef[(b * N + n) * Dv + j] = gu[(b * L + aRef[b * N + n]) * Dv + j];
      }
  std::vector<float> u0, l0, dv0;
  std::vector<int32_t> a0;
  for (int withLogits = 0; withLogits < 2; ++withLogits)
    for (int t = 0; t < 3; ++t) {
      std::vector<float> upd(B * L * Dv, 123.0f), lg(withLogits ? B * L * N : 0, 7.0f), dV(B * N * Dv, 5.0f);
      std::vector<int32_t> as(B * N, -7);
      KMeansParams p{px.data(), ct.data(), val.data(), upd.data(), as.data(), withLogits ? lg.data() : nullptr,
                     B, N, L, D, Dv};
      kmFwd(ki, p, *g_pools[t]);
      KMeansBackwardParams bp{as.data(), gu.data(), dV.data(), B, N, L, Dv};
      kmBwd(ki, bp, *g_pools[t]);
      check(as == aRef, "assign bit-identical to the canonical fmaf reference");
      if (withLogits) sameBits(lg, lRef, "logits bit-identical to the canonical scores");
      compare(upd, uRef, "update vs double reference", 1e-5);
      compare(dV, dvRef, "dValues (gather)", 0.0);
      if (mode == 2 && L > 4) {
        bool none4 = true;
        for (auto a : as) none4 &= a != 4;
        check(none4, "identical centres: the lower index wins");
      }
      if (mode == 1) check(std::all_of(as.begin(), as.end(), [](int32_t a) { return a == 0; }), "all ties → 0");
      if (mode == 3) {
        bool no0 = true;
        for (int64_t b = 0; b < B; ++b)
          for (int64_t n = 0; n < N; ++n) no0 &= (b == 0 && n == 1) ? as[n] == 0 : (L == 1 || as[b * N + n] != 0);
        check(no0, "NaN scores never win; an all-NaN pixel → 0");
      }
      // empty clusters are exactly 0
      bool emptyZero = true;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t l = 0; l < L; ++l) {
          bool used = false;
          for (int64_t n = 0; n < N; ++n) used |= aRef[b * N + n] == l;
          if (!used)
            for (int64_t j = 0; j < Dv; ++j) emptyZero &= upd[(b * L + l) * Dv + j] == 0.0f;
        }
      check(emptyZero, "empty cluster → 0");
      if (t == 0 && withLogits == 0) {
        u0 = upd; a0 = as; dv0 = dV;
      } else {
        sameBits(upd, u0, "update identical for 1/2/3 threads and logits on/off");
        check(as == a0, "assign identical for 1/2/3 threads");
        sameBits(dV, dv0, "dValues identical for 1/2/3 threads");
      }
      if (withLogits && t == 0) l0 = lg; else if (withLogits) sameBits(lg, l0, "logits identical for 1/2/3 threads");
    }
}

static void testL2Normalize(const cpu::kmeans::KmKernels* ki) {
  const int64_t colsList[] = {1, 3, 8, 33, 128, 257};
  for (int64_t cols : colsList) {
    const int64_t rows = 37;
    char buf[96];
    std::snprintf(buf, sizeof buf, "l2Normalize rows=%lld cols=%lld", (long long)rows, (long long)cols);
    g_ctx = buf;
    auto x = randVec(rows * cols, 91 + cols), dy = randVec(rows * cols, 92 + cols);
    for (int64_t c = 0; c < cols; ++c) x[3 * cols + c] = 0.0f;                // zero row
    for (int64_t c = 0; c < cols; ++c) x[5 * cols + c] = 1e-9f * (c % 3);      // tiny row (n <= eps)
    const float eps = 1e-12f * 1e3f;                                          // 1e-9
    std::vector<double> yRef(x.size()), dxRef(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t c = 0; c < cols; ++c) ss += double(x[r * cols + c]) * x[r * cols + c];
      const double n = std::sqrt(ss), den = std::max(n, double(eps));
      double yd = 0;
      for (int64_t c = 0; c < cols; ++c) {
        yRef[r * cols + c] = x[r * cols + c] / den;
        yd += yRef[r * cols + c] * dy[r * cols + c];
      }
      for (int64_t c = 0; c < cols; ++c)
        dxRef[r * cols + c] = n > eps ? (dy[r * cols + c] - yRef[r * cols + c] * yd) / n : dy[r * cols + c] / eps;
    }
    std::vector<float> y0, dx0;
    for (int t = 0; t < 3; ++t) {
      std::vector<float> y(x.size(), 9.0f), dx(x.size(), 9.0f);
      L2NormalizeParams p{x.data(), y.data(), rows, cols, eps};
      L2NormalizeBackwardParams bp{x.data(), dy.data(), dx.data(), rows, cols, eps};
      if (ki) {
        cpu::kmeans::l2NormalizeWith(*ki, p, *g_pools[t]);
        cpu::kmeans::l2NormalizeBackwardWith(*ki, bp, *g_pools[t]);
      } else {
        cpu::l2Normalize(p, *g_pools[t]);
        cpu::l2NormalizeBackward(bp, *g_pools[t]);
      }
      compare(y, yRef, "l2Normalize y vs double reference");
      bool zero = true;
      for (int64_t c = 0; c < cols; ++c) zero &= y[3 * cols + c] == 0.0f;
      check(zero, "zero row → zeros");
      // the backward is large on the tiny rows (1/eps): compare the regular rows and the small ones apart
      std::vector<float> dxa, dxb;
      std::vector<double> ra, rb;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const bool small = r == 3 || r == 5;
          (small ? dxb : dxa).push_back(dx[r * cols + c]);
          (small ? rb : ra).push_back(dxRef[r * cols + c]);
        }
      // (cols = 1: dx is 0 up to cancellation, so the bound is relative to the scale |dy|/n of the terms)
      double err = 0, scale = 1e-6;
      for (size_t i = 0; i < ra.size(); ++i) {
        err = std::max(err, std::fabs(dxa[i] - ra[i]));
        scale = std::max(scale, std::fabs(ra[i]));
      }
      for (int64_t r = 0; r < rows; ++r) {
        if (r == 3 || r == 5) continue;
        double ss = 0;
        for (int64_t c = 0; c < cols; ++c) ss += double(x[r * cols + c]) * x[r * cols + c];
        for (int64_t c = 0; c < cols; ++c) scale = std::max(scale, std::fabs(dy[r * cols + c]) / std::sqrt(ss));
      }
      check(err <= 2e-4 * scale, "l2NormalizeBackward dx vs double reference", err, 2e-4 * scale);
      compare(dxb, rb, "l2NormalizeBackward dx (n <= eps rows) = dy/eps");
      if (t == 0) { y0 = y; dx0 = dx; }
      else { sameBits(y, y0, "l2Normalize identical for 1/2/3 threads"); sameBits(dx, dx0, "dx identical for 1/2/3 threads"); }
    }
  }
}

static void testKmeans(const char* label, const cpu::kmeans::KmKernels* ki = nullptr) {
  struct C { int64_t B, N, L, D, Dv; int mode; };
  const C cases[] = {
      {1, 1, 1, 1, 1, 0},       {1, 13, 1, 16, 9, 0},     {2, 37, 5, 7, 3, 0},       {1, 100, 128, 128, 40, 0},
      {3, 53, 19, 33, 17, 0},   {2, 250, 40, 64, 64, 0},  {1, 5, 40, 8, 11, 0},      {2, 29, 9, 12, 5, 1},
      {2, 61, 24, 20, 13, 2},   {2, 47, 17, 9, 19, 3},    {1, 97, 133, 31, 70, 2},   {2, 0, 4, 8, 6, 0},
      {1, 8, 16, 0, 4, 0},      {1, 300, 7, 130, 0, 0},
  };
  uint64_t seed = 500;
  for (const C& c : cases) testKmeansCase(label, ki, c.B, c.N, c.L, c.D, c.Dv, c.mode, seed += 7);
  // backward: an assign outside [0, L) throws std::out_of_range naming it
  g_ctx = std::string("kmeans ") + label + " out-of-range";
  for (int32_t bad : {-1, 4}) {
    std::vector<int32_t> as = {0, 1, 3, bad, 2, 0};
    std::vector<float> gu(2 * 4 * 3, 1.0f), dV(2 * 3 * 3);
    KMeansBackwardParams bp{as.data(), gu.data(), dV.data(), 2, 3, 4, 3};
    bool threw = false;
    try {
      kmBwd(ki, bp, *g_pools[1]);
    } catch (const std::out_of_range& e) {
      threw = std::strstr(e.what(), "assign[1, 0]") && std::strstr(e.what(), std::to_string(bad).c_str());
    }
    check(threw, "assign outside [0, L) → std::out_of_range naming it");
  }
  testL2Normalize(ki);
}

// kMaX-DeepLab COCO stride 8 (B = 1, N = 161² = 25921, L = 128, D = 128, Dv = 256): forward with logits
// off / on, backward, forward + backward, 1 and 2 threads.
static void benchKmeans(const cpu::kmeans::KmKernels& ki, int reps) {
  const int64_t B = 1, N = 161 * 161, L = 128, D = 128, Dv = 256;
  auto px = randVec(B * N * D, 1), ct = randVec(B * L * D, 2), val = randVec(B * N * Dv, 3), gu = randVec(B * L * Dv, 4);
  std::vector<float> upd(B * L * Dv), lg(B * L * N), dV(B * N * Dv);
  std::vector<int32_t> as(B * N);
  struct Tm { double med, min; };
  auto timeIt = [&](auto&& fn) {
    for (int i = 0; i < 2; ++i) fn();
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      fn();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return Tm{ms[ms.size() / 2], ms[0]};
  };
  const double flops = 2.0 * B * N * L * D;
  for (int t = 0; t < 2; ++t) {
    ThreadPool& P = *g_pools[t];
    KMeansParams p{px.data(), ct.data(), val.data(), upd.data(), as.data(), nullptr, B, N, L, D, Dv};
    KMeansParams pl = p;
    pl.logits = lg.data();
    KMeansBackwardParams bp{as.data(), gu.data(), dV.data(), B, N, L, Dv};
    const Tm f = timeIt([&] { cpu::kmeans::forwardWith(ki, p, P); });
    const Tm fl = timeIt([&] { cpu::kmeans::forwardWith(ki, pl, P); });
    KMeansParams pa = p;  // scores + arg-max only
    pa.Dv = 0;
    const Tm fa = timeIt([&] { cpu::kmeans::forwardWith(ki, pa, P); });
    const Tm bw = timeIt([&] { cpu::kmeans::backwardWith(ki, bp, P); });
    const Tm fb = timeIt([&] { cpu::kmeans::forwardWith(ki, p, P); cpu::kmeans::backwardWith(ki, bp, P); });
    const Tm fbl = timeIt([&] { cpu::kmeans::forwardWith(ki, pl, P); cpu::kmeans::backwardWith(ki, bp, P); });
    auto line = [&](const char* what, const Tm& x, bool fl) {
      std::printf("  kmeans %2d lanes %dt: %-16s %7.3f ms (min %7.3f)", ki.lanes, kPoolSizes[t], what, x.med, x.min);
      if (fl) std::printf("  scores %5.1f GFLOP/s (at min)", flops / x.min * 1e-6);
      std::printf("\n");
    };
    line("fwd", f, true);
    line("fwd logits", fl, true);
    line("assign only", fa, true);
    line("bwd", bw, false);
    line("fwd+bwd", fb, true);
    line("fwd+bwd logits", fbl, true);
  }
}

static void testThreadPool() {
  // nested parallelFor runs inline; exceptions propagate; every index is visited once
  for (int t = 0; t < 3; ++t) {
    ThreadPool& P = *g_pools[t];
    std::vector<int> hits(10000, 0);
    P.parallelFor(10000, 7, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
      P.parallelFor(4, 1, [&](int64_t, int64_t) {});  // nested: must not deadlock
    });
    bool ok = true;
    for (int h : hits) ok = ok && h == 1;
    check(ok, "pool covers every index once (with nested calls)");
    bool caught = false;
    try {
      P.parallelFor(1000, 1, [&](int64_t, int64_t e) { if (e > 500) throw std::runtime_error("x"); });
    } catch (const std::runtime_error&) { caught = true; }
    check(caught, "pool rethrows exceptions");
  }
  { ThreadPool tmp(4); tmp.parallelFor(100, 1, [](int64_t, int64_t) {}); }  // destroy with workers
  check(true, "pool destruction");
}

// ------------------------------------------------------------------------------- benchmark
static void benchGemm(const cpu::gemm::KernelInfo& ki, int64_t n, int reps) {
  auto A = randVec(n * n, 1), B = randVec(n * n, 2);
  std::vector<float> C(n * n);
  const char* names[3] = {"fwd  C=A·B   (NN)", "dA = dC·Bᵀ   (NT)", "dB = Aᵀ·dC   (TN)"};
  for (int t = 0; t < 2; ++t) {
    ThreadPool& P = *g_pools[t];
    double totalFlops = 0, totalSec = 0;
    for (int c = 0; c < 3; ++c) {
      MatmulParams p{A.data(), B.data(), C.data(), nullptr, 1, n, n, n, 0, 0, 0, c == 2, c == 1, 1.0f, 0.0f};
      cpu::detail::matmulWith(ki, p, P);  // warm-up
      double best = 1e30;
      for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        cpu::detail::matmulWith(ki, p, P);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, s);
      }
      double gf = 2.0 * n * n * n / best * 1e-9;
      totalFlops += 2.0 * n * n * n;
      totalSec += best;
      std::printf("  %-7s %d thr  %s  %8.3f ms  %7.1f GFLOP/s  (%.1f per thread)\n", ki.name, kPoolSizes[t],
                  names[c], best * 1e3, gf, gf / kPoolSizes[t]);
    }
    std::printf("  %-7s %d thr  fwd+both grads %.3f ms  %7.1f GFLOP/s\n", ki.name, kPoolSizes[t], totalSec * 1e3,
                totalFlops / totalSec * 1e-9);
  }
}

// VOLO-D1 stage-1 outlook core (v [8,28,28,192], 6 heads, k=3, pad 1, stride 2): fwd and fwd+bwd.
static void benchOutlook(const cpu::outlook::OutlookKernels& ki, int reps) {
  const int64_t B = 8, H = 28, W = 28, C = 192, h = 14, w = 14;
  const int M = 6, k = 3;
  const float scale = 1.0f / std::sqrt(32.0f);
  auto v = randVec(B * H * W * C, 1), lg = randVec(B * h * w * M * 81, 2, 3.0f), g = randVec(B * H * W * C, 3);
  std::vector<float> out(v.size()), dV(v.size()), dL(lg.size());
  OutlookParams fp{v.data(), lg.data(), out.data(), B, H, W, C, h, w, M, k, 1, 2, scale};
  OutlookBackwardParams bp{v.data(), lg.data(), g.data(), dV.data(), dL.data(), B, H, W, C, h, w, M, k, 1, 2, scale};
  const double fwdBytes = 4.0 * (v.size() + lg.size() + out.size());
  const double bwdBytes = 4.0 * (v.size() + lg.size() + g.size() + dV.size() + dL.size());
  for (int t = 0; t < 2; ++t) {
    ThreadPool& P = *g_pools[t];
    // wall median, and the minimum (with the process CPU time of the median rep: on a loaded
    // machine, CPU time / threads is the better estimate of the kernel's own cost)
    auto timeIt = [&](auto&& fn) {
      for (int i = 0; i < 3; ++i) fn();
      std::vector<double> ms;
      for (int i = 0; i < reps; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        fn();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      return std::make_pair(ms[ms.size() / 2], ms[0]);
    };
    auto cpuMs = [&](auto&& fn) {
      timespec a, b;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
      for (int i = 0; i < reps; ++i) fn();
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
      return ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) * 1e-6) / reps;
    };
    auto f = timeIt([&] { cpu::outlook::forwardWith(ki, cpu::math::kernels(), fp, P); });
    auto b = timeIt([&] { cpu::outlook::backwardWith(ki, cpu::math::kernels(), bp, P); });
    auto fb = timeIt([&] {
      cpu::outlook::forwardWith(ki, cpu::math::kernels(), fp, P);
      cpu::outlook::backwardWith(ki, cpu::math::kernels(), bp, P);
    });
    const double fc = cpuMs([&] { cpu::outlook::forwardWith(ki, cpu::math::kernels(), fp, P); });
    const double bcpu = cpuMs([&] { cpu::outlook::backwardWith(ki, cpu::math::kernels(), bp, P); });
    std::printf("  outlook %2d lanes %dt: fwd %.3f ms (min %.3f, %.1f GB/s; cpu %.3f ms)  bwd %.3f ms (min %.3f, %.1f GB/s; "
                "cpu %.3f ms)  fwd+bwd %.3f ms (min %.3f)\n", ki.lanes, kPoolSizes[t], f.first, f.second,
                fwdBytes / f.first * 1e-6, fc, b.first, b.second, bwdBytes / b.first * 1e-6, bcpu, fb.first, fb.second);
  }
}

// halonet50ts stage-3 halo core (q/k/v [8,16,16,8,32], b = 8, h = 3, stride 1): fwd, bwd, fwd+bwd.
static void benchHalo(const cpu::halo::HaloKernels& ki, int reps) {
  const int64_t B = 8, H = 16, W = 16;
  const int M = 8, dk = 32, dv = 32, b = 8, h = 3, win = b + 2 * h;
  const float scale = 1.0f / std::sqrt(float(dk));
  auto q = randVec(B * H * W * M * dk, 1), k = randVec(B * H * W * M * dk, 2), v = randVec(B * H * W * M * dv, 3);
  auto rH = randVec((2 * win - 1) * dk, 4), rW = randVec((2 * win - 1) * dk, 5), g = randVec(B * H * W * M * dv, 6);
  std::vector<float> out(g.size()), lse(B * H * W * M), dQ(q.size()), dK(k.size()), dV(v.size()), dRH(rH.size()),
      dRW(rW.size());
  HaloParams fp{q.data(), k.data(), v.data(), rH.data(), rW.data(), out.data(), lse.data(), B, H, W, M, dk, dv, b, h, 1,
                scale, false};
  HaloBackwardParams bp{q.data(), k.data(), v.data(), rH.data(), rW.data(), out.data(), lse.data(), g.data(),
                        dQ.data(), dK.data(), dV.data(), dRH.data(), dRW.data(), B, H, W, M, dk, dv, b, h, 1, scale,
                        false};
  // Nominal FLOPs (spec §3.5: full win² window and full tables): fwd 2·(2·nb·b²·M·win²·d) + 4·nb·b²·M·(2win−1)·dk
  // per image, bwd 2.5× fwd. Executed: the kernels skip the padding keys (zero keys / values) and use
  // only the win + b − 1 table rows a block can reach.
  const double nb = double(H / b) * (W / b), nq = double(b) * b;
  const double fwdNom = B * (2 * (2 * nb * nq * M * win * win * dk) + 4 * nb * nq * M * (2 * win - 1) * dk);
  const double bwdNom = 2.5 * fwdNom;
  double fwdExe = 0, bwdExe = 0;
  for (int64_t I = 0; I < H / b; ++I)
    for (int64_t J = 0; J < W / b; ++J) {
      auto span = [&](int64_t o, int64_t n) { return std::min<int64_t>(win, n - (o - h)) - std::max<int64_t>(0, h - o); };
      const double nK = double(span(I * b, H)) * span(J * b, W), rows = 2.0 * (win + b - 1) + nK;
      fwdExe += 2 * nq * rows * dk + 2 * nq * nK * dv;
      bwdExe += 2 * nq * rows * dk + 2 * nK * nq * dv + 2 * nq * rows * dk + 2 * rows * nq * dk + 2 * nK * nq * dv;
    }
  fwdExe *= double(B) * M;
  bwdExe *= double(B) * M;
  for (int t = 0; t < 2; ++t) {
    ThreadPool& P = *g_pools[t];
    // wall median and minimum, and the median process CPU time per call (on a shared machine the
    // minimum and CPU time / threads are the better estimates of the kernel's own cost)
    struct Tm { double med, min, cpu; };
    auto timeIt = [&](auto&& fn) {
      for (int i = 0; i < 3; ++i) fn();
      std::vector<double> ms, cpu;
      for (int i = 0; i < reps; ++i) {
        timespec a, b;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        auto t0 = std::chrono::steady_clock::now();
        fn();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        cpu.push_back((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) * 1e-6);
      }
      std::sort(ms.begin(), ms.end());
      std::sort(cpu.begin(), cpu.end());
      return Tm{ms[ms.size() / 2], ms[0], cpu[cpu.size() / 2]};
    };
    const Tm f = timeIt([&] { cpu::halo::forwardWith(ki, fp, P); });
    const Tm bw = timeIt([&] { cpu::halo::backwardWith(ki, bp, P); });
    const Tm fb = timeIt([&] {
      cpu::halo::forwardWith(ki, fp, P);
      cpu::halo::backwardWith(ki, bp, P);
    });
    const int th = kPoolSizes[t];
    auto line = [&](const char* what, const Tm& x, double nom, double exe) {
      std::printf("  halo %2d lanes %dt: %-7s %7.3f ms (min %7.3f, cpu %7.3f)  %6.1f GFLOP/s nominal, %5.1f executed"
                  " = %2.0f%% of %d×91 (at min)\n", ki.lanes, th, what, x.med, x.min, x.cpu, nom / x.min * 1e-6,
                  exe / x.min * 1e-6, 100 * exe / x.min * 1e-6 / (91.0 * th), th);
    };
    line("fwd", f, fwdNom, fwdExe);
    line("bwd", bw, bwdNom, bwdExe);
    line("fwd+bwd", fb, fwdNom + bwdNom, fwdExe + bwdExe);
  }
}

// ML-Decoder shapes (issue 5): cross-attention at the COCO shape (B = 8, Lq = 80 shared queries, Lk = 196,
// 8 heads, d = dv = 96), dropout 0 and 0.1, fwd / bwd / fwd+bwd; group FC at the OpenImages shape (B = 8,
// K = 100, D = 768, g = 97, N = 9605, w = 30 MB) and COCO's (K = N = 80, g = 1), fwd / bwd.
static void benchMld(const cpu::mld::MldKernels& ki, int reps) {
  struct Tm { double med, min, cpu; };
  auto timeIt = [&](auto&& fn) {
    for (int i = 0; i < 3; ++i) fn();
    std::vector<double> ms, cpu;
    for (int i = 0; i < reps; ++i) {
      timespec a, b;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
      auto t0 = std::chrono::steady_clock::now();
      fn();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
      cpu.push_back((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) * 1e-6);
    }
    std::sort(ms.begin(), ms.end());
    std::sort(cpu.begin(), cpu.end());
    return Tm{ms[ms.size() / 2], ms[0], cpu[cpu.size() / 2]};
  };
  // cross-attention
  {
    const int64_t B = 8, Lq = 80, Lk = 196;
    const int M = 8, d = 96, dv = 96;
    const float scale = 1.0f / std::sqrt(float(d));
    auto q = randVec(Lq * M * d, 1), k = randVec(B * Lk * M * d, 2), v = randVec(B * Lk * M * dv, 3),
         g = randVec(B * Lq * M * dv, 4);
    std::vector<float> out(g.size()), lse(B * M * Lq), dQ(q.size()), dK(k.size()), dV(v.size());
    // nominal: QKᵀ and PV forward, four products backward; executed: the backward recomputes QKᵀ
    const double mm = 2.0 * B * M * Lq * Lk * d;  // one product
    for (float drop : {0.0f, 0.1f}) {
      CrossAttentionParams fp{q.data(), k.data(), v.data(), out.data(), lse.data(), B, 1, Lq, Lk, M, d, dv, scale, drop, 7};
      CrossAttentionBackwardParams bp{q.data(), k.data(), v.data(), out.data(), lse.data(), g.data(), dQ.data(),
                                      dK.data(), dV.data(), B, 1, Lq, Lk, M, d, dv, scale, drop, 7};
      for (int t = 0; t < 2; ++t) {
        ThreadPool& P = *g_pools[t];
        const Tm f = timeIt([&] { cpu::mld::crossAttentionWith(ki, fp, P); });
        const Tm bw = timeIt([&] { cpu::mld::crossAttentionBackwardWith(ki, bp, P); });
        const Tm fb = timeIt([&] {
          cpu::mld::crossAttentionWith(ki, fp, P);
          cpu::mld::crossAttentionBackwardWith(ki, bp, P);
        });
        const int th = kPoolSizes[t];
        auto line = [&](const char* what, const Tm& x, double nom, double exe) {
          std::printf("  xattn %2d lanes p=%.1f %dt: %-7s %7.3f ms (min %7.3f, cpu %7.3f)  %6.1f GFLOP/s nominal, %5.1f "
                      "executed = %2.0f%% of %d×91 (at min)\n", ki.lanes, drop, th, what, x.med, x.min, x.cpu,
                      nom / x.min * 1e-6, exe / x.min * 1e-6, 100 * exe / x.min * 1e-6 / (91.0 * th), th);
        };
        line("fwd", f, 2 * mm, 2 * mm);
        line("bwd", bw, 4 * mm, 5 * mm);
        line("fwd+bwd", fb, 6 * mm, 7 * mm);
      }
    }
  }
  // group FC
  struct Shape { const char* name; int64_t B, K, D, g, N; };
  const Shape shapes[] = {{"OpenImages", 8, 100, 768, 97, 9605}, {"COCO", 8, 80, 768, 1, 80}};
  for (const auto& s : shapes) {
    auto x = randVec(s.B * s.K * s.D, 5), w = randVec(s.K * s.D * s.g, 6), bias = randVec(s.N, 7),
         g = randVec(s.B * s.N, 8);
    std::vector<float> out(s.B * s.N), dX(x.size()), dW(w.size()), dB(s.N);
    const GroupFCParams fp{x.data(), w.data(), bias.data(), out.data(), s.B, s.K, s.D, s.g, s.N};
    const GroupFCBackwardParams bp{x.data(), w.data(), g.data(), dX.data(), dW.data(), dB.data(), s.B, s.K, s.D, s.g, s.N};
    const double flops = 2.0 * s.B * s.K * s.D * s.g;
    const double fBytes = 4.0 * (w.size() + x.size() + out.size()), bBytes = 4.0 * (2 * w.size() + 2 * x.size() + g.size());
    for (int t = 0; t < 2; ++t) {
      ThreadPool& P = *g_pools[t];
      const Tm f = timeIt([&] { cpu::mld::groupFCWith(ki, fp, P); });
      const Tm bw = timeIt([&] { cpu::mld::groupFCBackwardWith(ki, bp, P); });
      std::printf("  groupFC %-10s %2d lanes %dt: fwd %7.3f ms (min %7.3f, %5.1f GFLOP/s, %5.1f GB/s)  bwd %7.3f ms (min "
                  "%7.3f, %5.1f GFLOP/s, %5.1f GB/s)\n", s.name, ki.lanes, kPoolSizes[t], f.med, f.min,
                  flops / f.min * 1e-6, fBytes / f.min * 1e-6, bw.med, bw.min, 2 * flops / bw.min * 1e-6,
                  bBytes / bw.min * 1e-6);
    }
  }
}

int main(int argc, char** argv) {
  bool bench = true, tests = true;
  int64_t size = 1024;
  int reps = 5;
  bool outlookBench = false, haloBench = false, mldBench = false, kmeansBench = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--no-bench")) bench = false;
    else if (!std::strcmp(argv[i], "--bench-only")) tests = false;
    else if (!std::strcmp(argv[i], "--size") && i + 1 < argc) size = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--outlook-bench")) { outlookBench = true; tests = false; }
    else if (!std::strcmp(argv[i], "--halo-bench")) { haloBench = true; tests = false; }
    else if (!std::strcmp(argv[i], "--mld-bench")) { mldBench = true; tests = false; }
    else if (!std::strcmp(argv[i], "--kmeans-bench")) { kmeansBench = true; tests = false; }
    else if (!std::strcmp(argv[i], "--verbose")) g_verbose = true;
  }
  for (int t = 0; t < 3; ++t) g_pools[t] = new ThreadPool(kPoolSizes[t]);
  // The CPU's best ISA (environment ignored), then the paths to test: every path the CPU supports,
  // or only the one VISATTN_ISA selects when it is set (CI runs the suite once per ISA).
  const char* origIsa = std::getenv("VISATTN_ISA");
  std::string orig = origIsa ? origIsa : "";
  unsetenv("VISATTN_ISA");
  cpu::detail::refreshIsa();
  std::string best = cpu::isaName();
  if (!orig.empty()) setenv("VISATTN_ISA", orig.c_str(), 1);
  cpu::detail::refreshIsa();
  std::string selected = cpu::isaName();
  std::printf("cpu isa: best %s, selected %s (VISATTN_ISA=%s); defaultThreadCount %d\n", best.c_str(),
              selected.c_str(), orig.c_str(), defaultThreadCount());

  std::vector<std::string> isas;
  if (best == "avx512") isas = {"avx512", "avx2", "scalar"};
  else if (best == "avx2") isas = {"avx2", "scalar"};
  else isas = {"scalar"};
  if (!orig.empty()) isas = {selected};

  if (tests) {
    g_ctx = "threadpool";
    testThreadPool();
    for (auto& isa : isas) {
      setenv("VISATTN_ISA", isa.c_str(), 1);
      cpu::detail::refreshIsa();
      g_ctx = std::string("isa=") + cpu::isaName();
      check(isa == cpu::isaName(), "VISATTN_ISA selects the path");
      int before = g_fail;
      testGemm(nullptr);
      testElementwise();
      testCopy();
      testRows();
      testPool();
      testRandom();
      testOutlook();
      testHalo(isa.c_str());
      testHaloEmpty();
      testMld(isa.c_str());
      testKmeans(isa.c_str());
      std::printf("isa %-6s: %s\n", isa.c_str(), g_fail == before ? "all kernels ok" : "FAILURES");
    }
#ifdef VA_TEST_HAVE_AVX512_EMULATED
    if (best != "avx512") {
      g_ctx = "avx512-emulated-microkernel";
      int before = g_fail;
      testGemm(&cpu::gemm::kernelAvx512Emulated());
      cpu::math::setKernelsForTesting(&cpu::math::mathAvx512Emulated());
      testElementwise();
      testRows();
      testOutlook(&kOlTable);
      testHalo("avx512-emulated", &kHlTable);
      testHaloEmpty(&kHlTable);
      testMld("avx512-emulated", &kMdTable);
      testKmeans("avx512-emulated", &kKmTable);
      cpu::math::setKernelsForTesting(nullptr);
      std::printf("avx512 GEMM micro-kernel + 16-lane math + 16-lane outlook + 16-lane halo + 16-lane ML-Decoder (emulated, logic only): %s\n",
                  g_fail == before ? "ok" : "FAILURES");
    }
#endif
    // Never raised above the CPU: asking for avx512 on a lesser CPU keeps the best supported.
    setenv("VISATTN_ISA", "avx512", 1);
    cpu::detail::refreshIsa();
    g_ctx = "isa-env";
    check(best == cpu::isaName(), "VISATTN_ISA=avx512 never raises");
    if (orig.empty()) unsetenv("VISATTN_ISA"); else setenv("VISATTN_ISA", orig.c_str(), 1);
    cpu::detail::refreshIsa();
  }
  if (outlookBench) {
    std::printf("outlook VOLO-D1 stage 1 (B=8, 28x28x192, 6 heads, k=3, s=2), median of %d:\n", reps);
    for (auto& isa : isas) {
      setenv("VISATTN_ISA", isa.c_str(), 1);
      cpu::detail::refreshIsa();  // math::kernels() follows the ISA
      benchOutlook(isa == "avx512" ? cpu::outlook::kernelsAvx512()
                   : isa == "avx2" ? cpu::outlook::kernelsAvx2() : cpu::outlook::kernelsScalar(), reps);
    }
    if (orig.empty()) unsetenv("VISATTN_ISA"); else setenv("VISATTN_ISA", orig.c_str(), 1);
    cpu::detail::refreshIsa();
    bench = false;
  }
  if (haloBench) {
    std::printf("halo halonet50ts stage 3 (B=8, 16x16, 8 heads, dk=dv=32, b=8, h=3), median of %d:\n", reps);
    for (auto& isa : isas)
      benchHalo(isa == "avx512" ? cpu::halo::kernelsAvx512()
                : isa == "avx2" ? cpu::halo::kernelsAvx2() : cpu::halo::kernelsScalar(), reps);
    bench = false;
  }
  if (mldBench) {
    std::printf("ML-Decoder: cross-attention COCO shape (B=8, Lq=80 shared, Lk=196, 8 heads, d=dv=96), group FC; "
                "median of %d:\n", reps);
    for (auto& isa : isas)
      benchMld(isa == "avx512" ? cpu::mld::kernelsAvx512()
               : isa == "avx2" ? cpu::mld::kernelsAvx2() : cpu::mld::kernelsScalar(), reps);
    bench = false;
  }
  if (kmeansBench) {
    std::printf("k-means cross-attention, kMaX COCO stride 8 (B=1, N=25921, L=128, D=128, Dv=256), median of %d:\n", reps);
    for (auto& isa : isas)
      if (isa != "scalar") benchKmeans(isa == "avx512" ? cpu::kmeans::kernelsAvx512() : cpu::kmeans::kernelsAvx2(), reps);
    bench = false;
  }
  if (bench) {
    std::printf("GEMM %lld^3 fp32, best of %d:\n", (long long)size, reps);
    for (auto& isa : isas) {
      const cpu::gemm::KernelInfo& ki = isa == "avx512" ? cpu::gemm::kernelAvx512()
                                        : isa == "avx2" ? cpu::gemm::kernelAvx2() : cpu::gemm::kernelScalar();
      benchGemm(ki, size, isa == "scalar" ? std::max(1, reps / 2) : reps);
    }
  }
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  for (int t = 0; t < 3; ++t) delete g_pools[t];
  return g_fail == 0 ? 0 : 1;
}
