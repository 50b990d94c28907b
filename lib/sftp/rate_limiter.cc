#include "lib/sftp/rate_limiter.h"

#include <algorithm>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

namespace ferry::sftp {

RateLimiter::RateLimiter(uint64_t bytes_per_second, uint64_t burst)
    : rate_(std::max<uint64_t>(1, bytes_per_second)),
      burst_(static_cast<double>(burst != 0 ? burst
                                            : std::max<uint64_t>(rate_ / 10, uint64_t{64} * 1024))),
      tokens_(burst_),
      last_(Clock::now()) {}

RateLimiter::Clock::time_point RateLimiter::Reserve(size_t n, Clock::time_point now) {
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  if (elapsed > 0) {
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + static_cast<double>(rate_) * elapsed);
  }
  tokens_ -= static_cast<double>(n);
  if (tokens_ >= 0) return now;
  const std::chrono::duration<double> wait(-tokens_ / static_cast<double>(rate_));
  return now + std::chrono::duration_cast<Clock::duration>(wait);
}

asio::awaitable<void> RateLimiter::Take(size_t n) {
  const Clock::time_point when = Reserve(n, Clock::now());
  if (when <= Clock::now()) co_return;
  asio::steady_timer timer(co_await asio::this_coro::executor, when);
  auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  (void)ec;  // cancelled: the caller is going away; the bytes stay reserved
}

}  // namespace ferry::sftp
