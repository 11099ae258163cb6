// visattn binding — op entry points. Each unwraps storage handles, fills the op family's param struct
// (shapes were validated in lib/ops) and enqueues on the device that owns the first tensor.
// Returns undefined, or an error string that TypeScript turns into an Error.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "binding/addon.h"

namespace va {
namespace binding {
namespace {

// Reads positional arguments in order; the first problem becomes the call's error message.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}

  // A tensor storage; null allowed when `optional` and the argument is null/undefined. Storages are
  // numbered in the order they are read (for need()).
  void* ptr(bool optional = false) {
    const Napi::Value& v = info_[i_++];
    storages_.push_back(nullptr);
    if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
    Handle* h = handleOf(v);
    if (!h || !h->storage) {
      fail("argument " + std::to_string(i_ - 1) + " is not a live tensor storage");
      return nullptr;
    }
    if (!backend_) backend_ = h->storage->backend.get();
    else if (backend_ != h->storage->backend.get()) fail("tensors live on different devices");
    storages_.back() = h->storage.get();
    return h->storage->ptr;
  }
  // Safety net below TypeScript's validation: storage k (when present) must hold `elements` 4-byte
  // elements; a negative count means the sizes were inconsistent or overflowed.
  void need(size_t k, int64_t elements) {
    if (k >= storages_.size() || !storages_[k]) return;
    if (elements < 0) {
      fail("inconsistent or overflowing sizes");
    } else if (static_cast<uint64_t>(elements) > storages_[k]->bytes / 4) {
      fail("tensor argument " + std::to_string(k) + " holds " + std::to_string(storages_[k]->bytes / 4) +
           " elements but the op reads or writes " + std::to_string(elements));
    }
  }
  // The parsed sizes must be positive (kernels divide by or loop over them).
  void positive(int64_t v, const char* what) {
    if (v <= 0) fail(std::string(what) + " must be positive, got " + std::to_string(v));
  }
  int64_t i64() {
    int64_t v = static_cast<int64_t>(info_[i_++].As<Napi::Number>().Int64Value());
    return v;
  }
  int32_t i32() { return info_[i_++].As<Napi::Number>().Int32Value(); }
  double f64() { return info_[i_++].As<Napi::Number>().DoubleValue(); }
  float f32() { return static_cast<float>(f64()); }
  bool flag() { return info_[i_++].ToBoolean().Value(); }
  int dims(int64_t* out) {
    Napi::Array a = info_[i_++].As<Napi::Array>();
    int n = static_cast<int>(a.Length());
    if (n < 1 || n > kMaxDims) {
      fail("expected 1 to " + std::to_string(kMaxDims) + " dimensions, got " + std::to_string(n));
      return 0;
    }
    for (int d = 0; d < n; ++d) out[d] = static_cast<int64_t>(a.Get(static_cast<uint32_t>(d)).As<Napi::Number>().Int64Value());
    return n;
  }

  // Runs the op when all arguments were good; converts a Status to the JS return value.
  template <typename F>
  Napi::Value finish(F&& call) {
    Napi::Env env = info_.Env();
    if (error_.empty() && !backend_) error_ = "no tensor argument";
    if (!error_.empty()) return Napi::String::New(env, std::string(op_) + ": " + error_);
    Status st;
    try {
      st = call(*backend_);
    } catch (const std::exception& e) {
      st = Status::Error(e.what());
    }
    if (!st.ok()) return Napi::String::New(env, std::string(op_) + ": " + st.message());
    return env.Undefined();
  }

 private:
  void fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
  }
  const Napi::CallbackInfo& info_;
  const char* op_;
  size_t i_ = 0;
  Backend* backend_ = nullptr;
  std::vector<const Storage*> storages_;
  std::string error_;
};

// Checked arithmetic for element counts: -1 once anything is negative or overflows.
int64_t mul(std::initializer_list<int64_t> xs) {
  int64_t r = 1;
  for (int64_t x : xs) {
    if (x < 0 || r < 0 || __builtin_mul_overflow(r, x, &r)) return -1;
  }
  return r;
}
int64_t add(int64_t a, int64_t b) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) return -1;
  return r;
}
// Elements spanned by `batch` matrices of `per` elements `stride` apart (stride 0: one matrix).
int64_t span(int64_t batch, int64_t stride, int64_t per) {
  if (batch <= 0) return 0;
  return stride == 0 ? per : add(mul({batch - 1, stride}), per);
}

// binary(op, a, b, out, outer, inner, aBcast, bBcast)
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Args a(info, "binary");
  BinaryParams p{};
  p.op = static_cast<BinaryOp>(a.i32());
  p.a = static_cast<const float*>(a.ptr());
  p.b = static_cast<const float*>(a.ptr());
  p.out = static_cast<float*>(a.ptr());
  p.outer = a.i64();
  p.inner = a.i64();
  p.aBcast = a.flag();
  p.bBcast = a.flag();
  const int64_t n = mul({p.outer, p.inner});
  a.need(0, p.aBcast ? p.inner : n);
  a.need(1, p.bBcast ? p.inner : n);
  a.need(2, n);
  return a.finish([&](Backend& b) { return b.binary(p); });
}

// affine(x, out, n, alpha, beta)
Napi::Value Affine(const Napi::CallbackInfo& info) {
  Args a(info, "affine");
  AffineParams p{};
  p.x = static_cast<const float*>(a.ptr());
  p.out = static_cast<float*>(a.ptr());
  p.n = a.i64();
  p.alpha = a.f32();
  p.beta = a.f32();
  a.need(0, p.n);
  a.need(1, p.n);
  return a.finish([&](Backend& b) { return b.affine(p); });
}

// unary(op, x, out, n)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  Args a(info, "unary");
  UnaryParams p{};
  p.op = static_cast<UnaryOp>(a.i32());
  p.x = static_cast<const float*>(a.ptr());
  p.out = static_cast<float*>(a.ptr());
  p.n = a.i64();
  a.need(0, p.n);
  a.need(1, p.n);
  return a.finish([&](Backend& b) { return b.unary(p); });
}

// unaryBackward(op, x, dy, dx, n)
Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  Args a(info, "unaryBackward");
  UnaryBackwardParams p{};
  p.op = static_cast<UnaryOp>(a.i32());
  p.x = static_cast<const float*>(a.ptr());
  p.dy = static_cast<const float*>(a.ptr());
  p.dx = static_cast<float*>(a.ptr());
  p.n = a.i64();
  for (size_t k = 0; k < 3; ++k) a.need(k, p.n);
  return a.finish([&](Backend& b) { return b.unaryBackward(p); });
}

// matmul(a, b, c, bias|null, batch, M, N, K, strideA, strideB, strideC, transA, transB, alpha, beta)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Args a(info, "matmul");
  MatmulParams p{};
  p.a = static_cast<const float*>(a.ptr());
  p.b = static_cast<const float*>(a.ptr());
  p.c = static_cast<float*>(a.ptr());
  p.bias = static_cast<const float*>(a.ptr(true));
  p.batch = a.i64();
  p.M = a.i64();
  p.N = a.i64();
  p.K = a.i64();
  p.strideA = a.i64();
  p.strideB = a.i64();
  p.strideC = a.i64();
  p.transA = a.flag();
  p.transB = a.flag();
  p.alpha = a.f32();
  p.beta = a.f32();
  a.positive(p.batch, "batch");
  a.positive(p.M, "M");
  a.positive(p.N, "N");
  a.positive(p.K, "K");
  if (p.strideA < 0 || p.strideB < 0 || p.strideC < 0) a.need(0, -1);
  a.need(0, span(p.batch, p.strideA, mul({p.M, p.K})));
  a.need(1, span(p.batch, p.strideB, mul({p.K, p.N})));
  a.need(2, span(p.batch, p.strideC, mul({p.M, p.N})));
  a.need(3, p.N);
  return a.finish([&](Backend& b) { return b.matmul(p); });
}

// softmax(x, y, rows, cols, log)
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Args a(info, "softmax");
  SoftmaxParams p{};
  p.x = static_cast<const float*>(a.ptr());
  p.y = static_cast<float*>(a.ptr());
  p.rows = a.i64();
  p.cols = a.i64();
  p.log = a.flag();
  a.positive(p.cols, "cols");
  for (size_t k = 0; k < 2; ++k) a.need(k, mul({p.rows, p.cols}));
  return a.finish([&](Backend& b) { return b.softmax(p); });
}

// softmaxBackward(x, dy, dx, rows, cols, log)
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxBackward");
  SoftmaxBackwardParams p{};
  p.x = static_cast<const float*>(a.ptr());
  p.dy = static_cast<const float*>(a.ptr());
  p.dx = static_cast<float*>(a.ptr());
  p.rows = a.i64();
  p.cols = a.i64();
  p.log = a.flag();
  a.positive(p.cols, "cols");
  for (size_t k = 0; k < 3; ++k) a.need(k, mul({p.rows, p.cols}));
  return a.finish([&](Backend& b) { return b.softmaxBackward(p); });
}

// layerNorm(x, gamma, beta, y, rows, cols, eps)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  Args a(info, "layerNorm");
  LayerNormParams p{};
  p.x = static_cast<const float*>(a.ptr());
  p.gamma = static_cast<const float*>(a.ptr());
  p.beta = static_cast<const float*>(a.ptr());
  p.y = static_cast<float*>(a.ptr());
  p.rows = a.i64();
  p.cols = a.i64();
  p.eps = a.f32();
  a.positive(p.cols, "cols");
  a.need(0, mul({p.rows, p.cols}));
  a.need(1, p.cols);
  a.need(2, p.cols);
  a.need(3, mul({p.rows, p.cols}));
  return a.finish([&](Backend& b) { return b.layerNorm(p); });
}

// layerNormBackward(x, gamma, dy, dx, dgamma, dbeta, rows, cols, eps)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  Args a(info, "layerNormBackward");
  LayerNormBackwardParams p{};
  p.x = static_cast<const float*>(a.ptr());
  p.gamma = static_cast<const float*>(a.ptr());
  p.dy = static_cast<const float*>(a.ptr());
  p.dx = static_cast<float*>(a.ptr());
  p.dgamma = static_cast<float*>(a.ptr());
  p.dbeta = static_cast<float*>(a.ptr());
  p.rows = a.i64();
  p.cols = a.i64();
  p.eps = a.f32();
  a.positive(p.cols, "cols");
  for (size_t k : {0, 2, 3}) a.need(k, mul({p.rows, p.cols}));
  for (size_t k : {1, 4, 5}) a.need(k, p.cols);
  return a.finish([&](Backend& b) { return b.layerNormBackward(p); });
}

// reduce(x, y, outer, len, inner, scale)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Args a(info, "reduce");
  ReduceParams p{};
  p.x = static_cast<const float*>(a.ptr());
  p.y = static_cast<float*>(a.ptr());
  p.outer = a.i64();
  p.len = a.i64();
  p.inner = a.i64();
  p.scale = a.f32();
  a.positive(p.len, "len");
  a.need(0, mul({p.outer, p.len, p.inner}));
  a.need(1, mul({p.outer, p.inner}));
  return a.finish([&](Backend& b) { return b.reduce(p); });
}

// copy(src, dst, shape[], srcStride[], dstStride[], srcOffset, dstOffset, scale)
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Args a(info, "copy");
  CopyParams p{};
  p.src = a.ptr();
  p.dst = a.ptr();
  p.ndim = a.dims(p.shape);
  a.dims(p.srcStride);
  a.dims(p.dstStride);
  p.srcOffset = a.i64();
  p.dstOffset = a.i64();
  p.scale = a.f32();
  int64_t srcEnd = p.srcOffset, dstEnd = p.dstOffset;
  for (int d = 0; d < p.ndim; ++d) {
    if (p.shape[d] <= 0 || p.srcStride[d] < 0 || p.dstStride[d] < 0) srcEnd = -1;
    srcEnd = add(srcEnd, mul({p.shape[d] - 1, p.srcStride[d]}));
    dstEnd = add(dstEnd, mul({p.shape[d] - 1, p.dstStride[d]}));
  }
  a.need(0, add(srcEnd, 1));
  a.need(1, add(dstEnd, 1));
  return a.finish([&](Backend& b) { return b.copy(p); });
}

// fill(dst, n, bits)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  Args a(info, "fill");
  FillParams p{};
  p.dst = a.ptr();
  p.n = a.i64();
  p.bits = static_cast<uint32_t>(a.i64());
  a.need(0, p.n);
  return a.finish([&](Backend& b) { return b.fill(p); });
}

// avgPool2d(x, y, B, H, W, C, Ho, Wo, kernel, stride)  (also the backward with dy, dx)
template <bool kBackward>
Napi::Value AvgPool(const Napi::CallbackInfo& info) {
  Args a(info, kBackward ? "avgPool2dBackward" : "avgPool2d");
  const void* in = a.ptr();
  void* out = a.ptr();
  int64_t B = a.i64(), H = a.i64(), W = a.i64(), C = a.i64(), Ho = a.i64(), Wo = a.i64();
  int32_t k = a.i32(), s = a.i32();
  a.positive(k, "kernel");
  a.positive(s, "stride");
  a.need(kBackward ? 1 : 0, mul({B, H, W, C}));
  a.need(kBackward ? 0 : 1, mul({B, Ho, Wo, C}));
  if (kBackward) {
    AvgPool2dBackwardParams p{static_cast<const float*>(in), static_cast<float*>(out), B, H, W, C, Ho, Wo, k, s};
    return a.finish([&](Backend& b) { return b.avgPool2dBackward(p); });
  }
  AvgPool2dParams p{static_cast<const float*>(in), static_cast<float*>(out), B, H, W, C, Ho, Wo, k, s};
  return a.finish([&](Backend& b) { return b.avgPool2d(p); });
}

// random(out, n, seed, offset, kind, mean, std)   seed/offset: integers < 2^53
Napi::Value Random(const Napi::CallbackInfo& info) {
  Args a(info, "random");
  RandomParams p{};
  p.out = static_cast<float*>(a.ptr());
  p.n = a.i64();
  p.seed = static_cast<uint64_t>(a.f64());
  p.offset = static_cast<uint64_t>(a.f64());
  p.kind = static_cast<RandomKind>(a.i32());
  p.mean = a.f32();
  p.std = a.f32();
  a.need(0, p.n);
  return a.finish([&](Backend& b) { return b.random(p); });
}

// outlookAttention(v, logits, out, B, H, W, C, h, w, heads, kernel, pad, stride, scale)
// outlookAttentionBackward(v, logits, dOut, dV, dLogits, B, H, W, C, h, w, heads, kernel, pad, stride, scale)
template <bool kBackward>
Napi::Value Outlook(const Napi::CallbackInfo& info) {
  Args a(info, kBackward ? "outlookAttentionBackward" : "outlookAttention");
  const float* v = static_cast<const float*>(a.ptr());
  const float* logits = static_cast<const float*>(a.ptr());
  const float* dOut = kBackward ? static_cast<const float*>(a.ptr()) : nullptr;
  float* o1 = static_cast<float*>(a.ptr());
  float* o2 = kBackward ? static_cast<float*>(a.ptr()) : nullptr;
  int64_t B = a.i64(), H = a.i64(), W = a.i64(), C = a.i64(), h = a.i64(), w = a.i64();
  int32_t heads = a.i32(), kernel = a.i32(), pad = a.i32(), stride = a.i32();
  float scale = a.f32();
  a.positive(heads, "heads");
  a.positive(kernel, "kernel");
  a.positive(stride, "stride");
  if (heads > 0 && C % heads != 0) a.need(0, -1);
  if (pad < 0 || pad >= kernel) a.need(0, -1);
  const int64_t image = mul({B, H, W, C});
  const int64_t logitsN = mul({B, h, w, heads, kernel, kernel, kernel, kernel});
  a.need(0, image);
  a.need(1, logitsN);
  a.need(2, image);
  if (kBackward) {
    a.need(3, image);
    a.need(4, logitsN);
    OutlookBackwardParams p{v, logits, dOut, o1, o2, B, H, W, C, h, w, heads, kernel, pad, stride, scale};
    return a.finish([&](Backend& b) { return b.outlookAttentionBackward(p); });
  }
  OutlookParams p{v, logits, o1, B, H, W, C, h, w, heads, kernel, pad, stride, scale};
  return a.finish([&](Backend& b) { return b.outlookAttention(p); });
}

// haloAttention(q, k, v, relH, relW, out, lse, B, H, W, heads, dk, dv, block, halo, stride, scale, scalePosEmbed)
// haloAttentionBackward(q, k, v, relH, relW, out, lse, dOut, dQ, dK, dV, dRelH, dRelW,
//                       B, H, W, heads, dk, dv, block, halo, stride, scale, scalePosEmbed)
template <bool kBackward>
Napi::Value Halo(const Napi::CallbackInfo& info) {
  Args a(info, kBackward ? "haloAttentionBackward" : "haloAttention");
  const float* in[8] = {};
  const int nIn = kBackward ? 8 : 5;
  for (int i = 0; i < nIn; ++i) in[i] = static_cast<const float*>(a.ptr());
  float* o[5] = {};
  const int nOut = kBackward ? 5 : 2;
  for (int i = 0; i < nOut; ++i) o[i] = static_cast<float*>(a.ptr());
  int64_t B = a.i64(), H = a.i64(), W = a.i64();
  int32_t heads = a.i32(), dk = a.i32(), dv = a.i32(), block = a.i32(), halo = a.i32(), stride = a.i32();
  float scale = a.f32();
  bool scalePosEmbed = a.flag();
  a.positive(B, "B");
  a.positive(H, "H");
  a.positive(W, "W");
  a.positive(heads, "heads");
  a.positive(dk, "dk");
  a.positive(dv, "dv");
  a.positive(block, "block");
  if (halo < 0 || stride < 1 || stride > 2 || (stride == 2 && block % 2 != 0)) a.need(0, -1);
  if (block > 0 && (H % block != 0 || W % block != 0)) a.need(0, -1);
  const int64_t s = stride > 0 ? stride : 1;
  const int64_t rows = mul({B, H / s, W / s, heads});
  const int64_t qN = mul({rows, dk}), kN = mul({B, H, W, heads, dk}), vN = mul({B, H, W, heads, dv});
  const int64_t win = static_cast<int64_t>(block) + 2 * static_cast<int64_t>(halo);
  const int64_t relN = win > 0 ? mul({2 * win - 1, dk}) : -1;
  const int64_t outN = mul({rows, dv});
  const int64_t sizes[8] = {qN, kN, vN, relN, relN, outN, rows, outN};
  for (int i = 0; i < 7; ++i) a.need(i, sizes[i]);
  if (kBackward) {
    a.need(7, outN);
    const int64_t gsz[5] = {qN, kN, vN, relN, relN};
    for (int i = 0; i < 5; ++i) a.need(8 + i, gsz[i]);
    HaloBackwardParams p{in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], o[0], o[1], o[2], o[3], o[4],
                         B, H, W, heads, dk, dv, block, halo, stride, scale, scalePosEmbed};
    return a.finish([&](Backend& b) { return b.haloAttentionBackward(p); });
  }
  HaloParams p{in[0], in[1], in[2], in[3], in[4], o[0], o[1], B, H, W, heads, dk, dv, block, halo, stride,
               scale, scalePosEmbed};
  return a.finish([&](Backend& b) { return b.haloAttention(p); });
}

// seeds/offsets arrive as JS numbers (integers < 2^53)
uint64_t u53(double v) { return v > 0 ? static_cast<uint64_t>(v) : 0; }

// dropout(x, out, n, p, seed, offset)
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  Args a(info, "dropout");
  DropoutParams p{};
  p.x = static_cast<const float*>(a.ptr());
  p.out = static_cast<float*>(a.ptr());
  p.n = a.i64();
  p.p = a.f32();
  p.seed = u53(a.f64());
  p.offset = u53(a.f64());
  if (!(p.p >= 0.0f && p.p < 1.0f)) a.need(0, -1);
  a.need(0, p.n);
  a.need(1, p.n);
  return a.finish([&](Backend& b) { return b.dropout(p); });
}

// crossAttention(q, k, v, out, lse, B, Bq, Lq, Lk, heads, d, dv, scale, dropout, seed)
// crossAttentionBackward(q, k, v, out, lse, dOut, dQ, dK, dV, B, Bq, Lq, Lk, heads, d, dv, scale, dropout, seed)
template <bool kBackward>
Napi::Value CrossAttention(const Napi::CallbackInfo& info) {
  Args a(info, kBackward ? "crossAttentionBackward" : "crossAttention");
  const float* in[6] = {};
  const int nIn = kBackward ? 6 : 3;
  for (int i = 0; i < nIn; ++i) in[i] = static_cast<const float*>(a.ptr());
  float* o[3] = {};
  const int nOut = kBackward ? 3 : 2;
  for (int i = 0; i < nOut; ++i) o[i] = static_cast<float*>(a.ptr());
  int64_t B = a.i64(), Bq = a.i64(), Lq = a.i64(), Lk = a.i64();
  int32_t heads = a.i32(), d = a.i32(), dv = a.i32();
  float scale = a.f32(), dropout = a.f32();
  uint64_t seed = u53(a.f64());
  for (int64_t x : {B, Lq, Lk, static_cast<int64_t>(heads), static_cast<int64_t>(d), static_cast<int64_t>(dv)}) {
    a.positive(x, "every size");
  }
  if (!(Bq == 1 || Bq == B) || !(dropout >= 0.0f && dropout < 1.0f)) a.need(0, -1);
  const int64_t qN = mul({Bq, Lq, heads, d}), kN = mul({B, Lk, heads, d}), vN = mul({B, Lk, heads, dv});
  const int64_t outN = mul({B, Lq, heads, dv}), lseN = mul({B, heads, Lq});
  const int64_t sizes[9] = {qN, kN, vN, outN, lseN, outN, qN, kN, vN};
  if (kBackward) {
    for (int i = 0; i < 9; ++i) a.need(i, sizes[i]);
    CrossAttentionBackwardParams p{in[0], in[1], in[2], in[3], in[4], in[5], o[0], o[1], o[2],
                                   B, Bq, Lq, Lk, heads, d, dv, scale, dropout, seed};
    return a.finish([&](Backend& b) { return b.crossAttentionBackward(p); });
  }
  for (int i = 0; i < 5; ++i) a.need(i, sizes[i]);
  CrossAttentionParams p{in[0], in[1], in[2], o[0], o[1], B, Bq, Lq, Lk, heads, d, dv, scale, dropout, seed};
  return a.finish([&](Backend& b) { return b.crossAttention(p); });
}

// groupFC(x, w, bias|null, out, B, K, D, g, N)
// groupFCBackward(x, w, dOut, dX, dW, dBias, B, K, D, g, N)
template <bool kBackward>
Napi::Value GroupFC(const Napi::CallbackInfo& info) {
  Args a(info, kBackward ? "groupFCBackward" : "groupFC");
  const float* x = static_cast<const float*>(a.ptr());
  const float* w = static_cast<const float*>(a.ptr());
  const float* third = static_cast<const float*>(a.ptr(!kBackward));
  float* o[3] = {};
  const int nOut = kBackward ? 3 : 1;
  for (int i = 0; i < nOut; ++i) o[i] = static_cast<float*>(a.ptr());
  int64_t B = a.i64(), K = a.i64(), D = a.i64(), g = a.i64(), N = a.i64();
  for (int64_t v : {B, K, D, g, N}) a.positive(v, "every size");
  if (N > mul({K, g}) || N <= mul({K - 1, g})) a.need(0, -1);
  const int64_t xN = mul({B, K, D}), wN = mul({K, D, g}), lN = mul({B, N});
  a.need(0, xN);
  a.need(1, wN);
  a.need(2, kBackward ? lN : N);
  if (kBackward) {
    a.need(3, xN);
    a.need(4, wN);
    a.need(5, N);
    GroupFCBackwardParams p{x, w, third, o[0], o[1], o[2], B, K, D, g, N};
    return a.finish([&](Backend& b) { return b.groupFCBackward(p); });
  }
  a.need(3, lN);
  GroupFCParams p{x, w, third, o[0], B, K, D, g, N};
  return a.finish([&](Backend& b) { return b.groupFC(p); });
}

// multiLabelLoss(logits, targets, loss, grad|null, n, kind, gammaPos, gammaNeg, clip, eps, focalGrad)
Napi::Value MultiLabelLoss(const Napi::CallbackInfo& info) {
  Args a(info, "multiLabelLoss");
  MultiLabelLossParams p{};
  p.logits = static_cast<const float*>(a.ptr());
  p.targets = static_cast<const float*>(a.ptr());
  p.loss = static_cast<float*>(a.ptr());
  p.grad = static_cast<float*>(a.ptr(true));
  p.n = a.i64();
  const int32_t kind = a.i32();
  p.kind = static_cast<MultiLabelLossKind>(kind);
  p.gammaPos = a.f32();
  p.gammaNeg = a.f32();
  p.clip = a.f32();
  p.eps = a.f32();
  p.focalGrad = a.flag();
  if (kind != 0 && kind != 1) a.need(0, -1);
  for (size_t i = 0; i < 4; ++i) a.need(i, p.n);
  return a.finish([&](Backend& b) { return b.multiLabelLoss(p); });
}

// kmeansCrossAttention(pixels, centers, values, update, assign, logits|null, B, N, L, D, Dv)
Napi::Value KMeans(const Napi::CallbackInfo& info) {
  Args a(info, "kmeansCrossAttention");
  KMeansParams p{};
  p.pixels = static_cast<const float*>(a.ptr());
  p.centers = static_cast<const float*>(a.ptr());
  p.values = static_cast<const float*>(a.ptr());
  p.update = static_cast<float*>(a.ptr());
  p.assign = static_cast<int32_t*>(a.ptr());
  p.logits = static_cast<float*>(a.ptr(true));
  p.B = a.i64();
  p.N = a.i64();
  p.L = a.i64();
  p.D = a.i64();
  p.Dv = a.i64();
  for (int64_t v : {p.B, p.N, p.L, p.D, p.Dv}) a.positive(v, "every size");
  if (p.L > INT32_MAX) a.need(0, -1);
  a.need(0, mul({p.B, p.N, p.D}));
  a.need(1, mul({p.B, p.L, p.D}));
  a.need(2, mul({p.B, p.N, p.Dv}));
  a.need(3, mul({p.B, p.L, p.Dv}));
  a.need(4, mul({p.B, p.N}));
  a.need(5, mul({p.B, p.L, p.N}));
  return a.finish([&](Backend& b) { return b.kmeansCrossAttention(p); });
}

// kmeansCrossAttentionBackward(assign, dUpdate, dValues, B, N, L, Dv)
Napi::Value KMeansBackward(const Napi::CallbackInfo& info) {
  Args a(info, "kmeansCrossAttentionBackward");
  KMeansBackwardParams p{};
  p.assign = static_cast<const int32_t*>(a.ptr());
  p.dUpdate = static_cast<const float*>(a.ptr());
  p.dValues = static_cast<float*>(a.ptr());
  p.B = a.i64();
  p.N = a.i64();
  p.L = a.i64();
  p.Dv = a.i64();
  for (int64_t v : {p.B, p.N, p.L, p.Dv}) a.positive(v, "every size");
  a.need(0, mul({p.B, p.N}));
  a.need(1, mul({p.B, p.L, p.Dv}));
  a.need(2, mul({p.B, p.N, p.Dv}));
  return a.finish([&](Backend& b) { return b.kmeansCrossAttentionBackward(p); });
}

// l2Normalize(x, y, rows, cols, eps)   l2NormalizeBackward(x, dy, dx, rows, cols, eps)
template <bool kBackward>
Napi::Value L2Normalize(const Napi::CallbackInfo& info) {
  Args a(info, kBackward ? "l2NormalizeBackward" : "l2Normalize");
  const float* x = static_cast<const float*>(a.ptr());
  const float* dy = kBackward ? static_cast<const float*>(a.ptr()) : nullptr;
  float* out = static_cast<float*>(a.ptr());
  int64_t rows = a.i64(), cols = a.i64();
  float eps = a.f32();
  a.positive(rows, "rows");
  a.positive(cols, "cols");
  if (!(eps > 0.0f)) a.need(0, -1);
  const int64_t n = mul({rows, cols});
  for (size_t i = 0; i < (kBackward ? 3u : 2u); ++i) a.need(i, n);
  if (kBackward) {
    L2NormalizeBackwardParams p{x, dy, out, rows, cols, eps};
    return a.finish([&](Backend& b) { return b.l2NormalizeBackward(p); });
  }
  L2NormalizeParams p{x, out, rows, cols, eps};
  return a.finish([&](Backend& b) { return b.l2Normalize(p); });
}

// Exceptions never escape through N-API (they would terminate the process): they become error strings.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const std::exception& e) {
    return Napi::String::New(info.Env(), std::string("native exception: ") + e.what());
  } catch (...) {
    return Napi::String::New(info.Env(), "unknown native exception");
  }
}

}  // namespace

void registerOps(Napi::Env env, Napi::Object exports) {
  exports.Set("binary", Napi::Function::New(env, Guarded<Binary>, "binary"));
  exports.Set("affine", Napi::Function::New(env, Guarded<Affine>, "affine"));
  exports.Set("unary", Napi::Function::New(env, Guarded<Unary>, "unary"));
  exports.Set("unaryBackward", Napi::Function::New(env, Guarded<UnaryBackward>, "unaryBackward"));
  exports.Set("matmul", Napi::Function::New(env, Guarded<Matmul>, "matmul"));
  exports.Set("softmax", Napi::Function::New(env, Guarded<Softmax>, "softmax"));
  exports.Set("softmaxBackward", Napi::Function::New(env, Guarded<SoftmaxBackward>, "softmaxBackward"));
  exports.Set("layerNorm", Napi::Function::New(env, Guarded<LayerNorm>, "layerNorm"));
  exports.Set("layerNormBackward", Napi::Function::New(env, Guarded<LayerNormBackward>, "layerNormBackward"));
  exports.Set("reduce", Napi::Function::New(env, Guarded<Reduce>, "reduce"));
  exports.Set("copy", Napi::Function::New(env, Guarded<Copy>, "copy"));
  exports.Set("fill", Napi::Function::New(env, Guarded<Fill>, "fill"));
  exports.Set("avgPool2d", Napi::Function::New(env, Guarded<AvgPool<false>>, "avgPool2d"));
  exports.Set("avgPool2dBackward", Napi::Function::New(env, Guarded<AvgPool<true>>, "avgPool2dBackward"));
  exports.Set("random", Napi::Function::New(env, Guarded<Random>, "random"));
  exports.Set("outlookAttention", Napi::Function::New(env, Guarded<Outlook<false>>, "outlookAttention"));
  exports.Set("outlookAttentionBackward", Napi::Function::New(env, Guarded<Outlook<true>>, "outlookAttentionBackward"));
  exports.Set("haloAttention", Napi::Function::New(env, Guarded<Halo<false>>, "haloAttention"));
  exports.Set("haloAttentionBackward", Napi::Function::New(env, Guarded<Halo<true>>, "haloAttentionBackward"));
  exports.Set("dropout", Napi::Function::New(env, Guarded<Dropout>, "dropout"));
  exports.Set("crossAttention", Napi::Function::New(env, Guarded<CrossAttention<false>>, "crossAttention"));
  exports.Set("crossAttentionBackward",
              Napi::Function::New(env, Guarded<CrossAttention<true>>, "crossAttentionBackward"));
  exports.Set("groupFC", Napi::Function::New(env, Guarded<GroupFC<false>>, "groupFC"));
  exports.Set("groupFCBackward", Napi::Function::New(env, Guarded<GroupFC<true>>, "groupFCBackward"));
  exports.Set("multiLabelLoss", Napi::Function::New(env, Guarded<MultiLabelLoss>, "multiLabelLoss"));
  exports.Set("kmeansCrossAttention", Napi::Function::New(env, Guarded<KMeans>, "kmeansCrossAttention"));
  exports.Set("kmeansCrossAttentionBackward",
              Napi::Function::New(env, Guarded<KMeansBackward>, "kmeansCrossAttentionBackward"));
  exports.Set("l2Normalize", Napi::Function::New(env, Guarded<L2Normalize<false>>, "l2Normalize"));
  exports.Set("l2NormalizeBackward", Napi::Function::New(env, Guarded<L2Normalize<true>>, "l2NormalizeBackward"));
}

}  // namespace binding
}  // namespace va
