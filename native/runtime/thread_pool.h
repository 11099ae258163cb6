// visattn — a small fork-join thread pool for the cpu backend.
//
// parallelFor splits [0, n) into chunks of at least `grain` indices and runs fn(begin, end) on the
// pool's workers AND the calling thread. It returns when every chunk has run. It runs inline (on the
// caller, as one call fn(0, n)) when the pool has one thread, when n <= grain, when called from
// inside a parallelFor region (nested call: no deadlock), or when another thread is already running
// a parallelFor on this pool. Chunks are handed out dynamically: callers must not let results
// depend on which thread runs which chunk (kernels write disjoint outputs or use fixed chunking).
// An exception thrown by fn is rethrown on the caller after all chunks have stopped.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace va {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads < 1 is treated as 1; threads - 1 workers are started
  ~ThreadPool();                     // stops and joins every worker
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }
  void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void workerLoop();
  void runChunks();  // grabs chunks of the current job until none is left

  int size_;
  std::vector<std::thread> workers_;

  std::mutex mu_;                  // guards stop_ and job publication (generation_ changes)
  std::condition_variable wake_;   // workers sleep here
  std::condition_variable done_;   // the caller sleeps here
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;

  std::mutex busy_;  // held by the thread running a parallelFor (a second caller runs inline)

  // current job
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 1, nchunks_ = 0;
  std::atomic<int64_t> nextChunk_{0};
  // Workers join a job only while it is open; the caller closes it once every chunk is claimed and
  // then waits only for the workers that joined (a descheduled or sleeping worker never delays it).
  std::atomic<bool> closed_{true};
  std::atomic<int> joined_{0};
  std::mutex errMu_;
  std::exception_ptr error_;
};

// VISATTN_NUM_THREADS (a positive integer) if set, else std::thread::hardware_concurrency() (>= 1).
int defaultThreadCount();

}  // namespace va
