// visattn — the cpu device: an executor thread (the stream), a thread pool used inside ops, a caching
// host allocator, and the kernels of native/cpu. Memory is stream-ordered: free() enqueues the
// block's return to the cache, so a block is only reused after every queued op that reads it.
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_kernels.h"
#include "runtime/executor.h"
#include "runtime/host_allocator.h"
#include "runtime/thread_pool.h"
#include "visattn/devices.h"

namespace va {
namespace {

class CpuBackend final : public Backend {
 public:
  CpuBackend() : pool_(defaultThreadCount()), exec_("cpu", this) {}
  ~CpuBackend() override { exec_.waitIdle(); }

  DeviceKind kind() const override { return DeviceKind::Cpu; }
  const char* name() const override { return "cpu"; }

  Status alloc(size_t bytes, void** ptr) override {
    *ptr = alloc_.allocate(bytes);
    if (!*ptr) return Status::Error("cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
    return Status::Ok();
  }
  void free(void* ptr) override {
    exec_.enqueueHousekeeping([this, ptr] {
      alloc_.deallocate(ptr);
      return Status::Ok();
    });
  }
  MemoryStats memory() const override { return alloc_.stats(); }

  Status upload(void* dst, const void* src, size_t bytes) override {
    auto staged = std::make_shared<std::vector<unsigned char>>(
        static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + bytes);
    exec_.enqueue([dst, staged] {
      std::memcpy(dst, staged->data(), staged->size());
      return Status::Ok();
    });
    return Status::Ok();
  }
  Status uploadDeferred(void* dst, size_t bytes, std::function<Status(void*)> fill) override {
    (void)bytes;
    exec_.enqueue([dst, fill = std::move(fill)] { return fill(dst); });
    return Status::Ok();
  }
  void download(void* dst, const void* src, size_t bytes, DoneFn done) override {
    exec_.enqueueNotify([dst, src, bytes] { std::memcpy(dst, src, bytes); }, std::move(done));
  }
  Status synchronize() override {
    exec_.waitIdle();
    return exec_.takeError();
  }
  void synchronizeAsync(DoneFn done) override { exec_.enqueueNotify(nullptr, std::move(done)); }
  int64_t pending() const override { return exec_.pending(); }

// A kernel that throws (e.g. std::bad_alloc for scratch memory) becomes the stream's sticky error,
// naming the op.
#define VA_CPU_OP(method, Params, kernel)                                         \
  Status method(const Params& p) override {                                       \
    exec_.enqueue([this, p] {                                                     \
      try {                                                                       \
        kernel(p, pool_);                                                         \
      } catch (const std::exception& e) {                                         \
        return Status::Error(std::string(#method) + ": cpu: " + e.what());        \
      }                                                                           \
      return Status::Ok();                                                        \
    });                                                                           \
    return Status::Ok();                                                          \
  }
  VA_CPU_OP(binary, BinaryParams, cpu::binary)
  VA_CPU_OP(affine, AffineParams, cpu::affine)
  VA_CPU_OP(unary, UnaryParams, cpu::unary)
  VA_CPU_OP(unaryBackward, UnaryBackwardParams, cpu::unaryBackward)
  VA_CPU_OP(matmul, MatmulParams, cpu::matmul)
  VA_CPU_OP(softmax, SoftmaxParams, cpu::softmax)
  VA_CPU_OP(softmaxBackward, SoftmaxBackwardParams, cpu::softmaxBackward)
  VA_CPU_OP(layerNorm, LayerNormParams, cpu::layerNorm)
  VA_CPU_OP(layerNormBackward, LayerNormBackwardParams, cpu::layerNormBackward)
  VA_CPU_OP(reduce, ReduceParams, cpu::reduce)
  VA_CPU_OP(copy, CopyParams, cpu::copy)
  VA_CPU_OP(fill, FillParams, cpu::fill)
  VA_CPU_OP(avgPool2d, AvgPool2dParams, cpu::avgPool2d)
  VA_CPU_OP(avgPool2dBackward, AvgPool2dBackwardParams, cpu::avgPool2dBackward)
  VA_CPU_OP(random, RandomParams, cpu::random)
  VA_CPU_OP(outlookAttention, OutlookParams, cpu::outlookAttention)
  VA_CPU_OP(outlookAttentionBackward, OutlookBackwardParams, cpu::outlookAttentionBackward)
  VA_CPU_OP(haloAttention, HaloParams, cpu::haloAttention)
  VA_CPU_OP(haloAttentionBackward, HaloBackwardParams, cpu::haloAttentionBackward)
  VA_CPU_OP(dropout, DropoutParams, cpu::dropout)
  VA_CPU_OP(crossAttention, CrossAttentionParams, cpu::crossAttention)
  VA_CPU_OP(crossAttentionBackward, CrossAttentionBackwardParams, cpu::crossAttentionBackward)
  VA_CPU_OP(groupFC, GroupFCParams, cpu::groupFC)
  VA_CPU_OP(groupFCBackward, GroupFCBackwardParams, cpu::groupFCBackward)
  VA_CPU_OP(multiLabelLoss, MultiLabelLossParams, cpu::multiLabelLoss)
  VA_CPU_OP(kmeansCrossAttention, KMeansParams, cpu::kmeansCrossAttention)
  VA_CPU_OP(kmeansCrossAttentionBackward, KMeansBackwardParams, cpu::kmeansCrossAttentionBackward)
  VA_CPU_OP(l2Normalize, L2NormalizeParams, cpu::l2Normalize)
  VA_CPU_OP(l2NormalizeBackward, L2NormalizeBackwardParams, cpu::l2NormalizeBackward)
#undef VA_CPU_OP

  Status injectFault() override {
    exec_.enqueue([] { return Status::Error("cpu: injected fault (testing hook)"); });
    return Status::Ok();
  }

 private:
  HostAllocator alloc_;
  ThreadPool pool_;
  Executor exec_;  // declared last: destroyed first, after draining work that uses pool_ and alloc_
};

}  // namespace

std::unique_ptr<Backend> createCpuBackend() { return std::make_unique<CpuBackend>(); }
int cpuThreads() { return defaultThreadCount(); }
const char* cpuIsaName() { return cpu::isaName(); }

}  // namespace va
