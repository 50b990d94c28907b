// Example: keep DEST in sync with SRC from inside your own io_context, printing
// one line per batch, until SIGINT/SIGTERM (or a deadline, for tests).
//
//   bazel run //lib/examples:watch_progress -- SRC DEST [SECONDS]
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <cstdio>
#include <cstdlib>
#include <stop_token>

#include "ferry/watch.h"

// Called on the io_context's thread after every batch; must not block.
class BatchPrinter : public ferry::Observer {
 public:
  void OnBatch(const ferry::BatchSummary& batch) override {
    std::printf("%s: %llu files, %llu bytes, %llu renamed, %llu deleted\n",
                batch.initial ? "initial sync" : "batch",
                static_cast<unsigned long long>(batch.files),
                static_cast<unsigned long long>(batch.bytes),
                static_cast<unsigned long long>(batch.renamed),
                static_cast<unsigned long long>(batch.deleted));
    std::fflush(stdout);
  }
};

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SRC DEST [SECONDS]\n", argv[0]);
    return 2;
  }
  asio::io_context io;  // run by this one thread: ferry's coroutines need that
  std::stop_source stop;

  // Stop on a signal, or after SECONDS when given.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&stop](std::error_code ec, int) {
    if (!ec) stop.request_stop();
  });
  asio::steady_timer deadline(io, std::chrono::seconds(argc > 3 ? std::atoi(argv[3]) : 1 << 30));
  deadline.async_wait([&stop](std::error_code ec) {
    if (!ec) stop.request_stop();
  });

  BatchPrinter printer;
  ferry::WatchOptions options;
  options.push.source = argv[1];
  options.push.destination = argv[2];
  options.push.observer = &printer;
  options.push.stop = stop.get_token();

  int exit_code = 1;
  asio::co_spawn(io, ferry::Watch(std::move(options)), [&](std::exception_ptr, ferry::Report r) {
    if (r.fatal) std::fprintf(stderr, "error: %s\n", r.fatal_message.c_str());
    exit_code = r.fatal ? 3 : 0;
    signals.cancel();
    deadline.cancel();
  });
  io.run();
  return exit_code;
}
