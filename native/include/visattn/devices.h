// visattn — factories of the three backends and device discovery.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "visattn/backend.h"

namespace va {
// cpu: always available. Threads from VISATTN_NUM_THREADS (default: hardware cores).
std::unique_ptr<Backend> createCpuBackend();
int cpuThreads();          // threads the cpu backend's pool uses
const char* cpuIsaName();  // "avx512" | "avx2" | "scalar" (after VISATTN_ISA is applied)
}  // namespace va

namespace va_cuda {
// Lazily probes the real CUDA runtime (never at module load). compiled=false when built without nvcc.
va::CudaInfo probe();
// Fails with a clear Status when no GPU is usable.
va::Status createBackend(std::unique_ptr<va::Backend>* out);
// Emulator self-test kernels (cuda/selftest): results in *out, or an error Status.
va::Status runSelfTest(const std::string& name, std::vector<float>* out);
}  // namespace va_cuda

namespace va_emu {
// The emulated CUDA runtime: always available.
va::CudaInfo probe();
va::Status createBackend(std::unique_ptr<va::Backend>* out);
va::Status runSelfTest(const std::string& name, std::vector<float>* out);
}  // namespace va_emu
