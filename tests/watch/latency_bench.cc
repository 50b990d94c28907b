// Watch latency on a local DEST: close() of a new 4 KiB file in SRC -> its
// final name exists in DEST. The arrival is timed with inotify on DEST
// (IN_MOVED_TO / IN_CREATE of the final name), so the measurement itself does
// not poll. Also reports the CPU the watch used while idle.
//
//   bazel run -c opt //tests/watch:latency_bench -- [SAMPLES] [BASE_DIR]
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "ferry/watch.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

class InitialDone final : public ferry::Observer {
 public:
  void OnBatch(const ferry::BatchSummary& b) override {
    if (b.initial) {
      done.store(true);
      return;
    }
    std::lock_guard lock(mu);
    batch_ms.push_back(std::chrono::duration<double, std::milli>(b.duration).count());
  }
  std::atomic<bool> done{false};
  std::mutex mu;
  std::vector<double> batch_ms;  // time spent applying each batch
};

double CpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Waits for an event naming `name` in DEST; false on timeout.
bool WaitForName(int ifd, const std::string& name, int timeout_ms) {
  alignas(struct inotify_event) char buf[16384];
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    struct pollfd p = {ifd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::read(ifd, buf, sizeof buf);
    for (ssize_t off = 0; off < n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(buf + off);
      if (ev->len > 0 && name == ev->name && (ev->mask & (IN_MOVED_TO | IN_CREATE))) return true;
      off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
    }
  }
  return false;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  int samples = argc > 1 ? std::atoi(argv[1]) : 100;
  fs::path base = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path() / "ferry-latency";
  fs::remove_all(base);
  fs::path src = base / "src", dest = base / "dest";
  fs::create_directories(src);
  fs::create_directories(dest);
  for (int i = 0; i < 100; ++i) {  // a directory that is not empty
    FILE* f = std::fopen((src / ("existing" + std::to_string(i))).c_str(), "w");
    std::fputs("x", f);
    std::fclose(f);
  }

  InitialDone observer;
  std::stop_source stop;
  ferry::WatchOptions options;
  options.push.source = src.string();
  options.push.destination = dest.string();
  options.push.observer = &observer;
  options.push.stop = stop.get_token();
  ferry::Report report;
  std::thread watcher([&] { report = ferry::WatchBlocking(options); });
  while (!observer.done) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  // Idle CPU: nothing changes for two seconds.
  double cpu0 = CpuSeconds();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  double idle_cpu = CpuSeconds() - cpu0;

  int ifd = ::inotify_init1(IN_CLOEXEC);
  ::inotify_add_watch(ifd, dest.c_str(), IN_MOVED_TO | IN_CREATE);
  std::vector<char> data(4096, 'q');
  std::vector<double> ms;
  int lost = 0;
  for (int i = 0; i < samples; ++i) {
    std::string name = "sample" + std::to_string(i) + ".bin";
    int fd = ::open((src / name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) return 1;
    ::close(fd);
    auto t0 = Clock::now();
    if (!WaitForName(ifd, name, 5000)) {
      ++lost;
      continue;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // independent samples
  }
  stop.request_stop();
  watcher.join();
  ::close(ifd);
  if (ms.empty()) {
    std::printf("no sample arrived\n");
    return 1;
  }
  std::printf("samples %zu (lost %d): p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  min %.2f  max %.2f\n",
              ms.size(), lost, Percentile(ms, 0.5), Percentile(ms, 0.95), Percentile(ms, 0.99),
              *std::min_element(ms.begin(), ms.end()), *std::max_element(ms.begin(), ms.end()));
  std::printf("batch apply time (in the above): p50 %.2f ms  p95 %.2f ms over %zu batches\n",
              Percentile(observer.batch_ms, 0.5), Percentile(observer.batch_ms, 0.95),
              observer.batch_ms.size());
  std::printf("idle: %.1f ms CPU over 2 s\n", idle_cpu * 1000);
  std::printf("watch report: %s, %llu files sent\n",
              report.ok() ? "ok" : report.fatal_message.c_str(),
              static_cast<unsigned long long>(report.totals.files_sent));
  fs::remove_all(base);
  return 0;
}
