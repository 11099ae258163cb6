// visattn — the emulated CUDA runtime API: device properties, memory, streams (executor threads),
// events, host functions, sticky stream errors, last-error bookkeeping, kernel launch enqueueing.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <unordered_map>

#include "emu/emu_internal.h"

namespace vaemu {
namespace detail {

// ------------------------------------------------------------------ small helpers
bool envFlag(const char* name) {
  const char* e = std::getenv(name);
  return e && *e && std::strcmp(e, "0") != 0 && std::strcmp(e, "false") != 0;
}

unsigned numThreads() {
  static const unsigned n = [] {
    if (const char* e = std::getenv("VISATTN_NUM_THREADS")) {
      long v = std::atol(e);
      if (v >= 1 && v <= 1024) return (unsigned)v;
    }
    unsigned h = std::thread::hardware_concurrency();
    return h ? h : 1u;
  }();
  return n;
}

namespace {

thread_local bool tl_inHostFn = false;
thread_local cudaError_t tl_lastError = cudaSuccess;      // cudaGetLastError / Peek
thread_local cudaError_t tl_detailCode = cudaSuccess;     // errorDetail()
thread_local std::string* tl_detail = nullptr;

std::string& detailStr() {
  if (!tl_detail) {
    thread_local std::unique_ptr<std::string> holder(new std::string());
    tl_detail = holder.get();
  }
  return *tl_detail;
}

// Returns `e` after recording it as the calling thread's last error (with an optional detail).
cudaError_t setError(cudaError_t e, const std::string& detail = std::string()) {
  if (e != cudaSuccess) {
    tl_lastError = e;
    tl_detailCode = e;
    detailStr() = detail;
  }
  return e;
}

// Runtime calls are illegal from host callbacks and from kernels.
bool forbidden() { return tl_inHostFn || tl_fiber != nullptr; }

// ------------------------------------------------------------------ memory registry
struct MemRegistry {
  std::mutex m;
  std::map<uintptr_t, size_t> device;  // base -> bytes
  std::map<uintptr_t, size_t> pinned;
  size_t deviceBytes = 0;
};
MemRegistry& mem() {
  static MemRegistry* r = new MemRegistry();
  return *r;
}

// Is [p, p+n) inside one registered range?
bool inRange(const std::map<uintptr_t, size_t>& m, const void* p, size_t n) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(a);
  if (it == m.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + std::max<size_t>(it->second, 1) && a + n >= a;
}

}  // namespace

// ------------------------------------------------------------------ streams and events
struct Dep {
  std::shared_ptr<StreamImpl> stream;  // wait until stream->completed >= gen
  uint64_t gen = 0;
  std::shared_ptr<EventImpl> event;    // or until event->completedGen >= gen
};

struct Task {
  std::function<void(StreamImpl&)> fn;
  std::vector<Dep> deps;
};

struct StreamImpl {
  unsigned flags = 0;
  bool legacy = false;
  std::mutex m;
  std::condition_variable cv;      // queue changes
  std::condition_variable cvDone;  // completions
  std::deque<Task> q;
  uint64_t submitted = 0, completed = 0;
  bool stop = false, running = false;
  std::thread th;
  // sticky error
  cudaError_t err = cudaSuccess;
  std::string errDetail;
  uint64_t errSeq = 0;
};

struct EventImpl {
  unsigned flags = 0;
  std::mutex m;
  std::condition_variable cv;
  uint64_t recordedGen = 0, completedGen = 0;
  std::chrono::steady_clock::time_point t;
  std::weak_ptr<StreamImpl> stream;
  cudaError_t err = cudaSuccess;
  uint64_t errSeq = 0;
};

namespace {

struct Registry {
  std::mutex m;
  std::unordered_map<StreamImpl*, std::shared_ptr<StreamImpl>> streams;
  std::unordered_map<EventImpl*, std::shared_ptr<EventImpl>> events;
  std::shared_ptr<StreamImpl> legacy;
  std::map<const void*, int> maxDynSmem;
  std::atomic<uint64_t> errSeq{0};
  bool shuttingDown = false;
};
Registry& reg() {
  static Registry* r = new Registry();  // leaked on purpose (see shutdown())
  return *r;
}

std::shared_ptr<StreamImpl> legacyStream() {
  Registry& r = reg();
  std::lock_guard<std::mutex> lk(r.m);
  if (!r.legacy) {
    r.legacy = std::make_shared<StreamImpl>();
    r.legacy->legacy = true;
  }
  return r.legacy;
}

// nullptr -> legacy default stream; unknown handle -> empty.
std::shared_ptr<StreamImpl> lookup(cudaStream_t s) {
  if (!s) return legacyStream();
  Registry& r = reg();
  std::lock_guard<std::mutex> lk(r.m);
  auto it = r.streams.find(s);
  return it == r.streams.end() ? nullptr : it->second;
}

std::shared_ptr<EventImpl> lookupEvent(cudaEvent_t e) {
  if (!e) return nullptr;
  Registry& r = reg();
  std::lock_guard<std::mutex> lk(r.m);
  auto it = r.events.find(e);
  return it == r.events.end() ? nullptr : it->second;
}

void setSticky(StreamImpl& s, cudaError_t e, const std::string& detail) {
  std::lock_guard<std::mutex> lk(s.m);
  if (s.err == cudaSuccess) {
    s.err = e;
    s.errDetail = detail;
    s.errSeq = ++reg().errSeq;
  }
}

void waitDep(const Dep& d) {
  if (d.stream) {
    StreamImpl& t = *d.stream;
    std::unique_lock<std::mutex> lk(t.m);
    t.cvDone.wait(lk, [&] { return t.completed >= d.gen || (t.stop && !t.running); });
  } else if (d.event) {
    EventImpl& e = *d.event;
    std::unique_lock<std::mutex> lk(e.m);
    e.cv.wait(lk, [&] {
      if (e.completedGen >= d.gen) return true;
      std::lock_guard<std::mutex> rl(reg().m);
      return reg().shuttingDown;
    });
  }
}

void executorLoop(StreamImpl* s) {
  for (;;) {
    Task t;
    {
      std::unique_lock<std::mutex> lk(s->m);
      s->cv.wait(lk, [&] { return s->stop || !s->q.empty(); });
      if (s->q.empty()) {  // stop requested and queue drained
        s->running = false;
        s->cvDone.notify_all();
        return;
      }
      t = std::move(s->q.front());
      s->q.pop_front();
    }
    for (const Dep& d : t.deps) waitDep(d);
    if (t.fn) {
      try {
        t.fn(*s);
      } catch (const std::exception& e) {
        setSticky(*s, cudaErrorUnknown, std::string("emulator internal error: ") + e.what());
      } catch (...) {
        setSticky(*s, cudaErrorUnknown, "emulator internal error");
      }
    }
    t = Task();
    {
      std::lock_guard<std::mutex> lk(s->m);
      s->completed++;
    }
    s->cvDone.notify_all();
  }
}

// Appends a task; returns its generation (stream->completed >= gen once it has run).
uint64_t enqueue(const std::shared_ptr<StreamImpl>& s, std::function<void(StreamImpl&)> fn) {
  Task t;
  t.fn = std::move(fn);
  // Legacy default stream semantics: work on the legacy stream waits for all blocking streams,
  // work on a blocking stream waits for the legacy stream.
  {
    Registry& r = reg();
    std::lock_guard<std::mutex> lk(r.m);
    if (s->legacy) {
      for (auto& kv : r.streams) {
        StreamImpl& o = *kv.second;
        if (o.flags & cudaStreamNonBlocking) continue;
        std::lock_guard<std::mutex> ol(o.m);
        if (o.submitted > o.completed) t.deps.push_back(Dep{kv.second, o.submitted, nullptr});
      }
    } else if (!(s->flags & cudaStreamNonBlocking) && r.legacy) {
      StreamImpl& o = *r.legacy;
      std::lock_guard<std::mutex> ol(o.m);
      if (o.submitted > o.completed) t.deps.push_back(Dep{r.legacy, o.submitted, nullptr});
    }
  }
  std::lock_guard<std::mutex> lk(s->m);
  if (!s->running) {
    s->stop = false;
    s->running = true;
    if (s->th.joinable()) s->th.join();  // a previously stopped executor
    s->th = std::thread(executorLoop, s.get());
  }
  s->q.push_back(std::move(t));
  uint64_t gen = ++s->submitted;
  s->cv.notify_one();
  return gen;
}

void enqueueWithDep(const std::shared_ptr<StreamImpl>& s, Dep dep) {
  Task t;
  t.deps.push_back(std::move(dep));
  std::lock_guard<std::mutex> lk(s->m);
  if (!s->running) {
    s->stop = false;
    s->running = true;
    if (s->th.joinable()) s->th.join();
    s->th = std::thread(executorLoop, s.get());
  }
  s->q.push_back(std::move(t));
  ++s->submitted;
  s->cv.notify_one();
}

// Waits until everything submitted to `s` so far has run.
void drain(StreamImpl& s) {
  std::unique_lock<std::mutex> lk(s.m);
  uint64_t target = s.submitted;
  s.cvDone.wait(lk, [&] { return s.completed >= target; });
}

// Takes (and clears) the stream's sticky error.
cudaError_t takeSticky(StreamImpl& s) {
  cudaError_t e;
  std::string d;
  {
    std::lock_guard<std::mutex> lk(s.m);
    e = s.err;
    d.swap(s.errDetail);
    s.err = cudaSuccess;
  }
  return e == cudaSuccess ? e : setError(e, d);
}

void stopStream(StreamImpl& s) {
  std::thread th;
  {
    std::lock_guard<std::mutex> lk(s.m);
    s.stop = true;
    th = std::move(s.th);
  }
  s.cv.notify_all();
  if (th.joinable()) th.join();
  std::lock_guard<std::mutex> lk(s.m);
  s.running = false;
  s.stop = false;
}

}  // namespace

// ------------------------------------------------------------------ launch
cudaError_t enqueueLaunch(LaunchDesc&& d, cudaStream_t stream) {
  if (forbidden()) return setError(cudaErrorNotPermitted, "kernel launch from a host callback or kernel");
  const dim3 g = d.grid, b = d.block;
  const unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
  std::string why;
  if (g.x == 0 || g.y == 0 || g.z == 0) why = "grid has a zero dimension";
  else if (g.x > 2147483647u || g.y > 65535u || g.z > 65535u) why = "grid dimension beyond the limits";
  else if (b.x == 0 || b.y == 0 || b.z == 0) why = "block has a zero dimension";
  else if (b.x > 1024u || b.y > 1024u || b.z > 64u || threads > 1024ull) why = "block larger than 1024 threads or beyond (1024,1024,64)";
  else if ((unsigned long long)g.x * g.y * g.z > 0xffffffffull) why = "grid has more than 2^32-1 blocks";
  else {
    size_t limit = 48 * 1024;
    {
      Registry& r = reg();
      std::lock_guard<std::mutex> lk(r.m);
      auto it = r.maxDynSmem.find(d.fnKey);
      if (it != r.maxDynSmem.end()) limit = (size_t)it->second;
    }
    if (d.dynSmem > 227 * 1024) why = "dynamic shared memory above 227 KiB";
    else if (d.dynSmem > limit)
      why = "dynamic shared memory " + std::to_string(d.dynSmem) + " B above the kernel's limit of " +
            std::to_string(limit) + " B (raise it with cudaFuncSetAttribute)";
  }
  if (!why.empty())
    return setError(cudaErrorInvalidConfiguration,
                    std::string("kernel '") + d.name + "': invalid launch configuration: " + why);
  std::shared_ptr<StreamImpl> s = lookup(stream);
  if (!s) return setError(cudaErrorInvalidResourceHandle, "kernel launch on an invalid stream");
  auto job = std::make_shared<GridJob>();
  job->name = d.name;
  job->total = (unsigned)((unsigned long long)g.x * g.y * g.z);
  job->desc = std::move(d);
  enqueue(s, [job](StreamImpl& st) {
    std::string e = runGrid(job);
    if (!e.empty()) setSticky(st, cudaErrorLaunchFailure, e);
    job->desc.closure.reset();
  });
  return cudaSuccess;
}

cudaError_t setFuncAttribute(const void* fn, cudaFuncAttribute attr, int value) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  if (!fn) return setError(cudaErrorInvalidValue, "cudaFuncSetAttribute: null function");
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > 227 * 1024)
      return setError(cudaErrorInvalidValue, "cudaFuncSetAttribute: dynamic shared memory limit above 227 KiB");
    Registry& r = reg();
    std::lock_guard<std::mutex> lk(r.m);
    r.maxDynSmem[fn] = value;
  }
  return cudaSuccess;
}

}  // namespace detail

using namespace detail;

// ------------------------------------------------------------------ device
cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return setError(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  return device == 0 ? cudaSuccess : setError(cudaErrorInvalidDevice);
}
cudaError_t cudaGetDevice(int* device) {
  if (!device) return setError(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (!p) return setError(cudaErrorInvalidValue);
  if (device != 0) return setError(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "%s", "visattn emulated GPU (sm_90)");
  p->totalGlobalMem = size_t(80) << 30;
  p->sharedMemPerBlock = 48 * 1024;
  p->sharedMemPerBlockOptin = 227 * 1024;
  p->sharedMemPerMultiprocessor = 228 * 1024;
  p->totalConstMem = 64 * 1024;
  p->regsPerBlock = 65536;
  p->regsPerMultiprocessor = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->multiProcessorCount = 132;
  p->maxThreadsPerMultiProcessor = 2048;
  p->maxBlocksPerMultiProcessor = 32;
  p->major = 9;
  p->minor = 0;
  p->clockRate = 1980000;
  p->memoryClockRate = 2619000;
  p->memoryBusWidth = 5120;
  p->l2CacheSize = 50 * 1024 * 1024;
  p->concurrentKernels = 1;
  p->asyncEngineCount = 2;
  p->unifiedAddressing = 1;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  if (!v) return setError(cudaErrorInvalidValue);
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  if (!v) return setError(cudaErrorInvalidValue);
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* freeBytes, size_t* totalBytes) {
  size_t total = size_t(80) << 30, used;
  {
    std::lock_guard<std::mutex> lk(mem().m);
    used = mem().deviceBytes;
  }
  if (freeBytes) *freeBytes = used < total ? total - used : 0;
  if (totalBytes) *totalBytes = total;
  return cudaSuccess;
}

// ------------------------------------------------------------------ memory
namespace {
cudaError_t allocRegistered(void** ptr, size_t bytes, bool pinned) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  if (!ptr) return setError(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  // Exact size (not rounded up), so that AddressSanitizer flags reads just past the end.
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0 || !p)
    return setError(cudaErrorMemoryAllocation,
                    "out of host memory for an emulated allocation of " + std::to_string(bytes) + " bytes");
  std::memset(p, 0xFF, bytes);  // poison: unwritten floats read as NaN
  {
    MemRegistry& r = mem();
    std::lock_guard<std::mutex> lk(r.m);
    (pinned ? r.pinned : r.device)[reinterpret_cast<uintptr_t>(p)] = bytes;
    if (!pinned) r.deviceBytes += bytes;
  }
  *ptr = p;
  return cudaSuccess;
}
cudaError_t freeRegistered(void* p, bool pinned) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  if (!p) return cudaSuccess;
  size_t bytes;
  {
    MemRegistry& r = mem();
    std::lock_guard<std::mutex> lk(r.m);
    auto& m = pinned ? r.pinned : r.device;
    auto it = m.find(reinterpret_cast<uintptr_t>(p));
    if (it == m.end())
      return setError(cudaErrorInvalidValue, pinned ? "cudaFreeHost: pointer not from cudaMallocHost"
                                                    : "cudaFree: pointer not from cudaMalloc");
    bytes = it->second;
    m.erase(it);
    if (!pinned) r.deviceBytes -= bytes;
  }
  std::memset(p, 0xFF, bytes);  // poison recycled memory too
  std::free(p);
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMalloc(void** ptr, size_t bytes) { return allocRegistered(ptr, bytes, false); }
cudaError_t cudaFree(void* ptr) { return freeRegistered(ptr, false); }
cudaError_t cudaMallocHost(void** ptr, size_t bytes) { return allocRegistered(ptr, bytes, true); }
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned) { return allocRegistered(ptr, bytes, true); }
cudaError_t cudaFreeHost(void* ptr) { return freeRegistered(ptr, true); }

namespace {
enum class Where { Device, Pinned, Pageable };
Where where(const void* p, size_t n) {
  MemRegistry& r = mem();
  std::lock_guard<std::mutex> lk(r.m);
  if (inRange(r.device, p, n)) return Where::Device;
  if (inRange(r.pinned, p, n)) return Where::Pinned;
  return Where::Pageable;
}

cudaError_t memcpyEnqueue(void* dst, const void* src, size_t n, cudaMemcpyKind kind,
                          const std::shared_ptr<StreamImpl>& s) {
  if (n == 0) return cudaSuccess;
  if (!dst || !src) return setError(cudaErrorInvalidValue, "cudaMemcpy: null pointer");
  Where ws = where(src, n), wd = where(dst, n);
  if (kind == cudaMemcpyDefault) {
    bool sd = ws == Where::Device, dd = wd == Where::Device;
    kind = sd ? (dd ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
              : (dd ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  }
  const bool srcDev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool dstDev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  if ((int)kind < 0 || (int)kind > 4) return setError(cudaErrorInvalidValue, "cudaMemcpy: invalid kind");
  if (srcDev && ws != Where::Device)
    return setError(cudaErrorInvalidValue, "cudaMemcpy: source range is not inside a cudaMalloc allocation");
  if (dstDev && wd != Where::Device)
    return setError(cudaErrorInvalidValue,
                    "cudaMemcpy: destination range is not inside a cudaMalloc allocation");
  if (kind == cudaMemcpyHostToDevice && ws == Where::Pageable) {
    // pageable source: staged before the call returns
    std::shared_ptr<unsigned char> stage(static_cast<unsigned char*>(std::malloc(n)), std::free);
    if (!stage) return setError(cudaErrorMemoryAllocation, "cudaMemcpyAsync: cannot allocate a staging buffer");
    std::memcpy(stage.get(), src, n);
    enqueue(s, [dst, stage, n](StreamImpl&) { std::memcpy(dst, stage.get(), n); });
  } else {
    enqueue(s, [dst, src, n](StreamImpl&) { std::memmove(dst, src, n); });
  }
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  auto s = lookup(stream);
  if (!s) return setError(cudaErrorInvalidResourceHandle, "cudaMemcpyAsync: invalid stream");
  return memcpyEnqueue(dst, src, bytes, kind, s);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  auto s = legacyStream();
  cudaError_t e = memcpyEnqueue(dst, src, bytes, kind, s);
  if (e != cudaSuccess) return e;
  drain(*s);
  return takeSticky(*s);
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  auto s = lookup(stream);
  if (!s) return setError(cudaErrorInvalidResourceHandle, "cudaMemsetAsync: invalid stream");
  if (bytes == 0) return cudaSuccess;
  if (!dst || where(dst, bytes) != Where::Device)
    return setError(cudaErrorInvalidValue, "cudaMemset: range is not inside a cudaMalloc allocation");
  enqueue(s, [dst, value, bytes](StreamImpl&) { std::memset(dst, value & 0xFF, bytes); });
  return cudaSuccess;
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  cudaError_t e = cudaMemsetAsync(dst, value, bytes, nullptr);
  if (e != cudaSuccess) return e;
  auto s = legacyStream();
  drain(*s);
  return takeSticky(*s);
}

// ------------------------------------------------------------------ streams
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  if (!stream) return setError(cudaErrorInvalidValue);
  auto s = std::make_shared<StreamImpl>();
  s->flags = flags;
  Registry& r = reg();
  std::lock_guard<std::mutex> lk(r.m);
  r.streams[s.get()] = s;
  *stream = s.get();
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  if (!stream) return setError(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: the default stream");
  std::shared_ptr<StreamImpl> s;
  {
    Registry& r = reg();
    std::lock_guard<std::mutex> lk(r.m);
    auto it = r.streams.find(stream);
    if (it == r.streams.end()) return setError(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: invalid stream");
    s = it->second;
    r.streams.erase(it);
  }
  stopStream(*s);  // finishes the queued work, joins the executor
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  auto s = lookup(stream);
  if (!s) return setError(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: invalid stream");
  drain(*s);
  return takeSticky(*s);
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  auto s = lookup(stream);
  if (!s) return setError(cudaErrorInvalidResourceHandle, "cudaStreamQuery: invalid stream");
  std::lock_guard<std::mutex> lk(s->m);
  return s->completed >= s->submitted ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  auto s = lookup(stream);
  if (!s) return setError(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: invalid stream");
  auto e = lookupEvent(event);
  if (!e) return setError(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: invalid event");
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lk(e->m);
    gen = e->recordedGen;
  }
  if (gen == 0) return cudaSuccess;  // never recorded: nothing to wait for
  enqueueWithDep(s, Dep{nullptr, gen, e});
  return cudaSuccess;
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* userData) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  if (!fn) return setError(cudaErrorInvalidValue, "cudaLaunchHostFunc: null function");
  auto s = lookup(stream);
  if (!s) return setError(cudaErrorInvalidResourceHandle, "cudaLaunchHostFunc: invalid stream");
  enqueue(s, [fn, userData](StreamImpl&) {
    tl_inHostFn = true;
    try {
      fn(userData);
    } catch (...) {
    }
    tl_inHostFn = false;
  });
  return cudaSuccess;
}

// ------------------------------------------------------------------ events
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  if (!event) return setError(cudaErrorInvalidValue);
  auto e = std::make_shared<EventImpl>();
  e->flags = flags;
  Registry& r = reg();
  std::lock_guard<std::mutex> lk(r.m);
  r.events[e.get()] = e;
  *event = e.get();
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  Registry& r = reg();
  std::lock_guard<std::mutex> lk(r.m);
  auto it = r.events.find(event);
  if (it == r.events.end()) return setError(cudaErrorInvalidResourceHandle, "cudaEventDestroy: invalid event");
  r.events.erase(it);  // queued records/waits keep the object alive
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  auto e = lookupEvent(event);
  if (!e) return setError(cudaErrorInvalidResourceHandle, "cudaEventRecord: invalid event");
  auto s = lookup(stream);
  if (!s) return setError(cudaErrorInvalidResourceHandle, "cudaEventRecord: invalid stream");
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lk(e->m);
    gen = ++e->recordedGen;
    e->stream = s;
  }
  enqueue(s, [e, gen](StreamImpl& st) {
    cudaError_t err;
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lk(st.m);
      err = st.err;
      seq = st.errSeq;
    }
    std::lock_guard<std::mutex> lk(e->m);
    if (gen > e->completedGen) {
      e->completedGen = gen;
      e->t = std::chrono::steady_clock::now();
      e->err = err;
      e->errSeq = seq;
    }
    e->cv.notify_all();
  });
  return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  auto e = lookupEvent(event);
  if (!e) return setError(cudaErrorInvalidResourceHandle, "cudaEventQuery: invalid event");
  std::lock_guard<std::mutex> lk(e->m);
  return e->completedGen >= e->recordedGen ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  auto e = lookupEvent(event);
  if (!e) return setError(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: invalid event");
  cudaError_t err;
  uint64_t seq;
  std::shared_ptr<StreamImpl> s;
  {
    std::unique_lock<std::mutex> lk(e->m);
    uint64_t target = e->recordedGen;
    e->cv.wait(lk, [&] { return e->completedGen >= target; });
    err = e->err;
    seq = e->errSeq;
    s = e->stream.lock();
    e->err = cudaSuccess;
  }
  if (err == cudaSuccess || !s) return cudaSuccess;
  // Report the stream's sticky error once: only if it is still the same, not yet reported one.
  std::string detail;
  {
    std::lock_guard<std::mutex> lk(s->m);
    if (s->err == cudaSuccess || s->errSeq != seq) return cudaSuccess;
    err = s->err;
    detail.swap(s->errDetail);
    s->err = cudaSuccess;
  }
  return setError(err, detail);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  if (!ms) return setError(cudaErrorInvalidValue);
  auto a = lookupEvent(start), b = lookupEvent(end);
  if (!a || !b) return setError(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: invalid event");
  if ((a->flags | b->flags) & cudaEventDisableTiming)
    return setError(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event created with cudaEventDisableTiming");
  std::chrono::steady_clock::time_point ta, tb;
  {
    std::lock_guard<std::mutex> lk(a->m);
    if (a->recordedGen == 0) return setError(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event not recorded");
    if (a->completedGen < a->recordedGen) return cudaErrorNotReady;
    ta = a->t;
  }
  {
    std::lock_guard<std::mutex> lk(b->m);
    if (b->recordedGen == 0) return setError(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event not recorded");
    if (b->completedGen < b->recordedGen) return cudaErrorNotReady;
    tb = b->t;
  }
  *ms = std::chrono::duration<float, std::milli>(tb - ta).count();
  return cudaSuccess;
}

// ------------------------------------------------------------------ device-wide
cudaError_t cudaDeviceSynchronize() {
  if (forbidden()) return setError(cudaErrorNotPermitted);
  std::vector<std::shared_ptr<StreamImpl>> all;
  {
    Registry& r = reg();
    std::lock_guard<std::mutex> lk(r.m);
    if (r.legacy) all.push_back(r.legacy);
    for (auto& kv : r.streams) all.push_back(kv.second);
  }
  cudaError_t first = cudaSuccess;
  std::string detail;
  for (auto& s : all) {
    drain(*s);
    std::lock_guard<std::mutex> lk(s->m);
    if (s->err != cudaSuccess && first == cudaSuccess) {
      first = s->err;
      detail = s->errDetail;
    }
    s->err = cudaSuccess;
    s->errDetail.clear();
  }
  return first == cudaSuccess ? first : setError(first, detail);
}

cudaError_t cudaDeviceReset() {
  cudaError_t e = cudaDeviceSynchronize();
  (void)e;
  return forbidden() ? cudaErrorNotPermitted : cudaSuccess;
}

// ------------------------------------------------------------------ errors
cudaError_t cudaGetLastError() {
  cudaError_t e = tl_lastError;
  tl_lastError = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return tl_lastError; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotPermitted: return "cudaErrorNotPermitted";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotPermitted: return "operation not permitted";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unknown error";
}

std::string errorDetail(cudaError_t err) {
  std::string s = cudaGetErrorName(err);
  s += ": ";
  if (err != cudaSuccess && err == tl_detailCode && tl_detail && !tl_detail->empty()) s += *tl_detail;
  else s += cudaGetErrorString(err);
  return s;
}

// ------------------------------------------------------------------ shutdown
void shutdown() {
  if (forbidden()) return;
  Registry& r = reg();
  std::vector<std::shared_ptr<StreamImpl>> all;
  {
    std::lock_guard<std::mutex> lk(r.m);
    r.shuttingDown = true;
    for (auto& kv : r.streams) all.push_back(kv.second);
    if (r.legacy) all.push_back(r.legacy);
  }
  // Wake executors blocked in cudaStreamWaitEvent on events that will never be recorded.
  {
    std::vector<std::shared_ptr<EventImpl>> evs;
    {
      std::lock_guard<std::mutex> lk(r.m);
      for (auto& kv : r.events) evs.push_back(kv.second);
    }
    for (auto& e : evs) {
      std::lock_guard<std::mutex> lk(e->m);
      e->cv.notify_all();
    }
  }
  for (auto& s : all) stopStream(*s);
  stopPool();
  std::lock_guard<std::mutex> lk(r.m);
  r.shuttingDown = false;
}

}  // namespace vaemu
