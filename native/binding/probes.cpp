// visattn binding — machine-limit probes for the benchmark suite (bench/): FMA throughput and
// streaming bandwidth of this machine (native/cpu/probe.h). Synchronous on purpose: they block the
// calling thread for the requested time and are meant for benchmarks only, never for library code.
// Like the op bindings, a failure is returned as a string and TypeScript creates the Error.
//
//   probeFma(threads, seconds)      -> {gflops, gflopsMedian, isa, threads, seconds} | error string
//   probeBandwidth(threads, bytes)  -> {gbps, gbpsMedian, isa, threads, bytesPerArray, reps} | error string
//                                      (bytes: the size of EACH of the three triad arrays)
#include <napi.h>

#include <cmath>
#include <string>

#include "cpu/probe.h"

namespace va {
namespace binding {

void registerProbes(Napi::Env env, Napi::Object exports);

namespace {

// Reads argument i as a finite number; false (and *err set) when it is not one.
bool numberArg(const Napi::CallbackInfo& info, size_t i, const char* name, double* out, std::string* err) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    *err = std::string(name) + " must be a number";
    return false;
  }
  *out = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(*out)) {
    *err = std::string(name) + " must be finite";
    return false;
  }
  return true;
}

Napi::Value ProbeFma(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double threads = 0, seconds = 0;
  std::string err;
  if (!numberArg(info, 0, "threads", &threads, &err) || !numberArg(info, 1, "seconds", &seconds, &err)) {
    return Napi::String::New(env, "probeFma: " + err);
  }
  if (threads < 1 || threads > 4096 || threads != std::floor(threads)) {
    return Napi::String::New(env, "probeFma: threads must be an integer in [1, 4096]");
  }
  cpu::probe::FmaResult r = cpu::probe::fmaThroughput(static_cast<int>(threads), seconds);
  if (!r.ok) return Napi::String::New(env, "probeFma: " + r.error);
  Napi::Object o = Napi::Object::New(env);
  o.Set("gflops", r.gflops);
  o.Set("gflopsMedian", r.gflopsMedian);
  o.Set("isa", r.isa);
  o.Set("threads", r.threads);
  o.Set("seconds", r.seconds);
  return o;
}

Napi::Value ProbeBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double threads = 0, bytes = 0;
  std::string err;
  if (!numberArg(info, 0, "threads", &threads, &err) || !numberArg(info, 1, "bytes", &bytes, &err)) {
    return Napi::String::New(env, "probeBandwidth: " + err);
  }
  if (threads < 1 || threads > 4096 || threads != std::floor(threads)) {
    return Napi::String::New(env, "probeBandwidth: threads must be an integer in [1, 4096]");
  }
  cpu::probe::BandwidthResult r = cpu::probe::streamBandwidth(static_cast<int>(threads), static_cast<int64_t>(bytes));
  if (!r.ok) return Napi::String::New(env, "probeBandwidth: " + r.error);
  Napi::Object o = Napi::Object::New(env);
  o.Set("gbps", r.gbps);
  o.Set("gbpsMedian", r.gbpsMedian);
  o.Set("isa", r.isa);
  o.Set("threads", r.threads);
  o.Set("bytesPerArray", static_cast<double>(r.bytesPerArray));
  o.Set("reps", r.reps);
  return o;
}

}  // namespace

void registerProbes(Napi::Env env, Napi::Object exports) {
  exports.Set("probeFma", Napi::Function::New(env, ProbeFma, "probeFma"));
  exports.Set("probeBandwidth", Napi::Function::New(env, ProbeBandwidth, "probeBandwidth"));
}

}  // namespace binding
}  // namespace va
