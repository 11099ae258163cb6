// visattn — the one portability header every file under cuda/ includes first.
//
// The cuda backend is compiled twice into one .node:
//   * by nvcc against the real CUDA runtime  → namespace va_cuda
//   * by g++ (VA_EMU defined) against the emulated runtime in native/emu → namespace va_emu
// Code in cuda/ is written once, inside VA_CUDA_NAMESPACE_BEGIN / VA_CUDA_NAMESPACE_END, and uses
// only what both compilers accept:
//   * kernels are `__global__` functions (templates, or `static` when not templates);
//   * launches go through va_launch(...) (never <<<>>> directly);
//   * dynamic shared memory through VA_DYNAMIC_SHARED(T, name);
//   * tensor-core / async-copy instructions only through the wrappers in mma.cuh.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#if defined(__CUDACC__)

#include <cuda_runtime.h>
#include <tuple>

#define VA_CUDA_NS va_cuda
#define VA_CUDA_NAMESPACE_BEGIN namespace va_cuda {
#define VA_CUDA_NAMESPACE_END }
#define VA_IS_EMU 0

// Dynamic shared memory: a typed pointer `name` to the launch's dynamic shared bytes.
#define VA_DYNAMIC_SHARED(T, name)                                  \
  extern __shared__ __align__(16) unsigned char va_dyn_smem_raw_[]; \
  T* name = reinterpret_cast<T*>(va_dyn_smem_raw_)

namespace va_cuda {

namespace detail {
template <typename Tuple, std::size_t... I>
cudaError_t launchTuple(const void* fn, dim3 g, dim3 b, size_t smem, cudaStream_t s, Tuple& t,
                        std::index_sequence<I...>) {
  void* args[sizeof...(I) + 1] = {static_cast<void*>(&std::get<I>(t))..., nullptr};
  return cudaLaunchKernel(fn, g, b, args, smem, s);
}
}  // namespace detail

// Launch `kernel` on `stream`; arguments are converted to the kernel's parameter types.
// Returns the launch's error (cudaGetLastError semantics: configuration errors are reported here).
template <typename... KArgs, typename... Args>
cudaError_t va_launch(const char* /*name*/, void (*kernel)(KArgs...), dim3 grid, dim3 block,
                      size_t smem, cudaStream_t stream, Args&&... args) {
  static_assert(sizeof...(KArgs) == sizeof...(Args), "va_launch: argument count mismatch");
  std::tuple<KArgs...> converted(static_cast<KArgs>(std::forward<Args>(args))...);
  cudaError_t err = detail::launchTuple(reinterpret_cast<const void*>(kernel), grid, block, smem,
                                        stream, converted, std::index_sequence_for<KArgs...>{});
  if (err != cudaSuccess) return err;
  return cudaGetLastError();
}

// Human-readable description of an error (the emulated runtime adds the failing kernel's name).
inline std::string va_error_detail(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

}  // namespace va_cuda

#elif defined(VA_EMU)

// The emulated runtime (namespace vaemu): CUDA runtime API subset, dim3, builtin variables,
// __syncthreads/warp intrinsics/atomics, and vaemu::launchKernel. Never includes cuda_runtime.h.
#include "emu/emu.h"

#define VA_CUDA_NS va_emu
#define VA_CUDA_NAMESPACE_BEGIN \
  namespace va_emu {            \
  using namespace ::vaemu;
#define VA_CUDA_NAMESPACE_END }
#define VA_IS_EMU 1

// Dynamic shared memory of the running block (0xFF-poisoned before each block).
#define VA_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::vaemu::dynamicSharedMemory())

namespace va_emu {
using namespace ::vaemu;

template <typename... KArgs, typename... Args>
cudaError_t va_launch(const char* name, void (*kernel)(KArgs...), dim3 grid, dim3 block,
                      size_t smem, cudaStream_t stream, Args&&... args) {
  static_assert(sizeof...(KArgs) == sizeof...(Args), "va_launch: argument count mismatch");
  return ::vaemu::launchKernel(name, kernel, grid, block, smem, stream,
                               static_cast<KArgs>(std::forward<Args>(args))...);
}

inline std::string va_error_detail(cudaError_t err) { return ::vaemu::errorDetail(err); }

}  // namespace va_emu

#else
#error "cuda/common/compat.cuh: compile with nvcc, or with g++ and -DVA_EMU (native/emu)"
#endif

// Launch helper with the kernel's name filled in.
#define VA_LAUNCH(kernel, grid, block, smem, stream, ...) \
  va_launch(#kernel, kernel, grid, block, smem, stream, __VA_ARGS__)
