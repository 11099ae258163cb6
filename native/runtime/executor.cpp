#include "runtime/executor.h"

#include <exception>
#include <utility>

namespace va {

Executor::Executor(std::string name, const Backend* owner) : name_(std::move(name)), owner_(owner) {
  thread_ = std::thread([this] {
    backendOwningThisThread() = owner_;
    run();
  });
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
    queue_.push_back(Entry{std::move(task), nullptr, false});
    ++pending_;
    ++pendingOps_;
  }
  cv_.notify_one();
}

void Executor::enqueueHousekeeping(Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Entry{std::move(task), nullptr, true});
    ++pending_;
  }
  cv_.notify_one();
}

void Executor::enqueueNotify(std::function<void()> work, Notify notify) {
  Task task;
  if (work) {
    task = [work = std::move(work)] {
      work();
      return Status::Ok();
    };
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Entry{std::move(task), std::move(notify), false});
    ++pending_;
    ++pendingOps_;
  }
  cv_.notify_one();
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
  return pendingOps_;
}

void Executor::run() {
  for (;;) {
    Entry e;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested and all work done
      e = std::move(queue_.front());
      queue_.pop_front();
    }
    Status st;
    if (e.task) {
      try {
        st = e.task();
      } catch (const std::exception& ex) {
        st = Status::Error(name_ + ": " + ex.what());
      } catch (...) {
        st = Status::Error(name_ + ": unknown exception in a queued task");
      }
    }
    Status report;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!st.ok() && sticky_.ok()) sticky_ = st;
      if (e.notify) {
        report = sticky_;
        sticky_ = Status::Ok();
      }
      if (!e.housekeeping) --pendingOps_;
      if (--pending_ == 0) idle_.notify_all();
    }
    if (e.notify) e.notify(report);
  }
}

}  // namespace va
