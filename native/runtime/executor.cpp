#include "runtime/executor.h"

#include <exception>
#include <utility>

namespace va {

Executor::Executor(std::string name) : name_(std::move(name)) {
  thread_ = std::thread([this] { run(); });
}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Executor::enqueue(Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
    ++pending_;
  }
  cv_.notify_one();
}

void Executor::enqueueWithError(std::function<void(Status)> task) {
  enqueue([this, task = std::move(task)]() {
    task(takeError());
    return Status::Ok();
  });
}

void Executor::waitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return pending_ == 0; });
}

Status Executor::takeError() {
  std::lock_guard<std::mutex> lock(mu_);
  Status s = sticky_;
  sticky_ = Status::Ok();
  return s;
}

int64_t Executor::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_;
}

void Executor::run() {
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested and all work done
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    Status st;
    try {
      st = task();
    } catch (const std::exception& e) {
      st = Status::Error(name_ + ": " + e.what());
    } catch (...) {
      st = Status::Error(name_ + ": unknown exception in a queued task");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!st.ok() && sticky_.ok()) sticky_ = st;
      if (--pending_ == 0) idle_.notify_all();
    }
  }
}

}  // namespace va
