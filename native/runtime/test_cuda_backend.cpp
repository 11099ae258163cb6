// visattn — standalone test of the cuda backend compiled against the emulator (the `emu` device).
// Build (from the repository root), e.g.:
//   for f in cuda/core/*.cu cuda/backend/*.cu; do
//     g++ -std=c++17 -O2 -DVA_EMU=1 -x c++ -I native/include -I native -I cuda
//         -c $f -o /tmp/b/$(basename $f).o; done
//   g++ -std=c++17 -O2 -DVA_EMU=1 -I native/include -I native -I cuda
//       native/runtime/test_cuda_backend.cpp native/emu/*.cpp native/emu/*.S /tmp/b/*.o -lpthread
// (-fsanitize=address,undefined works too.) On a GPU: compile the .cu files with nvcc, and this
// file with -DVA_TEST_NS=va_cuda (poison and fault-injection checks are then skipped).
// Every op is checked against a naive double-precision reference on edge shapes; then memory
// poisoning, sticky errors, pending() and the asynchronous callbacks. Prints "N passed, M failed".
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/testing.h"
#if defined(VA_EMU)
#include "backend/blas.h"  // the cuBLAS dispatch, exercised with a host stand-in library
#endif
#include "visattn/backend.h"
#include "visattn/devices.h"
#include "visattn/philox.h"

// The backend under test: va_emu by default; -DVA_TEST_NS=va_cuda runs the same checks on a GPU.
#ifndef VA_TEST_NS
#define VA_TEST_NS va_emu
#endif

namespace {

bool gEmu = true;   // poison and fault injection are emulator-only checks
bool gBig = false;  // second pass: larger shapes with a tiny launch cap (grid-stride loops iterate)
int gPassed = 0, gFailed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++gPassed;
  } else {
    ++gFailed;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

std::mt19937 gRng(12345);
std::vector<float> randomVec(size_t n, float lo = -2.0f, float hi = 2.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gRng);
  return v;
}

struct Dev {
  va::Backend* b;

  float* alloc(size_t n) {
    void* p = nullptr;
    va::Status st = b->alloc(n * 4, &p);
    if (!st.ok()) std::printf("alloc failed: %s\n", st.message().c_str());
    return static_cast<float*>(p);
  }
  float* upload(const std::vector<float>& v) {
    float* p = alloc(v.size());
    va::Status st = b->upload(p, v.data(), v.size() * 4);
    if (!st.ok()) std::printf("upload failed: %s\n", st.message().c_str());
    return p;
  }
  // Downloads and waits; returns the status given to the callback.
  va::Status download(void* dst, const void* src, size_t bytes) {
    std::promise<va::Status> pr;
    auto fut = pr.get_future();
    b->download(dst, src, bytes, [&pr](va::Status s) { pr.set_value(s); });
    return fut.get();
  }
  std::vector<float> read(const float* p, size_t n) {
    std::vector<float> v(n);
    va::Status st = download(v.data(), p, n * 4);
    if (!st.ok()) std::printf("download failed: %s\n", st.message().c_str());
    return v;
  }
  void free(void* p) { b->free(p); }
  // Device buffers a and b hold the same n floats, bit for bit (determinism checks).
  bool sameBits(const float* a, const float* b2, size_t n) {
    const std::vector<float> x = read(a, n), y = read(b2, n);
    return std::memcmp(x.data(), y.data(), n * 4) == 0;
  }
};

// |got − ref| ≤ atol + rtol·max|ref| element-wise.
bool close(const std::vector<float>& got, const std::vector<double>& ref, const std::string& what,
           double rtol = 2e-5, double atol = 1e-6) {
  if (got.size() != ref.size()) {
    std::printf("  %s: size %zu vs %zu\n", what.c_str(), got.size(), ref.size());
    return false;
  }
  double mx = 0;
  for (double r : ref) mx = std::max(mx, std::fabs(r));
  const double tol = atol + rtol * std::max(mx, 1.0);
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::fabs(got[i] - ref[i]) <= tol)) {
      std::printf("  %s: [%zu] got %.9g want %.9g (tol %.3g)\n", what.c_str(), i, got[i], ref[i],
                  tol);
      return false;
    }
  }
  return true;
}

std::string shapeStr(std::initializer_list<int64_t> s) {
  std::string r = "(";
  bool first = true;
  for (int64_t v : s) {
    if (!first) r += ",";
    r += std::to_string(v);
    first = false;
  }
  return r + ")";
}

// ------------------------------------------------------------------------------------ op tests
void testBinary(Dev& d) {
  std::vector<std::vector<int64_t>> shapes = {{1, 1}, {3, 7}, {5, 13}, {1, 31}, {17, 1}};
  if (gBig) shapes = {{7, 1500}};
  for (auto& sh : shapes) {
    const int64_t outer = sh[0], inner = sh[1];
    for (int op = 0; op < 3; ++op)
      for (int bc = 0; bc < 4; ++bc) {
        const bool aB = bc & 1, bB = bc & 2;
        auto a = randomVec(aB ? inner : outer * inner), b = randomVec(bB ? inner : outer * inner);
        float *da = d.upload(a), *db = d.upload(b), *dout = d.alloc(outer * inner);
        va::BinaryParams p{static_cast<va::BinaryOp>(op), da, db, dout, outer, inner, aB, bB};
        va::Status st = d.b->binary(p);
        std::vector<double> ref(outer * inner);
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < inner; ++i) {
            double x = a[aB ? i : o * inner + i], y = b[bB ? i : o * inner + i];
            ref[o * inner + i] = op == 0 ? x + y : op == 1 ? x - y : x * y;
          }
        const std::string name = "binary op" + std::to_string(op) + " bc" + std::to_string(bc) +
                                 shapeStr({outer, inner});
        check(st.ok() && close(d.read(dout, outer * inner), ref, name), name);
        d.free(da);
        d.free(db);
        d.free(dout);
      }
  }
}

void testAffine(Dev& d) {
  for (int64_t n : gBig ? std::vector<int64_t>{9000} : std::vector<int64_t>{1, 7, 1000}) {
    auto x = randomVec(n);
    float *dx = d.upload(x), *dout = d.alloc(n);
    va::Status st = d.b->affine(va::AffineParams{dx, dout, n, -1.5f, 0.25f});
    std::vector<double> ref(n);
    for (int64_t i = 0; i < n; ++i) ref[i] = -1.5 * x[i] + 0.25;
    check(st.ok() && close(d.read(dout, n), ref, "affine"), "affine n=" + std::to_string(n));
    d.free(dx);
    d.free(dout);
  }
}

double unaryRef(int op, double x) {
  if (op == 0) return x > 0 ? x : 0;
  if (op == 1) return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
  return x / (1 + std::exp(-x));
}
double unaryGradRef(int op, double x) {
  if (op == 0) return x > 0 ? 1 : 0;
  if (op == 1)
    return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
  const double s = 1 / (1 + std::exp(-x));
  return s * (1 + x * (1 - s));
}

void testUnary(Dev& d) {
  for (int op = 0; op < 3; ++op)
    for (int64_t n : gBig ? std::vector<int64_t>{5000} : std::vector<int64_t>{1, 5, 777}) {
      auto x = randomVec(n, -6, 6);
      x[0] = 0.0f;  // relu'(0) = 0
      auto g = randomVec(n);
      float *dx = d.upload(x), *dg = d.upload(g), *dout = d.alloc(n), *dgx = d.alloc(n);
      va::Status s1 = d.b->unary(va::UnaryParams{static_cast<va::UnaryOp>(op), dx, dout, n});
      va::Status s2 = d.b->unaryBackward(
          va::UnaryBackwardParams{static_cast<va::UnaryOp>(op), dx, dg, dgx, n});
      std::vector<double> ref(n), refg(n);
      for (int64_t i = 0; i < n; ++i) {
        ref[i] = unaryRef(op, x[i]);
        refg[i] = g[i] * unaryGradRef(op, x[i]);
      }
      const std::string name = "unary op" + std::to_string(op) + " n=" + std::to_string(n);
      check(s1.ok() && close(d.read(dout, n), ref, name), name);
      check(s2.ok() && close(d.read(dgx, n), refg, name + " backward"), name + " backward");
      d.free(dx);
      d.free(dg);
      d.free(dout);
      d.free(dgx);
    }
}

struct MmCase {
  int64_t batch, M, N, K;
  bool bcastA, bcastB, reduceC, bias;
  float alpha, beta;
};

void testMatmul(Dev& d) {
  std::vector<MmCase> cases = {
      {1, 1, 1, 1, false, false, false, false, 1.0f, 0.0f},
      {1, 1, 7, 3, false, false, false, true, 1.0f, 0.0f},
      {2, 5, 3, 1, false, false, false, false, 0.5f, 0.0f},
      {3, 17, 13, 19, false, false, false, true, 1.0f, 0.5f},
      {2, 65, 67, 33, false, false, false, false, 1.0f, 0.0f},
      {1, 130, 70, 20, false, false, false, true, 1.25f, -1.0f},
      {3, 7, 11, 5, true, false, false, false, 1.0f, 0.0f},
      {4, 9, 5, 70, false, true, false, true, 1.0f, 0.0f},
      {5, 6, 9, 13, false, false, true, false, 1.0f, 0.0f},
      {4, 66, 3, 17, false, false, true, true, 0.75f, 2.0f},
      {3, 1, 1, 129, true, false, true, false, 1.0f, 0.0f},
      {2, 97, 1, 2, false, false, false, false, 1.0f, 1.0f},
  };
  if (gBig)
    cases = {{70, 3, 3, 3, false, false, false, true, 1.0f, 0.5f},
             {2, 600, 130, 2, false, false, true, false, 1.0f, 0.0f}};
  for (const auto& c : cases)
    for (int t = 0; t < 4; ++t) {
      const bool tA = t & 1, tB = t & 2;
      const int64_t sA = c.bcastA ? 0 : c.M * c.K, sB = c.bcastB ? 0 : c.K * c.N;
      const int64_t sC = c.reduceC ? 0 : c.M * c.N;
      const int64_t nA = c.bcastA ? c.M * c.K : c.batch * c.M * c.K;
      const int64_t nB = c.bcastB ? c.K * c.N : c.batch * c.K * c.N;
      const int64_t nC = c.reduceC ? c.M * c.N : c.batch * c.M * c.N;
      auto a = randomVec(nA), b = randomVec(nB), c0 = randomVec(nC), bias = randomVec(c.N);
      float *da = d.upload(a), *db = d.upload(b), *dbias = c.bias ? d.upload(bias) : nullptr;
      // beta == 0: leave C poisoned (NaN) to prove it is never read.
      float* dc = c.beta != 0.0f ? d.upload(c0) : d.alloc(nC);
      va::MatmulParams p{da, db, dc, dbias, c.batch, c.M, c.N, c.K, sA, sB, sC, tA, tB,
                         c.alpha, c.beta};
      va::Status st = d.b->matmul(p);
      std::vector<double> ref(nC, 0.0);
      const int64_t outBatches = c.reduceC ? 1 : c.batch;
      std::vector<double> acc(nC, 0.0);
      for (int64_t q = 0; q < c.batch; ++q) {
        const float* A = a.data() + q * sA;
        const float* B = b.data() + q * sB;
        double* C = acc.data() + (c.reduceC ? 0 : q * c.M * c.N);
        for (int64_t m = 0; m < c.M; ++m)
          for (int64_t n = 0; n < c.N; ++n) {
            double s = 0;
            for (int64_t k = 0; k < c.K; ++k) {
              const double av = tA ? A[k * c.M + m] : A[m * c.K + k];
              const double bv = tB ? B[n * c.K + k] : B[k * c.N + n];
              s += av * bv;
            }
            C[m * c.N + n] += s;
          }
      }
      for (int64_t q = 0; q < outBatches; ++q)
        for (int64_t m = 0; m < c.M; ++m)
          for (int64_t n = 0; n < c.N; ++n) {
            const int64_t i = q * c.M * c.N + m * c.N + n;
            double v = c.alpha * acc[i];
            if (c.bias) v += bias[n];
            if (c.beta != 0.0f) v += static_cast<double>(c.beta) * c0[i];
            ref[i] = v;
          }
      const std::string name = "matmul b" + std::to_string(c.batch) +
                               shapeStr({c.M, c.N, c.K}) + (tA ? " tA" : "") + (tB ? " tB" : "") +
                               (c.bcastA ? " bcastA" : "") + (c.bcastB ? " bcastB" : "") +
                               (c.reduceC ? " reduceC" : "") + (c.bias ? " bias" : "") +
                               " beta=" + std::to_string(c.beta);
      check(st.ok() && close(d.read(dc, nC), ref, name, 1e-5 * std::sqrt(double(c.K * c.batch)) + 2e-5),
            name);
      d.free(da);
      d.free(db);
      d.free(dc);
      if (dbias) d.free(dbias);
    }
}

void testSoftmax(Dev& d) {
  std::vector<std::vector<int64_t>> shapes = {{1, 1}, {3, 5}, {2, 300}, {4, 33}, {70, 2}};
  if (gBig) shapes = {{100, 40}};
  for (auto& sh : shapes)
    for (int lg = 0; lg < 2; ++lg) {
      const int64_t R = sh[0], C = sh[1];
      auto x = randomVec(R * C, -5, 5), g = randomVec(R * C);
      float *dx = d.upload(x), *dg = d.upload(g), *dy = d.alloc(R * C), *dd = d.alloc(R * C);
      va::Status s1 = d.b->softmax(va::SoftmaxParams{dx, dy, R, C, lg == 1});
      va::Status s2 = d.b->softmaxBackward(va::SoftmaxBackwardParams{dx, dg, dd, R, C, lg == 1});
      std::vector<double> ref(R * C), refd(R * C);
      for (int64_t r = 0; r < R; ++r) {
        double m = -INFINITY;
        for (int64_t c = 0; c < C; ++c) m = std::max(m, double(x[r * C + c]));
        double s = 0;
        for (int64_t c = 0; c < C; ++c) s += std::exp(x[r * C + c] - m);
        double dot = 0, sg = 0;
        for (int64_t c = 0; c < C; ++c) {
          const double p = std::exp(x[r * C + c] - m) / s;
          ref[r * C + c] = lg ? (x[r * C + c] - m) - std::log(s) : p;
          dot += g[r * C + c] * p;
          sg += g[r * C + c];
        }
        for (int64_t c = 0; c < C; ++c) {
          const double p = std::exp(x[r * C + c] - m) / s;
          refd[r * C + c] = lg ? g[r * C + c] - p * sg : p * (g[r * C + c] - dot);
        }
      }
      const std::string name = std::string(lg ? "logsoftmax" : "softmax") + shapeStr({R, C});
      check(s1.ok() && close(d.read(dy, R * C), ref, name), name);
      check(s2.ok() && close(d.read(dd, R * C), refd, name + " backward"), name + " backward");
      d.free(dx);
      d.free(dg);
      d.free(dy);
      d.free(dd);
    }
}

void testLayerNorm(Dev& d) {
  std::vector<std::vector<int64_t>> shapes = {{1, 1}, {3, 7}, {2, 300}, {200, 5}, {65, 40}};
  if (gBig) shapes = {{100, 9}, {3000, 3}};
  for (auto& sh : shapes) {
    const int64_t R = sh[0], C = sh[1];
    const float eps = 1e-5f;
    auto x = randomVec(R * C, -3, 3), gamma = randomVec(C), beta = randomVec(C),
         g = randomVec(R * C);
    float *dx = d.upload(x), *dgm = d.upload(gamma), *dbt = d.upload(beta), *dg = d.upload(g);
    float *dy = d.alloc(R * C), *ddx = d.alloc(R * C), *ddg = d.alloc(C), *ddb = d.alloc(C);
    va::Status s1 = d.b->layerNorm(va::LayerNormParams{dx, dgm, dbt, dy, R, C, eps});
    va::Status s2 = d.b->layerNormBackward(
        va::LayerNormBackwardParams{dx, dgm, dg, ddx, ddg, ddb, R, C, eps});
    std::vector<double> ref(R * C), refdx(R * C), refdg(C, 0.0), refdb(C, 0.0);
    for (int64_t r = 0; r < R; ++r) {
      double mean = 0, var = 0;
      for (int64_t c = 0; c < C; ++c) mean += x[r * C + c];
      mean /= C;
      for (int64_t c = 0; c < C; ++c) var += (x[r * C + c] - mean) * (x[r * C + c] - mean);
      var /= C;
      const double rstd = 1 / std::sqrt(var + eps);
      double mg = 0, mgx = 0;
      for (int64_t c = 0; c < C; ++c) {
        const double xh = (x[r * C + c] - mean) * rstd;
        ref[r * C + c] = xh * gamma[c] + beta[c];
        const double gg = double(g[r * C + c]) * gamma[c];
        mg += gg;
        mgx += gg * xh;
        refdg[c] += g[r * C + c] * xh;
        refdb[c] += g[r * C + c];
      }
      mg /= C;
      mgx /= C;
      for (int64_t c = 0; c < C; ++c) {
        const double xh = (x[r * C + c] - mean) * rstd;
        refdx[r * C + c] = rstd * (double(g[r * C + c]) * gamma[c] - mg - xh * mgx);
      }
    }
    const std::string name = "layerNorm" + shapeStr({R, C});
    check(s1.ok() && close(d.read(dy, R * C), ref, name, 1e-4), name);
    check(s2.ok() && close(d.read(ddx, R * C), refdx, name + " dx", 2e-4, 1e-5), name + " dx");
    check(s2.ok() && close(d.read(ddg, C), refdg, name + " dgamma", 1e-4, 1e-5), name + " dgamma");
    check(s2.ok() && close(d.read(ddb, C), refdb, name + " dbeta", 1e-4, 1e-5), name + " dbeta");
    // Determinism: a second run gives bit-identical parameter gradients.
    auto dg1 = d.read(ddg, C);
    float *ddg2 = d.alloc(C), *ddb2 = d.alloc(C);
    d.b->layerNormBackward(va::LayerNormBackwardParams{dx, dgm, dg, ddx, ddg2, ddb2, R, C, eps});
    auto dg2 = d.read(ddg2, C);
    check(std::memcmp(dg1.data(), dg2.data(), C * 4) == 0, name + " deterministic dgamma");
    for (float* p : {dx, dgm, dbt, dg, dy, ddx, ddg, ddb, ddg2, ddb2}) d.free(p);
  }
}

void testReduce(Dev& d) {
  std::vector<std::vector<int64_t>> shapes = {{1, 1, 1}, {2, 3, 5},     {3, 1, 4},
                                              {1, 100, 1}, {7, 13, 33},  {1, 5000, 1},
                                              {3, 1000, 7}, {2, 129, 3}, {1, 40000, 2}};
  if (gBig) shapes = {{50, 3, 100}};
  for (auto& sh : shapes) {
    const int64_t O = sh[0], L = sh[1], I = sh[2];
    auto x = randomVec(O * L * I);
    float *dx = d.upload(x), *dy = d.alloc(O * I);
    va::Status st = d.b->reduce(va::ReduceParams{dx, dy, O, L, I, 0.5f});
    std::vector<double> ref(O * I, 0.0);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t l = 0; l < L; ++l)
        for (int64_t i = 0; i < I; ++i) ref[o * I + i] += 0.5 * x[(o * L + l) * I + i];
    const std::string name = "reduce" + shapeStr({O, L, I});
    check(st.ok() && close(d.read(dy, O * I), ref, name, 2e-5 + 1e-6 * std::sqrt(double(L))), name);
    // Deterministic: a second run is bit-identical.
    auto y1 = d.read(dy, O * I);
    float* dy2 = d.alloc(O * I);
    d.b->reduce(va::ReduceParams{dx, dy2, O, L, I, 0.5f});
    auto y2 = d.read(dy2, O * I);
    check(std::memcmp(y1.data(), y2.data(), O * I * 4) == 0, name + " deterministic");
    d.free(dx);
    d.free(dy);
    d.free(dy2);
  }
}

void testCopyFill(Dev& d) {
  // 3-D permute (0,2,1) with an offset into a bigger destination, scale 1 → bit-exact.
  {
    const int64_t A = 2, B = 3, C = 5;
    std::vector<uint32_t> src(A * B * C);
    for (size_t i = 0; i < src.size(); ++i) src[i] = 0x7fc00001u + static_cast<uint32_t>(i) * 977u;
    std::vector<float> srcf(src.size());
    std::memcpy(srcf.data(), src.data(), src.size() * 4);
    float* ds = d.upload(srcf);
    const int64_t dstN = 7 + A * C * B;
    float* dd = d.alloc(dstN);
    va::CopyParams p{};
    p.src = ds;
    p.dst = dd;
    p.ndim = 3;
    p.shape[0] = A; p.shape[1] = C; p.shape[2] = B;            // output order (a, c, b)
    p.srcStride[0] = B * C; p.srcStride[1] = 1; p.srcStride[2] = C;
    p.dstStride[0] = C * B; p.dstStride[1] = B; p.dstStride[2] = 1;
    p.srcOffset = 0;
    p.dstOffset = 7;
    p.scale = 1.0f;
    va::Status st = d.b->copy(p);
    auto out = d.read(dd, dstN);
    bool ok = st.ok();
    for (int64_t a = 0; a < A; ++a)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t b = 0; b < B; ++b) {
          uint32_t got;
          std::memcpy(&got, &out[7 + (a * C + c) * B + b], 4);
          ok = ok && got == src[(a * B + b) * C + c];
        }
    uint32_t head;
    std::memcpy(&head, &out[0], 4);
    if (gEmu) ok = ok && head == 0xFFFFFFFFu;  // untouched prefix keeps the poison
    check(ok, "copy permute bit-exact with dstOffset");
    d.free(ds);
    d.free(dd);
  }
  // Broadcast (src stride 0) with scale, plus a size-1 dim and a srcOffset.
  {
    auto x = randomVec(10);
    float* ds = d.upload(x);
    float* dd = d.alloc(4 * 1 * 3);
    va::CopyParams p{};
    p.src = ds;
    p.dst = dd;
    p.ndim = 3;
    p.shape[0] = 4; p.shape[1] = 1; p.shape[2] = 3;
    p.srcStride[0] = 0; p.srcStride[1] = 5; p.srcStride[2] = 2;
    p.dstStride[0] = 3; p.dstStride[1] = 3; p.dstStride[2] = 1;
    p.srcOffset = 1;
    p.dstOffset = 0;
    p.scale = 0.25f;
    va::Status st = d.b->copy(p);
    std::vector<double> ref(12);
    for (int i = 0; i < 4; ++i)
      for (int k = 0; k < 3; ++k) ref[i * 3 + k] = 0.25 * x[1 + 2 * k];
    check(st.ok() && close(d.read(dd, 12), ref, "copy broadcast scale"), "copy broadcast scale");
    d.free(ds);
    d.free(dd);
  }
  // 8-D copy: reverse a [2,1,2,3,1,2,2,3] tensor's axes.
  {
    const int64_t shp[8] = {2, 1, 2, 3, 1, 2, 2, 3};
    int64_t n = 1;
    for (int64_t s : shp) n *= s;
    auto x = randomVec(n);
    float* ds = d.upload(x);
    float* dd = d.alloc(n);
    int64_t srcStr[8];
    srcStr[7] = 1;
    for (int i = 6; i >= 0; --i) srcStr[i] = srcStr[i + 1] * shp[i + 1];
    va::CopyParams p{};
    p.src = ds;
    p.dst = dd;
    p.ndim = 8;
    // output shape = reversed; output dim j reads input dim 7-j
    int64_t outShape[8], dstStr[8];
    for (int j = 0; j < 8; ++j) outShape[j] = shp[7 - j];
    dstStr[7] = 1;
    for (int j = 6; j >= 0; --j) dstStr[j] = dstStr[j + 1] * outShape[j + 1];
    for (int j = 0; j < 8; ++j) {
      p.shape[j] = outShape[j];
      p.srcStride[j] = srcStr[7 - j];
      p.dstStride[j] = dstStr[j];
    }
    p.scale = 1.0f;
    va::Status st = d.b->copy(p);
    std::vector<double> ref(n);
    for (int64_t i = 0; i < n; ++i) {
      int64_t rem = i, so = 0, doff = 0;
      for (int j = 7; j >= 0; --j) {
        int64_t t = rem % outShape[j];
        rem /= outShape[j];
        so += t * srcStr[7 - j];
        doff += t * dstStr[j];
      }
      ref[doff] = x[so];
    }
    check(st.ok() && close(d.read(dd, n), ref, "copy 8-D reverse", 0, 0), "copy 8-D reverse");
    d.free(ds);
    d.free(dd);
  }
  // fill
  for (int64_t n : {1, 3, 1025}) {
    float* dd = d.alloc(n);
    va::Status st = d.b->fill(va::FillParams{dd, n, 0x12345678u});
    auto out = d.read(dd, n);
    bool ok = st.ok();
    for (float f : out) {
      uint32_t u;
      std::memcpy(&u, &f, 4);
      ok = ok && u == 0x12345678u;
    }
    check(ok, "fill n=" + std::to_string(n));
    d.free(dd);
  }
}

int64_t poolOut(int64_t H, int k, int s, bool ceil) {
  int64_t o = ceil ? (H - k + s - 1) / s + 1 : (H - k) / s + 1;
  if (ceil && (o - 1) * s >= H) --o;
  return o;
}

void testPool(Dev& d) {
  struct PC {
    int64_t B, H, W, C;
    int k, s;
    bool ceil;
  };
  std::vector<PC> cases = {{2, 5, 7, 3, 2, 2, false}, {2, 5, 7, 3, 2, 2, true},
                           {1, 6, 5, 2, 3, 1, false}, {1, 7, 7, 1, 3, 2, true},
                           {3, 4, 4, 5, 4, 4, false}, {1, 1, 1, 1, 1, 1, false},
                           {1, 8, 6, 2, 3, 3, true}};
  if (gBig) cases = {{2, 40, 40, 4, 2, 2, false}, {1, 33, 31, 3, 3, 2, true}};
  for (const auto& c : cases) {
    const int64_t Ho = poolOut(c.H, c.k, c.s, c.ceil), Wo = poolOut(c.W, c.k, c.s, c.ceil);
    const int64_t nx = c.B * c.H * c.W * c.C, ny = c.B * Ho * Wo * c.C;
    auto x = randomVec(nx), g = randomVec(ny);
    float *dx = d.upload(x), *dg = d.upload(g), *dy = d.alloc(ny), *ddx = d.alloc(nx);
    va::Status s1 = d.b->avgPool2d(va::AvgPool2dParams{dx, dy, c.B, c.H, c.W, c.C, Ho, Wo, c.k, c.s});
    va::Status s2 = d.b->avgPool2dBackward(
        va::AvgPool2dBackwardParams{dg, ddx, c.B, c.H, c.W, c.C, Ho, Wo, c.k, c.s});
    std::vector<double> ref(ny, 0.0), refd(nx, 0.0);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j)
          for (int64_t ch = 0; ch < c.C; ++ch) {
            double s = 0;
            int cnt = 0;
            for (int64_t h = i * c.s; h < std::min<int64_t>(i * c.s + c.k, c.H); ++h)
              for (int64_t w = j * c.s; w < std::min<int64_t>(j * c.s + c.k, c.W); ++w) {
                s += x[((b * c.H + h) * c.W + w) * c.C + ch];
                ++cnt;
              }
            const int64_t yi = ((b * Ho + i) * Wo + j) * c.C + ch;
            ref[yi] = s / cnt;
            for (int64_t h = i * c.s; h < std::min<int64_t>(i * c.s + c.k, c.H); ++h)
              for (int64_t w = j * c.s; w < std::min<int64_t>(j * c.s + c.k, c.W); ++w)
                refd[((b * c.H + h) * c.W + w) * c.C + ch] += g[yi] / cnt;
          }
    const std::string name = "avgPool2d" + shapeStr({c.B, c.H, c.W, c.C, c.k, c.s}) +
                             (c.ceil ? " ceil" : " floor");
    check(s1.ok() && close(d.read(dy, ny), ref, name), name);
    check(s2.ok() && close(d.read(ddx, nx), refd, name + " backward"), name + " backward");
    for (float* p : {dx, dg, dy, ddx}) d.free(p);
  }
}

// VOLO outlook attention (forward, dV, dLogits) against a double-precision reference.
void testOutlook(Dev& d) {
  struct OC {
    int64_t B, H, W, C;
    int heads, k, pad, s;
    float scale;
  };
  std::vector<OC> cases = {
      {2, 5, 7, 8, 2, 3, 1, 2, 0.5f},    {1, 4, 4, 8, 1, 3, 1, 2, 0.7f},
      {2, 5, 6, 8, 2, 3, 1, 1, 0.5f},    {1, 6, 5, 8, 2, 5, 2, 1, 0.4f},
      {1, 7, 6, 8, 1, 5, 2, 2, 0.6f},    {2, 1, 7, 8, 2, 3, 1, 2, 0.5f},
      {1, 6, 1, 8, 1, 3, 1, 1, 0.5f},    {1, 1, 1, 8, 2, 3, 1, 2, 0.5f},
      {1, 5, 5, 8, 2, 3, 0, 2, 0.5f},    {1, 6, 6, 8, 2, 4, 1, 2, 0.5f},
      {1, 3, 4, 8, 8, 1, 0, 1, 0.5f},    {1, 7, 5, 8, 2, 2, 1, 3, 0.5f},
      {1, 5, 4, 36, 3, 3, 1, 2, 0.3f},   {1, 4, 5, 64, 2, 3, 1, 2, 100.0f},
      {1, 6, 7, 40, 1, 5, 2, 2, 0.3f},   {1, 4, 3, 8, 2, 5, 4, 1, 0.5f},
      {1, 5, 6, 6, 2, 3, 1, 2, 0.5f},    {2, 4, 5, 10, 1, 3, 1, 1, 0.5f},
      {1, 3, 4, 576, 2, 3, 1, 2, 0.1f},  {1, 5, 5, 16, 16, 5, 2, 2, 0.5f},
      {1, 2, 9, 8, 1, 5, 2, 2, 0.5f},    {1, 9, 2, 12, 3, 5, 2, 1, 0.5f},
      {2, 5, 6, 8, 2, 3, 2, 2, 0.5f},    {1, 4, 5, 8, 1, 3, 2, 1, 0.5f},
      {1, 6, 7, 8, 2, 5, 4, 2, 0.5f}};
  if (gBig) cases = {{2, 13, 11, 64, 2, 3, 1, 2, 0.2f}, {1, 9, 10, 96, 3, 3, 1, 1, 0.2f},
                     {1, 8, 9, 32, 1, 5, 2, 2, 0.2f},   {2, 12, 9, 192, 6, 3, 1, 2, 0.2f}};
  for (const auto& c : cases) {
    const int64_t h = (c.H + 2 * c.pad - c.k) / c.s + 1, w = (c.W + 2 * c.pad - c.k) / c.s + 1;
    const int64_t K2 = static_cast<int64_t>(c.k) * c.k, dd = c.C / c.heads;
    const int64_t nv = c.B * c.H * c.W * c.C, nl = c.B * h * w * c.heads * K2 * K2;
    auto v = randomVec(nv), lg = randomVec(nl), g = randomVec(nv);
    float *dv = d.upload(v), *dl = d.upload(lg), *dg = d.upload(g), *dout = d.alloc(nv),
          *ddv = d.alloc(nv), *ddl = d.alloc(nl);
    va::Status s1 = d.b->outlookAttention(
        va::OutlookParams{dv, dl, dout, c.B, c.H, c.W, c.C, h, w, c.heads, c.k, c.pad, c.s, c.scale});
    va::Status s2 = d.b->outlookAttentionBackward(va::OutlookBackwardParams{
        dv, dl, dg, ddv, ddl, c.B, c.H, c.W, c.C, h, w, c.heads, c.k, c.pad, c.s, c.scale});
    std::vector<double> ref(nv, 0.0), refdv(nv, 0.0), refdl(nl, 0.0);
    std::vector<double> A(K2 * K2), dA(K2 * K2);
    auto pix = [&](int64_t b, int64_t y, int64_t x) -> int64_t {
      if (y < 0 || y >= c.H || x < 0 || x >= c.W) return -1;
      return ((b * c.H + y) * c.W + x) * c.C;
    };
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < w; ++j)
          for (int m = 0; m < c.heads; ++m) {
            const int64_t base = (((b * h + i) * w + j) * c.heads + m) * K2 * K2;
            const int64_t y0 = i * c.s - c.pad, x0 = j * c.s - c.pad;
            for (int64_t q = 0; q < K2; ++q) {
              double mx = -1e300, sum = 0;
              for (int64_t r = 0; r < K2; ++r)
                mx = std::max(mx, double(c.scale) * lg[base + q * K2 + r]);
              for (int64_t r = 0; r < K2; ++r)
                sum += A[q * K2 + r] = std::exp(double(c.scale) * lg[base + q * K2 + r] - mx);
              for (int64_t r = 0; r < K2; ++r) A[q * K2 + r] /= sum;
            }
            for (int64_t q = 0; q < K2; ++q) {
              const int64_t po = pix(b, y0 + q / c.k, x0 + q % c.k);
              for (int64_t r = 0; r < K2; ++r) {
                const int64_t pi = pix(b, y0 + r / c.k, x0 + r % c.k);
                double da = 0;
                for (int64_t e = 0; e < dd; ++e) {
                  const int64_t ch = m * dd + e;
                  if (po >= 0 && pi >= 0) {
                    ref[po + ch] += A[q * K2 + r] * v[pi + ch];
                    da += double(g[po + ch]) * v[pi + ch];
                    refdv[pi + ch] += A[q * K2 + r] * g[po + ch];
                  }
                }
                dA[q * K2 + r] = da;
              }
              double rs = 0;
              for (int64_t r = 0; r < K2; ++r) rs += A[q * K2 + r] * dA[q * K2 + r];
              for (int64_t r = 0; r < K2; ++r)
                refdl[base + q * K2 + r] = c.scale * A[q * K2 + r] * (dA[q * K2 + r] - rs);
            }
          }
    const std::string name = "outlook" + shapeStr({c.B, c.H, c.W, c.C, c.heads, c.k, c.pad, c.s});
    check(s1.ok() && close(d.read(dout, nv), ref, name, 1e-5, 1e-5), name);
    check(s2.ok() && close(d.read(ddv, nv), refdv, name + " dV", 1e-5, 1e-5), name + " dV");
    check(s2.ok() && close(d.read(ddl, nl), refdl, name + " dLogits", 1e-5, 1e-5),
          name + " dLogits");
    for (float* p : {dv, dl, dg, dout, ddv, ddl}) d.free(p);
  }
}

// HaloNet halo attention (forward out + lse, all five gradients) against a double-precision
// reference written after the spec (§3.2/§3.4) and test/oracle/halo.ts; plus run-to-run bitwise
// determinism of both directions. Prints the largest normalised error of each output.
struct HaloCase {
  int64_t B, H, W;
  int heads, dk, dv, b, h, s;
  bool spe;
  const char* what;
};
struct HaloRef {
  std::vector<double> out, lse, dq, dk, dv, drh, drw;
};

HaloRef haloReference(const HaloCase& c, const std::vector<float>& q, const std::vector<float>& k,
                      const std::vector<float>& v, const std::vector<float>& rh,
                      const std::vector<float>& rw, const std::vector<float>& g) {
  const int64_t bq = c.b / c.s, Hq = c.H / c.s, Wq = c.W / c.s, win = c.b + 2 * c.h;
  const int64_t nbH = c.H / c.b, nbW = c.W / c.b, W2 = win * win, M = c.heads;
  const double scale = 1.0 / std::sqrt(double(c.dk));
  HaloRef r;
  r.out.assign(c.B * Hq * Wq * M * c.dv, 0.0);
  r.lse.assign(c.B * Hq * Wq * M, 0.0);
  r.dq.assign(q.size(), 0.0);
  r.dk.assign(k.size(), 0.0);
  r.dv.assign(v.size(), 0.0);
  r.drh.assign(rh.size(), 0.0);
  r.drw.assign(rw.size(), 0.0);
  std::vector<double> S(W2), A(W2), dA(W2);
  std::vector<int64_t> kv(W2), rowH(W2), rowW(W2);
  for (int64_t n = 0; n < c.B; ++n)
    for (int64_t I = 0; I < nbH; ++I)
      for (int64_t J = 0; J < nbW; ++J)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t qy = 0; qy < bq; ++qy)
            for (int64_t qx = 0; qx < bq; ++qx) {
              const int64_t qi = ((n * Hq + I * bq + qy) * Wq + J * bq + qx) * M + m;
              const float* qp = &q[qi * c.dk];
              for (int64_t ky = 0; ky < win; ++ky)
                for (int64_t kx = 0; kx < win; ++kx) {
                  const int64_t j = ky * win + kx, y = I * c.b - c.h + ky, x = J * c.b - c.h + kx;
                  kv[j] = (y >= 0 && y < c.H && x >= 0 && x < c.W) ? ((n * c.H + y) * c.W + x) * M + m : -1;
                  rowH[j] = ky - qy + win - 1;
                  rowW[j] = kx - qx + win - 1;
                  double qk = 0, rr = 0;
                  for (int e = 0; e < c.dk; ++e) {
                    if (kv[j] >= 0) qk += double(qp[e]) * k[kv[j] * c.dk + e];
                    rr += double(qp[e]) * (double(rw[rowW[j] * c.dk + e]) + rh[rowH[j] * c.dk + e]);
                  }
                  S[j] = c.spe ? scale * (qk + rr) : scale * qk + rr;
                }
              double mx = -1e300, sum = 0;
              for (int64_t j = 0; j < W2; ++j) mx = std::max(mx, S[j]);
              for (int64_t j = 0; j < W2; ++j) sum += std::exp(S[j] - mx);
              for (int64_t j = 0; j < W2; ++j) A[j] = std::exp(S[j] - mx) / sum;
              r.lse[qi] = mx + std::log(sum);
              const float* gp = &g[qi * c.dv];
              double rowDot = 0;
              for (int64_t j = 0; j < W2; ++j) {
                dA[j] = 0;
                if (kv[j] >= 0)
                  for (int e = 0; e < c.dv; ++e) {
                    r.out[qi * c.dv + e] += A[j] * v[kv[j] * c.dv + e];
                    dA[j] += double(gp[e]) * v[kv[j] * c.dv + e];
                    r.dv[kv[j] * c.dv + e] += A[j] * gp[e];
                  }
                rowDot += A[j] * dA[j];
              }
              for (int64_t j = 0; j < W2; ++j) {
                const double dS = A[j] * (dA[j] - rowDot);
                const double dQK = scale * dS, dR = c.spe ? scale * dS : dS;
                for (int e = 0; e < c.dk; ++e) {
                  r.dq[qi * c.dk + e] += dR * (double(rw[rowW[j] * c.dk + e]) + rh[rowH[j] * c.dk + e]);
                  r.drw[rowW[j] * c.dk + e] += dR * qp[e];
                  r.drh[rowH[j] * c.dk + e] += dR * qp[e];
                  if (kv[j] >= 0) {
                    r.dq[qi * c.dk + e] += dQK * k[kv[j] * c.dk + e];
                    r.dk[kv[j] * c.dk + e] += dQK * qp[e];
                  }
                }
              }
            }
  return r;
}

// max |got − ref| / max(max|ref|, 1) (NaN → infinity)
double normErr(const std::vector<float>& got, const std::vector<double>& ref) {
  double mx = 0, e = 0;
  for (double r : ref) mx = std::max(mx, std::fabs(r));
  for (size_t i = 0; i < got.size() && i < ref.size(); ++i) {
    const double d = std::fabs(got[i] - ref[i]);
    e = std::max(e, std::isnan(d) ? INFINITY : d);
  }
  return got.size() == ref.size() ? e / std::max(mx, 1.0) : INFINITY;
}

// Checks outputs got[t] against refs[t] by normErr: tolerance tol[t]; records the worst error per output.
void checkOutputs(const std::string& name, int n, const char* const* names, const std::vector<float>* got,
                  const std::vector<double>* const* refs, const double* tol, double* worst) {
  for (int t = 0; t < n; ++t) {
    const double err = normErr(got[t], *refs[t]);
    worst[t] = std::max(worst[t], err);
    check(err <= tol[t], name + " " + names[t] + " (normalised error " + std::to_string(err) + ")");
  }
}

void testHalo(Dev& d) {
  std::vector<HaloCase> cases = {
      {2, 16, 8, 2, 16, 16, 4, 1, 1, false, "several blocks"},
      {1, 8, 8, 2, 8, 8, 8, 2, 1, false, "one all-border block, dk pad"},
      {2, 8, 12, 2, 16, 16, 4, 1, 2, false, "stride 2, non-square"},
      {1, 12, 8, 1, 32, 32, 4, 2, 1, true, "one head, scalePosEmbed"},
      {1, 8, 8, 2, 16, 16, 4, 0, 1, false, "halo 0"},
      {1, 6, 4, 1, 8, 8, 2, 3, 1, false, "halo > block"},
      {1, 4, 6, 1, 16, 64, 2, 5, 1, true, "window wider than the map"},
      {1, 8, 8, 2, 12, 20, 4, 1, 1, true, "dk != dv, both padded"},
      {1, 6, 9, 2, 16, 16, 3, 1, 1, false, "odd block"},
      {1, 3, 2, 1, 5, 3, 1, 0, 1, false, "block 1, halo 0 (win 1)"},
      {1, 4, 4, 3, 33, 17, 2, 1, 2, false, "stride 2, b_q 1, dk 33"},
      {1, 10, 10, 1, 64, 64, 10, 3, 1, false, "query groups + key chunks, opt-in smem"},
      {1, 10, 20, 1, 16, 16, 10, 0, 1, true, "query groups, one chunk"},
      {8, 8, 8, 8, 4, 4, 2, 1, 1, false, "512 tiles: two-level dRel reduction"},
      {1, 8, 8, 1, 72, 8, 4, 1, 1, false, "generic path (dk 72)"},
      {1, 4, 8, 2, 8, 80, 2, 2, 2, true, "generic path (dv 80), stride 2"}};
  if (gBig)
    cases = {{1, 16, 16, 8, 32, 32, 8, 3, 1, false, "target config, batch 1"},
             {1, 16, 8, 2, 24, 40, 8, 2, 2, true, "stride 2, d 24/40"},
             {2, 8, 8, 1, 65, 3, 4, 1, 1, false, "generic path, grid-stride"}};
  const char* names[7] = {"out", "lse", "dQ", "dK", "dV", "dRelH", "dRelW"};
  double worst[7] = {0, 0, 0, 0, 0, 0, 0};
  for (const auto& c : cases) {
    const int64_t Hq = c.H / c.s, Wq = c.W / c.s, win = c.b + 2 * c.h, M = c.heads;
    const int64_t nq = c.B * Hq * Wq * M, nkv = c.B * c.H * c.W * M, nRel = (2 * win - 1);
    auto q = randomVec(nq * c.dk, -1.0f, 1.0f), k = randomVec(nkv * c.dk, -1.0f, 1.0f),
         v = randomVec(nkv * c.dv), rh = randomVec(nRel * c.dk, -0.5f, 0.5f),
         rw = randomVec(nRel * c.dk, -0.5f, 0.5f), g = randomVec(nq * c.dv);
    float *dq = d.upload(q), *dk = d.upload(k), *dv = d.upload(v), *drh = d.upload(rh),
          *drw = d.upload(rw), *dg = d.upload(g);
    float *out = d.alloc(nq * c.dv), *lse = d.alloc(nq), *out2 = d.alloc(nq * c.dv),
          *lse2 = d.alloc(nq);
    const float scale = static_cast<float>(1.0 / std::sqrt(double(c.dk)));
    va::HaloParams fp{dq, dk, dv, drh, drw, out, lse, c.B, c.H, c.W, c.heads, c.dk, c.dv, c.b, c.h,
                      c.s, scale, c.spe};
    va::Status s1 = d.b->haloAttention(fp);
    fp.out = out2;
    fp.lse = lse2;
    va::Status s1b = d.b->haloAttention(fp);
    // two backward runs into separate buffers: bitwise equal
    float* gr[2][5];
    va::Status s2[2];
    for (int run = 0; run < 2; ++run) {
      gr[run][0] = d.alloc(nq * c.dk);
      gr[run][1] = d.alloc(nkv * c.dk);
      gr[run][2] = d.alloc(nkv * c.dv);
      gr[run][3] = d.alloc(nRel * c.dk);
      gr[run][4] = d.alloc(nRel * c.dk);
      s2[run] = d.b->haloAttentionBackward(va::HaloBackwardParams{
          dq, dk, dv, drh, drw, out, lse, dg, gr[run][0], gr[run][1], gr[run][2], gr[run][3],
          gr[run][4], c.B, c.H, c.W, c.heads, c.dk, c.dv, c.b, c.h, c.s, scale, c.spe});
    }
    const HaloRef ref = haloReference(c, q, k, v, rh, rw, g);
    const std::string name = std::string("halo ") + c.what + " " +
                             shapeStr({c.B, c.H, c.W, c.heads, c.dk, c.dv, c.b, c.h, c.s, c.spe});
    check(s1.ok() && s1b.ok(), name + " forward status: " + s1.message() + s1b.message());
    check(s2[0].ok() && s2[1].ok(), name + " backward status: " + s2[0].message() + s2[1].message());
    const std::vector<float> got[7] = {d.read(out, nq * c.dv), d.read(lse, nq),
                                       d.read(gr[0][0], nq * c.dk), d.read(gr[0][1], nkv * c.dk),
                                       d.read(gr[0][2], nkv * c.dv), d.read(gr[0][3], nRel * c.dk),
                                       d.read(gr[0][4], nRel * c.dk)};
    const std::vector<double>* refs[7] = {&ref.out, &ref.lse, &ref.dq, &ref.dk,
                                          &ref.dv,  &ref.drh, &ref.drw};
    const double tols[7] = {1e-5, 1e-5, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4};
    checkOutputs(name, 7, names, got, refs, tols, worst);
    check(d.sameBits(out, out2, nq * c.dv) && d.sameBits(lse, lse2, nq), name + " forward deterministic");
    const size_t sizes[5] = {size_t(nq * c.dk), size_t(nkv * c.dk), size_t(nkv * c.dv),
                             size_t(nRel * c.dk), size_t(nRel * c.dk)};
    bool same = true;
    for (int t = 0; t < 5; ++t) same = same && d.sameBits(gr[0][t], gr[1][t], sizes[t]);
    check(same, name + " backward bitwise deterministic");
    for (float* p : {dq, dk, dv, drh, drw, dg, out, lse, out2, lse2}) d.free(p);
    for (int run = 0; run < 2; ++run)
      for (float* p : gr[run]) d.free(p);
  }
  std::printf("halo%s: max normalised error", gBig ? " (big)" : "");
  for (int t = 0; t < 7; ++t) std::printf(" %s %.2e", names[t], worst[t]);
  std::printf("\n");
}

// ML-Decoder cross-attention (forward out + lse, dQ, dK, dV) against a double-precision reference
// written after params.h / spec §1.2–§1.3, with the dropout mask drawn by va::philox::dropoutKeep on
// the host; run-to-run bitwise determinism of both directions; the kept fraction measured from the
// kernel's own output (q = 0, v = 1: out·(1 − p) = kept fraction of the row).
struct CaCase {
  int64_t B, Bq, Lq, Lk;
  int heads, d, dv;
  float drop;
  const char* what;
};
struct CaRef {
  std::vector<double> out, lse, dq, dk, dv;
};

CaRef caReference(const CaCase& c, float scale, uint64_t seed, const std::vector<float>& q,
                  const std::vector<float>& k, const std::vector<float>& v,
                  const std::vector<float>& g) {
  const int64_t M = c.heads;
  CaRef r;
  r.out.assign(c.B * c.Lq * M * c.dv, 0.0);
  r.lse.assign(c.B * M * c.Lq, 0.0);
  r.dq.assign(q.size(), 0.0);
  r.dk.assign(k.size(), 0.0);
  r.dv.assign(v.size(), 0.0);
  std::vector<double> S(c.Lk), P(c.Lk), F(c.Lk), dP(c.Lk);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < c.Lq; ++i) {
        const int64_t qb = c.Bq == 1 ? 0 : b;
        const float* qp = &q[((qb * c.Lq + i) * M + m) * c.d];
        const float* gp = &g[((b * c.Lq + i) * M + m) * c.dv];
        double mx = -1e300;
        for (int64_t j = 0; j < c.Lk; ++j) {
          double s = 0;
          for (int e = 0; e < c.d; ++e) s += double(qp[e]) * k[((b * c.Lk + j) * M + m) * c.d + e];
          S[j] = double(scale) * s;
          mx = std::max(mx, S[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < c.Lk; ++j) sum += std::exp(S[j] - mx);
        r.lse[(b * M + m) * c.Lq + i] = mx + std::log(sum);
        double D = 0;
        for (int64_t j = 0; j < c.Lk; ++j) {
          P[j] = std::exp(S[j] - mx) / sum;
          const uint64_t idx = static_cast<uint64_t>(((b * M + m) * c.Lq + i) * c.Lk + j);
          const bool keep = c.drop == 0.0f || va::philox::dropoutKeep(idx, seed, 0, c.drop);
          F[j] = keep ? 1.0 / (1.0 - double(c.drop)) : 0.0;
          const float* vp = &v[((b * c.Lk + j) * M + m) * c.dv];
          dP[j] = 0;
          for (int e = 0; e < c.dv; ++e) {
            r.out[((b * c.Lq + i) * M + m) * c.dv + e] += P[j] * F[j] * vp[e];
            dP[j] += double(gp[e]) * vp[e];
          }
          D += P[j] * F[j] * dP[j];
        }
        for (int64_t j = 0; j < c.Lk; ++j) {
          const double dS = P[j] * (dP[j] * F[j] - D);
          const int64_t kr = ((b * c.Lk + j) * M + m);
          for (int e = 0; e < c.d; ++e) {
            r.dq[((qb * c.Lq + i) * M + m) * c.d + e] += double(scale) * dS * k[kr * c.d + e];
            r.dk[kr * c.d + e] += double(scale) * dS * qp[e];
          }
          for (int e = 0; e < c.dv; ++e) r.dv[kr * c.dv + e] += P[j] * F[j] * gp[e];
        }
      }
  return r;
}

void testCrossAttention(Dev& d) {
  std::vector<CaCase> cases = {
      {2, 2, 5, 7, 2, 3, 5, 0.0f, "odd sizes, Bq = B"},
      {3, 1, 5, 7, 2, 5, 3, 0.0f, "odd sizes, Bq = 1"},
      {2, 1, 6, 1, 1, 8, 8, 0.0f, "Lk = 1, one head, Bq = 1"},
      {2, 2, 1, 1, 1, 4, 4, 0.3f, "Lq = Lk = 1, dropout"},
      {2, 1, 37, 45, 2, 96, 96, 0.0f, "d = 96 fast path, two key tiles, Bq = 1"},
      {1, 1, 20, 33, 1, 128, 128, 0.3f, "d = 128 fast path, dropout, B = 1"},
      {2, 2, 9, 40, 3, 16, 24, 0.3f, "dropout, Bq = B"},
      {3, 1, 11, 13, 2, 7, 9, 0.3f, "dropout, Bq = 1"},
      {2, 2, 70, 35, 1, 64, 32, 0.0f, "three query tiles, d != dv"},
      {1, 1, 4, 6, 2, 130, 3, 0.3f, "generic path (d 130), dropout"},
      {2, 1, 3, 5, 1, 5, 140, 0.0f, "generic path (dv 140), Bq = 1"}};
  if (gBig)
    cases = {{2, 1, 100, 49, 2, 96, 96, 0.1f, "OpenImages-like, 64-row tiles"},
             {3, 3, 80, 70, 4, 128, 64, 0.3f, "64-row tiles, dropout, 24 work items (grid-stride)"},
             {4, 1, 130, 11, 4, 33, 150, 0.2f, "generic path, grid-stride"}};
  const char* names[5] = {"out", "lse", "dQ", "dK", "dV"};
  double worst[5] = {0, 0, 0, 0, 0};
  const uint64_t seed = 0x5eed0123456789abull;
  for (const auto& c : cases) {
    const int64_t M = c.heads;
    const int64_t nq = c.Bq * c.Lq * M * c.d, nk = c.B * c.Lk * M * c.d, nv = c.B * c.Lk * M * c.dv;
    const int64_t no = c.B * c.Lq * M * c.dv, nl = c.B * M * c.Lq;
    auto q = randomVec(nq, -1.0f, 1.0f), k = randomVec(nk, -1.0f, 1.0f), v = randomVec(nv),
         g = randomVec(no);
    float *dq = d.upload(q), *dk = d.upload(k), *dv = d.upload(v), *dg = d.upload(g);
    float *out = d.alloc(no), *lse = d.alloc(nl), *out2 = d.alloc(no), *lse2 = d.alloc(nl);
    const float scale = static_cast<float>(1.0 / std::sqrt(double(c.d)));
    va::CrossAttentionParams fp{dq, dk, dv, out, lse, c.B, c.Bq, c.Lq, c.Lk, c.heads, c.d, c.dv,
                                scale, c.drop, seed};
    va::Status s1 = d.b->crossAttention(fp);
    fp.out = out2;
    fp.lse = lse2;
    va::Status s1b = d.b->crossAttention(fp);
    float* gr[2][3];
    va::Status s2[2];
    for (int run = 0; run < 2; ++run) {
      gr[run][0] = d.alloc(nq);
      gr[run][1] = d.alloc(nk);
      gr[run][2] = d.alloc(nv);
      s2[run] = d.b->crossAttentionBackward(va::CrossAttentionBackwardParams{
          dq, dk, dv, out, lse, dg, gr[run][0], gr[run][1], gr[run][2], c.B, c.Bq, c.Lq, c.Lk,
          c.heads, c.d, c.dv, scale, c.drop, seed});
    }
    const CaRef ref = caReference(c, scale, seed, q, k, v, g);
    const std::string name = std::string("crossAttention ") + c.what + " " +
                             shapeStr({c.B, c.Bq, c.Lq, c.Lk, c.heads, c.d, c.dv}) + " p=" +
                             std::to_string(c.drop).substr(0, 4);
    check(s1.ok() && s1b.ok(), name + " forward status: " + s1.message() + s1b.message());
    check(s2[0].ok() && s2[1].ok(), name + " backward status: " + s2[0].message() + s2[1].message());
    const std::vector<float> got[5] = {d.read(out, no), d.read(lse, nl), d.read(gr[0][0], nq),
                                       d.read(gr[0][1], nk), d.read(gr[0][2], nv)};
    const std::vector<double>* refs[5] = {&ref.out, &ref.lse, &ref.dq, &ref.dk, &ref.dv};
    const double tols[5] = {1e-5, 1e-5, 1e-4, 1e-4, 1e-4};
    checkOutputs(name, 5, names, got, refs, tols, worst);
    check(d.sameBits(out, out2, no) && d.sameBits(lse, lse2, nl), name + " forward deterministic");
    check(d.sameBits(gr[0][0], gr[1][0], nq) && d.sameBits(gr[0][1], gr[1][1], nk) &&
              d.sameBits(gr[0][2], gr[1][2], nv),
          name + " backward bitwise deterministic");
    for (float* p : {dq, dk, dv, dg, out, lse, out2, lse2}) d.free(p);
    for (int run = 0; run < 2; ++run)
      for (float* p : gr[run]) d.free(p);
  }
  std::printf("crossAttention%s: max normalised error", gBig ? " (big)" : "");
  for (int t = 0; t < 5; ++t) std::printf(" %s %.2e", names[t], worst[t]);
  std::printf("\n");

  // Kept fraction of the attention-dropout mask, read back from the kernel: with q = 0 every
  // probability is 1/Lk, and with v = 1, out_i·(1 − p)·Lk = number of kept keys of row i.
  {
    const int64_t B = 2, Lq = gBig ? 40 : 16, Lk = 64, M = 2;
    const int dd = gBig ? 96 : 8;
    const float p = 0.3f;
    std::vector<float> q(Lq * M * dd, 0.0f), k = randomVec(B * Lk * M * dd), v(B * Lk * M * 1, 1.0f);
    float *dq = d.upload(q), *dk = d.upload(k), *dv = d.upload(v), *out = d.alloc(B * Lq * M),
          *lse = d.alloc(B * M * Lq);
    va::Status st = d.b->crossAttention(va::CrossAttentionParams{
        dq, dk, dv, out, lse, B, 1, Lq, Lk, M, dd, 1, 1.0f, p, seed});
    const std::vector<float> o = d.read(out, B * Lq * M);
    double kept = 0;
    int64_t hostKept = 0, exactRows = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < Lq; ++i)
        for (int64_t m = 0; m < M; ++m) {
          const double cnt = o[(b * Lq + i) * M + m] * (1.0 - p) * Lk;
          kept += cnt;
          int64_t h = 0;
          for (int64_t j = 0; j < Lk; ++j)
            h += va::philox::dropoutKeep(static_cast<uint64_t>(((b * M + m) * Lq + i) * Lk + j), seed, 0, p);
          hostKept += h;
          exactRows += std::fabs(cnt - double(h)) < 1e-3;
        }
    const double frac = kept / double(B * Lq * M * Lk);
    check(st.ok() && exactRows == B * Lq * M, "crossAttention dropout: per-row kept counts match the host mask");
    check(std::fabs(frac - 0.7) < 0.03, "crossAttention dropout: kept fraction " + std::to_string(frac));
    std::printf("crossAttention dropout kept fraction %.4f (host mask %.4f, p = 0.3)\n", frac,
                double(hostKept) / double(B * Lq * M * Lk));
    for (float* ptr : {dq, dk, dv, out, lse}) d.free(ptr);
  }
}

// Group FC forward / backward against a double reference; unused slots' dW exactly 0; bitwise
// determinism of the backward.
// ------------------------------------------------------------ k-means cross-attention (kMaX)
struct KmCase {
  int64_t B, N, L, D, Dv;
  bool logits;
  int dupFrom, dupTo;  // centers[b, dupTo] = centers[b, dupFrom] (a tie; dupTo stays empty), -1: none
  bool nanPixel;       // pixel (b 0, n 1) all NaN → assign 0
  const char* what;
};

void testKMeans(Dev& d) {
  std::vector<KmCase> cases = {
      {1, 37, 5, 7, 3, true, 1, 3, true, "odd sizes, tie 1=3, NaN pixel"},
      {2, 300, 6, 33, 5, false, 4, 5, false, "B 2, N > chunk, D > tile, tie 4=5, no logits"},
      {3, 45, 1, 4, 9, true, -1, -1, false, "L = 1"},
      {2, 70, 40, 3, 2, true, 0, 39, true, "L > center chunk, tie 0=39"},
      {1, 5, 3, 1, 1, true, 0, 2, false, "D = Dv = 1"}};
  if (gBig)
    cases = {{2, 1000, 20, 40, 70, true, 2, 7, false, "big, grid-stride"},
             {1, 2000, 3, 16, 8, false, 0, 1, false, "big clusters, many segments"}};
  double worstU = 0;
  for (const auto& c : cases) {
    const std::string name = std::string("kmeans ") + c.what + " " +
                             shapeStr({c.B, c.N, c.L, c.D, c.Dv});
    auto px = randomVec(c.B * c.N * c.D, -1.0f, 1.0f), ce = randomVec(c.B * c.L * c.D, -1.0f, 1.0f),
         vals = randomVec(c.B * c.N * c.Dv);
    if (c.nanPixel) {
      for (int64_t k = 0; k < c.D; ++k) px[1 * c.D + k] = NAN;  // all scores NaN → 0
      if (c.L > 2 && c.N > 2) {
        // pixel 2: +inf in dim 0 → center 0 scores NaN (±inf·0 or inf−inf) or ±inf; center 1 gets
        // and every other center a negative dim 0, so they score −inf: the first non-NaN maximum
        // (l = 1, at −inf) must win over the NaN of l = 0.
        for (int64_t b = 0; b < c.B; ++b) {
          ce[(b * c.L + 0) * c.D + 0] = 0.0f;
          for (int64_t l = 1; l < c.L; ++l)
            ce[(b * c.L + l) * c.D + 0] = -0.5f - std::fabs(ce[(b * c.L + l) * c.D + 0]);
        }
        px[2 * c.D + 0] = INFINITY;
      }
    }
    if (c.dupFrom >= 0)
      for (int64_t b = 0; b < c.B; ++b)
        for (int64_t k = 0; k < c.D; ++k)
          ce[(b * c.L + c.dupTo) * c.D + k] = ce[(b * c.L + c.dupFrom) * c.D + k];
    // Host reference: canonical fmaf score; the first l holding the maximum of the non-NaN scores.
    std::vector<float> refLogits(c.B * c.L * c.N);
    std::vector<int32_t> refAssign(c.B * c.N);
    std::vector<double> refUpdate(c.B * c.L * c.Dv, 0.0);
    std::vector<int64_t> sizes(c.B * c.L, 0);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t n = 0; n < c.N; ++n) {
        float best = -INFINITY;
        int32_t bi = -1;
        for (int64_t l = 0; l < c.L; ++l) {
          float acc = 0.0f;
          for (int64_t k = 0; k < c.D; ++k)
            acc = std::fmaf(px[(b * c.N + n) * c.D + k], ce[(b * c.L + l) * c.D + k], acc);
          refLogits[(b * c.L + l) * c.N + n] = acc;
          if (!std::isnan(acc) && (acc > best || bi < 0)) {
            best = acc;
            bi = static_cast<int32_t>(l);
          }
        }
        if (bi < 0) bi = 0;  // all NaN
        refAssign[b * c.N + n] = bi;
        ++sizes[b * c.L + bi];
        for (int64_t j = 0; j < c.Dv; ++j)
          refUpdate[(b * c.L + bi) * c.Dv + j] += vals[(b * c.N + n) * c.Dv + j];
      }
    int64_t empty = 0;
    for (int64_t s : sizes) empty += s == 0;
    float *dpx = d.upload(px), *dce = d.upload(ce), *dvals = d.upload(vals);
    float* upd[2] = {d.alloc(c.B * c.L * c.Dv), d.alloc(c.B * c.L * c.Dv)};
    int32_t* asg[2] = {reinterpret_cast<int32_t*>(d.alloc(c.B * c.N)),
                       reinterpret_cast<int32_t*>(d.alloc(c.B * c.N))};
    float* lg = c.logits ? d.alloc(c.B * c.L * c.N) : nullptr;
    va::Status s1[2];
    for (int run = 0; run < 2; ++run)
      s1[run] = d.b->kmeansCrossAttention(va::KMeansParams{dpx, dce, dvals, upd[run], asg[run],
                                                           run == 0 ? lg : nullptr, c.B, c.N, c.L,
                                                           c.D, c.Dv});
    check(s1[0].ok() && s1[1].ok(), name + " forward status: " + s1[0].message() + s1[1].message());
    std::vector<int32_t> ga(c.B * c.N), ga2(c.B * c.N);
    check(d.download(ga.data(), asg[0], ga.size() * 4).ok() &&
              d.download(ga2.data(), asg[1], ga2.size() * 4).ok(),
          name + " download assign");
    int64_t bad = 0;
    for (size_t i = 0; i < ga.size(); ++i) bad += ga[i] != refAssign[i];
    check(bad == 0, name + " assign bit-identical to the canonical host arg-max (" +
                        std::to_string(bad) + " differ; " + std::to_string(empty) + " empty clusters)");
    if (c.dupFrom >= 0) check(empty > 0, name + " has an empty cluster");
    if (lg) {
      const std::vector<float> gl = d.read(lg, c.B * c.L * c.N);
      int64_t lbad = 0;
      for (size_t i = 0; i < gl.size(); ++i)
        lbad += !(std::isnan(gl[i]) ? std::isnan(refLogits[i])
                                    : std::memcmp(&gl[i], &refLogits[i], 4) == 0);
      check(lbad == 0, name + " logits bit-identical to the canonical fmaf score (" +
                           std::to_string(lbad) + " differ)");
    }
    const std::vector<float> gu = d.read(upd[0], c.B * c.L * c.Dv), gu2 = d.read(upd[1], c.B * c.L * c.Dv);
    const double eu = normErr(gu, refUpdate);
    worstU = std::max(worstU, eu);
    check(eu <= 1e-5, name + " update (normalised error " + std::to_string(eu) + ")");
    bool emptyZero = true;
    for (int64_t i = 0; i < c.B * c.L; ++i)
      if (sizes[i] == 0)
        for (int64_t j = 0; j < c.Dv; ++j) emptyZero &= gu[i * c.Dv + j] == 0.0f;
    check(emptyZero, name + " empty clusters get exactly 0");
    check(std::memcmp(gu.data(), gu2.data(), gu.size() * 4) == 0 && ga == ga2,
          name + " forward bitwise deterministic");
    // Backward: a gather by the assignment (exact).
    auto dU = randomVec(c.B * c.L * c.Dv);
    float* ddU = d.upload(dU);
    float* dV = d.alloc(c.B * c.N * c.Dv);
    va::Status s2 = d.b->kmeansCrossAttentionBackward(
        va::KMeansBackwardParams{asg[0], ddU, dV, c.B, c.N, c.L, c.Dv});
    check(s2.ok(), name + " backward status: " + s2.message());
    const std::vector<float> gv = d.read(dV, c.B * c.N * c.Dv);
    int64_t vbad = 0;
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t n = 0; n < c.N; ++n)
        for (int64_t j = 0; j < c.Dv; ++j)
          vbad += gv[(b * c.N + n) * c.Dv + j] != dU[(b * c.L + refAssign[b * c.N + n]) * c.Dv + j];
    check(vbad == 0, name + " dValues = dUpdate[assign] exactly (" + std::to_string(vbad) + " differ)");
    for (void* p : {(void*)dpx, (void*)dce, (void*)dvals, (void*)upd[0], (void*)upd[1],
                    (void*)asg[0], (void*)asg[1], (void*)ddU, (void*)dV})
      d.free(p);
    if (lg) d.free(lg);
  }
  std::printf("kmeans%s: max normalised update error %.2e (assign, logits, dValues exact)\n",
              gBig ? " (big)" : "", worstU);

  // An assign outside [0, L) fails the backward as a stream error naming the op and the bad value
  // (the kernel records it non-fatally, no trap: on a GPU too); the backend stays usable.
  if (!gBig) {
    const int64_t B = 1, N = 40, L = 4, Dv = 3;
    for (int32_t badVal : {4, -1}) {
      std::vector<int32_t> a(N, 1);
      a[33] = badVal;
      int32_t* da = reinterpret_cast<int32_t*>(d.alloc(N));
      d.b->upload(da, a.data(), N * 4);
      float* dU = d.upload(randomVec(B * L * Dv));
      float* dV = d.alloc(B * N * Dv);
      va::Status st = d.b->kmeansCrossAttentionBackward(va::KMeansBackwardParams{da, dU, dV, B, N, L, Dv});
      va::Status sy = d.b->synchronize();
      const std::string want = "kmeansCrossAttentionBackward: assign[0, 33] = " +
                               std::to_string(badVal) + " is outside [0, 4)";
      check(st.ok() && !sy.ok() && sy.message() == want,
            "kmeans backward: assign " + std::to_string(badVal) + " reports a stream error naming the op: " +
                st.message() + " / " + sy.message());
      if (badVal == 4) std::printf("  out-of-range assign error: %s\n", sy.message().c_str());
      check(d.b->synchronize().ok(), "kmeans backward: error cleared once reported");
      a[33] = 2;
      d.b->upload(da, a.data(), N * 4);
      va::Status s3 = d.b->kmeansCrossAttentionBackward(va::KMeansBackwardParams{da, dU, dV, B, N, L, Dv});
      const std::vector<float> gv = d.read(dV, B * N * Dv), gu = d.read(dU, B * L * Dv);
      check(s3.ok() && gv[33 * Dv] == gu[2 * Dv] && gv[0] == gu[1 * Dv] && d.b->synchronize().ok(),
            "kmeans backward: backend usable after the out-of-range error");
      d.free(da);
      d.free(dU);
      d.free(dV);
    }
  }
}

// ------------------------------------------------------------------------- row L2 normalisation
void testL2Normalize(Dev& d) {
  struct Case {
    int64_t rows, cols;
    float eps;
  };
  std::vector<Case> cases = {{5, 1, 1e-12f}, {7, 33, 1e-12f}, {3, 128, 1e-12f}, {9, 70, 1e-3f}};
  if (gBig) cases = {{300, 128, 1e-12f}, {50, 1000, 1e-3f}};
  double worst[2] = {0, 0};
  for (const auto& c : cases) {
    const std::string name = "l2Normalize " + shapeStr({c.rows, c.cols}) + " eps " + std::to_string(c.eps);
    auto x = randomVec(c.rows * c.cols), dy = randomVec(c.rows * c.cols);
    for (int64_t j = 0; j < c.cols; ++j) x[0 * c.cols + j] = 0.0f;  // zero row: eps branch
    if (c.rows > 2)
      for (int64_t j = 0; j < c.cols; ++j) x[2 * c.cols + j] = c.eps > 1e-6f ? 1e-5f : 1e-14f;  // tiny row
    float *dx_in = d.upload(x), *ddy = d.upload(dy), *y = d.alloc(x.size()), *dx = d.alloc(x.size());
    va::Status s1 = d.b->l2Normalize(va::L2NormalizeParams{dx_in, y, c.rows, c.cols, c.eps});
    va::Status s2 = d.b->l2NormalizeBackward(
        va::L2NormalizeBackwardParams{dx_in, ddy, dx, c.rows, c.cols, c.eps});
    check(s1.ok() && s2.ok(), name + " status: " + s1.message() + s2.message());
    const std::vector<float> gy = d.read(y, x.size()), gdx = d.read(dx, x.size());
    // Per-row reference and per-row normalised error (rows in the eps branch are ~1/eps larger).
    double ey = 0, edx = 0;
    for (int64_t r = 0; r < c.rows; ++r) {
      double ss = 0, dot = 0;
      for (int64_t j = 0; j < c.cols; ++j) ss += double(x[r * c.cols + j]) * x[r * c.cols + j];
      const double n = std::sqrt(ss), den = std::max(n, double(c.eps));
      for (int64_t j = 0; j < c.cols; ++j) dot += x[r * c.cols + j] / den * dy[r * c.cols + j];
      std::vector<float> gyr(gy.begin() + r * c.cols, gy.begin() + (r + 1) * c.cols),
          gdr(gdx.begin() + r * c.cols, gdx.begin() + (r + 1) * c.cols);
      std::vector<double> ry(c.cols), rd(c.cols);
      for (int64_t j = 0; j < c.cols; ++j) {
        const double yy = x[r * c.cols + j] / den, g = dy[r * c.cols + j];
        ry[j] = yy;
        rd[j] = n > c.eps ? (g - yy * dot) / n : g / c.eps;
      }
      ey = std::max(ey, normErr(gyr, ry));
      edx = std::max(edx, normErr(gdr, rd));
    }
    worst[0] = std::max(worst[0], ey);
    worst[1] = std::max(worst[1], edx);
    check(ey <= 1e-6, name + " y (row-normalised error " + std::to_string(ey) + ")");
    check(edx <= 2e-6, name + " dx (row-normalised error " + std::to_string(edx) + ")");
    bool zero = true;
    for (int64_t j = 0; j < c.cols; ++j) zero &= gy[j] == 0.0f;
    check(zero, name + " zero row → y = 0");
    for (float* p : {dx_in, ddy, y, dx}) d.free(p);
  }
  std::printf("l2Normalize%s: max row-normalised error y %.2e dx %.2e\n", gBig ? " (big)" : "",
              worst[0], worst[1]);
}

void testGroupFC(Dev& d) {
  struct GC {
    int64_t B, K, D, g, N;
    bool bias;
    const char* what;
  };
  std::vector<GC> cases = {{2, 3, 5, 4, 10, true, "N < K·g (2 dropped slots)"},
                           {3, 4, 7, 1, 4, false, "K = N (g = 1), no bias"},
                           {1, 2, 3, 5, 6, true, "last group has one class"},
                           {9, 3, 40, 33, 97, true, "two batch chunks, two slot chunks, two D chunks"},
                           {2, 5, 300, 70, 345, false, "D > 256, g > 64, no bias"}};
  if (gBig)
    cases = {{8, 10, 768, 97, 965, true, "OpenImages-like head (10 groups)"},
             {4, 80, 64, 1, 80, true, "COCO-like (K = N = 80)"},
             {17, 6, 50, 9, 50, false, "three batch chunks"}};
  double worst[4] = {0, 0, 0, 0};
  for (const auto& c : cases) {
    auto x = randomVec(c.B * c.K * c.D), w = randomVec(c.K * c.D * c.g), bias = randomVec(c.N),
         g = randomVec(c.B * c.N);
    float *dx = d.upload(x), *dw = d.upload(w), *db = c.bias ? d.upload(bias) : nullptr,
          *dg = d.upload(g), *out = d.alloc(c.B * c.N);
    va::Status s1 = d.b->groupFC(va::GroupFCParams{dx, dw, db, out, c.B, c.K, c.D, c.g, c.N});
    float* gr[2][3];
    va::Status s2[2];
    for (int run = 0; run < 2; ++run) {
      gr[run][0] = d.alloc(c.B * c.K * c.D);
      gr[run][1] = d.alloc(c.K * c.D * c.g);
      gr[run][2] = d.alloc(c.N);
      s2[run] = d.b->groupFCBackward(va::GroupFCBackwardParams{dx, dw, dg, gr[run][0], gr[run][1],
                                                               gr[run][2], c.B, c.K, c.D, c.g, c.N});
    }
    std::vector<double> ref(c.B * c.N, 0.0), rdx(x.size(), 0.0), rdw(w.size(), 0.0), rdb(c.N, 0.0);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t cc = 0; cc < c.N; ++cc) {
        const int64_t kk = cc / c.g, j = cc % c.g;
        double s = c.bias ? bias[cc] : 0.0;
        const double go = g[b * c.N + cc];
        for (int64_t e = 0; e < c.D; ++e) {
          const double xv = x[(b * c.K + kk) * c.D + e], wv = w[(kk * c.D + e) * c.g + j];
          s += xv * wv;
          rdx[(b * c.K + kk) * c.D + e] += wv * go;
          rdw[(kk * c.D + e) * c.g + j] += xv * go;
        }
        ref[b * c.N + cc] = s;
        rdb[cc] += go;
      }
    const std::string name = std::string("groupFC ") + c.what + " " + shapeStr({c.B, c.K, c.D, c.g, c.N});
    check(s1.ok() && s2[0].ok() && s2[1].ok(), name + " status: " + s1.message() + s2[0].message());
    const std::vector<float> got[4] = {d.read(out, c.B * c.N), d.read(gr[0][0], x.size()),
                                       d.read(gr[0][1], w.size()), d.read(gr[0][2], c.N)};
    const std::vector<double>* refs[4] = {&ref, &rdx, &rdw, &rdb};
    const char* names[4] = {"out", "dX", "dW", "dBias"};
    const double tols[4] = {1e-5, 1e-5, 1e-5, 1e-5};
    checkOutputs(name, 4, names, got, refs, tols, worst);
    bool zeros = true;
    int64_t unused = 0;
    for (int64_t kk = 0; kk < c.K; ++kk)
      for (int64_t e = 0; e < c.D; ++e)
        for (int64_t j = 0; j < c.g; ++j)
          if (kk * c.g + j >= c.N) {
            ++unused;
            const float val = got[2][(kk * c.D + e) * c.g + j];
            zeros = zeros && val == 0.0f && !std::signbit(val);
          }
    check(zeros, name + " dW of the " + std::to_string(unused) + " unused slot entries is exactly +0");
    bool same = true;
    const size_t sizes[3] = {x.size(), w.size(), size_t(c.N)};
    for (int t = 0; t < 3; ++t) {
      const std::vector<float> a = d.read(gr[0][t], sizes[t]), bb = d.read(gr[1][t], sizes[t]);
      same = same && std::memcmp(a.data(), bb.data(), sizes[t] * 4) == 0;
    }
    check(same, name + " backward bitwise deterministic");
    for (float* p : {dx, dw, dg, out}) d.free(p);
    if (db) d.free(db);
    for (int run = 0; run < 2; ++run)
      for (float* p : gr[run]) d.free(p);
  }
  std::printf("groupFC%s: max normalised error out %.2e dX %.2e dW %.2e dBias %.2e\n",
              gBig ? " (big)" : "", worst[0], worst[1], worst[2], worst[3]);
}

// Dropout: bit-exact against the host mask and x / (1 − p); kept fraction.
void testDropout(Dev& d) {
  for (int64_t n : gBig ? std::vector<int64_t>{20003} : std::vector<int64_t>{1, 5, 1001})
    for (float p : {0.0f, 0.3f}) {
      const uint64_t seed = 0xfeedbeef12345ull, offset = 3;
      auto x = randomVec(n);
      float *dx = d.upload(x), *dout = d.alloc(n);
      va::Status st = d.b->dropout(va::DropoutParams{dx, dout, n, p, seed, offset});
      const std::vector<float> o = d.read(dout, n);
      bool exact = st.ok();
      int64_t kept = 0;
      for (int64_t i = 0; i < n; ++i) {
        const bool keep = va::philox::dropoutKeep(static_cast<uint64_t>(i), seed, offset, p);
        volatile float denom = 1.0f - p;
        const float want = keep ? x[i] / denom : 0.0f;
        exact = exact && std::memcmp(&want, &o[i], 4) == 0;
        kept += keep;
      }
      const std::string name = "dropout n=" + std::to_string(n) + " p=" + std::to_string(p).substr(0, 3);
      check(exact, name + " bit-exact");
      if (n >= 1000) {
        const double frac = double(kept) / double(n);
        check(std::fabs(frac - (1.0 - p)) < 0.05, name + " kept fraction " + std::to_string(frac));
      }
      d.free(dx);
      d.free(dout);
    }
}

// Multi-label losses against float64 formulas (params.h / spec §1.4). The reference's gradients
// are themselves checked against central differences of its loss (weights frozen when focalGrad
// is off).
struct MlCase {
  va::MultiLabelLossKind kind;
  float gp, gn, clip, eps;
  bool focal, withGrad;
};

// loss and gradient in double; wFrozen (optional) = {w+, w−} to hold the focusing weights.
// scale (optional): {Σ|loss terms|, Σ|gradient terms|, κ} — the magnitudes an fp32 evaluation's
// error is relative to (soft targets make the gradient a difference of terms), and κ the
// conditioning of p_m = p − clip (1 + (γ− + 1)·p/p_m for a live negative term; 1 otherwise).
void mlReference(const MlCase& c, double x, double y, double* loss, double* grad,
                 const double* wFrozen = nullptr, double* wOut = nullptr, double* scale = nullptr) {
  const double p = 1.0 / (1.0 + std::exp(-x)), q = 1.0 / (1.0 + std::exp(x));
  if (c.kind == va::MultiLabelLossKind::Bce) {
    *loss = std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::fabs(x)));
    *grad = p * (1 - y) - y * q;  // p − y
    if (scale) {
      scale[0] = std::fabs(*loss);
      scale[1] = p * (1 - y) + y * q;
      scale[2] = 1;
    }
    return;
  }
  const double clip = c.clip, eps = c.eps;
  const double pneg = std::min(q + clip, 1.0);           // min(1 − p + clip, 1)
  const double pm = p > clip ? p - clip : 0.0;            // 1 − p_neg
  // log p = −log1p(e^−x) and log p_neg = log1p(−p_m) (or log q = −log1p(e^x) without clip): the
  // direct log(p) of a p within 1e-13 of 1 would be off by 1e-3 relative even in double.
  const double logp = -std::log1p(std::exp(-x));
  const double logpn = clip > 0 ? (p > clip ? std::log1p(-pm) : 0.0) : -std::log1p(std::exp(x));
  const double lp = std::max(logp, std::log(eps)), ln = std::max(logpn, std::log(eps));
  double wp = std::pow(q, double(c.gp)), wn = std::pow(pm, double(c.gn));
  if (wOut) {
    wOut[0] = wp;
    wOut[1] = wn;
  }
  if (wFrozen) {
    wp = wFrozen[0];
    wn = wFrozen[1];
  }
  *loss = -(y * wp * lp + (1 - y) * wn * ln);
  double t[4] = {0, 0, 0, 0};
  if (p > eps) t[0] = -y * wp * q;
  if (p > clip && pneg > eps) t[1] = (1 - y) * wn * p * q / pneg;
  if (c.focal) {
    t[2] = y * c.gp * p * wp * lp;
    if (c.gn != 0 && p > clip) t[3] = -(1 - y) * c.gn * std::pow(pm, double(c.gn) - 1) * p * q * ln;
  }
  *grad = t[0] + t[1] + t[2] + t[3];
  if (scale) {
    scale[0] = std::fabs(*loss);
    scale[1] = std::fabs(t[0]) + std::fabs(t[1]) + std::fabs(t[2]) + std::fabs(t[3]);
    scale[2] = (clip > 0 && p > clip && y < 1) ? 1 + (std::fabs(double(c.gn)) + 1) * p / pm : 1;
  }
}

void testMultiLabelLoss(Dev& d) {
  using K = va::MultiLabelLossKind;
  const std::vector<MlCase> cases = {
      {K::Asl, 0, 4, 0.05f, 1e-8f, false, true},  {K::Asl, 1, 4, 0.05f, 1e-8f, false, true},
      {K::Asl, 1, 4, 0.05f, 1e-8f, true, true},   {K::Asl, 0, 4, 0.05f, 1e-8f, true, true},
      {K::Asl, 1, 2, 0.0f, 1e-8f, true, true},    {K::Asl, 1, 2, 0.0f, 1e-8f, false, true},
      {K::Asl, 0, 0, 0.0f, 1e-8f, false, true},   {K::Asl, 1, 0.5f, 0.05f, 1e-8f, true, true},
      {K::Asl, 0, 4, 0.05f, 1e-8f, false, false}, {K::Bce, 0, 0, 0, 0, false, true}};
  // logits: fixed edge values, random in [−8, 8] and [−30, 30]; beyond ±30 only normalised error
  std::vector<float> x = {0.0f, 0.5f, -0.5f, 1.0f, -1.0f, 2.0f, -2.0f, 5.0f, -5.0f, 10.0f, -10.0f,
                          17.0f, -17.0f, 20.0f, -20.0f, 25.0f, -25.0f, 30.0f, -30.0f};
  const size_t nFixed = x.size();
  for (float v : randomVec(gBig ? 3000 : 300, -8.0f, 8.0f)) x.push_back(v);
  for (float v : randomVec(gBig ? 1000 : 100, -30.0f, 30.0f)) x.push_back(v);
  const size_t nStrict = x.size();
  for (float v : {45.0f, -45.0f, 80.0f, -80.0f, 100.0f, -100.0f}) x.push_back(v);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> y(n);
  for (int64_t i = 0; i < n; ++i) {
    if (static_cast<size_t>(i) < nFixed) y[i] = static_cast<float>(i % 2);
    else y[i] = (i % 7 == 3) ? 0.3f : static_cast<float>(i % 2);  // some soft targets
  }
  // the fixed edge values with both targets: repeat them with the other label
  for (size_t i = 0; i < nFixed; ++i) {
    x.push_back(x[i]);
    y.push_back(1.0f - y[i]);
  }
  const int64_t nAll = static_cast<int64_t>(x.size());
  float *dx = d.upload(x), *dy = d.upload(y), *dl = d.alloc(nAll), *dgr = d.alloc(nAll);
  for (const auto& c : cases) {
    va::MultiLabelLossParams p{dx, dy, dl, c.withGrad ? dgr : nullptr, nAll, c.kind, c.gp, c.gn,
                               c.clip, c.eps, c.focal};
    va::Status st = d.b->multiLabelLoss(p);
    const std::vector<float> L = d.read(dl, nAll), G = d.read(dgr, nAll);
    double worstL = 0, worstG = 0, worstFar = 0;
    bool finite = true;
    double worstRawL = 0, worstRawG = 0;  // plain relative errors (conditioning not factored out)
    for (int64_t i = 0; i < nAll; ++i) {
      double rl, rg, sc[3];
      mlReference(c, x[i], y[i], &rl, &rg, nullptr, nullptr, sc);
      const bool strict = !(static_cast<size_t>(i) >= nStrict && static_cast<size_t>(i) < static_cast<size_t>(n));
      finite = finite && std::isfinite(L[i]) && (!c.withGrad || std::isfinite(G[i]));
      const double el = std::fabs(L[i] - rl), eg = c.withGrad ? std::fabs(G[i] - rg) : 0.0;
      if (strict) {
        // relative to the terms' magnitude and the conditioning κ of p − clip; 1e-36: below
        // FLT_MIN, where fp32 has no relative precision left
        worstL = std::max(worstL, el / (sc[2] * sc[0] + 1e-36));
        worstRawL = std::max(worstRawL, el / (std::fabs(rl) + 1e-36));
        if (c.withGrad) {
          worstG = std::max(worstG, eg / (sc[2] * sc[1] + 1e-36));
          worstRawG = std::max(worstRawG, eg / (std::fabs(rg) + 1e-36));
        }
      } else {
        worstFar = std::max(worstFar, std::max(el / std::max(std::fabs(rl), 1.0), eg / std::max(std::fabs(rg), 1.0)));
      }
    }
    char buf[256];
    std::snprintf(buf, sizeof(buf), "multiLabelLoss %s g+=%g g-=%g clip=%g focal=%d grad=%d",
                  c.kind == K::Bce ? "bce" : "asl", c.gp, c.gn, c.clip, c.focal, c.withGrad);
    const std::string name = buf;
    check(st.ok() && finite, name + " status / finite: " + st.message());
    check(worstL <= 2e-6, name + " loss relative error " + std::to_string(worstL));
    check(worstG <= 2e-6, name + " grad relative error " + std::to_string(worstG));
    check(worstFar <= 1e-6, name + " |x| > 30 normalised error " + std::to_string(worstFar));
    std::printf("  %s%s: |x| <= 30: max error/(κ·terms) loss %.2e grad %.2e (plain relative %.2e %.2e); "
                "|x| > 30 normalised %.2e\n",
                buf, gBig ? " (big)" : "", worstL, worstG, worstRawL, worstRawG, worstFar);
    // The reference gradient against central differences of the reference loss (|x| ≤ 6, away
    // from the clamps), weights frozen unless focalGrad.
    if (!gBig && c.withGrad) {
      double worstFd = 0;
      for (double xv = -6.0; xv <= 6.0; xv += 0.37)
        for (double yv : {0.0, 1.0, 0.3}) {
          const double p0 = 1 / (1 + std::exp(-xv));
          if (c.clip > 0 && std::fabs(p0 - c.clip) < 2e-2) continue;
          double l0, g0, w[2], lp, gp, lm, gm;
          mlReference(c, xv, yv, &l0, &g0, nullptr, w);
          const double h = 1e-5;
          mlReference(c, xv + h, yv, &lp, &gp, c.focal ? nullptr : w);
          mlReference(c, xv - h, yv, &lm, &gm, c.focal ? nullptr : w);
          const double fd = (lp - lm) / (2 * h);
          worstFd = std::max(worstFd, std::fabs(fd - g0) / std::max(std::fabs(g0), 1e-3));
        }
      check(worstFd < 1e-6, name + " reference gradient vs finite differences " + std::to_string(worstFd));
    }
  }
  for (float* p : {dx, dy, dl, dgr}) d.free(p);
}

void testRandom(Dev& d) {
  for (int64_t n : gBig ? std::vector<int64_t>{20003} : std::vector<int64_t>{1, 5, 8, 1001})
    for (int kind = 0; kind < 2; ++kind) {
      const uint64_t seed = 0x1234567890abcdefull, offset = 77;
      float* dd = d.alloc(n);
      va::RandomParams p{dd, n, seed, offset, static_cast<va::RandomKind>(kind), 0.5f, 2.0f};
      va::Status st = d.b->random(p);
      auto out = d.read(dd, n);
      bool ok = st.ok();
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        va::philox::U4 r = va::philox::philox4x32_10(static_cast<uint64_t>(i / 4), offset, seed);
        float want;
        if (kind == 0) {
          volatile float prod = 2.0f * va::philox::normalAt(r, static_cast<int>(i % 4));
          want = prod + 0.5f;
        } else {
          want = va::philox::uniform24(r.v[i % 4]);
        }
        ok = ok && std::memcmp(&want, &out[i], 4) == 0;
        sum += out[i];
      }
      if (n >= 1001) {
        const double mean = sum / n;
        ok = ok && (kind == 0 ? std::fabs(mean - 0.5) < 0.3 : std::fabs(mean - 0.5) < 0.05);
      }
      check(ok, std::string(kind ? "uniform" : "normal") + " bit-identical n=" + std::to_string(n));
      d.free(dd);
    }
}

// ------------------------------------------------------------------------- runtime behaviour
void testPoisonAndMemory(Dev& d) {
  va::MemoryStats m0 = d.b->memory();
  float* p = d.alloc(16);
  auto v = d.read(p, 16);
  bool allNan = true;
  for (float f : v) allNan = allNan && std::isnan(f);
  if (gEmu) check(allNan, "fresh allocation reads as NaN poison");
  va::MemoryStats m1 = d.b->memory();
  check(m1.allocations == m0.allocations + 1 && m1.allocatedBytes == m0.allocatedBytes + 64 &&
            m1.reservedBytes >= m1.allocatedBytes,
        "memory(): allocation counted");
  d.b->fill(va::FillParams{p, 16, 0u});
  d.free(p);
  va::MemoryStats m2 = d.b->memory();
  check(m2.allocations == m0.allocations && m2.allocatedBytes == m0.allocatedBytes &&
            m2.reservedBytes == m1.reservedBytes,
        "memory(): free returns the block to the cache");
  float* q = d.alloc(16);  // the recycled block
  check(q == p, "free block is reused by the next same-size alloc");
  v = d.read(q, 16);
  allNan = true;
  for (float f : v) allNan = allNan && std::isnan(f);
  if (gEmu) check(allNan, "recycled allocation is re-poisoned");
  d.free(q);
  // alignment
  void* r = nullptr;
  d.b->alloc(3, &r);
  check(r && (reinterpret_cast<uintptr_t>(r) % 64) == 0, "alloc is 64-byte aligned");
  d.b->free(r);
}

void testStickyError(Dev& d) {
  va::Status st = VA_TEST_NS::injectFault(d.b);
  check(st.ok(), "injectFault enqueues");
  va::Status s1 = d.b->synchronize();
  check(!s1.ok() && s1.message().find("injectFault") != std::string::npos,
        "synchronize reports the sticky error naming the op: " + s1.message());
  std::printf("  sticky error message: %s\n", s1.message().c_str());
  va::Status s2 = d.b->synchronize();
  check(s2.ok(), "sticky error cleared once reported");
  // Later work still runs; a download reports an error raised before it.
  float* p = d.alloc(4);
  d.b->fill(va::FillParams{p, 4, 0x3f800000u});
  VA_TEST_NS::injectFault(d.b);
  std::vector<float> out(4);
  va::Status s3 = d.download(out.data(), p, 16);
  check(!s3.ok() && s3.message().find("injectFault") != std::string::npos,
        "download reports a sticky error: " + s3.message());
  va::Status s4 = d.download(out.data(), p, 16);
  check(s4.ok() && out[0] == 1.0f && out[3] == 1.0f, "work after a fault still runs");
  // synchronizeAsync reports it too
  VA_TEST_NS::injectFault(d.b);
  std::promise<va::Status> pr;
  d.b->synchronizeAsync([&](va::Status s) { pr.set_value(s); });
  va::Status s5 = pr.get_future().get();
  check(!s5.ok(), "synchronizeAsync reports a sticky error");
  check(d.b->synchronize().ok(), "clean after synchronizeAsync reported");
  d.free(p);
}

void testLaunchConfigError(Dev& d) {
  // A softmax over rows with a row count that needs no special config is fine; a copy of 0
  // elements is a no-op. (Launch-configuration errors are covered by the emulator's own tests.)
  float* p = d.alloc(1);
  va::CopyParams c{};
  c.src = p;
  c.dst = p;
  c.ndim = 1;
  c.shape[0] = 0;
  c.scale = 1.0f;
  check(d.b->copy(c).ok(), "empty copy is a no-op");
  check(d.b->synchronize().ok(), "synchronize after empty copy");
  d.free(p);
}

void testPendingAndCallbacks(Dev& d) {
  check(d.b->synchronize().ok(), "synchronize ok");
  check(d.b->pending() == 0, "pending() == 0 when idle");
  const int64_t M = 192, N = 192, K = 192;
  float *a = d.alloc(M * K), *b = d.alloc(K * N), *c = d.alloc(M * N);
  d.b->fill(va::FillParams{a, M * K, 0x3f800000u});
  d.b->fill(va::FillParams{b, K * N, 0x3f000000u});
  va::MatmulParams p{a, b, c, nullptr, 1, M, N, K, 0, 0, 0, false, false, 1.0f, 0.0f};
  p.strideA = M * K;
  p.strideB = K * N;
  p.strideC = M * N;
  d.b->matmul(p);
  const int64_t pend = d.b->pending();
  check(pend > 0, "pending() > 0 right after enqueueing a slow op (" + std::to_string(pend) + ")");
  // Callbacks: exactly once, on a thread other than the caller's.
  std::atomic<int> calls{0};
  std::thread::id cbThread;
  std::promise<void> pr;
  std::vector<float> host(M * N);
  d.b->download(host.data(), c, M * N * 4, [&](va::Status s) {
    cbThread = std::this_thread::get_id();
    if (s.ok()) calls.fetch_add(1);
    pr.set_value();
  });
  pr.get_future().wait();
  check(calls.load() == 1 && cbThread != std::this_thread::get_id(),
        "download callback once, on a backend thread");
  check(host[0] == 96.0f && host[M * N - 1] == 96.0f, "download after matmul has the result");
  std::promise<void> pr2;
  std::atomic<int> calls2{0};
  d.b->synchronizeAsync([&](va::Status s) {
    if (s.ok()) calls2.fetch_add(1);
    pr2.set_value();
  });
  pr2.get_future().wait();
  check(calls2.load() == 1, "synchronizeAsync callback once");
  check(d.b->synchronize().ok() && d.b->pending() == 0, "pending() == 0 after synchronize");
  // Many ops, then pending drains to zero.
  for (int i = 0; i < 50; ++i) d.b->fill(va::FillParams{a, 1, 0u});
  d.b->synchronize();
  check(d.b->pending() == 0, "pending() == 0 after a burst");
  d.free(a);
  d.free(b);
  d.free(c);
}

void testDestroyWithWork() {
  std::unique_ptr<va::Backend> b2;
  va::Status st = VA_TEST_NS::createBackend(&b2);
  check(st.ok(), "second backend");
  if (!st.ok()) return;
  Dev d{b2.get()};
  std::atomic<int> calls{0};
  std::vector<float> host(64 * 64);
  float* c = d.alloc(64 * 64);
  float* a = d.alloc(64 * 64);
  d.b->fill(va::FillParams{a, 64 * 64, 0x3f800000u});
  va::MatmulParams p{a, a, c, nullptr, 1, 64, 64, 64, 0, 0, 0, false, false, 1.0f, 0.0f};
  d.b->matmul(p);
  d.b->download(host.data(), c, 64 * 64 * 4, [&](va::Status s) {
    if (s.ok()) calls.fetch_add(1);
  });
  d.b->synchronizeAsync([&](va::Status s) {
    if (s.ok()) calls.fetch_add(1);
  });
  b2.reset();  // must drain, run both callbacks, free everything, join threads
  check(calls.load() == 2 && host[0] == 64.0f, "destructor drains queued work and callbacks");
}

#if defined(VA_EMU)
// A stand-in for libcublas: column-major sgemm on the host, run after the stream has drained
// (emu memory is host memory). Validates the row-major → column-major mapping and the bias/beta
// and batch-reduction handling of the cuBLAS path that only a GPU would otherwise exercise.
vaemu::cudaStream_t gFakeStream = nullptr;
int gFakeCalls = 0;
int fakeCreate(void** h) {
  static int dummy;
  *h = &dummy;
  return 0;
}
int fakeDestroy(void*) { return 0; }
int fakeSetStream(void*, vaemu::cudaStream_t s) {
  gFakeStream = s;
  return 0;
}
int fakeSetMath(void*, int) { return 0; }
int fakeSgemm(void*, int ta, int tb, int m, int n, int k, const float* alpha, const float* A,
              int lda, long long sA, const float* B, int ldb, long long sB, const float* beta,
              float* C, int ldc, long long sC, int batch) {
  ++gFakeCalls;
  vaemu::cudaStreamSynchronize(gFakeStream);
  for (int q = 0; q < batch; ++q) {
    const float* Ap = A + q * sA;
    const float* Bp = B + q * sB;
    float* Cp = C + q * sC;
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double s = 0;
        for (int l = 0; l < k; ++l) {
          const double a = ta ? Ap[l + static_cast<int64_t>(i) * lda] : Ap[i + static_cast<int64_t>(l) * lda];
          const double b = tb ? Bp[j + static_cast<int64_t>(l) * ldb] : Bp[l + static_cast<int64_t>(j) * ldb];
          s += a * b;
        }
        float& c = Cp[i + static_cast<int64_t>(j) * ldc];
        c = static_cast<float>(*alpha * s + (*beta != 0.0f ? *beta * c : 0.0f));
      }
  }
  return 0;
}

void testBlasDispatch(Dev& d) {
  static VA_TEST_NS::BlasLib fake;
  fake.create = fakeCreate;
  fake.destroy = fakeDestroy;
  fake.setStream = fakeSetStream;
  fake.setMathMode = fakeSetMath;
  fake.sgemmStridedBatched = fakeSgemm;
  check(VA_TEST_NS::setBlasForTesting(d.b, &fake), "install stand-in cuBLAS");
  testMatmul(d);
  check(gFakeCalls > 0, "matmul dispatched to the cuBLAS path (" + std::to_string(gFakeCalls) +
                            " calls)");
  VA_TEST_NS::setBlasForTesting(d.b, nullptr);
}
#endif

}  // namespace

int main() {
  va::CudaInfo info = VA_TEST_NS::probe();
  check(info.compiled && info.available && !info.devices.empty(), "probe: " + info.reason);
  if (!info.devices.empty())
    std::printf("emu device: %s (cc %d.%d, %d SMs), runtime %d, driver %d\n",
                info.devices[0].name.c_str(), info.devices[0].major, info.devices[0].minor,
                info.devices[0].multiProcessors, info.runtimeVersion, info.driverVersion);
  std::unique_ptr<va::Backend> backend;
  va::Status st = VA_TEST_NS::createBackend(&backend);
  check(st.ok(), "createBackend: " + st.message());
  if (!st.ok()) {
    std::printf("%d passed, %d failed\n", gPassed, gFailed);
    return 1;
  }
  gEmu = std::string(backend->name()) == "emu";
  check(backend->kind() == (gEmu ? va::DeviceKind::Emu : va::DeviceKind::Cuda), "kind/name");
  Dev d{backend.get()};
  testPoisonAndMemory(d);
  testBinary(d);
  testAffine(d);
  testUnary(d);
  testMatmul(d);
  testSoftmax(d);
  testLayerNorm(d);
  testReduce(d);
  testCopyFill(d);
  testPool(d);
  testOutlook(d);
  testHalo(d);
  testCrossAttention(d);
  testKMeans(d);
  testL2Normalize(d);
  testGroupFC(d);
  testDropout(d);
  testMultiLabelLoss(d);
  testRandom(d);
  if (gEmu) testStickyError(d);  // a device trap would destroy a real GPU's context
  testLaunchConfigError(d);
  testPendingAndCallbacks(d);
#if defined(VA_EMU)
  testBlasDispatch(d);
#endif
  // Second pass: a launch cap of one multiprocessor makes every grid-stride loop iterate.
  check(VA_TEST_NS::setLaunchCapForTesting(backend.get(), 1), "setLaunchCapForTesting");
  gBig = true;
  testBinary(d);
  testAffine(d);
  testUnary(d);
  testMatmul(d);
  testSoftmax(d);
  testLayerNorm(d);
  testReduce(d);
  testPool(d);
  testOutlook(d);
  testHalo(d);
  testCrossAttention(d);
  testKMeans(d);
  testL2Normalize(d);
  testGroupFC(d);
  testDropout(d);
  testMultiLabelLoss(d);
  testRandom(d);
  check(backend->synchronize().ok(), "final synchronize");
  va::MemoryStats m = backend->memory();
  check(m.allocations == 0 && m.allocatedBytes == 0, "no leaked allocations in the test");
  backend.reset();
  testDestroyWithWork();
  std::printf("%d passed, %d failed\n", gPassed, gFailed);
  return gFailed == 0 ? 0 : 1;
}
