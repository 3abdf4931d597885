#pragma once
// Hands work from other threads (the API) to the control thread, which owns the model
// and the compiler. The caller blocks until the control thread has run the task or the
// timeout passes; the control thread runs queued tasks between its other duties.

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>

namespace ng::control {

class CommandQueue {
 public:
  // Any thread: queues `task` for the control thread and waits for its result.
  // nullopt when the control thread did not run it within `timeout` (it still will).
  template <typename R>
  std::optional<R> call(std::function<R()> task, std::chrono::milliseconds timeout) {
    auto packaged = std::make_shared<std::packaged_task<R()>>(std::move(task));
    std::future<R> result = packaged->get_future();
    {
      std::lock_guard lock(mutex_);
      tasks_.emplace_back([packaged] { (*packaged)(); });
    }
    if (result.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    return result.get();
  }

  // Any thread: queues `task` for the control thread; does not wait.
  void post(std::function<void()> task) {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }

  // Control thread: runs everything queued so far.
  void runPending() {
    std::deque<std::function<void()>> tasks;
    {
      std::lock_guard lock(mutex_);
      tasks.swap(tasks_);
    }
    for (auto& task : tasks) task();
  }

 private:
  std::mutex mutex_;
  std::deque<std::function<void()>> tasks_;
};

}  // namespace ng::control
