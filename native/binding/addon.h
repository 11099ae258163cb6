// visattn binding — per-environment addon state (worker threads each get their own devices).
#pragma once
#include <napi.h>

#include <memory>
#include <mutex>
#include <string>

#include "binding/storage.h"
#include "visattn/backend.h"

namespace va {
namespace binding {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);

  // Returns the backend of device d, creating it on first use; nullptr + *err when unavailable.
  std::shared_ptr<Backend> device(int d, std::string* err);
  const std::shared_ptr<LiveCounters>& counters() const { return counters_; }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value InitDevice(const Napi::CallbackInfo& info);
  Napi::Value Alloc(const Napi::CallbackInfo& info);
  Napi::Value Retain(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value DownloadSync(const Napi::CallbackInfo& info);
  Napi::Value Synchronize(const Napi::CallbackInfo& info);
  Napi::Value SynchronizeSync(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  Napi::Value Memory(const Napi::CallbackInfo& info);
  Napi::Value SelfTest(const Napi::CallbackInfo& info);
  Napi::Value InjectFault(const Napi::CallbackInfo& info);

  std::mutex mu_;
  std::shared_ptr<Backend> devices_[3];
  std::string deviceErrors_[3];
  bool tried_[3] = {false, false, false};
  std::shared_ptr<LiveCounters> counters_ = std::make_shared<LiveCounters>();
};

// Helpers shared by the op bindings (ops.cpp).
Handle* handleOf(const Napi::Value& v);  // nullptr when not a handle
void registerOps(Napi::Env env, Napi::Object exports);
void registerProbes(Napi::Env env, Napi::Object exports);  // machine-limit probes (bench/)

}  // namespace binding
}  // namespace va
