// delay_proxy: relays TCP connections with an added one-way delay and a rate
// limit per direction, for benchmarks on loopback (see delay_proxy.h).
//
//   delay_proxy --listen 127.0.0.1:PORT --target 127.0.0.1:PORT
//               [--delay-ms 25] [--rate-mbit 1000]
//
// PORT 0 in --listen picks a free port. Prints "listening on 127.0.0.1:PORT" on
// stdout once it accepts. Only loopback addresses (127.0.0.0/8) are accepted for
// both ends: this is a test tool, never a relay to another machine. Exits 0 on
// SIGTERM or SIGINT, 2 on bad arguments.
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "tests/bench/proxy/delay_proxy.h"

namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "delay_proxy: %s\nusage: delay_proxy --listen 127.0.0.1:PORT --target "
               "127.0.0.1:PORT [--delay-ms MS] [--rate-mbit MBIT]\n",
               why);
  return 2;
}

bool IsLoopback(const asio::ip::tcp::endpoint& e) {
  return e.address().is_v4() && e.address().to_v4().is_loopback();
}

}  // namespace

int main(int argc, char** argv) {
  asio::ip::tcp::endpoint listen, target;
  bool have_listen = false, have_target = false;
  double delay_ms = 0, rate_mbit = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return Usage(("missing value for " + flag).c_str());
    const char* value = argv[++i];
    char* end = nullptr;
    if (flag == "--listen") {
      have_listen = ferry::bench::ParseEndpoint(value, &listen);
      if (!have_listen) return Usage("bad --listen");
    } else if (flag == "--target") {
      have_target = ferry::bench::ParseEndpoint(value, &target);
      if (!have_target) return Usage("bad --target");
    } else if (flag == "--delay-ms") {
      delay_ms = std::strtod(value, &end);
      if (*end != '\0' || delay_ms < 0 || delay_ms > 10000) return Usage("bad --delay-ms");
    } else if (flag == "--rate-mbit") {
      rate_mbit = std::strtod(value, &end);
      if (*end != '\0' || rate_mbit < 0) return Usage("bad --rate-mbit");
    } else {
      return Usage(("unknown flag " + flag).c_str());
    }
  }
  if (!have_listen || !have_target) return Usage("--listen and --target are required");
  if (!IsLoopback(listen) || !IsLoopback(target)) return Usage("only 127.0.0.0/8 is allowed");

  ferry::bench::LinkOptions link;
  link.delay = std::chrono::microseconds(static_cast<int64_t>(delay_ms * 1000));
  link.rate_bytes_per_s = rate_mbit * 1e6 / 8;

  try {
    asio::io_context io(1);
    asio::ip::tcp::acceptor acceptor(io, listen);  // sets SO_REUSEADDR
    std::printf("listening on %s:%u\n", acceptor.local_endpoint().address().to_string().c_str(),
                acceptor.local_endpoint().port());
    std::fflush(stdout);
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&io](const asio::error_code&, int) { io.stop(); });
    asio::co_spawn(io, ferry::bench::ServeProxy(std::move(acceptor), target, link),
                   [](std::exception_ptr e) {
                     if (e) std::rethrow_exception(e);
                   });
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "delay_proxy: %s\n", e.what());
    return 1;
  }
  return 0;
}
