// DelayProxy: a TCP relay that adds a fixed one-way delay and a rate limit to
// each direction, to emulate a WAN link on loopback (this kernel has no netem).
//
// Link model, per direction: bytes read from one side are stamped with the time
// they arrived and queued; the writer sends each chunk no earlier than
// arrival + delay, and no faster than the token bucket allows (rate, burst of
// one chunk). Order is preserved (one queue, one writer per direction). The
// queue holds at most kQueueChunks chunks of at most kChunkBytes: when it is
// full the reader stops reading, TCP flow control pushes back on the sender, and
// memory stays bounded (16 MiB per direction, above the 3.1 MB bandwidth-delay
// product of 1 Gbit/s x 25 ms).
//
// Half-close is forwarded (EOF on one side becomes shutdown(send) on the other
// after the delay); an error on either side closes the connection.
//
// Threading: everything runs on the io_context passed in; use it from one thread.
#ifndef FERRY_TESTS_BENCH_PROXY_DELAY_PROXY_H_
#define FERRY_TESTS_BENCH_PROXY_DELAY_PROXY_H_

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace ferry::bench {

struct LinkOptions {
  std::chrono::microseconds delay{0};  // added one way, to each direction
  double rate_bytes_per_s = 0;         // 0: unlimited
};

inline constexpr size_t kChunkBytes = 64 * 1024;
inline constexpr size_t kQueueChunks = 256;

// Accepts connections on `acceptor` forever (until the io_context stops or the
// acceptor is closed) and relays each to `target`.
asio::awaitable<void> ServeProxy(asio::ip::tcp::acceptor acceptor, asio::ip::tcp::endpoint target,
                                 LinkOptions link);

// Parses "HOST:PORT" (numeric IPv4 host) into an endpoint; false on bad input.
bool ParseEndpoint(const char* text, asio::ip::tcp::endpoint* out);

}  // namespace ferry::bench

#endif  // FERRY_TESTS_BENCH_PROXY_DELAY_PROXY_H_
