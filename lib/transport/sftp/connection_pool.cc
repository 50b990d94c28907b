#include "lib/transport/sftp/connection_pool.h"

#include <algorithm>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/use_awaitable.hpp>
#include <limits>

#include "ferry/error.h"

namespace ferry::transport::sftp_internal {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// A lease weighs as much as a few requests: it stands for a file or listing
// that will keep sending on this channel.
constexpr size_t kLeaseWeight = 4;

// A channel leased to this many files is crowded: over a slow link
// (PoolOptions::spread_min_rtt), while the pool is opening another channel or
// connection, a new lease waits for it (up to kCrowdedWait) instead of piling
// on. A lease holds its channel for a file's whole upload and a channel moves
// one SSH window (2 MiB with OpenSSH) per round trip: the 64 files a push
// starts with all went to the only channel there was, and 64 x 8 MiB over
// 50 ms RTT ran at 33 MB/s (7.4 s spread). On loopback, where the window is no
// limit, spreading cost CPU instead (3.1 -> 3.7 s).
constexpr int kCrowdedLeases = 8;
constexpr auto kCrowdedWait = std::chrono::seconds(2);

// Give up on an Acquire() after this many failed connection attempts.
constexpr uint64_t kAttemptsPerAcquire = 2;

std::chrono::milliseconds Backoff(int failures) {
  if (failures <= 0) return std::chrono::milliseconds(0);
  const int shift = std::min(failures - 1, 6);
  return std::min(std::chrono::milliseconds(100 << shift), std::chrono::milliseconds(5000));
}

bool IsCredentialError(std::error_code code) {
  return code == errc::kHostKeyUnknown || code == errc::kHostKeyMismatch ||
         code == errc::kHostKeyRevoked || code == errc::kAuthFailed;
}

}  // namespace

ConnectionPool::ConnectionPool(asio::any_io_executor ex, PoolOptions options)
    : ex_(ex), options_(std::move(options)), growth_(ex), changed_(ex, Clock::time_point::max()) {
  options_.connections = std::clamp(options_.connections, 1, 64);
  options_.channels_per_connection = std::clamp(options_.channels_per_connection, 1, 256);
  for (int i = 0; i < options_.connections; ++i) {
    auto conn = std::make_unique<Connection>();
    conn->channel_limit = options_.channels_per_connection;
    connections_.push_back(std::move(conn));
  }
}

ConnectionPool::~ConnectionPool() = default;

void ConnectionPool::Notify() { changed_.cancel(); }

size_t ConnectionPool::Load(const Channel& ch) const {
  return kLeaseWeight * static_cast<size_t>(*ch.leases) + ch.client->outstanding_requests();
}

int ConnectionPool::LiveChannels(const Connection& conn) const {
  int live = 0;
  for (const Channel& ch : conn.channels) live += ch.client->failed() ? 0 : 1;
  return live;
}

int ConnectionPool::live_channels() const {
  int live = 0;
  for (const auto& conn : connections_) {
    if (conn->state == Connection::State::kUp) live += LiveChannels(*conn);
  }
  return live;
}

int ConnectionPool::live_connections() const {
  int live = 0;
  for (const auto& conn : connections_) live += conn->state == Connection::State::kUp ? 1 : 0;
  return live;
}

Error ConnectionPool::ConnectFailure() const {
  Error error = last_connect_error_;
  if (!error.code) return Error{errc::kConnectionLost, "no SFTP channel is available"};
  if (started_ && !IsCredentialError(error.code)) {
    // The destination worked before: the engine may retry what failed here.
    return Error{errc::kConnectionLost, "reconnecting: " + error.Message()};
  }
  return error;
}

asio::awaitable<Status> ConnectionPool::Connect(Connection* conn) {
  conn->state = Connection::State::kConnecting;
  auto session = co_await ssh::Session::Connect(ex_, options_.connect);
  if (!session.ok()) {
    conn->state = Connection::State::kDown;
    co_return session.error();
  }
  conn->session = std::move(*session);
  // Keepalives and the io timeout: a stalled server fails the channels with
  // kConnectionLost, which marks the connection broken (see NoticeBroken).
  conn->session->StartWatchdog();
  auto client = co_await sftp::Client::Start(*conn->session, options_.client);
  if (!client.ok()) {
    Status ignored = co_await conn->session->Disconnect();
    conn->session.reset();
    conn->state = Connection::State::kDown;
    co_return client.error();
  }
  conn->channels.push_back(Channel{std::move(*client)});
  conn->channel_limit = options_.channels_per_connection;
  conn->failures = 0;
  consecutive_failures_ = 0;
  conn->state = Connection::State::kUp;
  co_return Status{};
}

asio::awaitable<Status> ConnectionPool::Start() {
  if (started_) co_return Status{};
  Status st = co_await Connect(connections_[0].get());
  if (!st.ok()) {
    last_connect_error_ = st.error();
    co_return st;
  }
  started_ = true;
  if (!connections_[0]->channels.empty()) {
    start_rtt_ = connections_[0]->channels[0].client->handshake_rtt();
  }
  co_return Status{};
}

void ConnectionPool::RetryNow() {
  for (auto& conn : connections_) {
    if (conn->state != Connection::State::kDown && conn->state != Connection::State::kBroken) {
      continue;
    }
    conn->failures = 0;
    conn->retry_at = Clock::now();
  }
  consecutive_failures_ = 0;
}

void ConnectionPool::NoticeBroken() {
  for (auto& conn : connections_) {
    if (conn->state != Connection::State::kUp) continue;
    bool transport = false;
    for (const Channel& ch : conn->channels) transport = transport || ch.client->transport_failed();
    const bool exhausted = LiveChannels(*conn) == 0 && !conn->opening &&
                           static_cast<int>(conn->channels.size()) >= conn->channel_limit;
    if (transport || exhausted) conn->state = Connection::State::kBroken;
  }
}

void ConnectionPool::MaybeGrow(bool busy) {
  if (closed_ || growing_) return;
  if (busy) {
    for (auto& conn : connections_) {
      if (conn->state == Connection::State::kUp && !conn->opening &&
          static_cast<int>(conn->channels.size()) < conn->channel_limit) {
        growing_ = true;
        growth_.Spawn(OpenChannel(conn.get()));
        return;
      }
    }
  }
  if (!busy && live_channels() > 0) return;
  const auto now = Clock::now();
  for (auto& conn : connections_) {
    const bool candidate =
        conn->state == Connection::State::kBroken || conn->state == Connection::State::kDown;
    if (candidate && conn->retry_at <= now) {
      growing_ = true;
      growth_.Spawn(Reconnect(conn.get()));
      return;
    }
  }
}

asio::awaitable<void> ConnectionPool::OpenChannel(Connection* conn) {
  conn->opening = true;
  auto client = co_await sftp::Client::Start(*conn->session, options_.client);
  conn->opening = false;
  if (client.ok()) {
    // Even if the connection broke meanwhile: Teardown() ends it with the rest.
    conn->channels.push_back(Channel{std::move(*client)});
  } else if (LiveChannels(*conn) > 0) {
    // Most likely the server's MaxSessions: stay at what we have.
    conn->channel_limit = static_cast<int>(conn->channels.size());
  } else if (conn->state == Connection::State::kUp) {
    conn->state = Connection::State::kBroken;
  }
  growing_ = false;
  Notify();
}

asio::awaitable<void> ConnectionPool::Teardown(Connection* conn) {
  conn->state = Connection::State::kTearingDown;
  const Error lost{errc::kConnectionLost, "the SSH connection to " + options_.connect.host + ":" +
                                              std::to_string(options_.connect.port) + " was lost"};
  for (Channel& ch : conn->channels) ch.client->Abort(lost);
  if (conn->session) {
    Status ignored = co_await conn->session->Disconnect();
  }
  for (Channel& ch : conn->channels) co_await ch.client->Join();
  conn->channels.clear();
  conn->session.reset();
  conn->state = Connection::State::kDown;
}

asio::awaitable<void> ConnectionPool::Reconnect(Connection* conn) {
  if (conn->session || !conn->channels.empty()) co_await Teardown(conn);
  if (!closed_) {
    Status st = co_await Connect(conn);
    if (!st.ok()) {
      ++conn->failures;
      conn->retry_at = Clock::now() + Backoff(conn->failures);
      ++connect_failures_;
      ++consecutive_failures_;
      last_connect_error_ = st.error();
    }
  }
  growing_ = false;
  Notify();
}

asio::awaitable<Result<Lease>> ConnectionPool::Acquire() {
  const uint64_t failures_before = connect_failures_;
  const auto patience = Clock::now() + kCrowdedWait;
  for (;;) {
    if (closed_) co_return Error{errc::kCancelled, "the SFTP destination is closed"};
    NoticeBroken();
    Channel* best = nullptr;
    size_t best_load = std::numeric_limits<size_t>::max();
    for (auto& conn : connections_) {
      if (conn->state != Connection::State::kUp) continue;
      for (Channel& ch : conn->channels) {
        if (ch.client->failed()) continue;
        const size_t load = Load(ch);
        if (load < best_load) {
          best = &ch;
          best_load = load;
        }
      }
    }
    MaybeGrow(best == nullptr || best_load > 0);
    if (best != nullptr) {
      const bool slow_link = best->client->handshake_rtt() >= options_.spread_min_rtt;
      if (!slow_link || *best->leases < kCrowdedLeases || !growing_ || Clock::now() >= patience) {
        co_return Lease(best->client, best->leases);
      }
      // Crowded, and a channel is on its way: wait for it (or for patience).
      using namespace asio::experimental::awaitable_operators;
      asio::steady_timer give_up(ex_, patience);
      co_await (changed_.async_wait(kNoThrow) || give_up.async_wait(kNoThrow));
      continue;
    }
    // The server has been unreachable for the last attempts in a row: fail at
    // once (reconnecting goes on in the background, within its backoff)
    // rather than make every file wait through attempts of its own.
    if (connect_failures_ - failures_before >= kAttemptsPerAcquire ||
        consecutive_failures_ >= kAttemptsPerAcquire) {
      co_return ConnectFailure();
    }
    if (!growing_) {
      // Nothing may start before a backoff ends: sleep until the earliest one.
      auto earliest = Clock::time_point::max();
      for (auto& conn : connections_) {
        if (conn->state == Connection::State::kDown || conn->state == Connection::State::kBroken) {
          earliest = std::min(earliest, conn->retry_at);
        }
      }
      if (earliest == Clock::time_point::max() || earliest <= Clock::now()) {
        co_return ConnectFailure();  // nothing left to try
      }
      asio::steady_timer pause(ex_, earliest);
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    co_await changed_.async_wait(kNoThrow);
  }
}

Lease ConnectionPool::TryAcquireSibling(std::span<sftp::Client* const> used) {
  if (closed_ || used.empty()) return {};
  NoticeBroken();
  for (auto& conn : connections_) {
    if (conn->state != Connection::State::kUp) continue;
    const bool ours = std::any_of(conn->channels.begin(), conn->channels.end(),
                                  [&](const Channel& ch) { return ch.client.get() == used[0]; });
    if (!ours) continue;
    for (Channel& ch : conn->channels) {
      if (ch.client->failed() || *ch.leases > 0) continue;
      if (std::find(used.begin(), used.end(), ch.client.get()) != used.end()) continue;
      return Lease(ch.client, ch.leases);
    }
    if (!growing_ && !conn->opening &&
        static_cast<int>(conn->channels.size()) < conn->channel_limit) {
      growing_ = true;
      growth_.Spawn(OpenChannel(conn.get()));
    }
    return {};
  }
  return {};
}

asio::awaitable<void> ConnectionPool::Close() {
  if (closed_) co_return;
  closed_ = true;
  Notify();
  co_await growth_.Wait();
  for (auto& conn : connections_) {
    if (conn->state == Connection::State::kUp) {
      for (Channel& ch : conn->channels) {
        Status ignored = co_await ch.client->Close();
      }
      Status ignored = co_await conn->session->Disconnect();
      conn->channels.clear();
      conn->session.reset();
      conn->state = Connection::State::kDown;
    } else if (conn->session || !conn->channels.empty()) {
      co_await Teardown(conn.get());
    }
  }
}

}  // namespace ferry::transport::sftp_internal
