// visattn binding — module entry: device discovery, storage handles, transfers, synchronisation.
// Nothing here computes; errors are returned to TypeScript as strings (TypeScript creates the Error
// objects, see ARCHITECTURE.md) and asynchronous results resolve Promises through thread-safe
// functions that exist only while a request is pending, so the addon never keeps the process alive.
#include "binding/addon.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <future>
#include <thread>
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

// Backends are shared by their storages. The last reference can be dropped on a backend-owned thread
// (a completion callback after a worker's environment has gone): the destructor, which joins those
// threads, then runs on a short-lived thread of its own instead.
std::shared_ptr<Backend> makeBackend(std::unique_ptr<Backend> b) {
  return std::shared_ptr<Backend>(b.release(), [](Backend* p) {
    if (backendOwningThisThread() == p) {
      std::thread([p] { delete p; }).detach();
    } else {
      delete p;
    }
  });
}

// Every entry point runs its body through guard(): a C++ exception (e.g. std::bad_alloc) becomes an
// error string for TypeScript instead of escaping through N-API and terminating the process.
template <typename F>
Napi::Value guard(Napi::Env env, const char* fn, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return Napi::String::New(env, std::string(fn) + ": " + e.what());
  } catch (...) {
    return Napi::String::New(env, std::string(fn) + ": unknown native exception");
  }
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

// ---------------------------------------------------------------- asynchronous results
//
// One thread-safe function per environment delivers every asynchronous result to the JS thread. It is
// referenced (keeps the event loop alive) only while results are pending, so a script that awaits its
// results exits by itself. It is created BEFORE the environment cleanup hook is added: hooks run in
// reverse order, so ours runs first and waits until no backend thread can call the function any
// more — only then is it torn down (items still queued are released with env == nullptr).

void Addon::resolvePending(Napi::Env env, Napi::Function, Addon* self, PendingRequest* p) {
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
    if (--self->jsPending_ == 0) self->tsfn_.Unref(env);
  }
  delete p;  // on the JS thread: the storage it kept may be the last reference to a backend
}

// Called on the JS thread when a request is handed to a backend; the returned callback runs once on a
// backend thread.
DoneFn Addon::completer(PendingRequest* p) {
  if (jsPending_++ == 0) tsfn_.Ref(Napi::Env(env_));
  {
    std::lock_guard<std::mutex> lock(inflightMu_);
    ++inflight_;
  }
  return [this, p](Status st) {
    p->status = st;
    tsfn_.BlockingCall(p);  // unbounded queue: never blocks; the hook below keeps tsfn_ alive
    std::lock_guard<std::mutex> lock(inflightMu_);
    if (--inflight_ == 0) inflightDone_.notify_all();
  };
}

// Environment teardown (process exit, worker exit or terminate): wait until every callback handed to
// a backend has run, so none can touch tsfn_ after it is gone.
void Addon::drainCallbacks() {
  std::unique_lock<std::mutex> lock(inflightMu_);
  inflightDone_.wait(lock, [this] { return inflight_ == 0; });
}

Addon::Addon(Napi::Env env, Napi::Object exports) {
  env_ = env;
  tsfn_ = AddonTsfn::New(env, "visattn.results", 0, 1, this);
  tsfn_.Unref(env);
  env.AddCleanupHook([this] { drainCallbacks(); });

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
      InstanceMethod("transfer", &Addon::Transfer),
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
      devices_[d] = makeBackend(std::move(b));
    } else {
      deviceErrors_[d] = st.ok() ? std::string("device could not be created") : st.message();
    }
  }
  if (!devices_[d]) *err = std::string(kDeviceNames[d]) + " is unavailable: " + deviceErrors_[d];
  return devices_[d];
}

Napi::Value Addon::Info(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "info", [&]() -> Napi::Value {
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
  });
}

Napi::Value Addon::InitDevice(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "initDevice", [&]() -> Napi::Value {
    std::string err;
    auto b = device(info[0].As<Napi::Number>().Int32Value(), &err);
    if (!b) return Napi::String::New(info.Env(), err);
    return info.Env().Undefined();
  });
}

// alloc(device, bytes) -> handle | error string
Napi::Value Addon::Alloc(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "alloc", [&]() -> Napi::Value {
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
  });
}

// retain(handle) -> a new handle on the same storage (a view)
Napi::Value Addon::Retain(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "retain", [&]() -> Napi::Value {
    Handle* h = handleOf(info[0]);
    if (!h || !h->storage) return Napi::String::New(info.Env(), "storage has been released");
    return makeHandle(info.Env(), h->storage);
  });
}

Napi::Value Addon::Release(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "release", [&]() -> Napi::Value {
    Handle* h = handleOf(info[0]);
    if (h) h->storage.reset();
    return info.Env().Undefined();
  });
}

// upload(handle, typedArray) -> undefined | error string (copies before returning)
Napi::Value Addon::Upload(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "upload", [&]() -> Napi::Value {
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
  });
}

// download(handle, bytes) -> Promise<ArrayBuffer | error string>
Napi::Value Addon::Download(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "download", [&]() -> Napi::Value {
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
    b->download(p->buffer.data(), h->storage->ptr, bytes, completer(p));
    return promise;
  });
}

// downloadSync(handle, bytes) -> ArrayBuffer | error string (blocks until the device is done)
Napi::Value Addon::DownloadSync(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "downloadSync", [&]() -> Napi::Value {
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
  });
}

// synchronize(device) -> Promise<undefined | error string>
Napi::Value Addon::Synchronize(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "synchronize", [&]() -> Napi::Value {
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
    b->synchronizeAsync(completer(p));
    return promise;
  });
}

Napi::Value Addon::SynchronizeSync(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "synchronizeSync", [&]() -> Napi::Value {
    std::string err;
    auto b = device(info[0].As<Napi::Number>().Int32Value(), &err);
    if (!b) return Napi::String::New(info.Env(), err);
    return errorOrUndefined(info.Env(), b->synchronize());
  });
}

// pending(device) -> number of queued, unfinished operations (0 for a device never used)
Napi::Value Addon::Pending(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "pending", [&]() -> Napi::Value {
    int d = info[0].As<Napi::Number>().Int32Value();
    std::shared_ptr<Backend> b;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (d >= 0 && d < 3) b = devices_[d];
    }
    return Napi::Number::New(info.Env(), b ? static_cast<double>(b->pending()) : 0.0);
  });
}

// memory() -> [{device, storages, bytes, allocatedBytes, reservedBytes}] for every created device
Napi::Value Addon::Memory(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "memory", [&]() -> Napi::Value {
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
  });
}

// selfTest(device, name) -> Float32Array | error string (emulator self-test kernels)
Napi::Value Addon::SelfTest(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "selfTest", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int d = info[0].As<Napi::Number>().Int32Value();
    std::string name = info[1].As<Napi::String>().Utf8Value();
    std::vector<float> values;
    Status st = d == 2 ? va_cuda::runSelfTest(name, &values) : va_emu::runSelfTest(name, &values);
    if (!st.ok()) return Napi::String::New(env, st.message());
    Napi::Float32Array arr = Napi::Float32Array::New(env, values.size());
    if (!values.empty()) std::memcpy(arr.Data(), values.data(), values.size() * sizeof(float));
    return arr;
  });
}

// A cross-device copy's host staging: filled by the source device's readback, consumed by the
// destination stream (which waits for it in stream order).
struct HostTransfer {
  explicit HostTransfer(size_t n) : data(n) {}
  std::vector<unsigned char> data;
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  Status status;
  void complete(Status st) {
    {
      std::lock_guard<std::mutex> lock(mu);
      status = std::move(st);
      ready = true;
    }
    cv.notify_all();
  }
  Status wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return ready; });
    return status;
  }
};

// transfer(src, dst) -> undefined | error string. Copies src's bytes into dst (another device)
// without blocking: the source reads back asynchronously, the destination's stream waits for it.
Napi::Value Addon::Transfer(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "transfer", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Handle* src = handleOf(info[0]);
    Handle* dst = handleOf(info[1]);
    if (!src || !src->storage || !dst || !dst->storage) return Napi::String::New(env, "storage has been released");
    const size_t bytes = std::min(src->storage->bytes, dst->storage->bytes);
    auto xfer = std::make_shared<HostTransfer>(bytes);
    std::shared_ptr<Storage> keepSrc = src->storage;
    const std::string srcName = keepSrc->backend->name();
    Status st = dst->storage->backend->uploadDeferred(dst->storage->ptr, bytes, [xfer, srcName](void* host) {
      Status s = xfer->wait();
      if (!s.ok()) return Status::Error(srcName + " device error: " + s.message());
      std::memcpy(host, xfer->data.data(), xfer->data.size());
      return Status::Ok();
    });
    if (!st.ok()) return Napi::String::New(env, st.message());
    keepSrc->backend->download(xfer->data.data(), keepSrc->ptr, bytes, [xfer, keepSrc](Status s) mutable {
      xfer->complete(std::move(s));
      keepSrc.reset();  // may be the backend's last reference: see makeBackend
    });
    return env.Undefined();
  });
}

// injectFault(device) -> undefined | error string (testing hook: a failing op on the device's stream)
Napi::Value Addon::InjectFault(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "injectFault", [&]() -> Napi::Value {
    std::string err;
    auto b = device(info[0].As<Napi::Number>().Int32Value(), &err);
    if (!b) return Napi::String::New(info.Env(), err);
    return errorOrUndefined(info.Env(), b->injectFault());
  });
}

}  // namespace binding
}  // namespace va

using VisattnAddon = va::binding::Addon;
NODE_API_ADDON(VisattnAddon)
