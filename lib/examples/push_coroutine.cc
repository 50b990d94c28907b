// Example: run a push inside your own io_context as a coroutine, with a
// progress callback and cancellation after a deadline.
//
//   bazel run //lib/examples:push_coroutine -- SRC DEST [SECONDS]
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdio>
#include <cstdlib>
#include <stop_token>

#include "ferry/push.h"

// Called on the io_context's thread; must not block.
class ProgressPrinter : public ferry::Observer {
 public:
  void OnProgress(const ferry::ProgressSnapshot& s) override {
    std::printf("progress: %llu/%llu files, %llu bytes\n",
                static_cast<unsigned long long>(s.files_sent),
                static_cast<unsigned long long>(s.files_to_send),
                static_cast<unsigned long long>(s.bytes_sent));
  }
};

asio::awaitable<int> PushWithDeadline(ferry::PushOptions options, int seconds,
                                      std::stop_source& stop) {
  // Another coroutine of the same program: requests a stop at the deadline.
  asio::steady_timer deadline(co_await asio::this_coro::executor, std::chrono::seconds(seconds));
  deadline.async_wait([&stop](std::error_code ec) {
    if (!ec) stop.request_stop();
  });

  ferry::Report report = co_await ferry::Push(std::move(options));
  deadline.cancel();
  if (report.cancelled) {
    std::puts("cancelled: no partial file was left behind");
    co_return 130;
  }
  if (report.fatal) {
    std::fprintf(stderr, "error: %s\n", report.fatal_message.c_str());
    co_return 3;
  }
  std::printf("done: %llu sent\n", static_cast<unsigned long long>(report.totals.files_sent));
  co_return report.ok() ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SRC DEST [SECONDS]\n", argv[0]);
    return 2;
  }
  asio::io_context io;  // run by this one thread: ferry's coroutines need that
  std::stop_source stop;
  ProgressPrinter progress;

  ferry::PushOptions options;
  options.source = argv[1];
  options.destination = argv[2];
  options.observer = &progress;
  options.stop = stop.get_token();

  int exit_code = 1;
  asio::co_spawn(io, PushWithDeadline(std::move(options), argc > 3 ? std::atoi(argv[3]) : 60, stop),
                 [&](std::exception_ptr, int code) { exit_code = code; });
  io.run();
  return exit_code;
}
