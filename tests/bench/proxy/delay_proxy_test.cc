// DelayProxy end to end on 127.0.0.1: bytes arrive intact in both directions,
// and the delay and rate add at least what was configured. Only lower bounds on
// time are asserted: a loaded machine may always be slower.
#include "tests/bench/proxy/delay_proxy.h"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <exception>
#include <future>
#include <random>
#include <thread>
#include <vector>

namespace ferry::bench {
namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

std::vector<char> RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<char> v(n);
  for (auto& c : v) c = static_cast<char>(rng());
  return v;
}

// Reads until EOF.
std::vector<char> ReadAll(tcp::socket& s) {
  std::vector<char> out;
  char buf[65536];
  for (;;) {
    asio::error_code ec;
    size_t n = s.read_some(asio::buffer(buf), ec);
    out.insert(out.end(), buf, buf + n);
    if (ec) break;
  }
  return out;
}

// A proxy on its own thread in front of a server the test runs.
class DelayProxyTest : public ::testing::Test {
 protected:
  void StartProxy(LinkOptions link) {
    tcp::acceptor acceptor(proxy_io_, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
    proxy_port_ = acceptor.local_endpoint().port();
    asio::co_spawn(proxy_io_, ServeProxy(std::move(acceptor), server_.local_endpoint(), link),
                   [](std::exception_ptr e) {
                     if (e) std::rethrow_exception(e);
                   });
    proxy_thread_ = std::thread([this] { proxy_io_.run(); });
  }

  void TearDown() override {
    proxy_io_.stop();
    if (proxy_thread_.joinable()) proxy_thread_.join();
  }

  tcp::socket Connect() {
    tcp::socket s(client_io_);
    s.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), proxy_port_));
    s.set_option(tcp::no_delay(true));
    return s;
  }

  asio::io_context client_io_;
  tcp::acceptor server_{client_io_, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0)};
  asio::io_context proxy_io_;
  std::thread proxy_thread_;
  uint16_t proxy_port_ = 0;
};

TEST_F(DelayProxyTest, ForwardsBytesIntactBothWaysAndHalfCloses) {
  StartProxy({std::chrono::milliseconds(2), 0});
  const std::vector<char> up = RandomBytes(3 << 20, 1);
  const std::vector<char> down = RandomBytes((2 << 20) + 12345, 2);

  // The server reads everything (until the client's half-close arrives), then answers.
  auto received = std::async(std::launch::async, [&] {
    tcp::socket peer = server_.accept();
    std::vector<char> got = ReadAll(peer);
    asio::write(peer, asio::buffer(down));
    peer.shutdown(tcp::socket::shutdown_send);
    return got;
  });
  tcp::socket client = Connect();
  asio::write(client, asio::buffer(up));
  client.shutdown(tcp::socket::shutdown_send);
  std::vector<char> answer = ReadAll(client);

  EXPECT_TRUE(received.get() == up);
  EXPECT_TRUE(answer == down);
}

TEST_F(DelayProxyTest, RoundTripTakesAtLeastTwiceTheDelay) {
  constexpr auto kDelay = std::chrono::milliseconds(40);
  StartProxy({kDelay, 0});
  auto echo = std::async(std::launch::async, [&] {
    tcp::socket peer = server_.accept();
    char c[8];
    for (int i = 0; i < 3; ++i) {
      asio::read(peer, asio::buffer(c, 1));
      asio::write(peer, asio::buffer(c, 1));
    }
  });
  tcp::socket client = Connect();
  for (int i = 0; i < 3; ++i) {
    const char ping = static_cast<char>('a' + i);
    char pong = 0;
    const auto start = Clock::now();
    asio::write(client, asio::buffer(&ping, 1));
    asio::read(client, asio::buffer(&pong, 1));
    const auto rtt = Clock::now() - start;
    EXPECT_EQ(pong, ping);
    EXPECT_GE(rtt, 2 * kDelay) << "round trip " << i;
  }
  echo.get();
}

TEST_F(DelayProxyTest, RateLimitHoldsThroughputDown) {
  constexpr double kRate = 4e6;  // bytes per second (32 Mbit/s)
  StartProxy({std::chrono::milliseconds(0), kRate});
  const std::vector<char> data = RandomBytes(1 << 20, 3);
  auto received = std::async(std::launch::async, [&] {
    tcp::socket peer = server_.accept();
    return ReadAll(peer);
  });
  tcp::socket client = Connect();
  const auto start = Clock::now();
  asio::write(client, asio::buffer(data));
  client.shutdown(tcp::socket::shutdown_send);
  std::vector<char> got = received.get();
  const std::chrono::duration<double> took = Clock::now() - start;
  EXPECT_TRUE(got == data);
  // One chunk may pass as a burst; the rest must wait for tokens.
  const double at_least = static_cast<double>(data.size() - kChunkBytes) / kRate;
  EXPECT_GE(took.count(), at_least);
}

// One link: two connections share its rate instead of getting one each (a
// tool with two connections would otherwise beat the link it is measured on).
TEST_F(DelayProxyTest, ConnectionsShareTheRate) {
  constexpr double kRate = 4e6;
  StartProxy({std::chrono::milliseconds(0), kRate});
  const std::vector<char> data = RandomBytes(1 << 20, 4);
  auto received = std::async(std::launch::async, [&] {
    tcp::socket a = server_.accept();
    tcp::socket b = server_.accept();
    auto other = std::async(std::launch::async, [&] { return ReadAll(b); });
    std::vector<char> first = ReadAll(a);
    return first == data && other.get() == data;
  });
  tcp::socket c1 = Connect();
  tcp::socket c2 = Connect();
  const auto start = Clock::now();
  auto second = std::async(std::launch::async, [&] {
    asio::write(c2, asio::buffer(data));
    c2.shutdown(tcp::socket::shutdown_send);
  });
  asio::write(c1, asio::buffer(data));
  c1.shutdown(tcp::socket::shutdown_send);
  second.get();
  EXPECT_TRUE(received.get());
  const std::chrono::duration<double> took = Clock::now() - start;
  // Both megabytes through one bucket (one chunk of burst).
  EXPECT_GE(took.count(), static_cast<double>(2 * data.size() - kChunkBytes) / kRate);
}

TEST(ParseEndpointTest, AcceptsHostPortAndRejectsGarbage) {
  tcp::endpoint e;
  ASSERT_TRUE(ParseEndpoint("127.0.0.1:2222", &e));
  EXPECT_EQ(e.port(), 2222);
  EXPECT_FALSE(ParseEndpoint("127.0.0.1", &e));
  EXPECT_FALSE(ParseEndpoint("127.0.0.1:99999", &e));
  EXPECT_FALSE(ParseEndpoint("localhost:22", &e));
  EXPECT_FALSE(ParseEndpoint("127.0.0.1:22x", &e));
}

}  // namespace
}  // namespace ferry::bench
