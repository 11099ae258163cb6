// visattn — cpu element-wise kernels: binary, affine, unary(+backward), fill, copy, random.
// Memory-bound loops written so the compiler vectorises them; threaded over fixed-size chunks.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/cpu_kernels.h"
#include "cpu/math_internal.h"
#include "visattn/philox.h"

// -O2 only vectorises loops whose trip count is a known multiple of the vector width; these
// streaming loops need the dynamic cost model (as at -O3).
#pragma GCC optimize("vect-cost-model=dynamic")

namespace va {
namespace cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;  // elements per task for streaming kernels
constexpr int64_t kGrainMath = 1 << 12;  // elements per task for transcendental kernels

}  // namespace

void binary(const BinaryParams& p, ThreadPool& pool) {
  const int64_t inner = p.inner, n = p.outer * p.inner;
  if (n <= 0) return;
  pool.parallelFor(n, kGrain, [&](int64_t b, int64_t e) {
    int64_t o = b / inner, i = b % inner, idx = b;
    while (idx < e) {
      int64_t len = std::min<int64_t>(inner - i, e - idx);
      const float* __restrict a = p.aBcast ? p.a + i : p.a + o * inner + i;
      const float* __restrict bb = p.bBcast ? p.b + i : p.b + o * inner + i;
      float* __restrict out = p.out + o * inner + i;
      switch (p.op) {
        case BinaryOp::Add: for (int64_t t = 0; t < len; ++t) out[t] = a[t] + bb[t]; break;
        case BinaryOp::Sub: for (int64_t t = 0; t < len; ++t) out[t] = a[t] - bb[t]; break;
        case BinaryOp::Mul: for (int64_t t = 0; t < len; ++t) out[t] = a[t] * bb[t]; break;
      }
      idx += len;
      i = 0;
      ++o;
    }
  });
}

void affine(const AffineParams& p, ThreadPool& pool) {
  const float alpha = p.alpha, beta = p.beta;
  pool.parallelFor(p.n, kGrain, [&](int64_t b, int64_t e) {
    const float* __restrict x = p.x;
    float* __restrict out = p.out;
    for (int64_t i = b; i < e; ++i) out[i] = alpha * x[i] + beta;
  });
}

void unary(const UnaryParams& p, ThreadPool& pool) {
  const math::MathKernels& vm = math::kernels();
  pool.parallelFor(p.n, p.op == UnaryOp::Relu ? kGrain : kGrainMath, [&](int64_t b, int64_t e) {
    const float* __restrict x = p.x;
    float* __restrict out = p.out;
    switch (p.op) {
      case UnaryOp::Relu:
        for (int64_t i = b; i < e; ++i) out[i] = x[i] < 0.0f ? 0.0f : x[i];  // NaN propagates
        break;
      case UnaryOp::Gelu:
        vm.gelu(x + b, out + b, e - b);
        break;
      case UnaryOp::Silu: {
        vm.silu(x + b, out + b, e - b);
        break;
      }
    }
  });
}

void unaryBackward(const UnaryBackwardParams& p, ThreadPool& pool) {
  const math::MathKernels& vm = math::kernels();
  pool.parallelFor(p.n, p.op == UnaryOp::Relu ? kGrain : kGrainMath, [&](int64_t b, int64_t e) {
    const float* __restrict x = p.x;
    const float* __restrict dy = p.dy;
    float* __restrict dx = p.dx;
    switch (p.op) {
      case UnaryOp::Relu:
        for (int64_t i = b; i < e; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;  // relu'(0) = 0
        break;
      case UnaryOp::Gelu:
        vm.geluBackward(x + b, dy + b, dx + b, e - b);
        break;
      case UnaryOp::Silu: {
        vm.siluBackward(x + b, dy + b, dx + b, e - b);
        break;
      }
    }
  });
}

void fill(const FillParams& p, ThreadPool& pool) {
  const uint32_t bits = p.bits;
  pool.parallelFor(p.n, kGrain * 4, [&](int64_t b, int64_t e) {
    uint32_t* __restrict d = static_cast<uint32_t*>(p.dst);
    for (int64_t i = b; i < e; ++i) d[i] = bits;
  });
}

void copy(const CopyParams& p, ThreadPool& pool) {
  const int nd = p.ndim < 1 ? 1 : (p.ndim > kMaxDims ? kMaxDims : p.ndim);
  for (int d = 0; d < nd; ++d)
    if (p.shape[d] <= 0) return;
  const int64_t inner = p.shape[nd - 1];
  const int64_t sIn = p.srcStride[nd - 1], dIn = p.dstStride[nd - 1];
  int64_t rows = 1;
  for (int d = 0; d < nd - 1; ++d) rows *= p.shape[d];
  const bool exact = p.scale == 1.0f;
  const float scale = p.scale;
  const int64_t grain = std::max<int64_t>(1, kGrain / inner);
  pool.parallelFor(rows, grain, [&](int64_t rb, int64_t re) {
    // Decompose rb into the outer index tuple (last outer dim fastest).
    int64_t idx[kMaxDims] = {0};
    int64_t r = rb;
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = r % p.shape[d];
      r /= p.shape[d];
    }
    int64_t so = p.srcOffset, dof = p.dstOffset;
    for (int d = 0; d < nd - 1; ++d) {
      so += idx[d] * p.srcStride[d];
      dof += idx[d] * p.dstStride[d];
    }
    for (int64_t row = rb; row < re; ++row) {
      if (exact) {
        const uint32_t* s = static_cast<const uint32_t*>(p.src) + so;
        uint32_t* dd = static_cast<uint32_t*>(p.dst) + dof;
        if (sIn == 1 && dIn == 1) std::memcpy(dd, s, sizeof(uint32_t) * inner);
        else if (sIn == 0) { uint32_t v = s[0]; for (int64_t t = 0; t < inner; ++t) dd[t * dIn] = v; }
        else for (int64_t t = 0; t < inner; ++t) dd[t * dIn] = s[t * sIn];
      } else {
        const float* s = static_cast<const float*>(p.src) + so;
        float* dd = static_cast<float*>(p.dst) + dof;
        if (sIn == 1 && dIn == 1) for (int64_t t = 0; t < inner; ++t) dd[t] = scale * s[t];
        else for (int64_t t = 0; t < inner; ++t) dd[t * dIn] = scale * s[t * sIn];
      }
      // Advance the outer index tuple.
      for (int d = nd - 2; d >= 0; --d) {
        so += p.srcStride[d];
        dof += p.dstStride[d];
        if (++idx[d] < p.shape[d]) break;
        so -= idx[d] * p.srcStride[d];
        dof -= idx[d] * p.dstStride[d];
        idx[d] = 0;
      }
    }
  });
}

void random(const RandomParams& p, ThreadPool& pool) {
  const int64_t groups = (p.n + 3) / 4;
  pool.parallelFor(groups, 1024, [&](int64_t gb, int64_t ge) {
    for (int64_t g = gb; g < ge; ++g) {
      philox::U4 r = philox::philox4x32_10(static_cast<uint64_t>(g), p.offset, p.seed);
      const int64_t base = g * 4;
      const int cnt = static_cast<int>(std::min<int64_t>(4, p.n - base));
      for (int lane = 0; lane < cnt; ++lane) {
        float v;
        if (p.kind == RandomKind::Normal) {
          volatile float prod = p.std * philox::normalAt(r, lane);  // no FMA: matches cuda/emu
          v = prod + p.mean;
        } else {
          v = philox::uniform24(r.v[lane]);
        }
        p.out[base + lane] = v;
      }
    }
  });
}

}  // namespace cpu
}  // namespace va
