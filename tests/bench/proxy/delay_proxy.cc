#include "tests/bench/proxy/delay_proxy.h"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <charconv>
#include <cstdio>
#include <exception>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::bench {
namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// What travels through a direction's queue: bytes, or the end of the stream.
struct Chunk {
  Clock::time_point due;  // arrival + delay: not sent before this
  std::vector<char> bytes;
  bool end = false;  // no more bytes: EOF (or, if `failed`, an error)
  bool failed = false;
};

// Bounded: a full queue stops the reader, so TCP pushes back on the sender.
using ChunkQueue = asio::experimental::channel<void(asio::error_code, Chunk)>;

// Rate limit: tokens are bytes, refilled at `rate` per second up to `burst`.
// Tokens may go negative (a debt that the next sends wait out).
class TokenBucket {
 public:
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}

  // Takes `n` bytes' worth of tokens and says when they may go out.
  Clock::time_point Reserve(size_t n, Clock::time_point now) {
    if (rate_ <= 0) return now;
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + rate_ * elapsed);
    tokens_ -= static_cast<double>(n);
    if (tokens_ >= 0) return now;
    const std::chrono::duration<double> wait(-tokens_ / rate_);
    return now + std::chrono::duration_cast<Clock::duration>(wait);
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_ = Clock::now();
};

}  // namespace

// One relayed connection. Four coroutines share it (a reader and a writer per
// direction); it lives until the last of them ends.
struct RelayedConnection {
  RelayedConnection(tcp::socket c, tcp::socket s, std::shared_ptr<ProxyControl> ctl)
      : control(std::move(ctl)),
        client(std::move(c)),
        server(std::move(s)),
        upstream(client.get_executor(), kQueueChunks),
        downstream(client.get_executor(), kQueueChunks) {}

  // Ends everything: pending reads, writes and queue operations fail.
  void Close() {
    asio::error_code ignored;
    client.close(ignored);
    server.close(ignored);
    upstream.close();
    downstream.close();
  }

  // Like Close, but the peers see a reset (RST), not an orderly FIN.
  void Reset() {
    asio::error_code ignored;
    const asio::socket_base::linger abort(true, 0);
    client.set_option(abort, ignored);
    server.set_option(abort, ignored);
    Close();
  }

  std::shared_ptr<ProxyControl> control;  // may be null
  tcp::socket client;
  tcp::socket server;
  ChunkQueue upstream;    // client -> server
  ChunkQueue downstream;  // server -> client
};

ProxyControl::ProxyControl(asio::any_io_executor ex) : resume_(std::move(ex)) {
  resume_.expires_at(asio::steady_timer::time_point::max());
}

void ProxyControl::SetStalled(bool stalled) {
  stalled_ = stalled;
  if (!stalled_) resume_.cancel();  // wakes every parked writer; the expiry stays at max
}

asio::awaitable<void> ProxyControl::WaitWhileStalled() {
  while (stalled_) {
    auto [ec] = co_await resume_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    (void)ec;  // only ever cancelled by SetStalled(false): re-check
  }
}

void ProxyControl::CutAll() {
  std::vector<std::weak_ptr<RelayedConnection>> conns;
  conns.swap(conns_);
  for (auto& weak : conns) {
    if (auto conn = weak.lock()) conn->Reset();
  }
}

void ProxyControl::Track(std::weak_ptr<RelayedConnection> conn) {
  std::erase_if(conns_, [](const auto& w) { return w.expired(); });
  conns_.push_back(std::move(conn));
}

namespace {

using Connection = RelayedConnection;

// Reads `from` and queues what arrives, stamped with its due time.
asio::awaitable<void> Pump(std::shared_ptr<Connection> conn, tcp::socket& from, ChunkQueue& queue,
                           LinkOptions link) {
  for (;;) {
    std::vector<char> bytes(kChunkBytes);
    auto buffer = asio::buffer(bytes);
    auto [read_ec, n] = co_await from.async_read_some(buffer, kNoThrow);
    Chunk chunk;
    chunk.due = Clock::now() + link.delay;
    if (read_ec) {
      chunk.end = true;
      chunk.failed = read_ec != asio::error::eof;
    } else {
      bytes.resize(n);
      chunk.bytes = std::move(bytes);
    }
    const bool last = chunk.end;
    const asio::error_code no_error;
    auto [send_ec] = co_await queue.async_send(no_error, std::move(chunk), kNoThrow);
    if (send_ec || last) co_return;
  }
}

// Sends queued chunks to `to`, each no earlier than its due time and within the rate.
asio::awaitable<void> Drain(std::shared_ptr<Connection> conn, ChunkQueue& queue, tcp::socket& to,
                            std::shared_ptr<TokenBucket> rate) {
  asio::steady_timer timer(to.get_executor());
  TokenBucket& bucket = *rate;
  for (;;) {
    auto [receive_ec, chunk] = co_await queue.async_receive(kNoThrow);
    if (receive_ec) co_return;
    Clock::time_point when = chunk.due;
    if (!chunk.end) when = std::max(when, bucket.Reserve(chunk.bytes.size(), chunk.due));
    if (when > Clock::now()) {
      timer.expires_at(when);
      auto [timer_ec] = co_await timer.async_wait(kNoThrow);
      (void)timer_ec;  // only ever expires; a closed connection shows up below
    }
    if (conn->control) {
      co_await conn->control->WaitWhileStalled();
    }
    if (chunk.end) {
      asio::error_code ignored;
      if (chunk.failed) {
        conn->Close();
      } else {
        to.shutdown(tcp::socket::shutdown_send, ignored);
      }
      co_return;
    }
    auto buffer = asio::buffer(chunk.bytes);
    auto [write_ec, written] = co_await asio::async_write(to, buffer, kNoThrow);
    if (conn->control) {
      auto& counter =
          (&to == &conn->server) ? conn->control->bytes_to_server : conn->control->bytes_to_client;
      counter += written;
    }
    if (write_ec) {
      conn->Close();
      co_return;
    }
  }
}

void LogFailure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "delay_proxy: %s\n", ex.what());
  }
}

// The direction's rate, shared by every connection of one ServeProxy.
struct LinkRates {
  std::shared_ptr<TokenBucket> up, down;
};

asio::awaitable<void> Relay(tcp::socket client, tcp::endpoint target, LinkOptions link,
                            LinkRates rates, std::shared_ptr<ProxyControl> control) {
  tcp::socket server(client.get_executor());
  auto [connect_ec] = co_await server.async_connect(target, kNoThrow);
  if (connect_ec) {
    std::fprintf(stderr, "delay_proxy: connect: %s\n", connect_ec.message().c_str());
    co_return;  // `client` closes here
  }
  const asio::ip::tcp::no_delay no_delay(true);
  asio::error_code ignored;
  client.set_option(no_delay, ignored);
  server.set_option(no_delay, ignored);
  auto conn = std::make_shared<Connection>(std::move(client), std::move(server), control);
  if (control) {
    control->Track(conn);
    ++control->connections;
  }
  auto ex = conn->client.get_executor();
  asio::co_spawn(ex, Pump(conn, conn->client, conn->upstream, link), LogFailure);
  asio::co_spawn(ex, Drain(conn, conn->upstream, conn->server, rates.up), LogFailure);
  asio::co_spawn(ex, Pump(conn, conn->server, conn->downstream, link), LogFailure);
  asio::co_spawn(ex, Drain(conn, conn->downstream, conn->client, rates.down), LogFailure);
}

}  // namespace

asio::awaitable<void> ServeProxy(tcp::acceptor acceptor, tcp::endpoint target, LinkOptions link) {
  return ServeProxy(std::move(acceptor), target, link, nullptr);
}

asio::awaitable<void> ServeProxy(tcp::acceptor acceptor, tcp::endpoint target, LinkOptions link,
                                 std::shared_ptr<ProxyControl> control) {
  // One link: connections share its rate (a tool with two connections does not
  // get twice the bandwidth), each keeps its own order and delay.
  const auto burst = static_cast<double>(kChunkBytes);
  LinkRates rates{std::make_shared<TokenBucket>(link.rate_bytes_per_s, burst),
                  std::make_shared<TokenBucket>(link.rate_bytes_per_s, burst)};
  for (;;) {
    auto [accept_ec, client] = co_await acceptor.async_accept(kNoThrow);
    if (accept_ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (accept_ec) {
      // EMFILE and the like: say so and stop instead of spinning.
      std::fprintf(stderr, "delay_proxy: accept: %s\n", accept_ec.message().c_str());
      co_return;
    }
    asio::co_spawn(acceptor.get_executor(), Relay(std::move(client), target, link, rates, control),
                   LogFailure);
  }
}

bool ParseEndpoint(const char* text, tcp::endpoint* out) {
  std::string_view s(text);
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  asio::error_code ec;
  const auto address = asio::ip::make_address_v4(std::string(s.substr(0, colon)), ec);
  if (ec) return false;
  unsigned port = 0;
  const char* first = s.data() + colon + 1;
  const char* last = s.data() + s.size();
  auto [ptr, parse_ec] = std::from_chars(first, last, port);
  if (parse_ec != std::errc() || ptr != last || port > 65535) return false;
  *out = tcp::endpoint(address, static_cast<uint16_t>(port));
  return true;
}

}  // namespace ferry::bench
