// FaultProxy: a TCP relay on 127.0.0.1 that tests can break on command, to
// prove that a client survives a server that stops answering or a network
// that resets its connections. Built on DelayProxy (delay_proxy.h), so it can
// also add delay and a rate limit.
//
//   ferry::testing::FaultProxy proxy(sshd.port());   // relays to 127.0.0.1:port
//   ... connect the client to 127.0.0.1:proxy.port() ...
//   proxy.Stall();    // nothing is forwarded, in either direction, on any
//                     // connection (existing or new); sockets stay open, so
//                     // the client sees silence, not an error (like a
//                     // SIGSTOPped server or a stalled middlebox)
//   proxy.Resume();   // forwarding goes on where it stopped; nothing is lost
//   proxy.CutAll();   // every connection relayed so far is closed with RST on
//                     // both sides (client and server see ECONNRESET); new
//                     // connections are still accepted and relayed (a stalled
//                     // proxy stays stalled)
//
// Threading: the proxy runs on its own thread, started by the constructor and
// joined by the destructor (which also closes every connection). Stall, Resume
// and CutAll may be called from any thread and return once applied. The byte
// counters count bytes the proxy has written to each side, for example to see
// that a client sent keepalives while otherwise idle.
#ifndef FERRY_TESTS_BENCH_PROXY_FAULT_PROXY_H_
#define FERRY_TESTS_BENCH_PROXY_FAULT_PROXY_H_

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "tests/bench/proxy/delay_proxy.h"

namespace ferry::testing {

class FaultProxy {
 public:
  // Listens on an ephemeral port of 127.0.0.1 and relays to 127.0.0.1:target_port.
  explicit FaultProxy(uint16_t target_port, bench::LinkOptions link = {});
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port() const { return port_; }

  void Stall();
  void Resume();
  void CutAll();

  uint64_t bytes_to_server() const { return control_->bytes_to_server.load(); }
  uint64_t bytes_to_client() const { return control_->bytes_to_client.load(); }
  // Connections accepted and connected to the target so far.
  uint64_t connections() const { return control_->connections.load(); }

 private:
  // Runs `fn` on the proxy thread and waits for it.
  void RunOnProxy(std::function<void()> fn);

  asio::io_context io_;
  // Keeps the proxy thread running until the destructor, whatever the relays do.
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::shared_ptr<bench::ProxyControl> control_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace ferry::testing

#endif  // FERRY_TESTS_BENCH_PROXY_FAULT_PROXY_H_
