// visattn — a serial task queue on its own thread: the `stream` of the cpu device.
// Tasks run in enqueue order. A task that fails records the stream's sticky error, which the next
// takeError() returns and clears. The destructor finishes the queued work and joins the thread.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "visattn/backend.h"
#include "visattn/status.h"

namespace va {

class Executor {
 public:
  using Task = std::function<Status()>;
  // owner: the backend this executor serves (marks the thread, see backendOwningThisThread()).
  Executor(std::string name, const Backend* owner);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  using Notify = std::function<void(Status)>;
  void enqueue(Task task);
  // A task that is bookkeeping, not an operation (returning a freed block to the allocator): it runs
  // in stream order and waitIdle() waits for it, but pending() does not count it. Frees are enqueued
  // whenever the garbage collector finalizes a tensor handle, which can happen at any moment on the
  // JS thread; counting them would make pending() read non-zero right after a synchronize().
  void enqueueHousekeeping(Task task);
  // Enqueue `work` (may be empty) followed by `notify`, which receives (and clears) the sticky error
  // accumulated so far. The entry stops counting as pending BEFORE notify runs, so whoever notify
  // wakes sees pending() == 0 once everything before it has finished.
  void enqueueNotify(std::function<void()> work, Notify notify);
  void waitIdle();
  Status takeError();
  // Operations (enqueue / enqueueNotify entries) queued or running; housekeeping excluded.
  int64_t pending() const;

 private:
  void run();
  std::string name_;
  const Backend* owner_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_;
  struct Entry {
    Task task;
    Notify notify;
    bool housekeeping = false;
  };
  std::deque<Entry> queue_;
  int64_t pending_ = 0;     // every entry not yet finished (waitIdle)
  int64_t pendingOps_ = 0;  // the same, housekeeping excluded (pending())
  bool stop_ = false;
  Status sticky_;
  std::thread thread_;
};

}  // namespace va
