// visattn — standalone tests of the emulated CUDA runtime (native/emu) and the self-test kernels.
// Build (also under -fsanitize=address,undefined):
//   g++ -std=c++17 -O2 -DVA_EMU=1 -Inative/include -Inative -Icuda native/emu/*.cpp native/emu/*.S
//       -lpthread -o visattn_emu_selftest
// Prints "N passed, M failed"; exit code 1 on any failure. VISATTN_EMU_BENCH=1 adds timings.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../../cuda/selftest/emu_selftest.cu"
#include "emu/emu_internal.h"

namespace {

int g_pass = 0, g_fail = 0;
bool g_shuffled = false;  // VISATTN_EMU_SHUFFLE=1: schedule-dependent results are not checked

#define CHECK(cond, ...)                                          \
  do {                                                            \
    if (cond) {                                                   \
      ++g_pass;                                                   \
    } else {                                                      \
      ++g_fail;                                                   \
      std::printf("FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                   \
      std::printf("\n");                                          \
    }                                                             \
  } while (0)

bool contains(const std::string& s, const char* sub) { return s.find(sub) != std::string::npos; }

using namespace va_emu;

// ---------------------------------------------------------------- kernels for the runtime tests
__global__ void fillKernel(float* out, int n) {
  int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = (float)i;
}

__global__ void indexKernel(unsigned* out) {
  // grid (3,2,2), block (4,3,2)
  unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned nt = blockDim.x * blockDim.y * blockDim.z;
  out[b * nt + t] = b * 1000 + t;
}

__global__ void barrierFlavoursKernel(int* out) {
  int t = (int)threadIdx.x;  // 128 threads
  int c = __syncthreads_count(t % 4 == 0);
  int a = __syncthreads_and(t >= 0);
  int a2 = __syncthreads_and(t != 77);
  int o = __syncthreads_or(t == 100);
  int o2 = __syncthreads_or(0);
  if (t == 0) {
    out[0] = c;
    out[1] = a;
    out[2] = a2;
    out[3] = o;
    out[4] = o2;
  }
}

__global__ void earlyExitBarrierKernel(float* out) {
  // Threads >= 40 return before the barrier: exited threads count as arrived (no deadlock).
  __shared__ float s[64];
  unsigned t = threadIdx.x;
  if (t >= 40) return;
  s[t] = (float)t;
  __syncthreads();
  out[t] = s[39 - t];
}

__global__ void barrierDeadlockKernel(float* out) {
  if (threadIdx.x == 0) __syncwarp();  // lane 0 waits for its warp, the others for the block
  else __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void partialWarpKernel(float* out) {
  // 48 threads: warp 1 has 16 lanes.
  unsigned t = threadIdx.x, lane = t & 31u;
  unsigned mask = __activemask();
  float v = (float)t;
  if (t >= 32) v = __shfl_down_sync(0x0000ffffu, v, 1, 16);
  out[t] = v;
  out[48 + t] = (float)__popc(mask);
  (void)lane;
}

__global__ void nonexistentLaneKernel(float* out) {
  // 16 threads, full mask: lanes 16-31 do not exist.
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float)threadIdx.x, 1);
}

__global__ void maskWithoutSelfKernel(float* out) {
  out[threadIdx.x] = __shfl_sync(0x1u, 1.0f, 0);  // lanes 1..31 use a mask that excludes them
}

__global__ void mismatchedCollectiveKernel(float* out) {
  float v;
  if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
  else v = (float)__ballot_sync(0xffffffffu, 1);
  out[threadIdx.x] = v;
}

__global__ void throwKernel(float* out) {
  if (blockIdx.x == 1 && threadIdx.x == 3) throw std::runtime_error("boom from kernel");
  out[threadIdx.x] = 2.0f;
}

__global__ void bigBlockKernel(float* out) {
  __shared__ float s[1024];
  unsigned t = threadIdx.x;
  s[t] = (float)t;
  __syncthreads();
  out[blockIdx.x * 1024 + t] = s[1023 - t];
}

__global__ void dynSmem64kKernel(float* out) {
  VA_DYNAMIC_SHARED(float, sm);
  sm[threadIdx.x * 512] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = sm[((threadIdx.x + 1) % 32) * 512];
}

__global__ void barrierBenchKernel(float* out, int iters) {
  float acc = 0.0f;
  for (int i = 0; i < iters; ++i) {
    acc += 1.0f;
    __syncthreads();
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

__global__ void shuffleBenchKernel(float* out, int iters) {
  float v = (float)threadIdx.x;
  for (int i = 0; i < iters; ++i) v = __shfl_xor_sync(0xffffffffu, v, 1 + (i & 15));
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

struct HostFnCtx {
  std::atomic<int>* gate;
  cudaError_t inner = cudaSuccess;
  bool ran = false;
};
void blockingHostFn(void* p) {
  auto* c = static_cast<HostFnCtx*>(p);
  while (c->gate && c->gate->load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  void* q = nullptr;
  c->inner = cudaMalloc(&q, 16);  // illegal inside a host function
  c->ran = true;
}

double nowSec() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------- tests
void testDevice() {
  int n = 0;
  CHECK(cudaGetDeviceCount(&n) == cudaSuccess && n == 1, "count %d", n);
  cudaDeviceProp p;
  CHECK(cudaGetDeviceProperties(&p, 0) == cudaSuccess, "props");
  CHECK(std::string(p.name) == "visattn emulated GPU (sm_90)", "%s", p.name);
  CHECK(p.sharedMemPerBlock == 48 * 1024 && p.sharedMemPerBlockOptin == 227 * 1024 && p.warpSize == 32 &&
            p.multiProcessorCount == 132 && p.major == 9,
        "props values");
  CHECK(cudaGetDeviceProperties(&p, 1) == cudaErrorInvalidDevice, "bad device");
  cudaGetLastError();
  int v = 0;
  CHECK(cudaDriverGetVersion(&v) == cudaSuccess && v == 13000, "driver %d", v);
}

void testMemory() {
  float* d = nullptr;
  CHECK(cudaMalloc((void**)&d, 1000 * sizeof(float)) == cudaSuccess && d, "malloc");
  CHECK(((uintptr_t)d & 255) == 0, "alignment");
  bool allFF = true;
  const unsigned char* b = reinterpret_cast<const unsigned char*>(d);
  for (size_t i = 0; i < 4000; ++i) allFF &= b[i] == 0xFF;
  CHECK(allFF, "fresh allocation poisoned 0xFF");
  CHECK(std::isnan(d[17]), "unwritten float reads NaN");
  CHECK(cudaMemset(d, 0, 4000) == cudaSuccess && d[999] == 0.0f, "memset");
  std::vector<float> h(1000, 3.0f), back(1000, 0.0f);
  CHECK(cudaMemcpy(d, h.data(), 4000, cudaMemcpyHostToDevice) == cudaSuccess, "h2d");
  CHECK(cudaMemcpy(back.data(), d, 4000, cudaMemcpyDeviceToHost) == cudaSuccess && back[500] == 3.0f, "d2h");
  // host pointer passed as a device pointer
  std::vector<float> other(1000);
  CHECK(cudaMemcpy(other.data(), h.data(), 4000, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue, "d2h from host ptr");
  CHECK(cudaGetLastError() == cudaErrorInvalidValue, "last error set");
  CHECK(cudaGetLastError() == cudaSuccess, "last error cleared");
  CHECK(cudaMemcpy(d + 500, h.data(), 4000, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "overrun");
  cudaGetLastError();
  CHECK(cudaMemcpy(back.data(), d, 4000, cudaMemcpyDefault) == cudaSuccess, "default kind");
  CHECK(cudaFree(d) == cudaSuccess, "free");
  CHECK(cudaFree(d) == cudaErrorInvalidValue, "double free detected");
  cudaGetLastError();
  CHECK(cudaFree(nullptr) == cudaSuccess, "free null");
  void* pinned = nullptr;
  CHECK(cudaMallocHost(&pinned, 64) == cudaSuccess && pinned, "mallocHost");
  CHECK(cudaFreeHost(pinned) == cudaSuccess, "freeHost");
}

void testStagingAndOrder() {
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s) == cudaSuccess, "stream");
  float* d = nullptr;
  cudaMalloc((void**)&d, 256 * sizeof(float));
  std::atomic<int> gate{0};
  HostFnCtx ctx{&gate};
  CHECK(cudaLaunchHostFunc(s, blockingHostFn, &ctx) == cudaSuccess, "host fn");
  std::vector<float> src(256, 7.0f);
  CHECK(cudaMemcpyAsync(d, src.data(), 1024, cudaMemcpyHostToDevice, s) == cudaSuccess, "async h2d");
  std::fill(src.begin(), src.end(), -1.0f);  // after the call: the staged copy must win
  std::vector<float> back(256, 0.0f);
  CHECK(cudaMemcpyAsync(back.data(), d, 1024, cudaMemcpyDeviceToHost, s) == cudaSuccess, "async d2h");
  CHECK(cudaStreamQuery(s) == cudaErrorNotReady, "stream busy");
  CHECK(back[0] == 0.0f, "d2h waits in stream order");
  gate = 1;
  CHECK(cudaStreamSynchronize(s) == cudaSuccess, "sync");
  CHECK(back[0] == 7.0f && back[255] == 7.0f, "staged h2d: %f", back[0]);
  CHECK(ctx.ran && ctx.inner == cudaErrorNotPermitted, "runtime call in host fn: %d", (int)ctx.inner);
  CHECK(cudaStreamQuery(s) == cudaSuccess, "stream idle");
  cudaFree(d);
  CHECK(cudaStreamDestroy(s) == cudaSuccess, "destroy");
  CHECK(cudaStreamSynchronize(s) == cudaErrorInvalidResourceHandle, "destroyed handle rejected");
  cudaGetLastError();
}

void testEvents() {
  cudaStream_t a, b;
  cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking);
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess, "events");
  CHECK(cudaEventQuery(e0) == cudaSuccess, "unrecorded event is complete");
  std::atomic<int> gate{0};
  HostFnCtx ctx{&gate};
  cudaEventRecord(e0, a);
  cudaLaunchHostFunc(a, blockingHostFn, &ctx);
  cudaEventRecord(e1, a);
  float* d = nullptr;
  cudaMalloc((void**)&d, 64);
  CHECK(cudaStreamWaitEvent(b, e1, 0) == cudaSuccess, "wait event");
  cudaMemsetAsync(d, 0, 64, b);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(cudaEventQuery(e1) == cudaErrorNotReady, "e1 pending");
  CHECK(cudaStreamQuery(b) == cudaErrorNotReady, "b waits for e1");
  CHECK(std::isnan(d[0]), "memset not yet run");
  gate = 1;
  CHECK(cudaEventSynchronize(e1) == cudaSuccess, "event sync");
  CHECK(cudaStreamSynchronize(b) == cudaSuccess && d[0] == 0.0f, "b ran after e1");
  float ms = -1.0f;
  CHECK(cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess && ms >= 0.0f, "elapsed %f", ms);
  cudaEvent_t nt;
  cudaEventCreateWithFlags(&nt, cudaEventDisableTiming);
  cudaEventRecord(nt, a);
  cudaEventSynchronize(nt);
  CHECK(cudaEventElapsedTime(&ms, e0, nt) == cudaErrorInvalidResourceHandle, "no timing");
  cudaGetLastError();
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaEventDestroy(nt);
  cudaFree(d);
  cudaStreamDestroy(a);
  cudaStreamDestroy(b);
}

void testLaunchConfig() {
  float* d = nullptr;
  cudaMalloc((void**)&d, 2048 * sizeof(float));
  CHECK(VA_LAUNCH(fillKernel, dim3(1), dim3(2048), 0, nullptr, d, 2048) == cudaErrorInvalidConfiguration, "2048 threads");
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "last error");
  CHECK(contains(errorDetail(cudaErrorInvalidConfiguration), "fillKernel"), "%s",
        errorDetail(cudaErrorInvalidConfiguration).c_str());
  CHECK(VA_LAUNCH(fillKernel, dim3(0), dim3(32), 0, nullptr, d, 2048) == cudaErrorInvalidConfiguration, "zero grid");
  CHECK(VA_LAUNCH(fillKernel, dim3(1), dim3(32, 1, 65), 0, nullptr, d, 2048) == cudaErrorInvalidConfiguration, "z 65");
  CHECK(VA_LAUNCH(dynSmem64kKernel, dim3(1), dim3(32), 64 * 1024, nullptr, d) == cudaErrorInvalidConfiguration,
        "64 KiB without attribute");
  CHECK(VA_LAUNCH(dynSmem64kKernel, dim3(1), dim3(32), 228 * 1024, nullptr, d) == cudaErrorInvalidConfiguration,
        "228 KiB");
  CHECK(cudaFuncSetAttribute(dynSmem64kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024) == cudaSuccess,
        "attribute");
  cudaGetLastError();
  CHECK(VA_LAUNCH(dynSmem64kKernel, dim3(1), dim3(32), 64 * 1024, nullptr, d) == cudaSuccess, "64 KiB with attribute");
  CHECK(cudaDeviceSynchronize() == cudaSuccess && d[0] == 1.0f && d[31] == 1.0f, "dyn smem 64k result");
  CHECK(VA_LAUNCH(fillKernel, dim3(8), dim3(256), 0, nullptr, d, 2000) == cudaSuccess, "fill");
  CHECK(cudaStreamSynchronize(nullptr) == cudaSuccess, "sync legacy");
  bool ok = true;
  for (int i = 0; i < 2000; ++i) ok &= d[i] == (float)i;
  CHECK(ok && std::isnan(d[2000]), "fill result");
  cudaFree(d);
}

void testIndices() {
  unsigned* d = nullptr;
  const unsigned nb = 12, nt = 24;
  cudaMalloc((void**)&d, nb * nt * sizeof(unsigned));
  CHECK(VA_LAUNCH(indexKernel, dim3(3, 2, 2), dim3(4, 3, 2), 0, nullptr, d) == cudaSuccess, "launch");
  cudaDeviceSynchronize();
  bool ok = true;
  for (unsigned b = 0; b < nb; ++b)
    for (unsigned t = 0; t < nt; ++t) ok &= d[b * nt + t] == b * 1000 + t;
  CHECK(ok, "multi-dimensional indices");
  cudaFree(d);
}

std::string launchExpectError(const char* what, cudaError_t launchErr, cudaStream_t s) {
  if (launchErr != cudaSuccess) return std::string("launch failed: ") + what;
  cudaError_t e = cudaStreamSynchronize(s);
  if (e == cudaSuccess) return std::string();
  return errorDetail(e);
}

void testBarriersAndWarps() {
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  int* di = nullptr;
  float* df = nullptr;
  cudaMalloc((void**)&di, 64);
  cudaMalloc((void**)&df, 4096 * sizeof(float));

  VA_LAUNCH(barrierFlavoursKernel, dim3(1), dim3(128), 0, s, di);
  CHECK(cudaStreamSynchronize(s) == cudaSuccess, "flavours");
  CHECK(di[0] == 32 && di[1] == 1 && di[2] == 0 && di[3] == 1 && di[4] == 0, "count/and/or %d %d %d %d %d", di[0],
        di[1], di[2], di[3], di[4]);

  VA_LAUNCH(earlyExitBarrierKernel, dim3(1), dim3(64), 0, s, df);
  CHECK(cudaStreamSynchronize(s) == cudaSuccess && df[0] == 39.0f && df[39] == 0.0f, "early exit barrier");

  std::string e = launchExpectError("deadlock", VA_LAUNCH(barrierDeadlockKernel, dim3(2), dim3(64), 0, s, df), s);
  CHECK(contains(e, "barrierDeadlockKernel") && contains(e, "deadlock") && contains(e, "__syncwarp") &&
            contains(e, "__syncthreads"),
        "%s", e.c_str());
  CHECK(cudaStreamSynchronize(s) == cudaSuccess, "sticky error cleared once reported");

  VA_LAUNCH(partialWarpKernel, dim3(1), dim3(48), 0, s, df);
  CHECK(cudaStreamSynchronize(s) == cudaSuccess, "partial warp");
  CHECK(df[32] == 33.0f && df[46] == 47.0f && df[47] == 47.0f && df[0] == 0.0f &&
            (g_shuffled || (df[48] == 32.0f && df[48 + 40] == 16.0f)),
        "partial warp values %f %f %f %f", df[32], df[47], df[48], df[88]);

  e = launchExpectError("nonexistent", VA_LAUNCH(nonexistentLaneKernel, dim3(1), dim3(16), 0, s, df), s);
  CHECK(contains(e, "nonexistentLaneKernel") && contains(e, "do not exist"), "%s", e.c_str());

  e = launchExpectError("no self", VA_LAUNCH(maskWithoutSelfKernel, dim3(1), dim3(32), 0, s, df), s);
  CHECK(contains(e, "does not name the calling lane"), "%s", e.c_str());

  e = launchExpectError("mismatch", VA_LAUNCH(mismatchedCollectiveKernel, dim3(1), dim3(32), 0, s, df), s);
  CHECK(contains(e, "mismatched"), "%s", e.c_str());

  e = launchExpectError("throw", VA_LAUNCH(throwKernel, dim3(4), dim3(32), 0, s, df), s);
  CHECK(contains(e, "throwKernel") && contains(e, "boom from kernel") && contains(e, "block (1,0,0)"), "%s",
        e.c_str());

  // Later work on the stream still runs after a failure; the error is reported once.
  cudaMemsetAsync(df, 0, 16, s);
  VA_LAUNCH(trapKernel, dim3(1), dim3(32), 0, s, df);
  cudaMemsetAsync(df + 100, 0, 16, s);
  cudaEvent_t ev;
  cudaEventCreate(&ev);
  cudaEventRecord(ev, s);
  cudaError_t es = cudaEventSynchronize(ev);
  CHECK(es == cudaErrorLaunchFailure && contains(errorDetail(es), "trapKernel") &&
            contains(errorDetail(es), "__trap()"),
        "event sync reports sticky error: %s", errorDetail(es).c_str());
  CHECK(cudaStreamSynchronize(s) == cudaSuccess, "cleared after event sync");
  CHECK(df[100] == 0.0f, "later work ran");
  cudaEventDestroy(ev);

  VA_LAUNCH(bigBlockKernel, dim3(3), dim3(1024), 0, s, df);
  CHECK(cudaStreamSynchronize(s) == cudaSuccess && df[0] == 1023.0f && df[2 * 1024 + 1023] == 0.0f, "1024 threads");

  // device-wide sync reports and clears
  VA_LAUNCH(trapKernel, dim3(1), dim3(32), 0, s, df);
  es = cudaDeviceSynchronize();
  CHECK(es == cudaErrorLaunchFailure && contains(errorDetail(es), "trapKernel"), "device sync");
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "device sync cleared");

  cudaFree(di);
  cudaFree(df);
  cudaStreamDestroy(s);
}

void testLegacyImplicitSync() {
  cudaStream_t s;
  cudaStreamCreate(&s);  // blocking stream
  float* d = nullptr;
  cudaMalloc((void**)&d, 4096 * sizeof(float));
  VA_LAUNCH(fillKernel, dim3(16), dim3(256), 0, s, d, 4096);
  std::vector<float> h(4096, -5.0f);
  CHECK(cudaMemcpy(h.data(), d, 4096 * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess, "memcpy");
  CHECK(h[4095] == 4095.0f, "legacy stream waited for the blocking stream: %f", h[4095]);
  cudaFree(d);
  cudaStreamDestroy(s);
}


void testSelfTests(bool shuffled) {
  std::vector<float> out;
  va::Status st = runSelfTest("reduce_ok", &out);
  CHECK(st.ok() && out.size() == 4 && out[0] == 32640.f && out[1] == 98176.f && out[2] == 163712.f &&
            out[3] == 229248.f,
        "reduce_ok %s", st.message().c_str());

  st = runSelfTest("reduce_missing_barrier", &out);
  bool wrong = st.ok() && out.size() == 4 && out[0] != 32640.f && out[1] != 98176.f && out[2] != 163712.f &&
               out[3] != 229248.f;
  CHECK(wrong, "missing barrier must give wrong sums");
  if (!shuffled)
    CHECK(out.size() == 4 && out[0] == 255.f && out[1] == 2559.f && out[2] == 4863.f && out[3] == 7167.f,
          "missing barrier exact %f %f %f %f", out[0], out[1], out[2], out[3]);

  st = runSelfTest("divergent_shuffle", &out);
  CHECK(!st.ok() && contains(st.message(), "selftest 'divergent_shuffle': cudaErrorLaunchFailure") &&
            contains(st.message(), "divergentShuffleKernel") && contains(st.message(), "deadlock"),
        "%s", st.message().c_str());
  if (!st.ok()) std::printf("  divergent_shuffle → %s\n", st.message().c_str());

  st = runSelfTest("warp_ops", &out);
  bool ok = st.ok() && out.size() == 17 * 32;
  for (int lane = 0; ok && lane < 32; ++lane) {
    const float* o = out.data();
    float exp[17] = {((lane + 3) % 32) * 1.5f,
                     (float)(lane ^ 5),
                     (float)(lane % 8 >= 2 ? lane - 2 : lane),
                     (float)(lane % 16 < 13 ? lane + 3 : lane),
                     (float)((lane & ~3) + 1),
                     (float)((lane & 8) ? (lane ^ 8) : lane),
                     37449.f,
                     18724.f,
                     1.f,
                     0.f,
                     1.f,
                     (lane ^ 16) * 0.25f,
                     (float)(lane < 31 ? 3 * (lane + 1) : 93),
                     32.f,
                     (float)(lane < 16 ? (15 - lane) * 2 : (lane ^ 1) * 2),
                     496.f,
                     21.f};
    for (int k = 0; k < 17; ++k)
      if (o[k * 32 + lane] != exp[k]) {
        ok = false;
        std::printf("  warp_ops k=%d lane=%d got %f want %f\n", k, lane, o[k * 32 + lane], exp[k]);
      }
  }
  CHECK(ok, "warp_ops %s", st.message().c_str());

  st = runSelfTest("atomics", &out);
  CHECK(st.ok() && out.size() == 8 && out[0] == 1024.f && out[1] == 523776.f && out[2] == 1023.f &&
            out[3] == -23.f && out[4] == 2048.f && out[5] == 3072.f && out[6] == 523776.f && out[7] == 512.f,
        "atomics %s", st.message().c_str());

  st = runSelfTest("dynamic_smem", &out);
  CHECK(st.ok() && out.size() == 4 && std::isnan(out[0]) && out[1] == 3.f && std::isnan(out[2]) && out[3] == 3.f,
        "dynamic_smem %s", st.message().c_str());

  st = runSelfTest("mma_tf32", &out);
  ok = st.ok() && out.size() == 128;
  for (int i = 0; ok && i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double acc = 0.0;
      for (int k = 0; k < 8; ++k) {
        double a = 1.0 + (double)(i * 8 + k + 1) / 1024.0;  // tf32 rna of 1 + q/1024 + 1/2048
        double b = (double)((k * 3 + j * 5) % 7 - 3);       // tf32 drops the 2^-12 tail
        acc += a * b;
      }
      acc += (double)(i - j) * 0.5;
      if (out[i * 8 + j] != (float)acc) {
        ok = false;
        std::printf("  mma D[%d][%d] got %.9g want %.9g\n", i, j, out[i * 8 + j], acc);
        break;
      }
    }
  CHECK(ok, "mma_tf32 %s", st.message().c_str());

  st = runSelfTest("trap", &out);
  CHECK(!st.ok() && contains(st.message(), "trapKernel") && contains(st.message(), "__trap()"), "%s",
        st.message().c_str());
  if (!st.ok()) std::printf("  trap → %s\n", st.message().c_str());

  st = runSelfTest("no_such_test", &out);
  CHECK(!st.ok(), "unknown name");
}

void testTf32Rounding() {
  auto bits = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
  };
  auto fl = [](uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  CHECK(fl(va_f32_to_tf32(1.0f + 1.0f / 2048.0f)) == 1.0f + 1.0f / 1024.0f, "tie rounds away (up)");
  CHECK(fl(va_f32_to_tf32(-(1.0f + 1.0f / 2048.0f))) == -(1.0f + 1.0f / 1024.0f), "tie rounds away (down)");
  CHECK(fl(va_f32_to_tf32(1.0f + 3.0f / 2048.0f)) == 1.0f + 2.0f / 1024.0f, "odd tie also away");
  CHECK(fl(va_f32_to_tf32(1.0f + 1.0f / 4096.0f)) == 1.0f, "below half rounds down");
  CHECK((va_f32_to_tf32(3.14159f) & 0x1fffu) == 0, "low bits clear");
  CHECK(std::isinf(fl(va_f32_to_tf32(INFINITY))) && std::isnan(fl(va_f32_to_tf32(NAN))), "inf/nan");
  CHECK(std::isinf(fl(va_f32_to_tf32(fl(0x7f7fffffu)))), "max float rounds to inf");
  (void)bits;
}

void testShutdownRestart() {
  shutdown();
  float* d = nullptr;
  cudaMalloc((void**)&d, 1024 * sizeof(float));
  CHECK(VA_LAUNCH(fillKernel, dim3(4), dim3(256), 0, nullptr, d, 1024) == cudaSuccess, "launch after shutdown");
  CHECK(cudaDeviceSynchronize() == cudaSuccess && d[1023] == 1023.0f, "runtime restarted lazily");
  cudaFree(d);
}

void bench() {
  float* d = nullptr;
  const int blocks = 2048, threads = 256;
  cudaMalloc((void**)&d, (size_t)blocks * threads * sizeof(float));
  VA_LAUNCH(fillKernel, dim3(blocks), dim3(threads), 0, nullptr, d, blocks * threads);  // warm-up
  cudaDeviceSynchronize();
  double t0 = nowSec();
  for (int r = 0; r < 3; ++r) VA_LAUNCH(fillKernel, dim3(blocks), dim3(threads), 0, nullptr, d, blocks * threads);
  cudaDeviceSynchronize();
  double t1 = nowSec();
  std::printf("bench: %.2f M emulated threads/s (trivial kernel, %d x %d, %u worker threads)\n",
              3.0 * blocks * threads / (t1 - t0) / 1e6, blocks, threads, vaemu::detail::numThreads());
  const int iters = 200, bb = 64;
  t0 = nowSec();
  VA_LAUNCH(barrierBenchKernel, dim3(bb), dim3(256), 0, nullptr, d, iters);
  cudaDeviceSynchronize();
  t1 = nowSec();
  std::printf("bench: %.1f ns per __syncthreads arrival (wall, all workers)\n",
              (t1 - t0) * 1e9 / ((double)bb * 256 * iters));
  t0 = nowSec();
  VA_LAUNCH(shuffleBenchKernel, dim3(bb), dim3(256), 0, nullptr, d, iters);
  cudaDeviceSynchronize();
  t1 = nowSec();
  std::printf("bench: %.1f ns per lane shuffle (wall, all workers)\n", (t1 - t0) * 1e9 / ((double)bb * 256 * iters));
  cudaFree(d);
}

}  // namespace

int main() {
  const bool shuffled = std::getenv("VISATTN_EMU_SHUFFLE") && std::string(std::getenv("VISATTN_EMU_SHUFFLE")) == "1";
  g_shuffled = shuffled;
  testDevice();
  testMemory();
  testStagingAndOrder();
  testEvents();
  testLaunchConfig();
  testIndices();
  testBarriersAndWarps();
  testLegacyImplicitSync();
  testTf32Rounding();
  testSelfTests(shuffled);
  testShutdownRestart();
  testSelfTests(shuffled);  // again after a restart (stacks and workers recreated)
  if (std::getenv("VISATTN_EMU_BENCH")) bench();
  shutdown();
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
