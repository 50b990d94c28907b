// A quick benchmark of the SFTP destination against the loopback TestSshd:
//   destination_bench small COUNT SIZE JOBS [connections channels write_bytes]
//   destination_bench big SIZE_MIB [connections channels write_bytes split_mib]
//   destination_bench serve    (runs the sshd for other clients until stdin closes)
// Prints the wall time. Not a test (tagged manual).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "lib/base/task_group.h"
#include "lib/transport/sftp/sftp_destination.h"
#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

extern char** environ;

using namespace ferry;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: see the source\n");
    return 2;
  }
  const std::string mode = argv[1];
  auto arg = [&](int i, long def) { return argc > i ? std::atol(argv[i]) : def; };
  ferry::testing::TestSshd sshd;
  if (Status st = sshd.Start(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.error().Message().c_str());
    return 1;
  }
  if (mode == "serve") {
    // For comparisons with scp/sftp/rsync: prints how to reach the server and
    // serves until stdin closes.
    std::printf("PORT=%d KEY=%s KNOWN_HOSTS=%s ROOT=%s\n", sshd.port(), sshd.user_key().c_str(),
                sshd.known_hosts().c_str(), sshd.root().c_str());
    std::fflush(stdout);
    while (std::getchar() != EOF) {
    }
    return 0;
  }
  asio::io_context io(1);
  asio::thread_pool pool(2);
  transport::SftpConfig config;
  config.connect = sshd.ConnectOptions();
  pid_t proxy = -1;
  if (const char* spec = std::getenv("BENCH_PROXY")) {
    // BENCH_PROXY=/path/to/delay_proxy:ONE_WAY_DELAY_MS puts tests/bench/proxy's
    // delay_proxy in front of the sshd.
    const std::string s = spec;
    const std::string binary = s.substr(0, s.rfind(':'));
    const std::string delay = s.substr(s.rfind(':') + 1);
    const std::string target = "127.0.0.1:" + std::to_string(sshd.port());
    int fds[2];
    if (::pipe(fds) != 0) return 1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    const char* argv_proxy[] = {binary.c_str(), "--listen",   "127.0.0.1:0", "--target",
                                target.c_str(), "--delay-ms", delay.c_str(), nullptr};
    if (posix_spawn(&proxy, binary.c_str(), &actions, nullptr, const_cast<char* const*>(argv_proxy),
                    environ) != 0) {
      return 1;
    }
    ::close(fds[1]);
    char line[256] = {};
    FILE* out = ::fdopen(fds[0], "r");
    if (!std::fgets(line, sizeof line, out)) return 1;
    const char* colon = std::strrchr(line, ':');
    config.connect.port = static_cast<uint16_t>(std::atoi(colon + 1));
    config.connect.host_key_policy = ssh::HostKeyPolicy::kAcceptNew;
    std::printf("via delay_proxy (%s ms each way) on port %d\n", delay.c_str(),
                config.connect.port);
  }
  config.root = sshd.root() + "/bench";
  const bool small = mode == "small";
  const int base = small ? 5 : 3;
  config.connections = static_cast<int>(arg(base, 2));
  config.channels_per_connection = static_cast<int>(arg(base + 1, 4));
  config.write_request_bytes = static_cast<size_t>(arg(base + 2, 0));
  if (!small) config.split_threshold_bytes = static_cast<size_t>(arg(base + 3, 8)) << 20;
  if (const char* rtt = std::getenv("BENCH_SPLIT_MIN_RTT_MS")) {
    config.split_min_rtt = std::chrono::milliseconds(std::atoi(rtt));
  }
  std::string data;
  int count = 1, jobs = 1;
  if (small) {
    count = static_cast<int>(arg(2, 2000));
    data = ferry::testing::TestBytes(static_cast<size_t>(arg(3, 4096)), 1);
    jobs = static_cast<int>(arg(4, 16));
  } else {
    data = ferry::testing::TestBytes(static_cast<size_t>(arg(2, 256)) << 20, 1);
  }
  auto start = std::chrono::steady_clock::now();
  double open_s = 0;
  ferry::testing::RunCoroutine(io, [&]() -> asio::awaitable<void> {
    auto made = transport::MakeSftpDestination(config, io.get_executor(), pool);
    if (!made.ok()) co_return;
    transport::Destination& dest = **made;
    Status opened = co_await dest.Open(false);
    if (!opened.ok()) {
      std::fprintf(stderr, "open: %s\n", opened.error().Message().c_str());
      co_return;
    }
    open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    int next = 0, failures = 0;
    auto worker = [&]() -> asio::awaitable<void> {
      while (next < count) {
        const int i = next++;
        std::string path = "f" + std::to_string(i);
        auto sink = co_await dest.CreateFile(path);
        if (!sink.ok()) {
          ++failures;
          continue;
        }
        Status st;
        for (size_t off = 0; off < data.size() && st.ok(); off += 1 << 20) {
          auto piece = std::as_bytes(std::span(data))
                           .subspan(off, std::min<size_t>(1 << 20, data.size() - off));
          st = co_await (*sink)->Write(piece);
        }
        transport::CommitAttrs attrs;
        if (st.ok()) st = co_await (*sink)->Commit(attrs);
        if (!st.ok()) {
          ++failures;
          std::fprintf(stderr, "%s\n", st.error().Message().c_str());
        }
      }
    };
    TaskGroup group(io.get_executor());
    for (int j = 0; j < jobs; ++j) group.Spawn(worker());
    co_await group.Wait();
    if (failures) std::fprintf(stderr, "%d failures\n", failures);
    (void)co_await dest.Close();
  });
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: %.3f s total (open %.3f s), %.1f MB/s\n", mode.c_str(), total, open_s,
              double(data.size()) * count / 1e6 / (total - open_s));
  std::printf("SSHD_ROOT=%s\n", sshd.root().c_str());
  if (proxy > 0) {
    ::kill(proxy, SIGTERM);
    ::waitpid(proxy, nullptr, 0);
  }
  return 0;
}
