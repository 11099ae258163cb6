// visattn binding — device storage handles. A Storage is one device allocation; it is shared by every
// tensor view (reshape) through a native reference count: each JS tensor owns one Handle, and the
// allocation is returned to its backend (stream-ordered) when the last Handle is released.
#pragma once
#include <atomic>
#include <cstddef>
#include <memory>

#include "visattn/backend.h"

namespace va {
namespace binding {

struct LiveCounters {
  std::atomic<int64_t> storages[3] = {{0}, {0}, {0}};
  std::atomic<int64_t> bytes[3] = {{0}, {0}, {0}};
};

struct Storage {
  Storage(std::shared_ptr<Backend> b, void* p, size_t n, std::shared_ptr<LiveCounters> c)
      : backend(std::move(b)), ptr(p), bytes(n), counters(std::move(c)) {
    int d = static_cast<int>(backend->kind());
    counters->storages[d]++;
    counters->bytes[d] += static_cast<int64_t>(bytes);
  }
  ~Storage() {
    int d = static_cast<int>(backend->kind());
    counters->storages[d]--;
    counters->bytes[d] -= static_cast<int64_t>(bytes);
    backend->free(ptr);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  std::shared_ptr<Backend> backend;
  void* ptr;
  size_t bytes;
  std::shared_ptr<LiveCounters> counters;
};

// What a JS handle (Napi::External) points to. release() drops this handle's reference.
struct Handle {
  std::shared_ptr<Storage> storage;
};

}  // namespace binding
}  // namespace va
