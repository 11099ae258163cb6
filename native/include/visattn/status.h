// visattn — Status: how native code reports failure without exceptions crossing layers.
// A Status is ok() or carries a message. Native code never exits or aborts; every failure
// travels up as a Status and becomes a JS Error created in TypeScript.
#pragma once
#include <string>
#include <utility>

namespace va {

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string msg) {
    Status s;
    s.failed_ = true;
    s.msg_ = std::move(msg);
    return s;
  }
  bool ok() const { return !failed_; }
  const std::string& message() const { return msg_; }

 private:
  bool failed_ = false;
  std::string msg_;
};

// Return early from the enclosing function when `expr` yields a failed Status.
#define VA_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::va::Status va_status_tmp_ = (expr); \
    if (!va_status_tmp_.ok()) return va_status_tmp_; \
  } while (0)

}  // namespace va
