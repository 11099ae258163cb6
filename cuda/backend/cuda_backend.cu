// visattn — the cuda backend (va::Backend over the CUDA runtime API). Compiled by nvcc into va_cuda
// (a real GPU) and by g++ against the emulated runtime into va_emu (the `emu` device).
//
// Design:
//  * one non-blocking stream per backend; every op, transfer and marker records an event after its
//    work; a backend-owned completion thread waits for those events IN ORDER
//    (cudaEventSynchronize), so `completed_` follows the stream. pending() = submitted − completed.
//  * errors: the completion thread turns an event's error into a sticky message naming the op
//    ("matmul: cudaErrorLaunchFailure: ..."); the next download / synchronizeAsync / synchronize
//    takes it (and clears it: on emu the runtime also clears it once reported; on a GPU the context
//    stays broken and later events report it again). Kernels never __trap() on bad input: they
//    fill a KernelErrorRecord (withErrorRecord), which becomes the same kind of sticky error.
//  * memory: a caching allocator over cudaMalloc with size-rounded blocks; free() returns a block
//    to the cache at once (safe: only later work on the same stream can reuse it). Under emu a
//    recycled block is re-poisoned with 0xFF in stream order.
//  * host transfers go through cached pinned staging buffers, so neither upload nor download ever
//    blocks the calling (JS) thread: upload copies the source into pinned memory before returning;
//    download copies pinned → destination on the completion thread, then calls done.
#include "common/compat.cuh"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend/blas.h"
#include "backend/testing.h"
#include "core/ops.h"
#include "visattn/backend.h"
#include "visattn/devices.h"

VA_CUDA_NAMESPACE_BEGIN

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;   // ≤ 1 MiB: 512-byte granularity
constexpr size_t kSmallGrain = 512;
constexpr size_t kLargeGrain = size_t(2) << 20;   // > 1 MiB: 2 MiB granularity
constexpr size_t kPinnedCacheMax = size_t(256) << 20;

size_t roundBlock(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t g = bytes <= kSmallLimit ? kSmallGrain : kLargeGrain;
  return (bytes + g - 1) / g * g;
}

// A cached block of `have` bytes may serve a request rounded to `want` (≤ 25 % waste).
bool fits(size_t have, size_t want) { return have >= want && have - want <= want / 4; }

std::string errText(cudaError_t err) {
  std::string s = va_error_detail(err);
  (void)cudaGetLastError();  // clear the calling thread's non-sticky last error
  return s;
}

class CudaBackend final : public va::Backend {
 public:
  CudaBackend() = default;
  ~CudaBackend() override { shutdown(); }

  va::Status init() {
    cudaError_t err = cudaSetDevice(device_);
    if (err != cudaSuccess) return va::Status::Error("cuda: cudaSetDevice: " + errText(err));
    cudaDeviceProp prop;
    std::memset(&prop, 0, sizeof(prop));
    err = cudaGetDeviceProperties(&prop, device_);
    if (err != cudaSuccess)
      return va::Status::Error("cuda: cudaGetDeviceProperties: " + errText(err));
    ctx_.smCount = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
    err = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
      stream_ = nullptr;
      return va::Status::Error("cuda: cudaStreamCreateWithFlags: " + errText(err));
    }
    ctx_.stream = stream_;
    worker_ = std::thread([this] {
      va::backendOwningThisThread() = this;
      completionLoop();
    });
    return va::Status::Ok();
  }

  va::DeviceKind kind() const override {
    return VA_IS_EMU ? va::DeviceKind::Emu : va::DeviceKind::Cuda;
  }
  const char* name() const override { return VA_IS_EMU ? "emu" : "cuda"; }

  // ------------------------------------------------------------------ memory
  va::Status alloc(size_t bytes, void** ptr) override {
    const size_t want = roundBlock(bytes);
    std::unique_lock<std::mutex> lk(allocMu_);
    auto it = cache_.lower_bound(want);
    if (it != cache_.end() && fits(it->first, want)) {
      void* p = it->second;
      const size_t have = it->first;
      cache_.erase(it);
      live_[p] = Block{have, bytes};
      allocated_ += static_cast<int64_t>(bytes);
      ++allocations_;
      lk.unlock();
#if VA_IS_EMU
      // Recycled memory is poisoned again (fresh cudaMalloc memory already is), in stream order.
      cudaError_t err = cudaMemsetAsync(p, 0xFF, have, stream_);
      if (err != cudaSuccess) {
        std::string msg = "alloc: re-poisoning a recycled block: " + errText(err);
        free(p);
        return va::Status::Error(msg);
      }
#endif
      *ptr = p;
      return va::Status::Ok();
    }
    lk.unlock();
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, want);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      // Give the cache back to the driver (after queued work that may still use it) and retry.
      waitIdle();
      releaseCache();
      err = cudaMalloc(&p, want);
      if (err != cudaSuccess) {
        return va::Status::Error("alloc: cudaMalloc of " + std::to_string(bytes) +
                                 " bytes failed: " + errText(err));
      }
    }
    lk.lock();
    live_[p] = Block{want, bytes};
    allocated_ += static_cast<int64_t>(bytes);
    reserved_ += static_cast<int64_t>(want);
    ++allocations_;
    *ptr = p;
    return va::Status::Ok();
  }

  void free(void* ptr) override {
    if (!ptr) return;
    std::lock_guard<std::mutex> lk(allocMu_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return;
    allocated_ -= static_cast<int64_t>(it->second.requested);
    --allocations_;
    cache_.emplace(it->second.size, ptr);
    live_.erase(it);
  }

  va::MemoryStats memory() const override {
    std::lock_guard<std::mutex> lk(allocMu_);
    va::MemoryStats m;
    m.allocatedBytes = allocated_;
    m.reservedBytes = reserved_;
    m.allocations = allocations_;
    return m;
  }

  // ------------------------------------------------------------------ transfers
  va::Status upload(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return va::Status::Ok();
    Pinned pin;
    va::Status st = getPinned(bytes, &pin);
    if (!st.ok()) return va::Status::Error("upload: " + st.message());
    std::memcpy(pin.ptr, src, bytes);
    cudaError_t err = cudaMemcpyAsync(dst, pin.ptr, bytes, cudaMemcpyHostToDevice, stream_);
    if (err != cudaSuccess) {
      putPinned(pin);
      return va::Status::Error("upload: " + errText(err));
    }
    Entry e;
    e.op = "upload";
    e.pinned = pin;
    return submit(std::move(e));
  }

  // The host function waits for the data (it makes no CUDA call) and fills pinned staging that the
  // following asynchronous copy reads in stream order.
  va::Status uploadDeferred(void* dst, size_t bytes, std::function<va::Status(void*)> fill) override {
    if (bytes == 0) return va::Status::Ok();
    Pinned pin;
    va::Status st = getPinned(bytes, &pin);
    if (!st.ok()) return va::Status::Error("to: " + st.message());
    auto* job = new DeferredFill{this, pin.ptr, std::move(fill)};
    cudaError_t err = cudaLaunchHostFunc(stream_, &CudaBackend::runDeferredFill, job);
    if (err != cudaSuccess) {
      delete job;
      putPinned(pin);
      return va::Status::Error("to: " + errText(err));
    }
    err = cudaMemcpyAsync(dst, pin.ptr, bytes, cudaMemcpyHostToDevice, stream_);
    Entry e;
    e.op = "to";
    e.pinned = pin;  // returned to the cache by the completion thread once the copy is done
    if (err != cudaSuccess) e.preset = "to: " + errText(err);
    submitAlways(std::move(e));
    return va::Status::Ok();
  }

  void download(void* dst, const void* src, size_t bytes, va::DoneFn done) override {
    Entry e;
    e.op = "download";
    e.done = std::move(done);
    e.isMarker = true;
    if (bytes > 0) {
      Pinned pin;
      va::Status st = getPinned(bytes, &pin);
      if (!st.ok()) {
        e.preset = "download: " + st.message();
      } else {
        cudaError_t err = cudaMemcpyAsync(pin.ptr, src, bytes, cudaMemcpyDeviceToHost, stream_);
        if (err != cudaSuccess) {
          putPinned(pin);
          e.preset = "download: " + errText(err);
        } else {
          e.pinned = pin;
          e.hostDst = dst;
          e.bytes = bytes;
        }
      }
    }
    submitAlways(std::move(e));
  }

  va::Status synchronize() override {
    if (std::this_thread::get_id() == worker_.get_id()) {
      // Called from a completion callback: the completion thread cannot wait for itself.
      cudaError_t err = cudaStreamSynchronize(stream_);
      std::lock_guard<std::mutex> lk(qMu_);
      if (!sticky_.empty()) return takeSticky();
      if (err != cudaSuccess) return va::Status::Error("synchronize: " + errText(err));
      return va::Status::Ok();
    }
    Entry e;
    e.op = "synchronize";
    e.isMarker = true;
    e.keepResult = true;
    const int64_t seq = submitAlways(std::move(e));
    {
      std::unique_lock<std::mutex> lk(qMu_);
      progressCv_.wait(lk, [&] { return completed_ >= seq; });
    }
    // Everything up to the marker has completed; the stream sync is a final, cheap check.
    cudaError_t err = cudaStreamSynchronize(stream_);
    std::lock_guard<std::mutex> lk(qMu_);
    auto it = markerResults_.find(seq);
    va::Status st;
    if (it != markerResults_.end()) {
      st = it->second;
      markerResults_.erase(it);
    }
    if (st.ok() && !sticky_.empty()) st = takeSticky();
    if (st.ok() && err != cudaSuccess) st = va::Status::Error("synchronize: " + errText(err));
    return st;
  }

  void synchronizeAsync(va::DoneFn done) override {
    Entry e;
    e.op = "synchronize";
    e.isMarker = true;
    e.done = std::move(done);
    submitAlways(std::move(e));
  }

  int64_t pending() const override {
    std::lock_guard<std::mutex> lk(qMu_);
    return submitted_ - completed_;
  }

  // ------------------------------------------------------------------ ops
  va::Status binary(const va::BinaryParams& p) override {
    return finish("binary", launchBinary(ctx_, p));
  }
  va::Status affine(const va::AffineParams& p) override {
    return finish("affine", launchAffine(ctx_, p));
  }
  va::Status unary(const va::UnaryParams& p) override {
    return finish("unary", launchUnary(ctx_, p));
  }
  va::Status unaryBackward(const va::UnaryBackwardParams& p) override {
    return finish("unaryBackward", launchUnaryBackward(ctx_, p));
  }
  va::Status matmul(const va::MatmulParams& p) override;
  va::Status softmax(const va::SoftmaxParams& p) override {
    return finish("softmax", launchSoftmax(ctx_, p));
  }
  va::Status softmaxBackward(const va::SoftmaxBackwardParams& p) override {
    return finish("softmaxBackward", launchSoftmaxBackward(ctx_, p));
  }
  va::Status layerNorm(const va::LayerNormParams& p) override {
    return finish("layerNorm", launchLayerNorm(ctx_, p));
  }
  va::Status layerNormBackward(const va::LayerNormBackwardParams& p) override {
    return withWorkspace("layerNormBackward", layerNormBackwardWorkspace(p),
                         [&](void* ws) { return launchLayerNormBackward(ctx_, p, ws); });
  }
  va::Status reduce(const va::ReduceParams& p) override {
    return withWorkspace("reduce", reduceWorkspace(p), [&](void* ws) { return launchReduce(ctx_, p, ws); });
  }
  va::Status copy(const va::CopyParams& p) override { return finish("copy", launchCopy(ctx_, p)); }
  va::Status fill(const va::FillParams& p) override { return finish("fill", launchFill(ctx_, p)); }
  va::Status avgPool2d(const va::AvgPool2dParams& p) override {
    return finish("avgPool2d", launchAvgPool2d(ctx_, p));
  }
  va::Status avgPool2dBackward(const va::AvgPool2dBackwardParams& p) override {
    return finish("avgPool2dBackward", launchAvgPool2dBackward(ctx_, p));
  }
  va::Status random(const va::RandomParams& p) override {
    return finish("random", launchRandom(ctx_, p));
  }

  va::Status outlookAttention(const va::OutlookParams& p) override {
    return finish("outlookAttention", launchOutlook(ctx_, p));
  }
  va::Status outlookAttentionBackward(const va::OutlookBackwardParams& p) override {
    return withWorkspace("outlookAttentionBackward", outlookBackwardWorkspace(p),
                         [&](void* ws) { return launchOutlookBackward(ctx_, p, ws); });
  }
  va::Status haloAttention(const va::HaloParams& p) override {
    return finish("haloAttention", launchHalo(ctx_, p));
  }
  va::Status haloAttentionBackward(const va::HaloBackwardParams& p) override {
    return withWorkspace("haloAttentionBackward", haloBackwardWorkspace(p),
                         [&](void* ws) { return launchHaloBackward(ctx_, p, ws); });
  }
  va::Status dropout(const va::DropoutParams& p) override { return finish("dropout", launchDropout(ctx_, p)); }
  va::Status crossAttention(const va::CrossAttentionParams& p) override {
    return finish("crossAttention", launchCrossAttention(ctx_, p));
  }
  va::Status crossAttentionBackward(const va::CrossAttentionBackwardParams& p) override {
    return withWorkspace("crossAttentionBackward", crossAttentionBackwardWorkspace(p),
                         [&](void* ws) { return launchCrossAttentionBackward(ctx_, p, ws); });
  }
  va::Status groupFC(const va::GroupFCParams& p) override { return finish("groupFC", launchGroupFC(ctx_, p)); }
  va::Status groupFCBackward(const va::GroupFCBackwardParams& p) override {
    return withWorkspace("groupFCBackward", groupFCBackwardWorkspace(p),
                         [&](void* ws) { return launchGroupFCBackward(ctx_, p, ws); });
  }
  va::Status multiLabelLoss(const va::MultiLabelLossParams& p) override {
    return finish("multiLabelLoss", launchMultiLabelLoss(ctx_, p));
  }
  va::Status kmeansCrossAttention(const va::KMeansParams& p) override {
    return withWorkspace("kmeansCrossAttention", kmeansWorkspace(p),
                         [&](void* ws) { return launchKMeans(ctx_, p, ws); });
  }
  va::Status kmeansCrossAttentionBackward(const va::KMeansBackwardParams& p) override {
    const int64_t L = p.L;
    return withErrorRecord(
        "kmeansCrossAttentionBackward",
        [L](const long long* v) {
          return "assign[" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + "] = " +
                 std::to_string(v[2]) + " is outside [0, " + std::to_string(L) + ")";
        },
        [&](KernelErrorRecord* rec) { return launchKMeansBackward(ctx_, p, rec); });
  }
  va::Status l2Normalize(const va::L2NormalizeParams& p) override {
    return finish("l2Normalize", launchL2Normalize(ctx_, p));
  }
  va::Status l2NormalizeBackward(const va::L2NormalizeBackwardParams& p) override {
    return finish("l2NormalizeBackward", launchL2NormalizeBackward(ctx_, p));
  }

  va::Status injectFaultForTesting();
  va::Status injectFault() override { return injectFaultForTesting(); }
  void setLaunchCap(int smCount) { ctx_.smCount = smCount > 0 ? smCount : 1; }
  void setBlas(const BlasLib* lib) {
    if (blasHandle_ && blas_) blas_->destroyHandle(blasHandle_);
    blasHandle_ = nullptr;
    blas_ = nullptr;
    blasTried_ = true;
    if (lib && lib->createHandle(&blasHandle_, stream_)) blas_ = lib;
  }

 private:
  struct Block {
    size_t size;       // bytes reserved from cudaMalloc (rounded)
    size_t requested;  // bytes asked for
  };
  struct Pinned {
    void* ptr = nullptr;
    size_t size = 0;
  };
  struct DeferredFill {
    CudaBackend* self;
    void* host;
    std::function<va::Status(void*)> fill;
  };
  static void runDeferredFill(void* arg) {
    auto* job = static_cast<DeferredFill*>(arg);
    va::Status st;
    try {
      st = job->fill(job->host);
    } catch (const std::exception& e) {
      st = va::Status::Error(e.what());
    }
    if (!st.ok()) {
      std::lock_guard<std::mutex> lk(job->self->qMu_);
      if (job->self->sticky_.empty()) job->self->sticky_ = "to: " + st.message();
    }
    delete job;
  }

  // One unit of work the completion thread follows.
  struct Entry {
    const char* op = "";
    cudaEvent_t ev = nullptr;
    int64_t seq = 0;
    bool isMarker = false;  // download / synchronize: takes the sticky error
    bool keepResult = false;  // synchronize(): the waiting caller collects the status
    std::string preset;     // an error found at enqueue time (no event)
    va::DoneFn done;
    Pinned pinned;
    void* hostDst = nullptr;
    size_t bytes = 0;
    // withErrorRecord: pinned holds the op's KernelErrorRecord; a set record becomes the error
    // "op: describe(values)" once the op's work has completed.
    std::function<std::string(const long long*)> describe;
  };

  // Runs a launcher that needs `bytes` of device scratch (none when 0). The scratch is freed right
  // after the launch: frees are stream-ordered, so only later work can reuse it.
  template <typename Launch>
  va::Status withWorkspace(const char* op, size_t bytes, Launch&& launch) {
    void* ws = nullptr;
    if (bytes > 0) {
      va::Status st = alloc(bytes, &ws);
      if (!st.ok()) return va::Status::Error(std::string(op) + ": " + st.message());
    }
    cudaError_t err = launch(ws);
    if (ws) free(ws);
    return finish(op, err);
  }

  // Runs a launcher whose kernels report bad input through a KernelErrorRecord instead of
  // trapping: the record is zeroed before the launch and copied into pinned memory after it (both
  // stream-ordered); the completion thread turns a set record into the sticky error
  // "op: describe(values)", which surfaces like any other asynchronous stream error.
  template <typename Launch>
  va::Status withErrorRecord(const char* op, std::function<std::string(const long long*)> describe,
                             Launch&& launch) {
    constexpr size_t kBytes = sizeof(KernelErrorRecord);
    void* rec = nullptr;
    va::Status st = alloc(kBytes, &rec);
    if (!st.ok()) return va::Status::Error(std::string(op) + ": " + st.message());
    Pinned pin;
    st = getPinned(kBytes, &pin);
    if (!st.ok()) {
      free(rec);
      return va::Status::Error(std::string(op) + ": " + st.message());
    }
    cudaError_t err = cudaMemsetAsync(rec, 0, kBytes, stream_);
    if (err == cudaSuccess) err = launch(static_cast<KernelErrorRecord*>(rec));
    if (err == cudaSuccess) err = cudaMemcpyAsync(pin.ptr, rec, kBytes, cudaMemcpyDeviceToHost, stream_);
    free(rec);  // stream-ordered: only later work can reuse it
    if (err != cudaSuccess) {
      putPinned(pin);
      return va::Status::Error(std::string(op) + ": " + errText(err));
    }
    Entry e;
    e.op = op;
    e.pinned = pin;
    e.describe = std::move(describe);
    return submit(std::move(e));
  }

  // Records an event after the op's work and hands it to the completion thread.
  va::Status finish(const char* op, cudaError_t launchErr) {
    if (launchErr != cudaSuccess) return va::Status::Error(std::string(op) + ": " + errText(launchErr));
    Entry e;
    e.op = op;
    return submit(std::move(e));
  }

  va::Status submit(Entry&& e) {
    cudaEvent_t ev = nullptr;
    cudaError_t err = getEvent(&ev);
    if (err == cudaSuccess) err = cudaEventRecord(ev, stream_);
    if (err != cudaSuccess) {
      std::string msg = std::string(e.op) + ": cudaEventRecord: " + errText(err);
      if (ev) putEvent(ev);
      putPinned(e.pinned);
      return va::Status::Error(msg);
    }
    e.ev = ev;
    push(std::move(e));
    return va::Status::Ok();
  }

  // Like submit, but the entry always reaches the completion thread (its done must run there).
  int64_t submitAlways(Entry&& e) {
    if (e.preset.empty()) {
      cudaEvent_t ev = nullptr;
      cudaError_t err = getEvent(&ev);
      if (err == cudaSuccess) err = cudaEventRecord(ev, stream_);
      if (err != cudaSuccess) {
        e.preset = std::string(e.op) + ": cudaEventRecord: " + errText(err);
        if (ev) putEvent(ev);
      } else {
        e.ev = ev;
      }
    }
    return push(std::move(e));
  }

  int64_t push(Entry&& e) {
    std::lock_guard<std::mutex> lk(qMu_);
    e.seq = ++submitted_;
    const int64_t seq = e.seq;
    queue_.push_back(std::move(e));
    queueCv_.notify_one();
    return seq;
  }

  va::Status takeSticky() {  // qMu_ held
    va::Status st = va::Status::Error(sticky_);
    sticky_.clear();
    return st;
  }

  void completionLoop() {
    (void)cudaSetDevice(device_);
    for (;;) {
      Entry e;
      {
        std::unique_lock<std::mutex> lk(qMu_);
        queueCv_.wait(lk, [&] { return !queue_.empty() || stop_; });
        if (queue_.empty()) return;  // stop_ and drained
        e = std::move(queue_.front());
        queue_.pop_front();
      }
      std::string msg = e.preset;
      if (e.ev) {
        cudaError_t err = cudaEventSynchronize(e.ev);
        if (err != cudaSuccess) msg = std::string(e.op) + ": " + errText(err);
        putEvent(e.ev);
        if (msg.empty() && e.describe && e.pinned.ptr) {
          const auto* rec = static_cast<const KernelErrorRecord*>(e.pinned.ptr);
          if (rec->flag != 0) msg = std::string(e.op) + ": " + e.describe(rec->v);
        }
      }
      va::Status st;
      {
        std::lock_guard<std::mutex> lk(qMu_);
        if (!msg.empty() && sticky_.empty()) sticky_ = msg;
        if (e.isMarker && !sticky_.empty()) st = takeSticky();
      }
      if (st.ok() && e.hostDst && e.pinned.ptr) std::memcpy(e.hostDst, e.pinned.ptr, e.bytes);
      putPinned(e.pinned);
      // The entry counts as completed BEFORE its callback runs, so whoever the callback wakes (a
      // resolved synchronize() Promise) sees pending() == 0 once everything before it is done.
      {
        std::lock_guard<std::mutex> lk(qMu_);
        if (e.keepResult) markerResults_[e.seq] = st;
        completed_ = e.seq;
      }
      progressCv_.notify_all();
      if (e.done) {
        try {
          e.done(st);
        } catch (...) {
          // a callback must not take the completion thread down
        }
      }
    }
  }

  // Waits until every entry submitted so far has completed (errors stay sticky).
  void waitIdle() {
    if (!worker_.joinable() || std::this_thread::get_id() == worker_.get_id()) {
      (void)cudaStreamSynchronize(stream_);
      return;
    }
    std::unique_lock<std::mutex> lk(qMu_);
    const int64_t target = submitted_;
    progressCv_.wait(lk, [&] { return completed_ >= target; });
  }

  void releaseCache() {
    std::lock_guard<std::mutex> lk(allocMu_);
    for (auto& kv : cache_) {
      (void)cudaFree(kv.second);
      reserved_ -= static_cast<int64_t>(kv.first);
    }
    cache_.clear();
    (void)cudaGetLastError();
  }

  cudaError_t getEvent(cudaEvent_t* ev) {
    {
      std::lock_guard<std::mutex> lk(evMu_);
      if (!events_.empty()) {
        *ev = events_.back();
        events_.pop_back();
        return cudaSuccess;
      }
    }
    // Blocking sync: the completion thread sleeps instead of spinning a CPU core while it waits.
    return cudaEventCreateWithFlags(ev, cudaEventDisableTiming | cudaEventBlockingSync);
  }
  void putEvent(cudaEvent_t ev) {
    std::lock_guard<std::mutex> lk(evMu_);
    events_.push_back(ev);
  }

  va::Status getPinned(size_t bytes, Pinned* out) {
    const size_t want = roundBlock(bytes);
    {
      std::lock_guard<std::mutex> lk(pinMu_);
      auto it = pinCache_.lower_bound(want);
      if (it != pinCache_.end() && fits(it->first, want)) {
        out->ptr = it->second;
        out->size = it->first;
        pinCached_ -= it->first;
        pinCache_.erase(it);
        return va::Status::Ok();
      }
    }
    void* p = nullptr;
    cudaError_t err = cudaMallocHost(&p, want);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      releasePinnedCache();
      err = cudaMallocHost(&p, want);
      if (err != cudaSuccess)
        return va::Status::Error("cudaMallocHost of " + std::to_string(want) +
                                 " bytes failed: " + errText(err));
    }
    out->ptr = p;
    out->size = want;
    return va::Status::Ok();
  }
  void putPinned(const Pinned& pin) {
    if (!pin.ptr) return;
    std::lock_guard<std::mutex> lk(pinMu_);
    if (pinCached_ + pin.size > kPinnedCacheMax) {
      (void)cudaFreeHost(pin.ptr);
      return;
    }
    pinCache_.emplace(pin.size, pin.ptr);
    pinCached_ += pin.size;
  }
  void releasePinnedCache() {
    std::lock_guard<std::mutex> lk(pinMu_);
    for (auto& kv : pinCache_) (void)cudaFreeHost(kv.second);
    pinCache_.clear();
    pinCached_ = 0;
  }

  void shutdown() noexcept {
    try {
      if (worker_.joinable()) {
        {
          std::lock_guard<std::mutex> lk(qMu_);
          stop_ = true;
        }
        queueCv_.notify_all();
        worker_.join();  // drains the queue first: every done callback runs
      }
      if (stream_) (void)cudaStreamSynchronize(stream_);
      if (blasHandle_ && blas_) blas_->destroyHandle(blasHandle_);
      blasHandle_ = nullptr;
      {
        std::lock_guard<std::mutex> lk(allocMu_);
        for (auto& kv : live_) (void)cudaFree(kv.first);
        live_.clear();
      }
      releaseCache();
      releasePinnedCache();
      {
        std::lock_guard<std::mutex> lk(evMu_);
        for (cudaEvent_t ev : events_) (void)cudaEventDestroy(ev);
        events_.clear();
      }
      if (stream_) (void)cudaStreamDestroy(stream_);
      stream_ = nullptr;
      (void)cudaGetLastError();
    } catch (...) {
    }
  }

  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  LaunchCtx ctx_;

  mutable std::mutex allocMu_;
  std::multimap<size_t, void*> cache_;
  std::unordered_map<void*, Block> live_;
  int64_t allocated_ = 0, reserved_ = 0, allocations_ = 0;

  std::mutex pinMu_;
  std::multimap<size_t, void*> pinCache_;
  size_t pinCached_ = 0;

  std::mutex evMu_;
  std::vector<cudaEvent_t> events_;

  mutable std::mutex qMu_;
  std::condition_variable queueCv_, progressCv_;
  std::deque<Entry> queue_;
  int64_t submitted_ = 0, completed_ = 0;
  bool stop_ = false;
  std::string sticky_;
  std::map<int64_t, va::Status> markerResults_;
  std::thread worker_;

  // cuBLAS (real GPU only): looked up on the first matmul.
  bool blasTried_ = false;
  const BlasLib* blas_ = nullptr;
  void* blasHandle_ = nullptr;
};

template <int DUMMY>
__global__ void faultKernel(int* flag) {
  if (threadIdx.x == 0 && blockIdx.x == 0) {
    if (flag) *flag = 1;
    __trap();
  }
}

va::Status CudaBackend::injectFaultForTesting() {
  return finish("injectFault",
                VA_LAUNCH(faultKernel<0>, dim3(1), dim3(32), 0, stream_, static_cast<int*>(nullptr)));
}

bool fitsInt(int64_t v) { return v >= 0 && v <= 0x7fffffff; }

va::Status CudaBackend::matmul(const va::MatmulParams& p) {
  if (!blasTried_) {
    blasTried_ = true;
    const BlasLib* lib = BlasLib::get();
    if (lib && lib->createHandle(&blasHandle_, stream_)) blas_ = lib;
    (void)cudaGetLastError();
  }
  const bool reduceBatch = p.strideC == 0 && p.batch > 1;
  const bool useBlas = blas_ && fitsInt(p.M) && fitsInt(p.N) && fitsInt(p.K) &&
                       fitsInt(p.batch) && (!reduceBatch || p.batch <= 64);
  if (!useBlas) return finish("matmul", launchMatmul(ctx_, p));

  const int M = static_cast<int>(p.M), N = static_cast<int>(p.N), K = static_cast<int>(p.K);
  float beta = p.beta;
  if (p.bias) {
    // C = bias + beta·C first, then the library accumulates with beta = 1.
    const int64_t count = reduceBatch ? 1 : p.batch;
    cudaError_t err = launchBiasBeta(ctx_, p.c, p.bias, count, p.strideC, p.M, p.N, p.beta);
    if (err != cudaSuccess) return va::Status::Error("matmul: " + errText(err));
    beta = 1.0f;
  }
  int status = 0;
  if (!reduceBatch) {
    status = blas_->gemmRowMajor(blasHandle_, p.transA, p.transB, M, N, K, p.alpha, p.a,
                                 p.strideA, p.b, p.strideB, beta, p.c, p.strideC,
                                 static_cast<int>(p.batch));
  } else {
    // Σ over the batch in ascending order: one GEMM per entry accumulating into C.
    for (int64_t q = 0; q < p.batch && status == 0; ++q) {
      status = blas_->gemmRowMajor(blasHandle_, p.transA, p.transB, M, N, K, p.alpha,
                                   p.a + q * p.strideA, 0, p.b + q * p.strideB, 0,
                                   q == 0 ? beta : 1.0f, p.c, 0, 1);
    }
  }
  if (status != 0)
    return va::Status::Error("matmul: cublasSgemmStridedBatched failed with status " +
                             std::to_string(status));
  return finish("matmul", cudaSuccess);
}

}  // namespace

va::Status injectFault(va::Backend* backend) {
  CudaBackend* b = dynamic_cast<CudaBackend*>(backend);
  if (!b) return va::Status::Error("injectFault: not a cuda/emu backend");
  return b->injectFaultForTesting();
}

bool setBlasForTesting(va::Backend* backend, const BlasLib* lib) {
  CudaBackend* b = dynamic_cast<CudaBackend*>(backend);
  if (!b) return false;
  b->setBlas(lib);
  return true;
}

bool setLaunchCapForTesting(va::Backend* backend, int smCount) {
  CudaBackend* b = dynamic_cast<CudaBackend*>(backend);
  if (!b) return false;
  b->setLaunchCap(smCount);
  return true;
}

va::CudaInfo probe() {
  va::CudaInfo info;
  info.compiled = true;
  (void)cudaRuntimeGetVersion(&info.runtimeVersion);
  (void)cudaDriverGetVersion(&info.driverVersion);  // 0 when no driver is installed
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.available = false;
    info.reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    (void)cudaGetLastError();
    return info;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop;
    std::memset(&prop, 0, sizeof(prop));
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    va::CudaDeviceInfo dev;
    dev.name = prop.name;
    dev.major = prop.major;
    dev.minor = prop.minor;
    dev.totalMemory = static_cast<int64_t>(prop.totalGlobalMem);
    dev.multiProcessors = prop.multiProcessorCount;
    info.devices.push_back(dev);
  }
  info.available = !info.devices.empty();
  if (!info.available) info.reason = "no CUDA device found";
  (void)cudaGetLastError();
  return info;
}

va::Status createBackend(std::unique_ptr<va::Backend>* out) {
  const char* what = VA_IS_EMU ? "emu" : "cuda";
  va::CudaInfo info = probe();
  if (!info.available)
    return va::Status::Error(std::string(what) + ": no usable GPU (" + info.reason + ")");
  std::unique_ptr<CudaBackend> b(new CudaBackend());
  va::Status st = b->init();
  if (!st.ok()) return st;
  *out = std::move(b);
  return va::Status::Ok();
}

VA_CUDA_NAMESPACE_END
