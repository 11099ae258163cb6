// visattn — the va_cuda entry points for builds without nvcc (or with VISATTN_CUDA=OFF): the cuda
// device is reported as not compiled and cannot be created. The emu device is unaffected.
#include <memory>

#include "visattn/devices.h"

namespace va_cuda {

namespace {
const char* kReason = "visattn was built without CUDA (nvcc not found or VISATTN_CUDA=OFF)";
}

va::CudaInfo probe() {
  va::CudaInfo info;
  info.compiled = false;
  info.available = false;
  info.reason = kReason;
  return info;
}

va::Status createBackend(std::unique_ptr<va::Backend>* out) {
  if (out) out->reset();
  return va::Status::Error(std::string("cuda: ") + kReason);
}

}  // namespace va_cuda
