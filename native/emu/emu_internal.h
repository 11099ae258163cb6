// visattn — internals of the emulated CUDA runtime shared by native/emu/*.cpp (not for kernels).
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "emu/emu.h"

#if !defined(VAEMU_USE_UCONTEXT)
#if defined(__x86_64__) && !defined(_WIN32)
#define VAEMU_USE_UCONTEXT 0
#else
#define VAEMU_USE_UCONTEXT 1
#endif
#endif
#if VAEMU_USE_UCONTEXT
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define VAEMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VAEMU_ASAN 1
#endif
#endif
#ifndef VAEMU_ASAN
#define VAEMU_ASAN 0
#endif

namespace vaemu {
namespace detail {

// ------------------------------------------------------------------ grids and blocks
struct GridJob {
  LaunchDesc desc;
  std::string name;
  unsigned total = 0;
  std::atomic<unsigned> next{0};
  std::atomic<unsigned> done{0};
  std::atomic<bool> failed{false};
  std::mutex m;
  std::condition_variable cv;
  std::string error;  // first failure (guarded by m)
  void fail(const std::string& msg);
};

// Runs the whole grid (the calling thread takes part; pool workers help). Returns "" or the error.
std::string runGrid(const std::shared_ptr<GridJob>& job);

enum class FState : uint8_t { Ready, WaitBar, WaitWarp, Done };

struct BlockRun;

struct Fiber {
#if VAEMU_USE_UCONTEXT
  ucontext_t uc;
#endif
  void* sp = nullptr;        // saved stack pointer while switched out
  FState state = FState::Ready;
  bool started = false;
  uint3 tid{0, 0, 0};
  unsigned linear = 0, lane = 0, warp = 0;
  const char* waitName = nullptr;
  BlockRun* block = nullptr;
  char* stackLo = nullptr;   // lowest usable byte (the guard page lies below)
  size_t stackSize = 0;
  void* asanFake = nullptr;
};

struct WarpState {
  unsigned exist = 0;    // lanes that exist (blockDim not a multiple of 32 leaves a partial warp)
  unsigned exited = 0;   // lanes whose thread has returned
  unsigned pending = 0;  // lanes waiting in a collective
  WarpReq* req[32] = {};
};

struct Worker;

struct BlockRun {
  const GridJob* job = nullptr;
  Worker* worker = nullptr;
  unsigned n = 0, nDone = 0, nExited = 0;
  std::vector<Fiber> fibers;
  std::vector<WarpState> warps;
  std::vector<Fiber*> barWaiters;
  unsigned barArrived = 0;
  int barCount = 0, barAnd = 1, barOr = 0;
  int resCount = 0, resAnd = 0, resOr = 0;
  bool failed = false;
  std::string error;
  uint3 bidx{0, 0, 0};
};

struct Stack {
  char* map = nullptr;  // whole mapping, guard page first
  size_t mapSize = 0;
  char* lo = nullptr;
  size_t size = 0;
};

struct Worker {
  void* schedSp = nullptr;
#if VAEMU_USE_UCONTEXT
  ucontext_t schedUc;
#endif
  void* schedAsanFake = nullptr;
  const void* schedStackBottom = nullptr;
  size_t schedStackSize = 0;
  std::vector<Stack> stacks;
  BlockRun run;
  unsigned char* dynSmem = nullptr;
  size_t dynSmemCap = 0;
  std::mt19937 rng{12345};
  std::vector<unsigned> order;
  // Addresses of this thread's per-fiber TLS (computed once: __tls_get_addr is slow in a .so).
  Fiber** pFiber = nullptr;
  unsigned* pLane = nullptr;
  uint3* pTid = nullptr;
  ~Worker();
};

Worker& currentWorker();
void stopPool();  // joins the block workers (shutdown)

// ------------------------------------------------------------------ runtime (runtime.cpp)
bool envFlag(const char* name);
unsigned numThreads();

}  // namespace detail
}  // namespace vaemu
