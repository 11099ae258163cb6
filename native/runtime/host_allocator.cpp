#include "runtime/host_allocator.h"

#include <cstdlib>

namespace va {

HostAllocator::~HostAllocator() {
  releaseCache();
  for (auto& kv : live_) std::free(kv.first);
}

size_t HostAllocator::roundSize(size_t bytes) {
  if (bytes <= 4096) return (bytes + 255) & ~size_t(255);
  // Size classes 2^k and 1.5·2^k keep waste under 33% while letting blocks be reused.
  size_t p = 4096;
  while (p < bytes) {
    size_t mid = p + p / 2;
    if (mid >= bytes) return mid;
    p <<= 1;
  }
  return p;
}

void* HostAllocator::allocate(size_t bytes) {
  size_t cls = roundSize(bytes == 0 ? 1 : bytes);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(cls);
  void* p = nullptr;
  if (it != cache_.end()) {
    p = it->second;
    cache_.erase(it);
    cached_ -= static_cast<int64_t>(cls);
  } else {
    p = std::aligned_alloc(64, cls);
    if (!p) {
      for (auto& kv : cache_) std::free(kv.second);
      cache_.clear();
      cached_ = 0;
      p = std::aligned_alloc(64, cls);
      if (!p) return nullptr;
    }
  }
  live_[p] = cls;
  allocated_ += static_cast<int64_t>(cls);
  return p;
}

void HostAllocator::deallocate(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) return;
  size_t cls = it->second;
  live_.erase(it);
  allocated_ -= static_cast<int64_t>(cls);
  cached_ += static_cast<int64_t>(cls);
  cache_.emplace(cls, p);
}

void HostAllocator::releaseCache() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& kv : cache_) std::free(kv.second);
  cache_.clear();
  cached_ = 0;
}

MemoryStats HostAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  MemoryStats s;
  s.allocatedBytes = allocated_;
  s.reservedBytes = allocated_ + cached_;
  s.allocations = static_cast<int64_t>(live_.size());
  return s;
}

}  // namespace va
