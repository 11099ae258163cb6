// visattn — the emulated CUDA runtime ("emu" device).
//
// Compiled by g++ only (never by nvcc, never together with cuda_runtime.h). Everything lives in
// namespace vaemu; cuda/common/compat.cuh pulls it into namespace va_emu with a using-directive.
// Only the CUDA qualifier keywords are macros.
//
// Execution model (see /work/shared/design/emulator.md and native/emu/CONTRACT.md):
//   * each stream is an executor thread running its queue in order;
//   * a grid's blocks are spread over a pool of worker threads (env VISATTN_NUM_THREADS, else the
//     hardware concurrency); all threads of one block run as fibers on ONE worker thread, so
//     `__shared__` (= static thread_local) storage is exactly block-shared storage;
//   * barriers, warp collectives, deadlock detection and device-side failures are implemented in
//     native/emu/fiber.cpp; failures abort the grid and set the stream's sticky error.
#pragma once

// Standard headers that must be seen BEFORE the qualifier macros below (libstdc++ spells some
// attributes __noinline__; including them first makes later includes no-ops).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__CUDACC__)
#error "native/emu/emu.h must not be compiled by nvcc"
#endif

// ------------------------------------------------------------------ qualifier macros
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) alignas(n)
// Static shared memory: all fibers of a block run on one worker thread, one block at a time.
// Note: unlike dynamic shared memory, static __shared__ storage is NOT re-poisoned per block.
#define __shared__ static thread_local

namespace vaemu {

// ------------------------------------------------------------------ basic types
struct uint3 {
  unsigned x, y, z;
};
struct int3 {
  int x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

// CUDA vector types (same sizes and alignments as vector_types.h) and their make_ functions.
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct float3 { float x, y, z; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(16) double2 { double x, y; };
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float3 make_float3(float x, float y, float z) { return float3{x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return uint3{x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
inline double2 make_double2(double x, double y) { return double2{x, y}; }

enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotPermitted = 800,
  cudaErrorNotSupported = 801,
  cudaErrorUnknown = 999,
};
using cudaError = cudaError_t;

namespace detail {
struct StreamImpl;
struct EventImpl;
struct Fiber;
}  // namespace detail

using cudaStream_t = detail::StreamImpl*;  // nullptr = legacy default stream
using cudaEvent_t = detail::EventImpl*;

enum cudaMemcpyKind : int {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

using cudaHostFn_t = void (*)(void*);

enum cudaFuncAttribute : int {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

enum : unsigned {
  cudaStreamDefault = 0,
  cudaStreamNonBlocking = 1,
};
enum : unsigned {
  cudaEventDefault = 0,
  cudaEventBlockingSync = 1,
  cudaEventDisableTiming = 2,
};
enum : unsigned {
  cudaHostAllocDefault = 0,
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  size_t sharedMemPerMultiprocessor;
  size_t totalConstMem;
  int regsPerBlock;
  int regsPerMultiprocessor;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int multiProcessorCount;
  int maxThreadsPerMultiProcessor;
  int maxBlocksPerMultiProcessor;
  int major;
  int minor;
  int clockRate;        // kHz
  int memoryClockRate;  // kHz
  int memoryBusWidth;   // bits
  int l2CacheSize;      // bytes
  int concurrentKernels;
  int asyncEngineCount;
  int unifiedAddressing;
  int pciBusID;
  int pciDeviceID;
  int pciDomainID;
};

// ------------------------------------------------------------------ runtime API
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaMemGetInfo(size_t* freeBytes, size_t* totalBytes);

cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* userData);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);

// "<name>: <detail>" for the last error returned to the calling thread with this code (the detail
// names the failing kernel), else "<name>: <string>".
std::string errorDetail(cudaError_t err);

// Stops and joins every thread the runtime started (stream executors, block workers). Queued work
// is finished first. The runtime restarts lazily if used again afterwards. Call from a host thread
// (not from a stream callback).
void shutdown();

// Dynamic shared memory of the running block (0xFF-poisoned before each block); nullptr on the host.
inline void* dynamicSharedMemory();

namespace detail {
cudaError_t setFuncAttribute(const void* fn, cudaFuncAttribute attr, int value);
}  // namespace detail

template <class F>
cudaError_t cudaFuncSetAttribute(F* fn, cudaFuncAttribute attr, int value) {
  return detail::setFuncAttribute(reinterpret_cast<const void*>(fn), attr, value);
}

// ------------------------------------------------------------------ kernel launch
namespace detail {
struct LaunchDesc {
  const char* name = "";
  const void* fnKey = nullptr;            // the kernel function (for cudaFuncSetAttribute limits)
  void (*invoke)(const void*) = nullptr;  // runs the kernel for the current fiber
  std::shared_ptr<const void> closure;    // the kernel pointer + arguments, captured by value
  dim3 grid, block;
  size_t dynSmem = 0;
};
cudaError_t enqueueLaunch(LaunchDesc&& desc, cudaStream_t stream);
}  // namespace detail

template <class... KArgs, class... Args>
cudaError_t launchKernel(const char* name, void (*kernel)(KArgs...), dim3 grid, dim3 block,
                         size_t dynSmem, cudaStream_t stream, Args... args) {
  static_assert(sizeof...(KArgs) == sizeof...(Args), "vaemu::launchKernel: argument count mismatch");
  using Tuple = std::tuple<std::decay_t<KArgs>...>;
  struct Closure {
    void (*fn)(KArgs...);
    Tuple args;
  };
  detail::LaunchDesc d;
  d.name = name ? name : "?";
  d.fnKey = reinterpret_cast<const void*>(kernel);
  d.closure = std::make_shared<Closure>(
      Closure{kernel, Tuple(static_cast<std::decay_t<KArgs>>(std::move(args))...)});
  d.invoke = [](const void* p) {
    const Closure* c = static_cast<const Closure*>(p);
    std::apply(c->fn, c->args);  // each CUDA thread gets its own copies of the parameters
  };
  d.grid = grid;
  d.block = block;
  d.dynSmem = dynSmem;
  return detail::enqueueLaunch(std::move(d), stream);
}

// ------------------------------------------------------------------ device side: builtins
// Per-fiber values, set by the scheduler before it resumes each fiber.
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
constexpr int warpSize = 32;

namespace detail {
inline thread_local Fiber* tl_fiber = nullptr;       // the running CUDA thread (nullptr on host)
inline thread_local unsigned tl_lane = 0;            // its lane id
inline thread_local void* tl_dynSmem = nullptr;      // the running block's dynamic shared memory

enum class WarpOp : int {
  Sync, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All, AllGather,
  ReduceAdd, ReduceMin, ReduceMax, ReduceAnd, ReduceOr, ReduceXor, MatchAny, MatchAll
};

// One lane's request to a warp collective. Lives on the calling fiber's stack; the lane that
// completes the collective fills `out` (and AllGather destinations) of every participant.
struct WarpReq {
  WarpOp op;
  unsigned mask;
  uint64_t val;      // this lane's value (bits)
  int param;         // srcLane / delta / laneMask
  int width;
  int isSigned;      // for ReduceMin/Max
  const void* src;   // AllGather: this lane's bytes
  void* dst;         // AllGather: 32 * bytes destination
  size_t bytes;
  const char* name;  // intrinsic name for diagnostics
  uint64_t out;
  unsigned outMask;  // MatchAll: predicate
};

void warpCollective(WarpReq& req);                // blocks until the collective completes
int blockBarrier(int kind, int pred, const char* name);  // kind: 0 plain, 1 count, 2 and, 3 or
[[noreturn]] void deviceFail(const char* what);   // aborts the running grid with an error
unsigned activeMask();

template <class T>
inline uint64_t toBits(T v) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "warp op: unsupported type");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
inline T fromBits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
template <class T>
inline T shflGeneric(WarpOp op, const char* name, unsigned mask, T var, int param, int width) {
  WarpReq r{};
  r.op = op;
  r.mask = mask;
  r.val = toBits(var);
  r.param = param;
  r.width = width;
  r.name = name;
  warpCollective(r);
  return fromBits<T>(r.out);
}
}  // namespace detail

inline void* dynamicSharedMemory() { return detail::tl_dynSmem; }

inline void __syncthreads() { detail::blockBarrier(0, 0, "__syncthreads"); }
inline int __syncthreads_count(int pred) { return detail::blockBarrier(1, pred, "__syncthreads_count"); }
inline int __syncthreads_and(int pred) { return detail::blockBarrier(2, pred, "__syncthreads_and"); }
inline int __syncthreads_or(int pred) { return detail::blockBarrier(3, pred, "__syncthreads_or"); }

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  detail::WarpReq r{};
  r.op = detail::WarpOp::Sync;
  r.mask = mask;
  r.name = "__syncwarp";
  detail::warpCollective(r);
}

template <class T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize) {
  return detail::shflGeneric(detail::WarpOp::ShflIdx, "__shfl_sync", mask, var, srcLane, width);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return detail::shflGeneric(detail::WarpOp::ShflUp, "__shfl_up_sync", mask, var, (int)delta, width);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return detail::shflGeneric(detail::WarpOp::ShflDown, "__shfl_down_sync", mask, var, (int)delta, width);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {
  return detail::shflGeneric(detail::WarpOp::ShflXor, "__shfl_xor_sync", mask, var, laneMask, width);
}

inline unsigned __ballot_sync(unsigned mask, int pred) {
  detail::WarpReq r{};
  r.op = detail::WarpOp::Ballot;
  r.mask = mask;
  r.val = pred != 0;
  r.name = "__ballot_sync";
  detail::warpCollective(r);
  return (unsigned)r.out;
}
inline int __any_sync(unsigned mask, int pred) {
  detail::WarpReq r{};
  r.op = detail::WarpOp::Any;
  r.mask = mask;
  r.val = pred != 0;
  r.name = "__any_sync";
  detail::warpCollective(r);
  return (int)r.out;
}
inline int __all_sync(unsigned mask, int pred) {
  detail::WarpReq r{};
  r.op = detail::WarpOp::All;
  r.mask = mask;
  r.val = pred != 0;
  r.name = "__all_sync";
  detail::warpCollective(r);
  return (int)r.out;
}
inline unsigned __activemask() { return detail::activeMask(); }

namespace detail {
template <class T>
inline T reduceGeneric(WarpOp op, const char* name, unsigned mask, T v) {
  WarpReq r{};
  r.op = op;
  r.mask = mask;
  r.val = (uint64_t)(uint32_t)v;
  r.isSigned = std::is_signed<T>::value;
  r.name = name;
  warpCollective(r);
  return (T)(uint32_t)r.out;
}
}  // namespace detail
inline unsigned __reduce_add_sync(unsigned mask, unsigned v) { return detail::reduceGeneric(detail::WarpOp::ReduceAdd, "__reduce_add_sync", mask, v); }
inline int __reduce_add_sync(unsigned mask, int v) { return detail::reduceGeneric(detail::WarpOp::ReduceAdd, "__reduce_add_sync", mask, v); }
inline unsigned __reduce_min_sync(unsigned mask, unsigned v) { return detail::reduceGeneric(detail::WarpOp::ReduceMin, "__reduce_min_sync", mask, v); }
inline int __reduce_min_sync(unsigned mask, int v) { return detail::reduceGeneric(detail::WarpOp::ReduceMin, "__reduce_min_sync", mask, v); }
inline unsigned __reduce_max_sync(unsigned mask, unsigned v) { return detail::reduceGeneric(detail::WarpOp::ReduceMax, "__reduce_max_sync", mask, v); }
inline int __reduce_max_sync(unsigned mask, int v) { return detail::reduceGeneric(detail::WarpOp::ReduceMax, "__reduce_max_sync", mask, v); }
inline unsigned __reduce_and_sync(unsigned mask, unsigned v) { return detail::reduceGeneric(detail::WarpOp::ReduceAnd, "__reduce_and_sync", mask, v); }
inline unsigned __reduce_or_sync(unsigned mask, unsigned v) { return detail::reduceGeneric(detail::WarpOp::ReduceOr, "__reduce_or_sync", mask, v); }
inline unsigned __reduce_xor_sync(unsigned mask, unsigned v) { return detail::reduceGeneric(detail::WarpOp::ReduceXor, "__reduce_xor_sync", mask, v); }

// Warp all-gather (emulator-only helper, used by cuda/common/mma.cuh): every lane named in `mask`
// contributes `bytes` bytes at `mine`; afterwards `all[lane * bytes ...]` holds lane's bytes for
// every lane in the mask (other lanes' slots are filled with 0xFF).
inline void warpAllGather(unsigned mask, const void* mine, void* all, size_t bytes, const char* what) {
  detail::WarpReq r{};
  r.op = detail::WarpOp::AllGather;
  r.mask = mask;
  r.src = mine;
  r.dst = all;
  r.bytes = bytes;
  r.name = what ? what : "warpAllGather";
  detail::warpCollective(r);
}

// Aborts the running grid: cudaErrorLaunchFailure "... __trap() called".
[[noreturn]] inline void __trap() { detail::deviceFail("__trap() called"); }
[[noreturn]] inline void __brkpt() { detail::deviceFail("__brkpt() called"); }

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
long long clock64();
inline void __nanosleep(unsigned) {}

// ------------------------------------------------------------------ atomics
namespace detail {
template <class T>
inline T atomicRmwCas(T* addr, T (*f)(T, T), T v) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomic: size");
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U* p = reinterpret_cast<U*>(addr);
  U old = __atomic_load_n(p, __ATOMIC_RELAXED);
  for (;;) {
    T o;
    std::memcpy(&o, &old, sizeof(T));
    T n = f(o, v);
    U nb;
    std::memcpy(&nb, &n, sizeof(T));
    if (__atomic_compare_exchange_n(p, &old, nb, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return o;
  }
}
}  // namespace detail

#define VAEMU_ATOMIC_INT_OPS(T)                                                                       \
  inline T atomicAdd(T* a, T v) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }               \
  inline T atomicSub(T* a, T v) { return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST); }               \
  inline T atomicExch(T* a, T v) { return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); }             \
  inline T atomicAnd(T* a, T v) { return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST); }               \
  inline T atomicOr(T* a, T v) { return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST); }                 \
  inline T atomicXor(T* a, T v) { return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST); }               \
  inline T atomicMax(T* a, T v) {                                                                     \
    return detail::atomicRmwCas<T>(a, [](T x, T y) { return x > y ? x : y; }, v);                     \
  }                                                                                                   \
  inline T atomicMin(T* a, T v) {                                                                     \
    return detail::atomicRmwCas<T>(a, [](T x, T y) { return x < y ? x : y; }, v);                     \
  }                                                                                                   \
  inline T atomicCAS(T* a, T compare, T v) {                                                          \
    __atomic_compare_exchange_n(a, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);           \
    return compare;                                                                                   \
  }
VAEMU_ATOMIC_INT_OPS(int)
VAEMU_ATOMIC_INT_OPS(unsigned)
VAEMU_ATOMIC_INT_OPS(unsigned long long)
VAEMU_ATOMIC_INT_OPS(long long)
#undef VAEMU_ATOMIC_INT_OPS

inline float atomicAdd(float* a, float v) {
  return detail::atomicRmwCas<float>(a, [](float x, float y) { return x + y; }, v);
}
inline double atomicAdd(double* a, double v) {
  return detail::atomicRmwCas<double>(a, [](double x, double y) { return x + y; }, v);
}
inline float atomicExch(float* a, float v) {
  return detail::atomicRmwCas<float>(a, [](float, float y) { return y; }, v);
}
inline unsigned atomicInc(unsigned* a, unsigned v) {
  return detail::atomicRmwCas<unsigned>(a, [](unsigned x, unsigned y) { return x >= y ? 0u : x + 1; }, v);
}
inline unsigned atomicDec(unsigned* a, unsigned v) {
  return detail::atomicRmwCas<unsigned>(a, [](unsigned x, unsigned y) { return (x == 0 || x > y) ? y : x - 1; }, v);
}
// Scoped variants map to the same operations.
template <class T, class U>
inline T atomicAdd_block(T* a, U v) { return atomicAdd(a, (T)v); }
template <class T, class U>
inline T atomicAdd_system(T* a, U v) { return atomicAdd(a, (T)v); }

// ------------------------------------------------------------------ intrinsics
template <class T>
inline T __ldg(const T* p) { return *p; }
template <class T>
inline T __ldcg(const T* p) { return *p; }
template <class T>
inline T __ldca(const T* p) { return *p; }
template <class T>
inline T __ldcs(const T* p) { return *p; }
template <class T>
inline T __ldlu(const T* p) { return *p; }
template <class T>
inline void __stcg(T* p, T v) { *p = v; }
template <class T>
inline void __stcs(T* p, T v) { *p = v; }
template <class T>
inline void __stwb(T* p, T v) { *p = v; }

inline float __expf(float x) { return std::exp(x); }
inline float __exp10f(float x) { return std::pow(10.0f, x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __log10f(float x) { return std::log10(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline void __sincosf(float x, float* s, float* c) { *s = std::sin(x); *c = std::cos(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
  return (x >> 16) | (x << 16);
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned s) {
  unsigned long long v = ((unsigned long long)hi << 32) | lo;
  return (unsigned)((v << (s & 31)) >> 32);
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned s) {
  unsigned long long v = ((unsigned long long)hi << 32) | lo;
  return (unsigned)(v >> (s & 31));
}
inline int __mul24(int a, int b) { return (int)((long long)((a << 8) >> 8) * ((b << 8) >> 8)); }
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}

inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline long long __double_as_longlong(double d) { long long u; std::memcpy(&u, &d, 8); return u; }
inline double __longlong_as_double(long long u) { double d; std::memcpy(&d, &u, 8); return d; }
inline float __int2float_rn(int x) { return (float)x; }
inline float __uint2float_rn(unsigned x) { return (float)x; }
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rn(float x) { return (int)std::nearbyint(x); }
inline int __float2int_rd(float x) { return (int)std::floor(x); }
inline int __float2int_ru(float x) { return (int)std::ceil(x); }
inline unsigned __float2uint_rn(float x) { return (unsigned)std::nearbyint(x); }
inline unsigned __float2uint_rz(float x) { return (unsigned)x; }

// min / max overloads (CUDA's device math functions).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline unsigned min(int a, unsigned b) { return min((unsigned)a, b); }
inline unsigned max(int a, unsigned b) { return max((unsigned)a, b); }
inline unsigned min(unsigned a, int b) { return min(a, (unsigned)b); }
inline unsigned max(unsigned a, int b) { return max(a, (unsigned)b); }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

}  // namespace vaemu
