// visattn — machine-limit probes (see probe.h): thread crew, timing, ISA dispatch, and the scalar
// loops (this file is compiled with the default flags, so it is safe on every x86-64 CPU).
#include "cpu/probe.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include "cpu/cpu_kernels.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace va {
namespace cpu {
namespace probe {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------- scalar loops
// The scalar cpu path is compiled with the default flags (x86-64 baseline: SSE2, no FMA), so its limit
// is separate 4-lane multiplies and adds: 12 independent chains of mul + add (2 FLOPs per lane; a
// chain step costs ~6 cycles of latency, 2 mul + 2 add pipes need 12 chains), in registers.
#if defined(__SSE2__)
constexpr int kScalarChains = 12;
constexpr int kScalarLanes = 4;

float fmaLoopScalar(int64_t iters, float x) {
  const __m128 m = _mm_set1_ps(0.99999f);
  const __m128 a = _mm_set1_ps(1e-5f);
  __m128 acc[kScalarChains];
#pragma GCC unroll 12
  for (int c = 0; c < kScalarChains; ++c) acc[c] = _mm_set1_ps(x + 0.001f * static_cast<float>(c));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kScalarChains; ++c) acc[c] = _mm_add_ps(_mm_mul_ps(acc[c], m), a);
  }
  __m128 s = acc[0];
#pragma GCC unroll 12
  for (int c = 1; c < kScalarChains; ++c) s = _mm_add_ps(s, acc[c]);
  alignas(16) float t[4];
  _mm_store_ps(t, s);
  return (t[0] + t[1]) + (t[2] + t[3]);
}
#else
constexpr int kScalarChains = 8;
constexpr int kScalarLanes = 1;

float fmaLoopScalar(int64_t iters, float x) {
  const float m = 0.99999f, a = 1e-5f;
  float c0 = x, c1 = x + 0.001f, c2 = x + 0.002f, c3 = x + 0.003f, c4 = x + 0.004f, c5 = x + 0.005f,
        c6 = x + 0.006f, c7 = x + 0.007f;
  for (int64_t i = 0; i < iters; ++i) {
    c0 = c0 * m + a; c1 = c1 * m + a; c2 = c2 * m + a; c3 = c3 * m + a;
    c4 = c4 * m + a; c5 = c5 * m + a; c6 = c6 * m + a; c7 = c7 * m + a;
  }
  return ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7));
}
#endif

void triadScalar(float* a, const float* b, const float* c, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

// ---------------------------------------------------------------- a crew of N threads
// run(fn) runs fn(t) for t in [0, N) concurrently, one per thread, and returns the wall time from
// the release of the threads to the end of the last one. Threads are created once per probe.
class Crew {
 public:
  explicit Crew(int n) {
    threads_.reserve(static_cast<size_t>(n));
    try {
      for (int t = 0; t < n; ++t) threads_.emplace_back([this, t] { loop(t); });
    } catch (...) {
      stopAll();
      throw;
    }
  }
  ~Crew() { stopAll(); }

  double run(const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> lock(mu_);
    fn_ = &fn;
    done_ = 0;
    ++generation_;
    Clock::time_point t0 = Clock::now();
    wake_.notify_all();
    finished_.wait(lock, [this] { return done_ == static_cast<int>(threads_.size()); });
    double wall = secondsSince(t0);
    fn_ = nullptr;
    return wall;
  }

 private:
  void loop(int t) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        fn = fn_;
      }
      try {
        (*fn)(t);
      } catch (...) {
        // the probe bodies do not throw; never let an exception escape a thread (std::terminate)
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (++done_ == static_cast<int>(threads_.size())) finished_.notify_one();
    }
  }
  void stopAll() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& th : threads_)
      if (th.joinable()) th.join();
    threads_.clear();
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable wake_, finished_;
  const std::function<void(int)>* fn_ = nullptr;
  uint64_t generation_ = 0;
  int done_ = 0;
  bool stop_ = false;
};

const Kernels& selectKernels() {
  const char* isa = isaName();  // best supported, lowered by VISATTN_ISA; checked at run time
  if (std::strcmp(isa, "avx512") == 0) return kernelsAvx512();
  if (std::strcmp(isa, "avx2") == 0) return kernelsAvx2();
  return kernelsScalar();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

struct AlignedFloats {
  float* p = nullptr;
  explicit AlignedFloats(int64_t n) {
    // 2 MB alignment lets transparent huge pages back the arrays (fewer TLB misses).
    constexpr size_t kAlign = size_t(2) << 20;
    size_t bytes = (static_cast<size_t>(n) * sizeof(float) + kAlign - 1) / kAlign * kAlign;
    p = static_cast<float*>(std::aligned_alloc(kAlign, bytes));
  }
  ~AlignedFloats() { std::free(p); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
};

}  // namespace

const Kernels& kernelsScalar() {
  static const Kernels k{"scalar", 2.0 * kScalarChains * kScalarLanes, fmaLoopScalar, triadScalar};
  return k;
}

FmaResult fmaThroughput(int threads, double seconds) {
  FmaResult r;
  const Kernels& k = selectKernels();
  r.isa = k.isa;
  r.threads = threads;
  if (threads < 1 || threads > 4096) {
    r.error = "threads must be in [1, 4096], got " + std::to_string(threads);
    return r;
  }
  if (!(seconds >= 0.01 && seconds <= 60)) {
    r.error = "seconds must be in [0.01, 60]";
    return r;
  }
  try {
    // Calibrate a chunk of ~1 ms on this thread, so that each thread checks the clock rarely.
    int64_t chunk = 1000;
    {
      Clock::time_point t0 = Clock::now();
      volatile float sink = k.fmaLoop(chunk, 1.0f);
      (void)sink;
      double dt = std::max(1e-7, secondsSince(t0));
      chunk = std::max<int64_t>(1000, static_cast<int64_t>(1e-3 * chunk / dt));
    }
    Crew crew(threads);
    std::vector<double> flops(static_cast<size_t>(threads));
    std::vector<float> sinks(static_cast<size_t>(threads));
    Clock::time_point deadline;
    auto body = [&](int t) {
      double f = 0;
      float s = 0;
      do {
        s += k.fmaLoop(chunk, 1.0f + 0.01f * static_cast<float>(t));
        f += static_cast<double>(chunk) * k.flopsPerIter;
      } while (Clock::now() < deadline);
      flops[static_cast<size_t>(t)] = f;
      sinks[static_cast<size_t>(t)] = s;
    };
    auto slice = [&](double len) {
      deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(len));
      double wall = crew.run(body);
      double total = 0;
      for (double f : flops) total += f;
      return total / wall * 1e-9;
    };
    slice(std::min(0.3, std::max(0.05, 0.1 * seconds)));  // warm-up: clocks, power state
    int nSlices = std::max(3, std::min(10, static_cast<int>(seconds / 0.05)));
    double len = seconds / nSlices;
    std::vector<double> rates;
    Clock::time_point t0 = Clock::now();
    for (int i = 0; i < nSlices; ++i) rates.push_back(slice(len));
    r.seconds = secondsSince(t0);
    r.gflops = *std::max_element(rates.begin(), rates.end());
    r.gflopsMedian = median(rates);
    float check = 0;
    for (float s : sinks) check += s;
    if (!(check == check)) {  // NaN: the loop is broken (cannot happen with these constants)
      r.error = "fma probe produced NaN";
      return r;
    }
    r.ok = true;
  } catch (const std::system_error& e) {
    r.error = std::string("could not start probe threads: ") + e.what();
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

BandwidthResult streamBandwidth(int threads, int64_t bytesPerArray) {
  BandwidthResult r;
  const Kernels& k = selectKernels();
  r.isa = k.isa;
  r.threads = threads;
  if (threads < 1 || threads > 4096) {
    r.error = "threads must be in [1, 4096], got " + std::to_string(threads);
    return r;
  }
  if (bytesPerArray < (int64_t(1) << 16) || bytesPerArray > (int64_t(1) << 36)) {
    r.error = "bytes per array must be in [64 KiB, 64 GiB], got " + std::to_string(bytesPerArray);
    return r;
  }
  // Each thread's slice starts on a 64-byte boundary (the vector loops use aligned accesses).
  const int64_t n = bytesPerArray / static_cast<int64_t>(sizeof(float)) / 16 * 16;
  r.bytesPerArray = n * static_cast<int64_t>(sizeof(float));
  try {
    AlignedFloats a(n), b(n), c(n);
    if (!a.p || !b.p || !c.p) {
      r.error = "could not allocate 3 x " + std::to_string(r.bytesPerArray) + " bytes";
      return r;
    }
    const int64_t per = (n / threads + 15) / 16 * 16;
    auto range = [&](int t, int64_t* b0, int64_t* e0) {
      *b0 = std::min<int64_t>(n, per * t);
      *e0 = std::min<int64_t>(n, *b0 + per);
    };
    Crew crew(threads);
    // First touch by the thread that streams the slice; values chosen so that b + s·c is exact.
    crew.run([&](int t) {
      int64_t i0, i1;
      range(t, &i0, &i1);
      for (int64_t i = i0; i < i1; ++i) {
        a.p[i] = 0.0f;
        b.p[i] = static_cast<float>(i & 1023);
        c.p[i] = static_cast<float>(i % 7);
      }
    });
    const float s = 0.5f;
    auto pass = [&](int t) {
      int64_t i0, i1;
      range(t, &i0, &i1);
      if (i1 > i0) k.triad(a.p + i0, b.p + i0, c.p + i0, s, i1 - i0);
    };
    crew.run(pass);  // warm-up pass
    const double bytes = 3.0 * static_cast<double>(r.bytesPerArray);
    // Enough passes for a stable minimum, bounded in time (~0.5 s at DRAM speed for 3 x 256 MB).
    const int reps = bytes >= 1e9 ? 6 : bytes >= 2e8 ? 10 : 20;
    std::vector<double> rates;
    for (int rep = 0; rep < reps; ++rep) rates.push_back(bytes / crew.run(pass) * 1e-9);
    // Validate sampled elements of the last pass (exact in any rounding: small integers and halves).
    const int64_t step = std::max<int64_t>(1, n / 4099);
    for (int64_t i = 0; i < n; i += step) {
      float want = static_cast<float>(i & 1023) + s * static_cast<float>(i % 7);
      if (a.p[i] != want) {
        r.error = "triad result wrong at element " + std::to_string(i);
        return r;
      }
    }
    if (a.p[n - 1] != static_cast<float>((n - 1) & 1023) + s * static_cast<float>((n - 1) % 7)) {
      r.error = "triad result wrong at the last element";
      return r;
    }
    r.reps = reps;
    r.gbps = *std::max_element(rates.begin(), rates.end());
    r.gbpsMedian = median(rates);
    r.ok = true;
  } catch (const std::system_error& e) {
    r.error = std::string("could not start probe threads: ") + e.what();
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

}  // namespace probe
}  // namespace cpu
}  // namespace va
