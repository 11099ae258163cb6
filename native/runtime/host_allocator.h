// visattn — caching, 64-byte-aligned host allocator with byte accounting (cpu device).
// Freed blocks are kept in size bins and reused, so hot loops do not page-fault.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "visattn/backend.h"

namespace va {

class HostAllocator {
 public:
  HostAllocator() = default;
  ~HostAllocator();
  HostAllocator(const HostAllocator&) = delete;
  HostAllocator& operator=(const HostAllocator&) = delete;

  void* allocate(size_t bytes);  // nullptr when the system is out of memory
  void deallocate(void* p);      // p must come from allocate()
  void releaseCache();
  MemoryStats stats() const;
  static size_t roundSize(size_t bytes);

 private:
  mutable std::mutex mu_;
  std::multimap<size_t, void*> cache_;         // size class -> free blocks
  std::unordered_map<void*, size_t> live_;     // block -> size class
  int64_t allocated_ = 0, cached_ = 0;
};

}  // namespace va
