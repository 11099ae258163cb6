// visattn — test hooks of the cuda/emu backend (not part of va::Backend). Plain C++ declarations:
// include from tests and bindings without compat.cuh.
#pragma once
#include "visattn/backend.h"

namespace va_cuda {
// Enqueues, as op "injectFault", a kernel that fails on the device (__trap) on the backend's
// stream. The failure surfaces as a sticky error at the next synchronize/download. On a real GPU
// this destroys the CUDA context: tests only.
va::Status injectFault(va::Backend* backend);
// Caps launch grids as if the device had `smCount` multiprocessors (small values force every
// grid-stride loop to iterate). Returns false for a backend of another kind.
bool setLaunchCapForTesting(va::Backend* backend, int smCount);
}  // namespace va_cuda
namespace va_emu {
va::Status injectFault(va::Backend* backend);
bool setLaunchCapForTesting(va::Backend* backend, int smCount);
}  // namespace va_emu
