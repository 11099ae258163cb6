// visattn binding — op entry points. Each unwraps storage handles, fills the op family's param struct
// (shapes were validated in lib/ops) and enqueues on the device that owns the first tensor.
// Returns undefined, or an error string that TypeScript turns into an Error.
#include <napi.h>

#include <cmath>
#include <string>

#include "binding/addon.h"

namespace va {
namespace binding {
namespace {

// Reads positional arguments in order; the first problem becomes the call's error message.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}

  // A tensor storage; null allowed when `optional` and the argument is null/undefined.
  void* ptr(bool optional = false) {
    const Napi::Value& v = info_[i_++];
    if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
    Handle* h = handleOf(v);
    if (!h || !h->storage) {
      fail("argument " + std::to_string(i_ - 1) + " is not a live tensor storage");
      return nullptr;
    }
    if (!backend_) backend_ = h->storage->backend.get();
    else if (backend_ != h->storage->backend.get()) fail("tensors live on different devices");
    return h->storage->ptr;
  }
  int64_t i64() { return static_cast<int64_t>(info_[i_++].As<Napi::Number>().Int64Value()); }
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
    Status st = call(*backend_);
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
  std::string error_;
};

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
  return a.finish([&](Backend& b) { return b.copy(p); });
}

// fill(dst, n, bits)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  Args a(info, "fill");
  FillParams p{};
  p.dst = a.ptr();
  p.n = a.i64();
  p.bits = static_cast<uint32_t>(a.i64());
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
  return a.finish([&](Backend& b) { return b.random(p); });
}

}  // namespace

void registerOps(Napi::Env env, Napi::Object exports) {
  exports.Set("binary", Napi::Function::New(env, Binary, "binary"));
  exports.Set("affine", Napi::Function::New(env, Affine, "affine"));
  exports.Set("unary", Napi::Function::New(env, Unary, "unary"));
  exports.Set("unaryBackward", Napi::Function::New(env, UnaryBackward, "unaryBackward"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  exports.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward, "softmaxBackward"));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm, "layerNorm"));
  exports.Set("layerNormBackward", Napi::Function::New(env, LayerNormBackward, "layerNormBackward"));
  exports.Set("reduce", Napi::Function::New(env, Reduce, "reduce"));
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
  exports.Set("fill", Napi::Function::New(env, Fill, "fill"));
  exports.Set("avgPool2d", Napi::Function::New(env, AvgPool<false>, "avgPool2d"));
  exports.Set("avgPool2dBackward", Napi::Function::New(env, AvgPool<true>, "avgPool2dBackward"));
  exports.Set("random", Napi::Function::New(env, Random, "random"));
}

}  // namespace binding
}  // namespace va
