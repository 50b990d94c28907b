// DelayProxy: a TCP relay that adds a fixed one-way delay and a rate limit to
// each direction, to emulate a WAN link on loopback (this kernel has no netem).
//
// Link model, per direction: bytes read from one side are stamped with the time
// they arrived and queued; the writer sends each chunk no earlier than
// arrival + delay, and no faster than the token bucket allows (rate, burst of
// one chunk; one bucket per direction shared by every connection of a
// ServeProxy, as they would share one link). Order is preserved (one queue,
// one writer per direction and connection). The
// queue holds at most kQueueChunks chunks of at most kChunkBytes: when it is
// full the reader stops reading, TCP flow control pushes back on the sender, and
// memory stays bounded (16 MiB per direction, above the 3.1 MB bandwidth-delay
// product of 1 Gbit/s x 25 ms).
//
// Half-close is forwarded (EOF on one side becomes shutdown(send) on the other
// after the delay); an error on either side closes the connection.
//
// Threading: everything runs on the io_context passed in; use it from one thread.
//
// Fault hooks (for ferry::testing::FaultProxy): a ProxyControl passed to
// ServeProxy can stall forwarding, cut every connection with RST, and counts
// the bytes relayed.
#ifndef FERRY_TESTS_BENCH_PROXY_DELAY_PROXY_H_
#define FERRY_TESTS_BENCH_PROXY_DELAY_PROXY_H_

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace ferry::bench {

struct LinkOptions {
  std::chrono::microseconds delay{0};  // added one way, to each direction
  double rate_bytes_per_s = 0;         // 0: unlimited
};

inline constexpr size_t kChunkBytes = 64 * 1024;
inline constexpr size_t kQueueChunks = 256;

struct RelayedConnection;  // defined in delay_proxy.cc

// Fault hooks shared by the relays of one ServeProxy. Every member function
// must be called on the proxy's io_context thread (FaultProxy posts there);
// only the byte counters may be read from any thread.
class ProxyControl {
 public:
  explicit ProxyControl(asio::any_io_executor ex);

  // Stalled: no byte is written to either side (reads go on until the bounded
  // queues fill, then TCP flow control stops the senders); sockets stay open.
  void SetStalled(bool stalled);
  bool stalled() const { return stalled_; }
  // Returns once forwarding is not stalled.
  asio::awaitable<void> WaitWhileStalled();

  // Closes both sockets of every live relayed connection with RST (SO_LINGER 0).
  void CutAll();
  void Track(std::weak_ptr<RelayedConnection> conn);

  std::atomic<uint64_t> bytes_to_server{0};  // written to the target
  std::atomic<uint64_t> bytes_to_client{0};  // written back to clients
  std::atomic<uint64_t> connections{0};      // relays connected to the target

 private:
  bool stalled_ = false;
  asio::steady_timer resume_;  // waiters park here; Resume cancels it
  std::vector<std::weak_ptr<RelayedConnection>> conns_;
};

// Accepts connections on `acceptor` forever (until the io_context stops or the
// acceptor is closed) and relays each to `target`. `control` may be null.
asio::awaitable<void> ServeProxy(asio::ip::tcp::acceptor acceptor, asio::ip::tcp::endpoint target,
                                 LinkOptions link, std::shared_ptr<ProxyControl> control);
asio::awaitable<void> ServeProxy(asio::ip::tcp::acceptor acceptor, asio::ip::tcp::endpoint target,
                                 LinkOptions link);

// Parses "HOST:PORT" (numeric IPv4 host) into an endpoint; false on bad input.
bool ParseEndpoint(const char* text, asio::ip::tcp::endpoint* out);

}  // namespace ferry::bench

#endif  // FERRY_TESTS_BENCH_PROXY_DELAY_PROXY_H_
