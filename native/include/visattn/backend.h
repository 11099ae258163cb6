// visattn — the device backend interface. One implementation per device:
//   cpu  — native/runtime/cpu_backend.cpp (executor thread + thread pool + native/cpu kernels)
//   cuda — cuda/backend/cuda_backend.cu compiled by nvcc (namespace va_cuda)
//   emu  — the SAME cuda/backend source compiled by g++ against the emulated runtime (namespace va_emu)
//
// Execution model: every backend owns ONE stream. Op methods validate nothing (TypeScript did),
// enqueue work and return at once. Memory is stream-ordered: free() returns a block that only later
// work on the same stream can reuse, so freeing memory still read by queued work is safe.
// A failure inside queued work is recorded as the stream's sticky error; synchronize()/download()
// report it (cpu and emu clear it once reported). Op methods return a non-ok Status only for
// failures detectable at enqueue time (e.g. an allocation or launch-configuration error).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "visattn/params.h"
#include "visattn/status.h"

namespace va {

enum class DeviceKind : int32_t { Cpu = 0, Emu = 1, Cuda = 2 };

struct MemoryStats {
  int64_t allocatedBytes = 0;  // bytes in live allocations handed out by alloc()
  int64_t reservedBytes = 0;   // allocatedBytes + bytes cached for reuse
  int64_t allocations = 0;     // live allocations
};

// Completion callback for asynchronous transfers/synchronisation; called exactly once, from a
// backend-owned thread (never the JS thread), after the work has finished.
using DoneFn = std::function<void(Status)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceKind kind() const = 0;
  virtual const char* name() const = 0;

  // ---- memory (stream-ordered, caching) ----
  virtual Status alloc(size_t bytes, void** ptr) = 0;  // bytes > 0; 64-byte aligned
  virtual void free(void* ptr) = 0;
  virtual MemoryStats memory() const = 0;

  // ---- transfers ----
  // Copies `bytes` from host `src` into device `dst`; src may be reused as soon as this returns.
  virtual Status upload(void* dst, const void* src, size_t bytes) = 0;
  // Asynchronously copies device `src` to host `dst` after all queued work; then calls done.
  virtual void download(void* dst, const void* src, size_t bytes, DoneFn done) = 0;
  // Cross-device copies: enqueues, in stream order, a write of `bytes` into device `dst` whose host
  // data `fill` produces when the stream reaches it. fill runs on a backend thread (it may wait, e.g.
  // for another device's readback), writes the bytes to the host pointer it is given and returns
  // their status; a failure becomes this stream's sticky error. Returns at once.
  virtual Status uploadDeferred(void* dst, size_t bytes, std::function<Status(void* host)> fill) = 0;
  // Blocks until all queued work has finished; returns (and on cpu/emu clears) the sticky error.
  virtual Status synchronize() = 0;
  // Calls done once all work queued so far has finished, with the sticky error (cleared on cpu/emu).
  virtual void synchronizeAsync(DoneFn done) = 0;
  // Number of enqueued operations that have not finished yet (for tests of non-blocking ops).
  virtual int64_t pending() const = 0;

  // ---- core ops (forward and backward kernels) ----
  virtual Status binary(const BinaryParams& p) = 0;
  virtual Status affine(const AffineParams& p) = 0;
  virtual Status unary(const UnaryParams& p) = 0;
  virtual Status unaryBackward(const UnaryBackwardParams& p) = 0;
  virtual Status matmul(const MatmulParams& p) = 0;
  virtual Status softmax(const SoftmaxParams& p) = 0;
  virtual Status softmaxBackward(const SoftmaxBackwardParams& p) = 0;
  virtual Status layerNorm(const LayerNormParams& p) = 0;
  virtual Status layerNormBackward(const LayerNormBackwardParams& p) = 0;
  virtual Status reduce(const ReduceParams& p) = 0;
  virtual Status copy(const CopyParams& p) = 0;
  virtual Status fill(const FillParams& p) = 0;
  virtual Status avgPool2d(const AvgPool2dParams& p) = 0;
  virtual Status avgPool2dBackward(const AvgPool2dBackwardParams& p) = 0;
  virtual Status random(const RandomParams& p) = 0;

  // ---- fused attention operators ----
  virtual Status outlookAttention(const OutlookParams& p) = 0;
  virtual Status outlookAttentionBackward(const OutlookBackwardParams& p) = 0;
  virtual Status haloAttention(const HaloParams& p) = 0;
  virtual Status haloAttentionBackward(const HaloBackwardParams& p) = 0;
  virtual Status dropout(const DropoutParams& p) = 0;
  virtual Status crossAttention(const CrossAttentionParams& p) = 0;
  virtual Status crossAttentionBackward(const CrossAttentionBackwardParams& p) = 0;
  virtual Status groupFC(const GroupFCParams& p) = 0;
  virtual Status groupFCBackward(const GroupFCBackwardParams& p) = 0;
  virtual Status multiLabelLoss(const MultiLabelLossParams& p) = 0;
  virtual Status kmeansCrossAttention(const KMeansParams& p) = 0;
  virtual Status kmeansCrossAttentionBackward(const KMeansBackwardParams& p) = 0;
  virtual Status l2Normalize(const L2NormalizeParams& p) = 0;
  virtual Status l2NormalizeBackward(const L2NormalizeBackwardParams& p) = 0;

  // Testing hook: enqueue work that FAILS on the stream (cpu: a failing task; emu/cuda: a kernel that
  // traps), so tests can check that asynchronous failures surface on the next readback/synchronize.
  virtual Status injectFault() { return Status::Error(std::string(name()) + ": injectFault is not supported"); }
};

// The backend that owns the calling thread (its executor or completion thread), or null. Backend
// threads set it when they start, so that the last reference to a backend — dropped, e.g., by a
// completion callback after a worker thread's environment has gone — never runs the backend's
// destructor (which joins those very threads) on one of them.
inline const Backend*& backendOwningThisThread() {
  static thread_local const Backend* owner = nullptr;
  return owner;
}

// Description of a CUDA (or emulated CUDA) device, for va.info().
struct CudaDeviceInfo {
  std::string name;
  int major = 0, minor = 0;
  int64_t totalMemory = 0;
  int multiProcessors = 0;
};
struct CudaInfo {
  bool compiled = false;   // built with nvcc
  bool available = false;  // a usable GPU was found
  std::string reason;      // why not available (e.g. "cudaErrorInsufficientDriver: ...")
  int runtimeVersion = 0, driverVersion = 0;
  std::vector<CudaDeviceInfo> devices;
};

}  // namespace va
