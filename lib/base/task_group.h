// A set of coroutines spawned on one executor and awaited together, as Beast's
// task groups do. Used instead of Asio 1.22's experimental awaitable operators,
// whose value-returning forms miscompile with g++ 12 here (seen as heap
// corruption under ASan).
//
// Not thread-safe: Spawn and Wait are called from the group's executor, which
// must be single-threaded (an io_context run by one thread, or a strand).
#ifndef FERRY_BASE_TASK_GROUP_H_
#define FERRY_BASE_TASK_GROUP_H_

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <exception>

namespace ferry {

class TaskGroup {
 public:
  explicit TaskGroup(asio::any_io_executor ex)
      : ex_(std::move(ex)), done_(ex_, asio::steady_timer::time_point::max()) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // The task starts after the caller next suspends; the group must be awaited
  // (Wait) before it is destroyed.
  void Spawn(asio::awaitable<void> task) {
    ++running_;
    asio::co_spawn(ex_, std::move(task), [this](std::exception_ptr e) {
      if (e && !failure_) failure_ = e;
      if (--running_ == 0) done_.cancel();
    });
  }

  // Returns once every spawned task has finished; rethrows the first exception.
  asio::awaitable<void> Wait() {
    while (running_ > 0) {
      std::error_code ec;
      co_await done_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
  }

  int running() const { return running_; }

 private:
  asio::any_io_executor ex_;
  asio::steady_timer done_;
  int running_ = 0;
  std::exception_ptr failure_;
};

}  // namespace ferry

#endif  // FERRY_BASE_TASK_GROUP_H_
