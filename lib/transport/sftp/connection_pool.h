// SSH connections and SFTP channels for one destination (private to
// //lib/transport/sftp).
//
// Up to `connections` SSH sessions with up to `channels_per_connection` SFTP
// channels (sftp::Client) each. Start() connects the first session and opens
// its first channel before returning, so that host key and authentication
// errors surface with their own codes. After that the pool grows as load grows:
// when every live channel is busy, one more channel is opened (then one more
// connection), one growth step at a time, in the background, while callers go
// on with the least loaded channel they have.
//
// Load of a channel = 4 x leases (operations holding it, e.g. a file being
// written) + requests in flight. Acquire() returns a Lease on the least loaded
// live channel.
//
// Liveness: every session runs its watchdog (ssh::Session::StartWatchdog):
// keepalives when idle, and an io timeout that declares a connection dead when
// replies are due and nothing arrives (its channels then fail as below).
//
// Failures: a channel whose transport failed marks its connection broken; the
// connection is torn down (every request on it fails with kConnectionLost) and
// reconnected on demand, no sooner than a backoff (100 ms doubling to 5 s) after
// a failed attempt. Acquire() gives up, with kConnectionLost (or the specific
// host key / authentication error), after two failed connection attempts, and
// at once while the last two attempts (of anyone) failed: a dead server fails
// the remaining files quickly instead of one connect timeout after another.
//
// Threading: the destination's single-threaded executor, like everything else.
// Close() must be awaited before the pool is destroyed.
#ifndef FERRY_TRANSPORT_SFTP_CONNECTION_POOL_H_
#define FERRY_TRANSPORT_SFTP_CONNECTION_POOL_H_

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <span>
#include <vector>

#include "lib/base/result.h"
#include "lib/base/task_group.h"
#include "lib/sftp/client.h"
#include "lib/ssh/session.h"

namespace ferry::transport::sftp_internal {

struct PoolOptions {
  ssh::ConnectOptions connect;
  int connections = 2;
  int channels_per_connection = 4;
  sftp::ClientOptions client;
  // New leases wait for a channel on its way rather than crowd one (see
  // kCrowdedLeases) only over links this slow: on loopback a channel is not
  // window-bound, and fewer channels cost less CPU.
  std::chrono::milliseconds spread_min_rtt{10};
};

// Shared use of one channel; counts toward its load while alive. Move-only.
class Lease {
 public:
  Lease() = default;
  Lease(std::shared_ptr<sftp::Client> client, std::shared_ptr<int> count)
      : client_(std::move(client)), count_(std::move(count)) {
    ++*count_;
  }
  Lease(Lease&& other) noexcept = default;
  Lease& operator=(Lease&& other) noexcept {
    Release();
    client_ = std::move(other.client_);
    count_ = std::move(other.count_);
    return *this;
  }
  ~Lease() { Release(); }

  sftp::Client& operator*() const { return *client_; }
  sftp::Client* operator->() const { return client_.get(); }
  sftp::Client* get() const { return client_.get(); }
  explicit operator bool() const { return client_ != nullptr; }

 private:
  void Release() {
    if (count_) --*count_;
    count_.reset();
    client_.reset();
  }
  std::shared_ptr<sftp::Client> client_;
  std::shared_ptr<int> count_;
};

class ConnectionPool {
 public:
  ConnectionPool(asio::any_io_executor ex, PoolOptions options);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Connects the first session and opens its first channel.
  asio::awaitable<Status> Start();
  // The caller waited out a backoff of its own (a watch retrying a batch after
  // a lost connection): the next Acquire() connects at once, with the backoff
  // starting over, rather than failing while the pool's own backoff runs.
  void RetryNow();
  // The least loaded live channel, growing or reconnecting as needed.
  asio::awaitable<Result<Lease>> Acquire();
  // A channel with no lease on it, on the same connection as used[0] and not
  // in `used`, if there is one now; else opens one more channel on that
  // connection in the background (when allowed) and returns an empty Lease.
  // Never waits. (One connection per file: a second connection's server
  // process only competes for the CPU the first one already uses.)
  Lease TryAcquireSibling(std::span<sftp::Client* const> used);
  // Closes every channel (waiting for their replies) and disconnects.
  asio::awaitable<void> Close();

  int live_channels() const;
  int live_connections() const;
  // The round trip of the first channel's start (0 before Start()).
  std::chrono::nanoseconds start_rtt() const { return start_rtt_; }

 private:
  struct Channel {
    std::shared_ptr<sftp::Client> client;
    std::shared_ptr<int> leases = std::make_shared<int>(0);
  };
  struct Connection {
    enum class State { kDown, kConnecting, kUp, kBroken, kTearingDown };
    State state = State::kDown;
    std::unique_ptr<ssh::Session> session;
    std::vector<Channel> channels;
    bool opening = false;   // a channel is being opened
    int channel_limit = 0;  // lowered when the server refuses more channels
    int failures = 0;       // consecutive failed connection attempts
    std::chrono::steady_clock::time_point retry_at{};
  };

  size_t Load(const Channel& ch) const;
  int LiveChannels(const Connection& conn) const;
  void NoticeBroken();
  // Starts one growth step in the background if one is useful and allowed.
  void MaybeGrow(bool busy);
  asio::awaitable<void> OpenChannel(Connection* conn);
  asio::awaitable<void> Reconnect(Connection* conn);
  asio::awaitable<Status> Connect(Connection* conn);
  asio::awaitable<void> Teardown(Connection* conn);
  void Notify();
  Error ConnectFailure() const;

  asio::any_io_executor ex_;
  PoolOptions options_;
  std::vector<std::unique_ptr<Connection>> connections_;
  TaskGroup growth_;
  bool growing_ = false;
  bool closed_ = false;
  bool started_ = false;
  uint64_t connect_failures_ = 0;
  uint64_t consecutive_failures_ = 0;  // failed attempts since the last success
  Error last_connect_error_;
  std::chrono::nanoseconds start_rtt_{0};
  asio::steady_timer changed_;  // cancelled whenever channels or connections change
};

}  // namespace ferry::transport::sftp_internal

#endif  // FERRY_TRANSPORT_SFTP_CONNECTION_POOL_H_
