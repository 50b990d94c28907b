// Runs blocking work (disk I/O, zstd, hashing) on a thread pool and resumes the
// awaiting coroutine on its own executor, so the io_context never blocks.
#ifndef FERRY_BASE_OFFLOAD_H_
#define FERRY_BASE_OFFLOAD_H_

#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <type_traits>
#include <utility>

namespace ferry {

// `fn` runs on `pool`; its result is delivered back on the caller's executor.
// `fn` must not throw and must own (or outlive the await of) what it touches.
//
// g++ 12 pitfall: a lambda or braced temporary written inside a co_await
// expression is destroyed twice (seen as a double free under ASan). Name it
// first:   auto job = [..] { .. };  auto r = co_await Offload(pool, std::move(job));
template <typename Fn, typename R = std::invoke_result_t<Fn&>>
asio::awaitable<R> Offload(asio::thread_pool& pool, Fn fn) {
  static_assert(!std::is_void_v<R>, "return a Status instead of void");
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
      [&pool](auto handler, Fn job) {
        // The work guard keeps the caller's io_context from running out of work
        // (and returning from run()) while the pool holds the only pending job.
        auto work = asio::make_work_guard(asio::get_associated_executor(handler));
        asio::post(pool, [handler = std::move(handler), job = std::move(job),
                          work = std::move(work)]() mutable {
          R result = job();
          auto ex = work.get_executor();
          asio::dispatch(ex, [handler = std::move(handler), result = std::move(result)]() mutable {
            std::move(handler)(std::move(result));
          });
          work.reset();
        });
      },
      asio::use_awaitable, std::move(fn));
}

}  // namespace ferry

#endif  // FERRY_BASE_OFFLOAD_H_
