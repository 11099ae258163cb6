// visattn binding — per-environment addon state (worker threads each get their own devices).
#pragma once
#include <napi.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "binding/storage.h"
#include "visattn/backend.h"

namespace va {
namespace binding {

// A pending asynchronous result: created on the JS thread, completed on a backend thread, resolved
// (and deleted) on the JS thread.
struct PendingRequest {
  Napi::Promise::Deferred deferred;
  std::vector<unsigned char> buffer;  // download destination
  bool wantBuffer = false;
  Status status;
  std::shared_ptr<Storage> keep;  // the storage being read stays alive until the request is resolved
};

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
  Napi::Value Transfer(const Napi::CallbackInfo& info);

  static void resolvePending(Napi::Env env, Napi::Function, Addon* self, PendingRequest* p);
  using AddonTsfn = Napi::TypedThreadSafeFunction<Addon, PendingRequest, resolvePending>;
  DoneFn completer(PendingRequest* p);
  void drainCallbacks();

  napi_env env_ = nullptr;
  AddonTsfn tsfn_;
  int64_t jsPending_ = 0;  // JS thread only: results not yet resolved (tsfn_ is referenced while > 0)
  std::mutex inflightMu_;
  std::condition_variable inflightDone_;
  int64_t inflight_ = 0;   // callbacks handed to backends that have not run yet

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
