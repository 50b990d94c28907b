// FaultProxy on 127.0.0.1 against a plain echo-less server: Stall holds bytes
// back without closing anything, Resume delivers them intact, CutAll resets
// both sides. No timed assertions: "held back" is checked with a poll that
// only bounds the test by a generous hang guard.
#include "tests/bench/proxy/fault_proxy.h"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <string>
#include <thread>

namespace ferry::testing {
namespace {

using asio::ip::tcp;

class FaultProxyTest : public ::testing::Test {
 protected:
  tcp::socket Connect(uint16_t port) {
    tcp::socket s(io_);
    s.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port));
    return s;
  }

  asio::io_context io_;
  tcp::acceptor server_{io_, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0)};
};

TEST_F(FaultProxyTest, StallHoldsBytesAndResumeDeliversThemIntact) {
  FaultProxy proxy(server_.local_endpoint().port());
  tcp::socket client = Connect(proxy.port());
  tcp::socket peer = server_.accept();

  proxy.Stall();
  const std::string message = "hello through a stalled proxy";
  asio::write(client, asio::buffer(message));
  // The proxy reads the bytes (its queue has room) but must not write them.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(peer.available(), 0u);
  EXPECT_EQ(proxy.bytes_to_server(), 0u);

  proxy.Resume();
  std::string got(message.size(), '\0');
  asio::read(peer, asio::buffer(got));
  EXPECT_EQ(got, message);
  // The counter moves once the proxy's write completes, which may be just after
  // the peer has read the bytes: wait for it (10 s hang guard).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (proxy.bytes_to_server() < message.size() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(proxy.bytes_to_server(), message.size());
  EXPECT_EQ(proxy.connections(), 1u);
}

TEST_F(FaultProxyTest, CutAllResetsBothSidesAndNewConnectionsStillWork) {
  FaultProxy proxy(server_.local_endpoint().port());
  tcp::socket client = Connect(proxy.port());
  tcp::socket peer = server_.accept();
  asio::write(client, asio::buffer(std::string("x")));
  char c = 0;
  asio::read(peer, asio::buffer(&c, 1));

  proxy.CutAll();
  asio::error_code client_ec;
  asio::error_code peer_ec;
  client.read_some(asio::buffer(&c, 1), client_ec);
  peer.read_some(asio::buffer(&c, 1), peer_ec);
  EXPECT_EQ(client_ec, asio::error::connection_reset) << client_ec.message();
  EXPECT_EQ(peer_ec, asio::error::connection_reset) << peer_ec.message();

  tcp::socket again = Connect(proxy.port());
  tcp::socket peer2 = server_.accept();
  asio::write(again, asio::buffer(std::string("y")));
  asio::read(peer2, asio::buffer(&c, 1));
  EXPECT_EQ(c, 'y');
  EXPECT_EQ(proxy.connections(), 2u);
}

}  // namespace
}  // namespace ferry::testing
