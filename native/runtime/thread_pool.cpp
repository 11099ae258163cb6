// visattn — fork-join thread pool (see thread_pool.h).
#include "runtime/thread_pool.h"

#include <cerrno>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VA_CPU_RELAX() _mm_pause()
#else
#define VA_CPU_RELAX() ((void)0)
#endif

namespace va {

namespace {
// Set while a thread executes chunks of some pool's job: a nested parallelFor then runs inline.
thread_local bool tl_inParallel = false;
// Spin this many polls before sleeping on a condition variable (covers back-to-back parallelFors
// issued by a kernel, e.g. the GEMM's pack/compute phases, without futex round trips).
constexpr int kSpinPolls = 5000;
}  // namespace

ThreadPool::ThreadPool(int threads) : size_(threads < 1 ? 1 : threads) {
  workers_.reserve(size_ - 1);
  try {
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this] { workerLoop(); });
  } catch (...) {
    // Could not start every thread: run with the ones we have.
    size_ = static_cast<int>(workers_.size()) + 1;
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
}

void ThreadPool::runChunks() {
  bool saved = tl_inParallel;
  tl_inParallel = true;
  for (;;) {
    int64_t c = nextChunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= nchunks_) break;
    int64_t b = c * chunk_;
    int64_t e = b + chunk_ < n_ ? b + chunk_ : n_;
    try {
      (*fn_)(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lock(errMu_);
      if (!error_) error_ = std::current_exception();
      nextChunk_.store(nchunks_, std::memory_order_relaxed);  // stop handing out work
    }
  }
  tl_inParallel = saved;
}

void ThreadPool::workerLoop() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; g == seen && i < kSpinPolls; ++i) {
      VA_CPU_RELAX();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    // Join the current job if it is still open (seq_cst pairs with the caller's close + read).
    joined_.fetch_add(1, std::memory_order_seq_cst);
    if (!closed_.load(std::memory_order_seq_cst)) runChunks();
    if (joined_.fetch_sub(1, std::memory_order_seq_cst) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_.notify_one();
    }
  }
}

void ThreadPool::parallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (size_ == 1 || n <= grain || tl_inParallel) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (!busy.owns_lock()) {  // another thread is using this pool right now
    fn(0, n);
    return;
  }
  // Chunk size: at least grain, and about 4 chunks per thread for load balance.
  int64_t target = (n + 4 * size_ - 1) / (4 * size_);
  int64_t chunk = target > grain ? target : grain;
  int64_t nchunks = (n + chunk - 1) / chunk;
  if (nchunks <= 1) {
    bool saved = tl_inParallel;
    tl_inParallel = true;
    try {
      fn(0, n);
    } catch (...) {
      tl_inParallel = saved;
      throw;
    }
    tl_inParallel = saved;
    return;
  }
  fn_ = &fn;
  n_ = n;
  chunk_ = chunk;
  nchunks_ = nchunks;
  error_ = nullptr;
  nextChunk_.store(0, std::memory_order_relaxed);
  closed_.store(false, std::memory_order_seq_cst);  // publishes the fields above
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  runChunks();
  // Every chunk is claimed: close the job, then wait for the workers that joined it.
  closed_.store(true, std::memory_order_seq_cst);
  for (int i = 0; joined_.load(std::memory_order_seq_cst) != 0 && i < kSpinPolls; ++i) VA_CPU_RELAX();
  if (joined_.load(std::memory_order_seq_cst) != 0) {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return joined_.load(std::memory_order_seq_cst) == 0; });
  }
  fn_ = nullptr;
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

int defaultThreadCount() {
  const char* s = std::getenv("VISATTN_NUM_THREADS");
  if (s && *s) {
    errno = 0;
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (errno == 0 && end && *end == '\0' && v > 0 && v <= 4096) return static_cast<int>(v);
  }
  unsigned h = std::thread::hardware_concurrency();
  return h == 0 ? 1 : static_cast<int>(h);
}

}  // namespace va
