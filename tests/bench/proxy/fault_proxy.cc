#include "tests/bench/proxy/fault_proxy.h"

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <cstdio>
#include <exception>
#include <future>
#include <utility>

namespace ferry::testing {

using asio::ip::tcp;

FaultProxy::FaultProxy(uint16_t target_port, bench::LinkOptions link)
    : work_(io_.get_executor()),
      control_(std::make_shared<bench::ProxyControl>(io_.get_executor())) {
  const auto loopback = asio::ip::make_address_v4("127.0.0.1");
  tcp::acceptor acceptor(io_, tcp::endpoint(loopback, 0));
  port_ = acceptor.local_endpoint().port();
  const tcp::endpoint target(loopback, target_port);
  auto serve = bench::ServeProxy(std::move(acceptor), target, link, control_);
  asio::co_spawn(io_, std::move(serve), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "FaultProxy: %s\n", ex.what());
    }
  });
  thread_ = std::thread([this] { io_.run(); });
}

FaultProxy::~FaultProxy() {
  RunOnProxy([this] {
    control_->SetStalled(false);
    control_->CutAll();
  });
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

void FaultProxy::RunOnProxy(std::function<void()> fn) {
  std::promise<void> done;
  auto future = done.get_future();
  asio::post(io_, [&fn, &done] {
    fn();
    done.set_value();
  });
  future.wait();
}

void FaultProxy::Stall() {
  RunOnProxy([this] { control_->SetStalled(true); });
}

void FaultProxy::Resume() {
  RunOnProxy([this] { control_->SetStalled(false); });
}

void FaultProxy::CutAll() {
  RunOnProxy([this] { control_->CutAll(); });
}

}  // namespace ferry::testing
