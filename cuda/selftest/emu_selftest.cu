// visattn — self-test kernels that prove the emulator implements CUDA semantics and catches bugs.
// Compiled for both builds (nvcc → va_cuda::runSelfTest, g++ -DVA_EMU → va_emu::runSelfTest).
//
// runSelfTest(name, out) runs one test on a fresh stream and returns its floats in *out:
//   "reduce_ok"              4 floats: per-block sums of in[b*256+t] = b*256+t  → 32640 98176 163712 229248
//   "reduce_missing_barrier" the same kernel without the barrier inside the tree loop; under emu
//                            (sequential fiber order) always → 255 2559 4863 7167 (wrong)
//   "divergent_shuffle"      error Status: lanes 0-15 call __shfl_xor_sync(0xffffffff) and 16-31 skip
//                            it (emu: "... kernel 'divergentShuffleKernel' ... deadlock ...")
//   "warp_ops"               17*32 floats, out[k*32+lane] (see warpOpsKernel for each k)
//   "atomics"                8 floats → 1024 523776 1023 -23 2048 3072 523776 512
//   "dynamic_smem"           4 floats → NaN 3 NaN 3 (emu: unwritten dynamic shared memory reads NaN)
//   "mma_tf32"               128 floats: D (16x8, row-major) of va_mma_tf32_m16n8k8
//   "trap"                   error Status naming 'trapKernel' and "__trap()"
// Never run "divergent_shuffle" or "trap" on a real GPU (undefined behaviour / context loss).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/compat.cuh"
#include "common/mma.cuh"
#include "visattn/status.h"

VA_CUDA_NAMESPACE_BEGIN

// ---------------------------------------------------------------- reductions
template <bool kBarrierInLoop>
__device__ void selftestBlockReduce256(const float* in, float* out) {
  __shared__ float s[256];
  const unsigned t = threadIdx.x;
  s[t] = in[blockIdx.x * 256u + t];
  __syncthreads();
  for (unsigned stride = 128; stride > 0; stride >>= 1) {
    if (t < stride) s[t] += s[t + stride];
    if (kBarrierInLoop) __syncthreads();  // the barrier the buggy variant lacks
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

static __global__ void reduceSumKernel(const float* in, float* out) { selftestBlockReduce256<true>(in, out); }
static __global__ void reduceSumMissingBarrierKernel(const float* in, float* out) {
  selftestBlockReduce256<false>(in, out);
}

// ---------------------------------------------------------------- divergent shuffle (a bug)
static __global__ void divergentShuffleKernel(float* out) {
  float v = (float)threadIdx.x;
  if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);  // half the warp skips it
  out[threadIdx.x] = v;
}

// ---------------------------------------------------------------- warp operations
static constexpr int kWarpOps = 17;
static __global__ void warpOpsKernel(float* out) {
  const unsigned full = 0xffffffffu;
  const int lane = (int)(threadIdx.x & 31u);
  float* o = out;
  // k=0: __shfl_sync float from lane (lane+3)%32                       → ((lane+3)%32) * 1.5
  o[0 * 32 + lane] = __shfl_sync(full, lane * 1.5f, (lane + 3) & 31);
  // k=1: __shfl_xor_sync int, laneMask 5                               → lane ^ 5
  o[1 * 32 + lane] = (float)__shfl_xor_sync(full, lane, 5);
  // k=2: __shfl_up_sync delta 2, width 8                               → lane%8 >= 2 ? lane-2 : lane
  o[2 * 32 + lane] = (float)__shfl_up_sync(full, lane, 2, 8);
  // k=3: __shfl_down_sync delta 3, width 16                            → lane%16 < 13 ? lane+3 : lane
  o[3 * 32 + lane] = (float)__shfl_down_sync(full, lane, 3, 16);
  // k=4: __shfl_sync srcLane 1, width 4                                → (lane & ~3) + 1
  o[4 * 32 + lane] = (float)__shfl_sync(full, lane, 1, 4);
  // k=5: __shfl_xor_sync laneMask 8, width 8 (later group → own value) → (lane & 8) ? lane ^ 8 : lane
  o[5 * 32 + lane] = (float)__shfl_xor_sync(full, lane, 8, 8);
  // k=6,7: __ballot_sync(lane % 3 == 0) low / high 16 bits              → 37449, 18724
  const unsigned ballot = __ballot_sync(full, lane % 3 == 0);
  o[6 * 32 + lane] = (float)(ballot & 0xffffu);
  o[7 * 32 + lane] = (float)(ballot >> 16);
  // k=8: __any_sync(lane == 17) → 1;  k=9: __all_sync(lane < 31) → 0;  k=10: __all_sync(1) → 1
  o[8 * 32 + lane] = (float)__any_sync(full, lane == 17);
  o[9 * 32 + lane] = (float)__all_sync(full, lane < 31);
  o[10 * 32 + lane] = (float)__all_sync(full, 1);
  // k=11: __shfl_xor_sync double, laneMask 16                         → (lane ^ 16) * 0.25
  o[11 * 32 + lane] = (float)__shfl_xor_sync(full, (double)lane * 0.25, 16);
  // k=12: __shfl_down_sync long long lane*3e9, delta 1, then /1e9     → lane < 31 ? 3*(lane+1) : 93
  const long long big = (long long)lane * 3000000000LL;
  o[12 * 32 + lane] = (float)(__shfl_down_sync(full, big, 1) / 1000000000LL);
  // k=13: __popc(__activemask())                                       → 32
  o[13 * 32 + lane] = (float)__popc(__activemask());
  // k=14: two half-warp shuffles with disjoint partial masks           → lane<16 ? (15-lane)*2 : (lane^1)*2
  int v14;
  if (lane < 16) v14 = __shfl_sync(0x0000ffffu, lane * 2, 15 - lane);
  else v14 = __shfl_sync(0xffff0000u, lane * 2, lane ^ 1);
  o[14 * 32 + lane] = (float)v14;
  __syncwarp();
  // k=15: __reduce_add_sync(lane) → 496;  k=16: __reduce_max_sync(lane - 10) → 21
  o[15 * 32 + lane] = (float)__reduce_add_sync(full, (unsigned)lane);
  o[16 * 32 + lane] = (float)__reduce_max_sync(full, lane - 10);
}

// ---------------------------------------------------------------- atomics
struct SelftestAtomicState {
  float fsum;
  int isum, imax, imin, cas;
  unsigned usum;
  unsigned long long ullsum;
  double dsum;
};

static __global__ void atomicsInitKernel(SelftestAtomicState* st) {
  st->fsum = 0.0f;
  st->isum = 0;
  st->imax = -2147483647 - 1;
  st->imin = 2147483647;
  st->cas = 0;
  st->usum = 0u;
  st->ullsum = 0ull;
  st->dsum = 0.0;
}

static __global__ void atomicsKernel(SelftestAtomicState* st) {
  const int gid = (int)(blockIdx.x * blockDim.x + threadIdx.x);  // 8 blocks x 128 threads
  atomicAdd(&st->fsum, 1.0f);
  atomicAdd(&st->isum, gid);
  atomicMax(&st->imax, gid);
  atomicMin(&st->imin, 1000 - gid);
  int old = st->cas, assumed;
  do {
    assumed = old;
    old = atomicCAS(&st->cas, assumed, assumed + 2);
  } while (old != assumed);
  atomicAdd(&st->usum, 3u);
  atomicAdd(&st->ullsum, (unsigned long long)gid * 1000000ull);
  atomicAdd(&st->dsum, 0.5);
}

static __global__ void atomicsFinishKernel(const SelftestAtomicState* st, float* out) {
  out[0] = st->fsum;
  out[1] = (float)st->isum;
  out[2] = (float)st->imax;
  out[3] = (float)st->imin;
  out[4] = (float)st->cas;
  out[5] = (float)st->usum;
  out[6] = (float)(st->ullsum / 1000000ull);
  out[7] = (float)st->dsum;
}

// ---------------------------------------------------------------- dynamic shared memory
static __global__ void dynamicSmemKernel(float* out) {
  VA_DYNAMIC_SHARED(float, sm);  // 64 floats
  const unsigned t = threadIdx.x;
  if (t == 0) {
    out[blockIdx.x * 2 + 0] = sm[5];  // never written in this block: NaN under emu
  }
  __syncthreads();
  if (t == 0) sm[5] = 1.0f;           // a stale value the next block must not see
  sm[32 + t] = (float)t;
  __syncthreads();
  if (t == 0) out[blockIdx.x * 2 + 1] = sm[32 + 3];  // → 3
}

// ---------------------------------------------------------------- tensor-core mma (tf32)
// A: 16x8 row-major (M x K), B: 8x8 row-major (K x N), C and D: 16x8 row-major.
static __global__ void mmaTf32Kernel(const float* A, const float* B, const float* C, float* D) {
  const int lane = (int)(threadIdx.x & 31u);
  const int g = lane >> 2, t = lane & 3;
  uint32_t a[4], b[2];
  float c[4], d[4];
  a[0] = va_f32_to_tf32(A[g * 8 + t]);
  a[1] = va_f32_to_tf32(A[(g + 8) * 8 + t]);
  a[2] = va_f32_to_tf32(A[g * 8 + t + 4]);
  a[3] = va_f32_to_tf32(A[(g + 8) * 8 + t + 4]);
  b[0] = va_f32_to_tf32(B[t * 8 + g]);
  b[1] = va_f32_to_tf32(B[(t + 4) * 8 + g]);
  c[0] = C[g * 8 + 2 * t];
  c[1] = C[g * 8 + 2 * t + 1];
  c[2] = C[(g + 8) * 8 + 2 * t];
  c[3] = C[(g + 8) * 8 + 2 * t + 1];
  va_mma_tf32_m16n8k8(d, a, b, c);
  D[g * 8 + 2 * t] = d[0];
  D[g * 8 + 2 * t + 1] = d[1];
  D[(g + 8) * 8 + 2 * t] = d[2];
  D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

// ---------------------------------------------------------------- trap
static __global__ void trapKernel(float* out) {
  if (threadIdx.x == 5) __trap();
  out[threadIdx.x] = 1.0f;
}

// ---------------------------------------------------------------- host side
namespace {

struct SelftestRun {
  std::string name;
  cudaStream_t stream = nullptr;
  std::vector<void*> bufs;
  std::string error;

  // Records the first failure; returns true when `e` is success.
  bool ok(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return true;
    (void)what;
    if (error.empty()) error = "selftest '" + name + "': " + va_error_detail(e);
    return false;
  }
  template <class T>
  T* alloc(size_t count) {
    void* p = nullptr;
    if (!ok(cudaMalloc(&p, count * sizeof(T)), "cudaMalloc")) return nullptr;
    bufs.push_back(p);
    return static_cast<T*>(p);
  }
  template <class T>
  bool upload(T* dst, const std::vector<T>& src) {
    return ok(cudaMemcpyAsync(dst, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice, stream),
              "cudaMemcpyAsync");
  }
  bool download(std::vector<float>* out, const float* src, size_t n) {
    out->assign(n, 0.0f);
    if (!ok(cudaMemcpyAsync(out->data(), src, n * sizeof(float), cudaMemcpyDeviceToHost, stream),
            "cudaMemcpyAsync"))
      return false;
    return ok(cudaStreamSynchronize(stream), "kernel");
  }
  ~SelftestRun() {
    if (stream) cudaStreamSynchronize(stream);
    for (void* p : bufs) cudaFree(p);
    if (stream) cudaStreamDestroy(stream);
  }
};

void selftestBody(SelftestRun& r, std::vector<float>* out) {
  const std::string& name = r.name;
  if (name == "reduce_ok" || name == "reduce_missing_barrier") {
    std::vector<float> in(4 * 256);
    for (int i = 0; i < 4 * 256; ++i) in[i] = (float)i;
    float* dIn = r.alloc<float>(in.size());
    float* dOut = r.alloc<float>(4);
    if (!dIn || !dOut || !r.upload(dIn, in)) return;
    cudaError_t e = name == "reduce_ok"
                        ? VA_LAUNCH(reduceSumKernel, dim3(4), dim3(256), 0, r.stream, dIn, dOut)
                        : VA_LAUNCH(reduceSumMissingBarrierKernel, dim3(4), dim3(256), 0, r.stream, dIn, dOut);
    if (!r.ok(e, "launch")) return;
    r.download(out, dOut, 4);
  } else if (name == "divergent_shuffle") {
    float* dOut = r.alloc<float>(32);
    if (!dOut) return;
    if (!r.ok(VA_LAUNCH(divergentShuffleKernel, dim3(1), dim3(32), 0, r.stream, dOut), "launch")) return;
    r.download(out, dOut, 32);
  } else if (name == "warp_ops") {
    float* dOut = r.alloc<float>(kWarpOps * 32);
    if (!dOut) return;
    if (!r.ok(VA_LAUNCH(warpOpsKernel, dim3(1), dim3(32), 0, r.stream, dOut), "launch")) return;
    r.download(out, dOut, kWarpOps * 32);
  } else if (name == "atomics") {
    SelftestAtomicState* st = r.alloc<SelftestAtomicState>(1);
    float* dOut = r.alloc<float>(8);
    if (!st || !dOut) return;
    if (!r.ok(VA_LAUNCH(atomicsInitKernel, dim3(1), dim3(1), 0, r.stream, st), "launch")) return;
    if (!r.ok(VA_LAUNCH(atomicsKernel, dim3(8), dim3(128), 0, r.stream, st), "launch")) return;
    if (!r.ok(VA_LAUNCH(atomicsFinishKernel, dim3(1), dim3(1), 0, r.stream, st, dOut), "launch")) return;
    r.download(out, dOut, 8);
  } else if (name == "dynamic_smem") {
    float* dOut = r.alloc<float>(4);
    if (!dOut) return;
    if (!r.ok(VA_LAUNCH(dynamicSmemKernel, dim3(2), dim3(32), 64 * sizeof(float), r.stream, dOut), "launch"))
      return;
    r.download(out, dOut, 4);
  } else if (name == "mma_tf32") {
    std::vector<float> A(16 * 8), B(8 * 8), C(16 * 8);
    for (int i = 0; i < 16; ++i)
      for (int k = 0; k < 8; ++k)  // exactly halfway between two tf32 values: rna rounds up
        A[i * 8 + k] = 1.0f + (float)(i * 8 + k) / 1024.0f + 1.0f / 2048.0f;
    for (int k = 0; k < 8; ++k)
      for (int j = 0; j < 8; ++j) {
        const int m = (k * 3 + j * 5) % 7 - 3;  // -3..3, plus a tail tf32 drops
        B[k * 8 + j] = (float)m + (m > 0 ? 1.0f : (m < 0 ? -1.0f : 0.0f)) / 4096.0f;
      }
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 8; ++j) C[i * 8 + j] = (float)(i - j) * 0.5f;
    float* dA = r.alloc<float>(A.size());
    float* dB = r.alloc<float>(B.size());
    float* dC = r.alloc<float>(C.size());
    float* dD = r.alloc<float>(16 * 8);
    if (!dA || !dB || !dC || !dD || !r.upload(dA, A) || !r.upload(dB, B) || !r.upload(dC, C)) return;
    if (!r.ok(VA_LAUNCH(mmaTf32Kernel, dim3(1), dim3(32), 0, r.stream, dA, dB, dC, dD), "launch")) return;
    r.download(out, dD, 16 * 8);
  } else if (name == "trap") {
    float* dOut = r.alloc<float>(32);
    if (!dOut) return;
    if (!r.ok(VA_LAUNCH(trapKernel, dim3(1), dim3(32), 0, r.stream, dOut), "launch")) return;
    r.download(out, dOut, 32);
  } else {
    r.error = "selftest: unknown name '" + name + "'";
  }
}

}  // namespace

va::Status runSelfTest(const std::string& name, std::vector<float>* out) {
  std::vector<float> local;
  if (!out) out = &local;
  out->clear();
  SelftestRun r;
  r.name = name;
  if (!r.ok(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking), "cudaStreamCreate")) {
    r.stream = nullptr;
    return va::Status::Error(r.error);
  }
  selftestBody(r, out);
  std::string err = r.error;
  if (!err.empty()) out->clear();  // no partial results on failure
  return err.empty() ? va::Status::Ok() : va::Status::Error(err);
}

VA_CUDA_NAMESPACE_END
