// A byte-rate limit (token bucket) shared by every SFTP channel of one
// destination: --bwlimit. Take(n) waits, on an Asio timer, until n more bytes
// may go out; it never blocks the thread.
//
// Model: tokens are bytes, refilled at `rate` per second up to `burst`; a Take
// may drive the balance negative (a debt), and each Take waits until the debt
// it leaves would be repaid. So concurrent callers are served in the order
// they asked, and the long-run rate never exceeds `rate` (plus one burst).
//
// Threading: use from the destination's single executor (not thread-safe).
#ifndef FERRY_SFTP_RATE_LIMITER_H_
#define FERRY_SFTP_RATE_LIMITER_H_

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace ferry::sftp {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // `bytes_per_second` > 0. `burst`: bytes that may pass at once after a pause
  // (0: a tenth of a second's worth, at least 64 KiB).
  explicit RateLimiter(uint64_t bytes_per_second, uint64_t burst = 0);

  uint64_t rate() const { return rate_; }

  // Reserves `n` bytes; returns when they may be sent.
  asio::awaitable<void> Take(size_t n);

  // The reservation alone, for tests: when `n` bytes asked at `now` may go.
  Clock::time_point Reserve(size_t n, Clock::time_point now);

 private:
  uint64_t rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace ferry::sftp

#endif  // FERRY_SFTP_RATE_LIMITER_H_
