// visattn — the fiber scheduler of the CUDA emulator: one block's threads as fibers on one worker
// thread, __syncthreads generation barrier, warp collectives, deadlock detection, device failures,
// and the block-worker pool.
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "emu/emu_internal.h"

#if VAEMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !VAEMU_USE_UCONTEXT
extern "C" {
__attribute__((visibility("hidden"))) void vaemu_ctx_switch(void** saveSp, void* newSp);
__attribute__((visibility("hidden"))) void vaemu_fiber_trampoline();
}
#endif

namespace vaemu {
namespace detail {

namespace {

size_t stackBytes() {
  static const size_t bytes = [] {
    size_t kb = VAEMU_ASAN ? 512 : 128;
    if (const char* e = std::getenv("VISATTN_EMU_STACK_KB")) {
      long v = std::atol(e);
      if (v >= 16 && v <= 65536) kb = (size_t)v;
    }
    return kb * 1024;
  }();
  return bytes;
}

size_t pageBytes() {
  static const size_t p = [] {
    long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? (size_t)v : (size_t)4096;
  }();
  return p;
}

bool shuffleEnabled() {
  static const bool on = envFlag("VISATTN_EMU_SHUFFLE");
  return on;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string hexMask(unsigned m) { return fmt("0x%08x", m); }

std::string laneList(unsigned m) {
  std::string s;
  int i = 0;
  while (i < 32) {
    if (!(m >> i & 1u)) {
      ++i;
      continue;
    }
    int j = i;
    while (j + 1 < 32 && (m >> (j + 1) & 1u)) ++j;
    if (!s.empty()) s += ",";
    s += (i == j) ? fmt("%d", i) : fmt("%d-%d", i, j);
    i = j + 1;
  }
  return s.empty() ? std::string("none") : s;
}

}  // namespace

// ------------------------------------------------------------------ worker (per OS thread)
Worker::~Worker() {
  for (Stack& s : stacks)
    if (s.map) munmap(s.map, s.mapSize);
  std::free(dynSmem);
}

Worker& currentWorker() {
  thread_local std::unique_ptr<Worker> w;
  if (!w) {
    w.reset(new Worker());
    w->pFiber = &tl_fiber;
    w->pLane = &tl_lane;
    w->pTid = &threadIdx;
    // Shuffled schedules (VISATTN_EMU_SHUFFLE=1) differ run to run unless VISATTN_EMU_SEED is set.
    static std::atomic<unsigned> workerCount{0};
    unsigned seed;
    if (const char* e = std::getenv("VISATTN_EMU_SEED")) seed = (unsigned)std::strtoul(e, nullptr, 10);
    else seed = std::random_device{}();
    w->rng.seed(seed + 7919u * workerCount.fetch_add(1));
  }
  return *w;
}

namespace {

bool ensureStacks(Worker& w, unsigned n, std::string& err) {
  const size_t page = pageBytes();
  const size_t usable = (stackBytes() + page - 1) / page * page;
  while (w.stacks.size() < n) {
    Stack s;
    s.mapSize = usable + page;
    void* p = mmap(nullptr, s.mapSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
#ifdef MAP_STACK
                       | MAP_STACK
#endif
                   ,
                   -1, 0);
    if (p == MAP_FAILED) {
      err = "cannot map fiber stacks (mmap failed)";
      return false;
    }
    s.map = static_cast<char*>(p);
    if (mprotect(s.map, page, PROT_NONE) != 0) {  // guard page below the stack
      munmap(p, s.mapSize);
      err = "cannot protect fiber stack guard page";
      return false;
    }
    s.lo = s.map + page;
    s.size = usable;
    w.stacks.push_back(s);
  }
  return true;
}

// ------------------------------------------------------------------ switching
#if VAEMU_USE_UCONTEXT
thread_local Fiber* tl_startingFiber = nullptr;
#endif

void fiberEntry(Fiber* f);

#if VAEMU_USE_UCONTEXT
void ucEntry() { fiberEntry(tl_startingFiber); }
#endif

// Scheduler -> fiber. Returns when the fiber yields, blocks, exits or fails.
void resumeFiber(Worker& w, Fiber& f) {
  *w.pFiber = &f;
  *w.pLane = f.lane;
  *w.pTid = f.tid;
  if (!f.started) {
    f.started = true;
#if VAEMU_ASAN
    __asan_unpoison_memory_region(f.stackLo, f.stackSize);
#endif
#if VAEMU_USE_UCONTEXT
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = f.stackLo;
    f.uc.uc_stack.ss_size = f.stackSize;
    f.uc.uc_link = nullptr;
    makecontext(&f.uc, ucEntry, 0);
#else
    uintptr_t top = (reinterpret_cast<uintptr_t>(f.stackLo) + f.stackSize) & ~uintptr_t(15);
    uint64_t* S = reinterpret_cast<uint64_t*>(top - 64);
    uint32_t mxcsr;
    uint16_t fcw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fcw));
    S[0] = (uint64_t)mxcsr | ((uint64_t)fcw << 32);
    S[1] = 0;                                                     // r15
    S[2] = 0;                                                     // r14
    S[3] = reinterpret_cast<uint64_t>(&fiberEntry);               // r13: entry
    S[4] = reinterpret_cast<uint64_t>(&f);                        // r12: argument
    S[5] = 0;                                                     // rbx
    S[6] = 0;                                                     // rbp
    S[7] = reinterpret_cast<uint64_t>(&vaemu_fiber_trampoline);  // return address
    f.sp = S;
#endif
  }
#if VAEMU_ASAN
  __sanitizer_start_switch_fiber(&w.schedAsanFake, f.stackLo, f.stackSize);
#endif
#if VAEMU_USE_UCONTEXT
  tl_startingFiber = &f;
  swapcontext(&w.schedUc, &f.uc);
#else
  vaemu_ctx_switch(&w.schedSp, f.sp);
#endif
#if VAEMU_ASAN
  __sanitizer_finish_switch_fiber(w.schedAsanFake, nullptr, nullptr);
#endif
  *w.pFiber = nullptr;
}

// Fiber -> scheduler. `final`: the fiber will never be resumed.
void yieldToScheduler(Fiber& f, bool final) {
  Worker& w = *f.block->worker;
#if VAEMU_ASAN
  __sanitizer_start_switch_fiber(final ? nullptr : &f.asanFake, w.schedStackBottom, w.schedStackSize);
#else
  (void)final;
#endif
#if VAEMU_USE_UCONTEXT
  swapcontext(&f.uc, &w.schedUc);
#else
  vaemu_ctx_switch(&f.sp, w.schedSp);
#endif
#if VAEMU_ASAN
  __sanitizer_finish_switch_fiber(f.asanFake, nullptr, nullptr);
#endif
  // Resumed by the scheduler, which has restored tl_fiber/threadIdx.
}

std::string threadTag(const Fiber& f) {
  return fmt("thread (%u,%u,%u)", f.tid.x, f.tid.y, f.tid.z);
}

// Records a failure of the running block (first one wins).
void recordFailure(BlockRun& b, const std::string& msg) {
  if (!b.failed) {
    b.failed = true;
    b.error = msg;
  }
}

// Never returns (the fiber is abandoned): `msg` must not own heap memory, so callers format into a
// stack buffer first (FAIL_FIBER); anything still alive in this frame would leak.
[[noreturn]] void failFiber(Fiber& f, const char* msg) {
  BlockRun& b = *f.block;
  if (!b.failed) {
    b.failed = true;
    b.error = threadTag(f);
    b.error += ": ";
    b.error += msg;
  }
  f.state = FState::Done;
  yieldToScheduler(f, true);
  // Never resumed; keep the compiler satisfied without calling abort().
  for (;;) yieldToScheduler(f, true);
}

#define FAIL_FIBER(f, ...)                         \
  do {                                             \
    char fail_buf_[768];                           \
    {                                              \
      std::string fail_s_ = __VA_ARGS__;           \
      std::snprintf(fail_buf_, sizeof fail_buf_, "%s", fail_s_.c_str()); \
    }                                              \
    failFiber(f, fail_buf_);                       \
  } while (0)

void completeBarrier(BlockRun& b) {
  b.resCount = b.barCount;
  b.resAnd = b.barAnd;
  b.resOr = b.barOr;
  b.barArrived = 0;
  b.barCount = 0;
  b.barAnd = 1;
  b.barOr = 0;
  for (Fiber* w : b.barWaiters) w->state = FState::Ready;
  b.barWaiters.clear();
}

void fiberExit(Fiber& f) {
  BlockRun& b = *f.block;
  f.state = FState::Done;
  b.nDone++;
  b.nExited++;
  WarpState& ws = b.warps[f.warp];
  const unsigned bit = 1u << f.lane;
  ws.exited |= bit;
  // A collective already waiting for this lane can never complete.
  if (ws.pending) {
    unsigned waitingOnMe = 0, mask = 0;
    const char* name = nullptr;
    for (unsigned l = 0; l < 32; ++l)
      if ((ws.pending >> l & 1u) && ws.req[l] && (ws.req[l]->mask & bit)) {
        waitingOnMe |= 1u << l;
        mask = ws.req[l]->mask;
        name = ws.req[l]->name;
      }
    if (waitingOnMe && !b.failed) {
      recordFailure(b, fmt("deadlock: %d of %d threads of warp %u wait in %s(mask %s) (lanes %s), but "
                           "lane %u named in the mask has exited",
                           __builtin_popcount(waitingOnMe), __builtin_popcount(ws.exist), f.warp,
                           name ? name : "?", hexMask(mask).c_str(), laneList(waitingOnMe).c_str(),
                           f.lane));
    }
  }
  if (b.barArrived > 0 && b.barArrived + b.nExited == b.n) completeBarrier(b);
  yieldToScheduler(f, true);
}

void fiberEntry(Fiber* fp) {
  Fiber& f = *fp;
#if VAEMU_ASAN
  {
    Worker& w = *f.block->worker;
    __sanitizer_finish_switch_fiber(nullptr, &w.schedStackBottom, &w.schedStackSize);
  }
#endif
  BlockRun& b = *f.block;
  std::string err;
  bool threw = false;
  try {
    b.job->desc.invoke(b.job->desc.closure.get());
  } catch (const std::exception& e) {
    threw = true;
    err = std::string("C++ exception thrown in kernel: ") + e.what();
  } catch (...) {
    threw = true;
    err = "C++ exception of unknown type thrown in kernel";
  }
  if (threw) {
    recordFailure(b, threadTag(f) + ": " + err);
    err.clear();
    err.shrink_to_fit();
  }
  fiberExit(f);
  for (;;) yieldToScheduler(f, true);
}

std::string describeDeadlock(BlockRun& b) {
  std::string s = "deadlock: ";
  bool first = true;
  for (unsigned wi = 0; wi < b.warps.size(); ++wi) {
    WarpState& ws = b.warps[wi];
    if (!ws.pending) continue;
    // group the warp's waiting lanes by (name, mask)
    unsigned left = ws.pending;
    while (left) {
      unsigned l0 = __builtin_ctz(left);
      const WarpReq* r0 = ws.req[l0];
      unsigned group = 0;
      for (unsigned l = l0; l < 32; ++l)
        if ((left >> l & 1u) && ws.req[l]->mask == r0->mask && ws.req[l]->name == r0->name) group |= 1u << l;
      left &= ~group;
      if (!first) s += "; ";
      first = false;
      s += fmt("%d of %d threads of warp %u wait in %s(mask %s) (lanes %s",
               __builtin_popcount(group), __builtin_popcount(ws.exist), wi, r0->name,
               hexMask(r0->mask).c_str(), laneList(group).c_str());
      unsigned missing = r0->mask & ~ws.pending & ~ws.exited;
      if (missing) s += "; lanes " + laneList(missing) + " of the mask never arrive";
      unsigned exited = r0->mask & ws.exited;
      if (exited) s += "; lanes " + laneList(exited) + " of the mask have exited";
      s += ")";
    }
  }
  unsigned nbar = (unsigned)b.barWaiters.size();
  if (nbar) {
    if (!first) s += "; ";
    first = false;
    const char* name = b.barWaiters.front()->waitName;
    s += fmt("%u of %u threads of the block wait in %s (%u exited, %u elsewhere)", nbar, b.n,
             name ? name : "__syncthreads", b.nExited, b.n - nbar - b.nExited);
  }
  if (first) s += "no thread can make progress";
  return s;
}

}  // namespace

// ------------------------------------------------------------------ device side
int blockBarrier(int kind, int pred, const char* name) {
  Fiber* fp = tl_fiber;
  if (!fp) return kind == 2 ? (pred != 0) : (kind == 0 ? 0 : (pred != 0));  // host: single thread
  Fiber& f = *fp;
  BlockRun& b = *f.block;
  b.barArrived++;
  b.barCount += pred != 0;
  b.barAnd &= pred != 0;
  b.barOr |= pred != 0;
  if (b.barArrived + b.nExited == b.n) {
    completeBarrier(b);  // the last arriver continues without a switch
  } else {
    f.state = FState::WaitBar;
    f.waitName = name;
    b.barWaiters.push_back(&f);
    yieldToScheduler(f, false);
  }
  switch (kind) {
    case 1: return b.resCount;
    case 2: return b.resAnd;
    case 3: return b.resOr;
    default: return 0;
  }
}

namespace {

inline bool isPow2Width(int w) { return w >= 1 && w <= 32 && (w & (w - 1)) == 0; }

constexpr uint64_t kPoisonBits = ~uint64_t(0);  // NaN for float/double, -1 for integers

void completeCollective(WarpState& ws, unsigned mask, BlockRun& b, unsigned warpIdx, unsigned self) {
  const WarpOp op = ws.req[__builtin_ctz(mask)]->op;
  switch (op) {
    case WarpOp::Sync:
      break;
    case WarpOp::ShflIdx:
    case WarpOp::ShflUp:
    case WarpOp::ShflDown:
    case WarpOp::ShflXor:
      for (unsigned l = 0; l < 32; ++l) {
        if (!(mask >> l & 1u)) continue;
        WarpReq& r = *ws.req[l];
        const int width = r.width;
        const unsigned segLo = l & ~(unsigned)(width - 1);
        const unsigned segHi = segLo + (unsigned)width - 1;
        long j;
        bool own = false;
        switch (op) {
          case WarpOp::ShflIdx: j = (long)segLo + (r.param & (width - 1)); break;
          case WarpOp::ShflUp:
            j = (long)l - (unsigned)r.param;
            if (j < (long)segLo) own = true;
            break;
          case WarpOp::ShflDown:
            j = (long)l + (unsigned)r.param;
            if (j > (long)segHi) own = true;
            break;
          default:
            j = (long)(l ^ ((unsigned)r.param & 31u));
            if (j > (long)segHi) own = true;
            break;
        }
        if (own) r.out = r.val;
        else if (j >= 0 && j < 32 && (mask >> j & 1u)) r.out = ws.req[j]->val;
        else r.out = kPoisonBits;  // source lane does not take part: undefined on a GPU
      }
      break;
    case WarpOp::Ballot:
    case WarpOp::Any:
    case WarpOp::All: {
      unsigned ballot = 0;
      for (unsigned l = 0; l < 32; ++l)
        if ((mask >> l & 1u) && ws.req[l]->val) ballot |= 1u << l;
      uint64_t out = op == WarpOp::Ballot ? ballot : (op == WarpOp::Any ? (ballot != 0) : (ballot == mask));
      for (unsigned l = 0; l < 32; ++l)
        if (mask >> l & 1u) ws.req[l]->out = out;
      break;
    }
    case WarpOp::AllGather: {
      for (unsigned l = 0; l < 32; ++l) {
        if (!(mask >> l & 1u)) continue;
        WarpReq& r = *ws.req[l];
        unsigned char* dst = static_cast<unsigned char*>(r.dst);
        for (unsigned k = 0; k < 32; ++k) {
          if (mask >> k & 1u) std::memcpy(dst + k * r.bytes, ws.req[k]->src, r.bytes);
          else std::memset(dst + k * r.bytes, 0xFF, r.bytes);
        }
      }
      break;
    }
    case WarpOp::ReduceAdd:
    case WarpOp::ReduceMin:
    case WarpOp::ReduceMax:
    case WarpOp::ReduceAnd:
    case WarpOp::ReduceOr:
    case WarpOp::ReduceXor: {
      const bool sgn = ws.req[__builtin_ctz(mask)]->isSigned != 0;
      uint32_t acc = 0;
      bool firstV = true;
      for (unsigned l = 0; l < 32; ++l) {
        if (!(mask >> l & 1u)) continue;
        uint32_t v = (uint32_t)ws.req[l]->val;
        if (firstV) {
          acc = v;
          firstV = false;
          continue;
        }
        switch (op) {
          case WarpOp::ReduceAdd: acc += v; break;
          case WarpOp::ReduceMin: acc = sgn ? (uint32_t)std::min((int32_t)acc, (int32_t)v) : std::min(acc, v); break;
          case WarpOp::ReduceMax: acc = sgn ? (uint32_t)std::max((int32_t)acc, (int32_t)v) : std::max(acc, v); break;
          case WarpOp::ReduceAnd: acc &= v; break;
          case WarpOp::ReduceOr: acc |= v; break;
          default: acc ^= v; break;
        }
      }
      for (unsigned l = 0; l < 32; ++l)
        if (mask >> l & 1u) ws.req[l]->out = acc;
      break;
    }
    default:
      break;
  }
  ws.pending &= ~mask;
  const unsigned base = warpIdx * 32;
  for (unsigned l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    ws.req[l] = nullptr;
    if (l != self) b.fibers[base + l].state = FState::Ready;
  }
}

}  // namespace

void warpCollective(WarpReq& r) {
  Fiber* fp = tl_fiber;
  if (!fp) {  // called on the host: behave as a single-lane warp
    r.out = r.op == WarpOp::All || r.op == WarpOp::Any ? (r.val != 0) : r.val;
    if (r.op == WarpOp::AllGather && r.dst) std::memcpy(r.dst, r.src, r.bytes);
    return;
  }
  Fiber& f = *fp;
  BlockRun& b = *f.block;
  WarpState& ws = b.warps[f.warp];
  const unsigned bit = 1u << f.lane;
  if (!(r.mask & bit))
    FAIL_FIBER(f, fmt("%s called by lane %u of warp %u with mask %s, which does not name the calling lane",
                     r.name, f.lane, f.warp, hexMask(r.mask).c_str()));
  if (r.mask & ~ws.exist)
    FAIL_FIBER(f, fmt("%s(mask %s) in warp %u names lanes %s that do not exist (block of %u threads)",
                     r.name, hexMask(r.mask).c_str(), f.warp, laneList(r.mask & ~ws.exist).c_str(), b.n));
  if (r.mask & ws.exited)
    FAIL_FIBER(f, fmt("deadlock: %s(mask %s) in warp %u names lanes %s that have exited", r.name,
                     hexMask(r.mask).c_str(), f.warp, laneList(r.mask & ws.exited).c_str()));
  if ((r.op == WarpOp::ShflIdx || r.op == WarpOp::ShflUp || r.op == WarpOp::ShflDown ||
       r.op == WarpOp::ShflXor) && !isPow2Width(r.width))
    FAIL_FIBER(f, fmt("%s: width %d is not a power of two in [1, 32]", r.name, r.width));
  ws.req[f.lane] = &r;
  ws.pending |= bit;
  if ((ws.pending & r.mask) == r.mask) {
    bool same = true;
    for (unsigned l = 0; l < 32 && same; ++l)
      if ((r.mask >> l & 1u) && ws.req[l]->mask != r.mask) same = false;
    if (same) {
      for (unsigned l = 0; l < 32; ++l)
        if ((r.mask >> l & 1u) && ws.req[l]->op != r.op) {
          ws.pending &= ~bit;
          ws.req[f.lane] = nullptr;
          FAIL_FIBER(f, fmt("warp %u: mismatched warp collectives with mask %s: lane %u is in %s, lane %u in %s",
                           f.warp, hexMask(r.mask).c_str(), l, ws.req[l]->name, f.lane, r.name));
        }
      completeCollective(ws, r.mask, b, f.warp, f.lane);
      return;
    }
  }
  f.state = FState::WaitWarp;
  f.waitName = r.name;
  yieldToScheduler(f, false);
}

unsigned activeMask() {
  Fiber* fp = tl_fiber;
  if (!fp) return 1u;
  const WarpState& ws = fp->block->warps[fp->warp];
  return ws.exist & ~ws.exited;
}

[[noreturn]] void deviceFail(const char* what) {
  Fiber* fp = tl_fiber;
  if (!fp) throw std::runtime_error(std::string("vaemu: ") + (what ? what : "device failure") +
                                    " (called outside a kernel)");
  failFiber(*fp, what ? what : "device failure");
}

long long clock64() {
  return (long long)std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ------------------------------------------------------------------ running one block
namespace {

std::string blockTag(const GridJob& job, uint3 b) {
  return fmt("kernel '%s' (block (%u,%u,%u))", job.name.c_str(), b.x, b.y, b.z);
}

// Runs block `linear` of `job` on the calling thread. Returns "" or the error message.
std::string runBlock(GridJob& job, unsigned linear) {
  Worker& w = currentWorker();
  const LaunchDesc& d = job.desc;
  const unsigned gx = d.grid.x, gy = d.grid.y;
  uint3 bidx{linear % gx, (linear / gx) % gy, linear / (gx * gy)};
  const unsigned bx = d.block.x, by = d.block.y, bz = d.block.z;
  const unsigned n = bx * by * bz;

  std::string err;
  if (!ensureStacks(w, n, err)) return blockTag(job, bidx) + ": " + err;

  // dynamic shared memory, 0xFF-poisoned for every block
  if (d.dynSmem > w.dynSmemCap) {
    std::free(w.dynSmem);
    size_t cap = (d.dynSmem + 255) & ~size_t(255);
    w.dynSmem = static_cast<unsigned char*>(std::aligned_alloc(256, cap));
    w.dynSmemCap = w.dynSmem ? cap : 0;
    if (!w.dynSmem) return blockTag(job, bidx) + ": cannot allocate dynamic shared memory";
  }
  if (d.dynSmem) std::memset(w.dynSmem, 0xFF, d.dynSmem);
  tl_dynSmem = d.dynSmem ? w.dynSmem : nullptr;

  BlockRun& b = w.run;
  b.job = &job;
  b.worker = &w;
  b.n = n;
  b.nDone = 0;
  b.nExited = 0;
  b.barArrived = 0;
  b.barCount = 0;
  b.barAnd = 1;
  b.barOr = 0;
  b.resCount = b.resAnd = b.resOr = 0;
  b.failed = false;
  b.error.clear();
  b.bidx = bidx;
  b.barWaiters.clear();
  b.barWaiters.reserve(n);
  if (b.fibers.size() < n) b.fibers.resize(n);
  const unsigned nw = (n + 31) / 32;
  b.warps.assign(nw, WarpState());
  for (unsigned wi = 0; wi < nw; ++wi) {
    unsigned cnt = std::min(32u, n - wi * 32);
    b.warps[wi].exist = cnt == 32 ? 0xffffffffu : ((1u << cnt) - 1u);
  }
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = b.fibers[i];
    f.state = FState::Ready;
    f.started = false;
    f.linear = i;
    f.lane = i & 31u;
    f.warp = i >> 5;
    f.tid = uint3{i % bx, (i / bx) % by, i / (bx * by)};
    f.waitName = nullptr;
    f.block = &b;
    f.stackLo = w.stacks[i].lo;
    f.stackSize = w.stacks[i].size;
    f.asanFake = nullptr;
  }

  blockIdx = bidx;
  blockDim = d.block;
  gridDim = d.grid;

  const bool shuffle = shuffleEnabled();
  if (shuffle) {
    w.order.resize(n);
    for (unsigned i = 0; i < n; ++i) w.order[i] = i;
  }
  while (b.nDone < n && !b.failed) {
    bool progress = false;
    if (shuffle) std::shuffle(w.order.begin(), w.order.end(), w.rng);
    for (unsigned k = 0; k < n; ++k) {
      Fiber& f = b.fibers[shuffle ? w.order[k] : k];
      if (f.state != FState::Ready) continue;
      resumeFiber(w, f);
      progress = true;
      if (b.failed) break;
    }
    if (!progress && !b.failed && b.nDone < n) recordFailure(b, describeDeadlock(b));
  }
  tl_dynSmem = nullptr;
  tl_fiber = nullptr;
  b.barWaiters.clear();
  if (b.failed) return blockTag(job, bidx) + ": " + b.error;
  return std::string();
}

// ------------------------------------------------------------------ pool
struct Pool {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::shared_ptr<GridJob>> jobs;
  std::vector<std::thread> threads;
  bool stop = false;
  bool started = false;
};

Pool& pool() {
  static Pool* p = new Pool();  // leaked: no thread may be joinable at static destruction
  return *p;
}

void workOn(GridJob& job) {
  for (;;) {
    unsigned i = job.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.total) return;
    if (!job.failed.load(std::memory_order_relaxed)) {
      std::string e = runBlock(job, i);
      if (!e.empty()) job.fail(e);
    }
    if (job.done.fetch_add(1, std::memory_order_acq_rel) + 1 == job.total) {
      std::lock_guard<std::mutex> lk(job.m);
      job.cv.notify_all();
    }
  }
}

void workerLoop() {
  Pool& p = pool();
  for (;;) {
    std::shared_ptr<GridJob> job;
    {
      std::unique_lock<std::mutex> lk(p.m);
      p.cv.wait(lk, [&] { return p.stop || !p.jobs.empty(); });
      if (p.stop) return;
      job = p.jobs.front();
      if (job->next.load() >= job->total) {
        p.jobs.pop_front();
        continue;
      }
    }
    workOn(*job);
    std::lock_guard<std::mutex> lk(p.m);
    if (!p.jobs.empty() && p.jobs.front() == job) p.jobs.pop_front();
  }
}

void ensurePool() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lk(p.m);
  if (p.started) return;
  p.started = true;
  p.stop = false;
  unsigned helpers = numThreads() > 1 ? numThreads() - 1 : 0;
  for (unsigned i = 0; i < helpers; ++i) p.threads.emplace_back(workerLoop);
}

}  // namespace

void GridJob::fail(const std::string& msg) {
  std::lock_guard<std::mutex> lk(m);
  if (!failed.load()) {
    error = msg;
    failed.store(true);
  }
}

std::string runGrid(const std::shared_ptr<GridJob>& job) {
  if (job->total == 0) return std::string();
  ensurePool();
  Pool& p = pool();
  bool helpers = false;
  if (job->total > 1) {
    std::lock_guard<std::mutex> lk(p.m);
    if (!p.threads.empty()) {
      p.jobs.push_back(job);
      helpers = true;
    }
  }
  if (helpers) p.cv.notify_all();
  workOn(*job);  // the calling (stream executor) thread takes part
  {
    std::unique_lock<std::mutex> lk(job->m);
    job->cv.wait(lk, [&] { return job->done.load() >= job->total; });
  }
  if (helpers) {
    std::lock_guard<std::mutex> lk(p.m);
    for (auto it = p.jobs.begin(); it != p.jobs.end(); ++it)
      if (*it == job) {
        p.jobs.erase(it);
        break;
      }
  }
  std::lock_guard<std::mutex> lk(job->m);
  return job->failed.load() ? job->error : std::string();
}

void stopPool() {
  Pool& p = pool();
  std::vector<std::thread> ts;
  {
    std::lock_guard<std::mutex> lk(p.m);
    p.stop = true;
    ts.swap(p.threads);
  }
  p.cv.notify_all();
  for (std::thread& t : ts)
    if (t.joinable()) t.join();
  std::lock_guard<std::mutex> lk(p.m);
  p.jobs.clear();
  p.started = false;
  p.stop = false;
}

}  // namespace detail
}  // namespace vaemu
