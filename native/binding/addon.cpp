// visattn binding — module entry: device discovery, storage handles, transfers, synchronisation.
// Nothing here computes; errors are returned to TypeScript as strings (TypeScript creates the Error
// objects, see ARCHITECTURE.md) and asynchronous results resolve Promises through thread-safe
// functions that exist only while a request is pending, so the addon never keeps the process alive.
#include "binding/addon.h"

#include <cstring>
#include <future>
#include <vector>

#include "visattn/devices.h"

#ifndef VISATTN_VERSION
#define VISATTN_VERSION "0.0.0"
#endif

namespace va {
namespace binding {

namespace {

const char* kDeviceNames[3] = {"cpu", "emu", "cuda"};

Napi::External<Handle> makeHandle(Napi::Env env, std::shared_ptr<Storage> s) {
  return Napi::External<Handle>::New(env, new Handle{std::move(s)},
                                     [](Napi::Env, Handle* h) { delete h; });
}

// A pending asynchronous result: created on the JS thread, completed on a backend thread, resolved
// on the JS thread. The thread-safe function keeps the event loop alive only while it is pending.
struct PendingRequest {
  Napi::Promise::Deferred deferred;
  std::vector<unsigned char> buffer;  // download destination
  bool wantBuffer = false;
  Status status;
  std::shared_ptr<Storage> keep;  // the storage being read stays alive until the copy is done
};

void resolvePending(Napi::Env env, Napi::Function, void*, PendingRequest* p) {
  if (env != nullptr) {
    Napi::HandleScope scope(env);
    if (!p->status.ok()) {
      p->deferred.Resolve(Napi::String::New(env, p->status.message()));
    } else if (p->wantBuffer) {
      Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, p->buffer.size());
      if (!p->buffer.empty()) std::memcpy(ab.Data(), p->buffer.data(), p->buffer.size());
      p->deferred.Resolve(ab);
    } else {
      p->deferred.Resolve(env.Undefined());
    }
  }
  delete p;
}

using PendingTsfn = Napi::TypedThreadSafeFunction<void, PendingRequest, resolvePending>;

DoneFn completer(Napi::Env env, PendingRequest* p) {
  PendingTsfn tsfn = PendingTsfn::New(env, "visattn.pending", 0, 1);
  return [tsfn, p](Status st) mutable {
    p->status = st;
    p->keep.reset();
    tsfn.BlockingCall(p);
    tsfn.Release();
  };
}

Napi::Value errorOrUndefined(Napi::Env env, const Status& st) {
  if (st.ok()) return env.Undefined();
  return Napi::String::New(env, st.message());
}

}  // namespace

Handle* handleOf(const Napi::Value& v) {
  if (!v.IsExternal()) return nullptr;
  return v.As<Napi::External<Handle>>().Data();
}

Addon::Addon(Napi::Env env, Napi::Object exports) {
  DefineAddon(exports, {
      InstanceMethod("info", &Addon::Info),
      InstanceMethod("initDevice", &Addon::InitDevice),
      InstanceMethod("alloc", &Addon::Alloc),
      InstanceMethod("retain", &Addon::Retain),
      InstanceMethod("release", &Addon::Release),
      InstanceMethod("upload", &Addon::Upload),
      InstanceMethod("download", &Addon::Download),
      InstanceMethod("downloadSync", &Addon::DownloadSync),
      InstanceMethod("synchronize", &Addon::Synchronize),
      InstanceMethod("synchronizeSync", &Addon::SynchronizeSync),
      InstanceMethod("pending", &Addon::Pending),
      InstanceMethod("memory", &Addon::Memory),
      InstanceMethod("selfTest", &Addon::SelfTest),
      InstanceMethod("injectFault", &Addon::InjectFault),
  });
  registerOps(env, exports);
  registerProbes(env, exports);
}

std::shared_ptr<Backend> Addon::device(int d, std::string* err) {
  if (d < 0 || d > 2) {
    *err = "unknown device index " + std::to_string(d);
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!tried_[d]) {
    tried_[d] = true;
    std::unique_ptr<Backend> b;
    Status st;
    if (d == 0) {
      b = createCpuBackend();
    } else if (d == 1) {
      st = va_emu::createBackend(&b);
    } else {
      st = va_cuda::createBackend(&b);
    }
    if (st.ok() && b) {
      devices_[d] = std::shared_ptr<Backend>(std::move(b));
    } else {
      deviceErrors_[d] = st.ok() ? std::string("device could not be created") : st.message();
    }
  }
  if (!devices_[d]) *err = std::string(kDeviceNames[d]) + " is unavailable: " + deviceErrors_[d];
  return devices_[d];
}

Napi::Value Addon::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", VISATTN_VERSION);
  CudaInfo ci = va_cuda::probe();
  Napi::Array devs = Napi::Array::New(env);
  devs.Set(0u, "cpu");
  devs.Set(1u, "emu");
  if (ci.available) devs.Set(2u, "cuda");
  o.Set("devices", devs);
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("threads", cpuThreads());
  cpu.Set("isa", cpuIsaName());
  o.Set("cpu", cpu);
  Napi::Object cu = Napi::Object::New(env);
  cu.Set("compiled", ci.compiled);
  cu.Set("available", ci.available);
  cu.Set("reason", ci.available ? env.Null() : Napi::Value(Napi::String::New(env, ci.reason)));
  cu.Set("runtimeVersion", ci.runtimeVersion);
  cu.Set("driverVersion", ci.driverVersion);
  Napi::Array list = Napi::Array::New(env);
  for (size_t i = 0; i < ci.devices.size(); ++i) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", ci.devices[i].name);
    d.Set("computeCapability", std::to_string(ci.devices[i].major) + "." + std::to_string(ci.devices[i].minor));
    d.Set("totalMemory", static_cast<double>(ci.devices[i].totalMemory));
    d.Set("multiProcessors", ci.devices[i].multiProcessors);
    list.Set(static_cast<uint32_t>(i), d);
  }
  cu.Set("devices", list);
  o.Set("cuda", cu);
  return o;
}

Napi::Value Addon::InitDevice(const Napi::CallbackInfo& info) {
  std::string err;
  auto b = device(info[0].As<Napi::Number>().Int32Value(), &err);
  if (!b) return Napi::String::New(info.Env(), err);
  return info.Env().Undefined();
}

// alloc(device, bytes) -> handle | error string
Napi::Value Addon::Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string err;
  auto b = device(info[0].As<Napi::Number>().Int32Value(), &err);
  if (!b) return Napi::String::New(env, err);
  size_t bytes = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  if (bytes == 0) bytes = 4;  // empty tensors still own a (tiny) allocation
  void* p = nullptr;
  Status st = b->alloc(bytes, &p);
  if (!st.ok()) return Napi::String::New(env, st.message());
  return makeHandle(env, std::make_shared<Storage>(b, p, bytes, counters_));
}

// retain(handle) -> a new handle on the same storage (a view)
Napi::Value Addon::Retain(const Napi::CallbackInfo& info) {
  Handle* h = handleOf(info[0]);
  if (!h || !h->storage) return Napi::String::New(info.Env(), "storage has been released");
  return makeHandle(info.Env(), h->storage);
}

Napi::Value Addon::Release(const Napi::CallbackInfo& info) {
  Handle* h = handleOf(info[0]);
  if (h) h->storage.reset();
  return info.Env().Undefined();
}

// upload(handle, typedArray) -> undefined | error string (copies before returning)
Napi::Value Addon::Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = handleOf(info[0]);
  if (!h || !h->storage) return Napi::String::New(env, "storage has been released");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  size_t bytes = ta.ByteLength();
  if (bytes > h->storage->bytes) return Napi::String::New(env, "upload larger than the storage");
  if (bytes == 0) return env.Undefined();
  const unsigned char* src =
      static_cast<const unsigned char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return errorOrUndefined(env, h->storage->backend->upload(h->storage->ptr, src, bytes));
}

// download(handle, bytes) -> Promise<ArrayBuffer | error string>
Napi::Value Addon::Download(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* p = new PendingRequest{Napi::Promise::Deferred::New(env), {}, true, Status::Ok(), nullptr};
  Napi::Promise promise = p->deferred.Promise();
  Handle* h = handleOf(info[0]);
  if (!h || !h->storage) {
    p->deferred.Resolve(Napi::String::New(env, "storage has been released"));
    delete p;
    return promise;
  }
  size_t bytes = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  if (bytes > h->storage->bytes) bytes = h->storage->bytes;
  p->buffer.resize(bytes);
  p->keep = h->storage;
  Backend* b = h->storage->backend.get();
  b->download(p->buffer.data(), h->storage->ptr, bytes, completer(env, p));
  return promise;
}

// downloadSync(handle, bytes) -> ArrayBuffer | error string (blocks until the device is done)
Napi::Value Addon::DownloadSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = handleOf(info[0]);
  if (!h || !h->storage) return Napi::String::New(env, "storage has been released");
  size_t bytes = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  if (bytes > h->storage->bytes) bytes = h->storage->bytes;
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, bytes);
  std::promise<Status> done;
  auto fut = done.get_future();
  h->storage->backend->download(ab.Data(), h->storage->ptr, bytes,
                                [&done](Status st) { done.set_value(st); });
  Status st = fut.get();
  if (!st.ok()) return Napi::String::New(env, st.message());
  return ab;
}

// synchronize(device) -> Promise<undefined | error string>
Napi::Value Addon::Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* p = new PendingRequest{Napi::Promise::Deferred::New(env), {}, false, Status::Ok(), nullptr};
  Napi::Promise promise = p->deferred.Promise();
  std::string err;
  auto b = device(info[0].As<Napi::Number>().Int32Value(), &err);
  if (!b) {
    p->deferred.Resolve(Napi::String::New(env, err));
    delete p;
    return promise;
  }
  b->synchronizeAsync(completer(env, p));
  return promise;
}

Napi::Value Addon::SynchronizeSync(const Napi::CallbackInfo& info) {
  std::string err;
  auto b = device(info[0].As<Napi::Number>().Int32Value(), &err);
  if (!b) return Napi::String::New(info.Env(), err);
  return errorOrUndefined(info.Env(), b->synchronize());
}

// pending(device) -> number of queued, unfinished operations (0 for a device never used)
Napi::Value Addon::Pending(const Napi::CallbackInfo& info) {
  int d = info[0].As<Napi::Number>().Int32Value();
  std::shared_ptr<Backend> b;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (d >= 0 && d < 3) b = devices_[d];
  }
  return Napi::Number::New(info.Env(), b ? static_cast<double>(b->pending()) : 0.0);
}

// memory() -> [{device, storages, bytes, allocatedBytes, reservedBytes}] for every created device
Napi::Value Addon::Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (int d = 0; d < 3; ++d) {
    std::shared_ptr<Backend> b;
    {
      std::lock_guard<std::mutex> lock(mu_);
      b = devices_[d];
    }
    if (!b) continue;
    MemoryStats ms = b->memory();
    Napi::Object o = Napi::Object::New(env);
    o.Set("device", kDeviceNames[d]);
    o.Set("storages", static_cast<double>(counters_->storages[d].load()));
    o.Set("bytes", static_cast<double>(counters_->bytes[d].load()));
    o.Set("allocatedBytes", static_cast<double>(ms.allocatedBytes));
    o.Set("reservedBytes", static_cast<double>(ms.reservedBytes));
    out.Set(n++, o);
  }
  return out;
}

// selfTest(device, name) -> Float32Array | error string (emulator self-test kernels)
Napi::Value Addon::SelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int d = info[0].As<Napi::Number>().Int32Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  std::vector<float> values;
  Status st = d == 2 ? va_cuda::runSelfTest(name, &values) : va_emu::runSelfTest(name, &values);
  if (!st.ok()) return Napi::String::New(env, st.message());
  Napi::Float32Array arr = Napi::Float32Array::New(env, values.size());
  if (!values.empty()) std::memcpy(arr.Data(), values.data(), values.size() * sizeof(float));
  return arr;
}

// injectFault(device) -> undefined | error string (testing hook: a failing op on the device's stream)
Napi::Value Addon::InjectFault(const Napi::CallbackInfo& info) {
  std::string err;
  auto b = device(info[0].As<Napi::Number>().Int32Value(), &err);
  if (!b) return Napi::String::New(info.Env(), err);
  return errorOrUndefined(info.Env(), b->injectFault());
}

}  // namespace binding
}  // namespace va

using VisattnAddon = va::binding::Addon;
NODE_API_ADDON(VisattnAddon)
