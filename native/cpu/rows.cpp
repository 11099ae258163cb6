// visattn — cpu row-wise and windowed kernels: softmax(+backward), layerNorm(+backward), reduce,
// avgPool2d(+backward). Threaded over rows; every output element is computed by one task with a
// fixed summation order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/cpu_kernels.h"
#include "cpu/math_internal.h"

// -O2 only vectorises loops whose trip count is a known multiple of the vector width; these
// streaming loops need the dynamic cost model (as at -O3).
#pragma GCC optimize("vect-cost-model=dynamic")

namespace va {
namespace cpu {

namespace {
// Rows per task so that a task touches about `target` elements.
int64_t rowGrain(int64_t cols, int64_t target = 1 << 14) {
  return std::max<int64_t>(1, target / std::max<int64_t>(1, cols));
}
}  // namespace

void softmax(const SoftmaxParams& p, ThreadPool& pool) {
  const int64_t cols = p.cols;
  const math::MathKernels& vm = math::kernels();
  pool.parallelFor(p.rows, rowGrain(cols, 1 << 13), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const float* __restrict x = p.x + r * cols;
      float* __restrict y = p.y + r * cols;
      const float m = vm.rowMax(x, cols);
      vm.expShift(x, y, cols, m);  // y = exp(x − max)
      const double s = vm.sum(y, cols);
      if (p.log) {
        // (x − m) − log Σ, never x − (m + log Σ): m + log Σ rounded to float loses ulp(m)
        // (≈ 2e-3 at |m| ≈ 2e4), while x − m is exact for x near m.
        const float ls = static_cast<float>(std::log(s));
        for (int64_t j = 0; j < cols; ++j) y[j] = (x[j] - m) - ls;
      } else {
        const float inv = static_cast<float>(1.0 / s);
        for (int64_t j = 0; j < cols; ++j) y[j] *= inv;
      }
    }
  });
}

void softmaxBackward(const SoftmaxBackwardParams& p, ThreadPool& pool) {
  const int64_t cols = p.cols;
  const math::MathKernels& vm = math::kernels();
  pool.parallelFor(p.rows, rowGrain(cols, 1 << 13), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const float* __restrict x = p.x + r * cols;
      const float* __restrict dy = p.dy + r * cols;
      float* __restrict dx = p.dx + r * cols;
      const float m = vm.rowMax(x, cols);
      vm.expShift(x, dx, cols, m);  // unnormalised probabilities, kept in dx
      const float inv = static_cast<float>(1.0 / vm.sum(dx, cols));
      for (int64_t j = 0; j < cols; ++j) dx[j] *= inv;  // probabilities
      if (p.log) {
        const float sd = static_cast<float>(vm.sum(dy, cols));
        for (int64_t j = 0; j < cols; ++j) dx[j] = dy[j] - dx[j] * sd;
      } else {
        const float d = static_cast<float>(vm.dot(dy, dx, cols));
        for (int64_t j = 0; j < cols; ++j) dx[j] = dx[j] * (dy[j] - d);
      }
    }
  });
}

namespace {
// Mean and 1/sqrt(var + eps) of one row (biased variance, two passes; float lanes, double totals).
inline void rowStats(const math::MathKernels& vm, const float* x, int64_t cols, float eps, float* mean,
                     float* rstd) {
  const double mu = vm.sum(x, cols) / static_cast<double>(cols);
  const double var = vm.sumSqDiff(x, cols, static_cast<float>(mu)) / static_cast<double>(cols);
  *mean = static_cast<float>(mu);
  *rstd = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
}
}  // namespace

void layerNorm(const LayerNormParams& p, ThreadPool& pool) {
  const int64_t cols = p.cols;
  const math::MathKernels& vm = math::kernels();
  pool.parallelFor(p.rows, rowGrain(cols), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const float* __restrict x = p.x + r * cols;
      float* __restrict y = p.y + r * cols;
      float mu, rs;
      rowStats(vm, x, cols, p.eps, &mu, &rs);
      const float* __restrict g = p.gamma;
      const float* __restrict b = p.beta;
      for (int64_t j = 0; j < cols; ++j) y[j] = (x[j] - mu) * rs * g[j] + b[j];
    }
  });
}

namespace {
// x̂ = (x − μ)·rstd, g·dy, and the dgamma/dbeta partials of one row (restrict: lets it vectorise).
void lnBackwardRowA(const float* __restrict x, const float* __restrict dy, const float* __restrict g,
                    float* __restrict xh, float* __restrict gy, float* __restrict pg,
                    float* __restrict pb, int64_t cols, float mu, float rs) {
  for (int64_t j = 0; j < cols; ++j) {
    const float h = (x[j] - mu) * rs;
    xh[j] = h;
    gy[j] = dy[j] * g[j];
    pg[j] += dy[j] * h;
    pb[j] += dy[j];
  }
}
void lnBackwardRowB(const float* __restrict xh, const float* __restrict gy, float* __restrict dx,
                    int64_t cols, float rs, float mg, float mgx) {
  for (int64_t j = 0; j < cols; ++j) dx[j] = rs * (gy[j] - mg - xh[j] * mgx);
}
}  // namespace

void layerNormBackward(const LayerNormBackwardParams& p, ThreadPool& pool) {
  const int64_t rows = p.rows, cols = p.cols;
  const math::MathKernels& vm = math::kernels();
  // Fixed chunking of rows (depends on rows only): per-chunk partial sums of dgamma/dbeta, then a
  // sum over chunks in ascending order.
  const int64_t chunkRows = std::max<int64_t>(16, (rows + 255) / 256);
  const int64_t nChunks = (rows + chunkRows - 1) / chunkRows;
  std::vector<float> partG(static_cast<size_t>(nChunks * cols)), partB(static_cast<size_t>(nChunks * cols));
  const int64_t chunkGrain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, chunkRows * cols));
  pool.parallelFor(nChunks, chunkGrain, [&](int64_t cb, int64_t ce) {
    std::vector<float> tmp(static_cast<size_t>(2 * cols));
    float* __restrict xh = tmp.data();
    float* __restrict gy = tmp.data() + cols;
    for (int64_t c = cb; c < ce; ++c) {
      float* __restrict pg = partG.data() + c * cols;
      float* __restrict pb = partB.data() + c * cols;
      for (int64_t j = 0; j < cols; ++j) pg[j] = pb[j] = 0.0f;
      const int64_t r1 = std::min(rows, (c + 1) * chunkRows);
      for (int64_t r = c * chunkRows; r < r1; ++r) {
        const float* __restrict x = p.x + r * cols;
        const float* __restrict dy = p.dy + r * cols;
        float* __restrict dx = p.dx + r * cols;
        const float* __restrict g = p.gamma;
        float mu, rs;
        rowStats(vm, x, cols, p.eps, &mu, &rs);
        lnBackwardRowA(x, dy, g, xh, gy, pg, pb, cols, mu, rs);
        const float mg = static_cast<float>(vm.sum(gy, cols) / static_cast<double>(cols));
        const float mgx = static_cast<float>(vm.dot(gy, xh, cols) / static_cast<double>(cols));
        lnBackwardRowB(xh, gy, dx, cols, rs, mg, mgx);
      }
    }
  });
  pool.parallelFor(cols, std::max<int64_t>(1, (1 << 14) / nChunks), [&](int64_t jb, int64_t je) {
    for (int64_t j = jb; j < je; ++j) {
      float sg = 0.0f, sb = 0.0f;
      for (int64_t c = 0; c < nChunks; ++c) {
        sg += partG[c * cols + j];
        sb += partB[c * cols + j];
      }
      p.dgamma[j] = sg;
      p.dbeta[j] = sb;
    }
  });
}

void reduce(const ReduceParams& p, ThreadPool& pool) {
  const int64_t outer = p.outer, len = p.len, inner = p.inner;
  const float scale = p.scale;
  if (inner == 1) {
    pool.parallelFor(outer, rowGrain(len), [&](int64_t ob, int64_t oe) {
      for (int64_t o = ob; o < oe; ++o) {
        const float* x = p.x + o * len;
        double s = 0.0;
        for (int64_t l = 0; l < len; ++l) s += x[l];
        p.y[o] = scale * static_cast<float>(s);
      }
    });
    return;
  }
  constexpr int64_t kBlock = 512;  // inner columns per task
  const int64_t nb = (inner + kBlock - 1) / kBlock;
  pool.parallelFor(outer * nb, std::max<int64_t>(1, (1 << 14) / (len * std::min(inner, kBlock))),
                   [&](int64_t tb, int64_t te) {
    double acc[kBlock];
    for (int64_t t = tb; t < te; ++t) {
      const int64_t o = t / nb, i0 = (t % nb) * kBlock;
      const int64_t w = std::min(kBlock, inner - i0);
      for (int64_t i = 0; i < w; ++i) acc[i] = 0.0;
      const float* x = p.x + o * len * inner + i0;
      for (int64_t l = 0; l < len; ++l) {
        const float* xl = x + l * inner;
        for (int64_t i = 0; i < w; ++i) acc[i] += xl[i];
      }
      float* y = p.y + o * inner + i0;
      for (int64_t i = 0; i < w; ++i) y[i] = scale * static_cast<float>(acc[i]);
    }
  });
}

void avgPool2d(const AvgPool2dParams& p, ThreadPool& pool) {
  const int64_t H = p.H, W = p.W, C = p.C, Ho = p.Ho, Wo = p.Wo;
  const int64_t k = p.kernel, s = p.stride;
  pool.parallelFor(p.B * Ho, rowGrain(Wo * C * k * k), [&](int64_t tb, int64_t te) {
    std::vector<float> acc(static_cast<size_t>(C));
    for (int64_t t = tb; t < te; ++t) {
      const int64_t b = t / Ho, i = t % Ho;
      const int64_t h0 = i * s, h1 = std::min(H, i * s + k);
      for (int64_t j = 0; j < Wo; ++j) {
        const int64_t w0 = j * s, w1 = std::min(W, j * s + k);
        float* __restrict y = p.y + ((b * Ho + i) * Wo + j) * C;
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) {
            const float* __restrict x = p.x + ((b * H + h) * W + w) * C;
            float* __restrict a = acc.data();
            for (int64_t c = 0; c < C; ++c) a[c] += x[c];
          }
        const int64_t cnt = (h1 > h0 && w1 > w0) ? (h1 - h0) * (w1 - w0) : 0;
        const float inv = cnt > 0 ? 1.0f / static_cast<float>(cnt) : 0.0f;
        for (int64_t c = 0; c < C; ++c) y[c] = acc[c] * inv;
      }
    }
  });
}

void avgPool2dBackward(const AvgPool2dBackwardParams& p, ThreadPool& pool) {
  const int64_t H = p.H, W = p.W, C = p.C, Ho = p.Ho, Wo = p.Wo;
  const int64_t k = p.kernel, s = p.stride;
  // Gather form: dx(y, x) sums the windows (i, j) with i·s <= y < i·s + k.
  auto firstWin = [&](int64_t pos) { return pos - k + 1 <= 0 ? int64_t(0) : (pos - k + 1 + s - 1) / s; };
  pool.parallelFor(p.B * H, rowGrain(W * C * ((k + s - 1) / s) * ((k + s - 1) / s)), [&](int64_t tb, int64_t te) {
    for (int64_t t = tb; t < te; ++t) {
      const int64_t b = t / H, yy = t % H;
      const int64_t i0 = firstWin(yy), i1 = std::min(Ho - 1, yy / s);
      for (int64_t xx = 0; xx < W; ++xx) {
        const int64_t j0 = firstWin(xx), j1 = std::min(Wo - 1, xx / s);
        float* __restrict dx = p.dx + ((b * H + yy) * W + xx) * C;
        for (int64_t c = 0; c < C; ++c) dx[c] = 0.0f;
        for (int64_t i = i0; i <= i1; ++i) {
          const int64_t ch = std::min(H, i * s + k) - i * s;
          for (int64_t j = j0; j <= j1; ++j) {
            const int64_t cw = std::min(W, j * s + k) - j * s;
            const float inv = 1.0f / static_cast<float>(ch * cw);
            const float* __restrict dy = p.dy + ((b * Ho + i) * Wo + j) * C;
            for (int64_t c = 0; c < C; ++c) dx[c] += dy[c] * inv;
          }
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace va
