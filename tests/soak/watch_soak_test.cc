// Soak: ferry::Watch to a local DEST, and to a real sshd over SFTP, while a
// seeded random workload creates, rewrites, appends to, renames, deletes,
// chmods and symlinks files and creates and removes directories for
// FERRY_SOAK_SECONDS (default 20 locally, 10 over SFTP). Then the writing stops
// and DEST must converge to a byte-for-byte copy of SRC (content, permission
// bits, file mtimes: to the second over SFTP v3, symlink targets) with no
// temporary file left. Every failure names the seed; rerun with
// FERRY_SOAK_SEED=<seed> to replay the same sequence of operations (the
// interleaving with ferry's batches differs).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "ferry/observer.h"
#include "ferry/watch.h"
#include "tests/soak/soak_common.h"
#include "tests/sshd/sshd_fixture.h"
#include "tests/testing/tree.h"

namespace ferry::soak {
namespace {

namespace fs = std::filesystem;
namespace t = ferry::testing;
using Clock = std::chrono::steady_clock;

class InitialSyncObserver final : public Observer {
 public:
  void OnBatch(const BatchSummary& batch) override {
    if (batch.initial) initial_done_ = true;
    batches_.fetch_add(1);
  }
  bool initial_done() const { return initial_done_.load(); }
  uint64_t batches() const { return batches_.load(); }

 private:
  std::atomic<bool> initial_done_{false};
  std::atomic<uint64_t> batches_{0};
};

// The random workload on a source tree. Single-threaded; every filesystem
// error is ignored (an operation may race with nothing but itself, so errors
// only come from choices like "rename a directory into its own child").
class Churn {
 public:
  Churn(std::string root, uint64_t seed) : root_(std::move(root)), rng_(seed) {}

  void Step() {
    Scan();
    const size_t entries = files_.size() + dirs_.size() + links_.size();
    // Keep the tree around kMaxEntries: over it, only shrink.
    const int op = entries > kMaxEntries ? Pick(3) + 7 : Pick(10);
    switch (op) {
      case 0:
      case 1:
        Create();
        break;
      case 2:
        Modify();
        break;
      case 3:
        Append();
        break;
      case 4:
        MakeDir();
        break;
      case 5:
        Symlink();
        break;
      case 6:
        Chmod();
        break;
      case 7:
        Rename();
        break;
      case 8:
        Delete();
        break;
      case 9:
        RemoveDir();
        break;
    }
    ++ops_;
  }

  uint64_t ops() const { return ops_; }

 private:
  static constexpr size_t kMaxEntries = 300;

  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  template <typename T>
  const T& PickOf(const std::vector<T>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng_)];
  }
  std::string Path(const std::string& rel) const { return rel.empty() ? root_ : root_ + "/" + rel; }
  std::string NewName(const std::string& dir, char kind) {
    const std::string name = std::string(1, kind) + std::to_string(next_++);
    return dir.empty() ? name : dir + "/" + name;
  }
  std::string Content() {
    // Mostly small; now and then large enough to span several reads/chunks.
    const size_t n = Pick(10) == 0 ? 256 * 1024 + Pick(768 * 1024) : Pick(16 * 1024);
    return t::RandomBytes(n, static_cast<uint32_t>(rng_()));
  }

  void Scan() {
    files_.clear();
    dirs_ = {""};
    links_.clear();
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      const std::string rel = fs::relative(it->path(), root_, ec).string();
      if (it->is_symlink(ec)) {
        links_.push_back(rel);
      } else if (it->is_directory(ec)) {
        dirs_.push_back(rel);
      } else {
        files_.push_back(rel);
      }
    }
  }

  void Create() {
    const std::string dir = PickOf(dirs_);
    if (std::count(dir.begin(), dir.end(), '/') >= 3) return;
    WriteAll(Path(NewName(dir, 'f')), Content(), std::ios::trunc);
  }
  void Modify() {
    if (!files_.empty()) WriteAll(Path(PickOf(files_)), Content(), std::ios::trunc);
  }
  void Append() {
    if (!files_.empty()) WriteAll(Path(PickOf(files_)), Content(), std::ios::app);
  }
  void WriteAll(const std::string& path, const std::string& content, std::ios::openmode mode) {
    std::ofstream out(path, std::ios::binary | std::ios::out | mode);
    out << content;
  }
  void MakeDir() {
    const std::string dir = PickOf(dirs_);
    if (std::count(dir.begin(), dir.end(), '/') >= 3) return;
    std::error_code ec;
    fs::create_directory(Path(NewName(dir, 'd')), ec);
  }
  void Symlink() {
    // A sibling file's name (resolves) or a name that does not exist (dangling);
    // never a directory, so no loops.
    const std::string dir = PickOf(dirs_);
    std::string target = "missing-" + std::to_string(next_);
    if (!files_.empty() && Pick(2) == 0) target = fs::path(PickOf(files_)).filename().string();
    std::error_code ec;
    fs::create_symlink(target, Path(NewName(dir, 'l')), ec);
  }
  // A new mode, alone (same size and mtime: only the mode tells) or together
  // with new data.
  void Chmod() {
    if (files_.empty()) return;
    static constexpr mode_t kModes[] = {0600, 0640, 0644, 0755};
    const std::string path = Path(PickOf(files_));
    ::chmod(path.c_str(), kModes[Pick(4)]);
    if (Pick(2) == 0) WriteAll(path, Content(), std::ios::app);
  }
  void Rename() {
    std::error_code ec;
    const std::string to_dir = PickOf(dirs_);
    if (Pick(4) == 0 && dirs_.size() > 1) {
      const std::string from = PickOf(dirs_);
      // Not the root, not into itself or a child of itself, not too deep.
      if (from.empty() || to_dir == from || to_dir.starts_with(from + "/")) return;
      if (std::count(to_dir.begin(), to_dir.end(), '/') >= 2) return;
      fs::rename(Path(from), Path(NewName(to_dir, 'd')), ec);
      return;
    }
    std::vector<std::string> movable = files_;
    movable.insert(movable.end(), links_.begin(), links_.end());
    if (movable.empty()) return;
    const std::string from = PickOf(movable);
    // Sometimes onto an existing file: rename(2) replaces it atomically.
    const std::string to = Pick(3) == 0 && !files_.empty() ? PickOf(files_) : NewName(to_dir, 'f');
    fs::rename(Path(from), Path(to), ec);
  }
  void Delete() {
    std::vector<std::string> victims = files_;
    victims.insert(victims.end(), links_.begin(), links_.end());
    std::error_code ec;
    if (!victims.empty()) fs::remove(Path(PickOf(victims)), ec);
  }
  void RemoveDir() {
    if (dirs_.size() < 2) return;
    const std::string dir = PickOf(dirs_);
    if (dir.empty()) return;
    std::error_code ec;
    if (Pick(2) == 0) {
      fs::remove_all(Path(dir), ec);  // a whole subtree at once
    } else {
      fs::remove(Path(dir), ec);  // rmdir: only when empty
    }
  }

  std::string root_;
  std::mt19937_64 rng_;
  std::vector<std::string> files_, dirs_, links_;
  uint64_t next_ = 0;
  uint64_t ops_ = 0;
};

class WatchSoakTest : public ::testing::TestWithParam<Where> {};

TEST_P(WatchSoakTest, RandomWorkloadConvergesToIdenticalTree) {
  const bool sftp = GetParam() == Where::kSftp;
  const uint64_t seed = Seed();
  // Over SFTP every change costs round trips to sshd: a shorter default keeps
  // the suite's time in check (FERRY_SOAK_SECONDS still sets both).
  const int seconds = Seconds(sftp ? 10 : 20);
  std::printf("%s, %d s of writes\n", ReplayHint(seed).c_str(), seconds);
  SCOPED_TRACE(ReplayHint(seed));

  const std::string src = t::MakeTempDir("src");
  std::unique_ptr<t::TestSshd> sshd;
  std::string dst = t::MakeTempDir("dst") + "/dest";
  WatchOptions options;
  if (sftp) {
    sshd = std::make_unique<t::TestSshd>();
    Status started = sshd->Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
    dst = sshd->root() + "/dest";
    options.push.destination =
        "sftp://" + sshd->user() + "@127.0.0.1:" + std::to_string(sshd->port()) + dst;
    options.push.ssh.known_hosts = sshd->known_hosts();
    options.push.ssh.identity_files = {sshd->user_key()};
    options.push.ssh.config_file = "none";
    options.push.ssh.use_agent = false;
  } else {
    options.push.destination = dst;
  }
  // SFTP v3 carries whole seconds of mtime.
  const int64_t granularity_ns = sftp ? 1'000'000'000 : 1;
  Churn churn(src, seed);
  for (int i = 0; i < 100; ++i) churn.Step();  // something for the initial sync

  InitialSyncObserver observer;
  std::stop_source stop;
  options.push.source = src;
  options.push.observer = &observer;
  options.push.stop = stop.get_token();
  Report report;
  std::atomic<bool> done{false};
  std::thread watcher([&report, &done, options]() mutable {
    report = WatchBlocking(std::move(options));
    done = true;
  });
  const auto wait_for = [](const auto& pred, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;  // a hang guard, not a timed assertion
    while (!pred() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
  };
  const auto stop_watch = [&] {
    stop.request_stop();
    if (watcher.joinable()) watcher.join();
  };
  // Whatever ends the test (a throwing helper included) stops the watch first.
  struct Joiner {
    std::function<void()> fn;
    ~Joiner() { fn(); }
  } joiner{stop_watch};
  if (!wait_for([&] { return observer.initial_done() || done.load(); },
                std::chrono::seconds(120)) ||
      done.load()) {
    stop_watch();
    FAIL() << "initial sync never finished: " << report.fatal_message;
  }

  // The workload, paced at a few hundred operations a second.
  std::mt19937 pace(static_cast<uint32_t>(seed));
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < end && !done.load()) {
    churn.Step();
    std::this_thread::sleep_for(std::chrono::microseconds(pace() % 4000));
  }
  const uint64_t batches_during = observer.batches();

  // Directory and symlink mtimes are not carried over (README: what is synced).
  const t::CompareOptions compare{.ignore_dir_mtime = true, .ignore_symlink_mtime = true};
  std::vector<std::string> diff;
  const bool synced = wait_for(
      [&] {
        try {
          diff = CompareTreesAt(src, dst, compare, granularity_ns);
          return (diff.empty() && t::FindTemps(dst).empty()) || done.load();
        } catch (const std::exception& e) {
          // DEST changed under the walk (a temp renamed away): not settled yet.
          diff = {e.what()};
          return done.load();
        }
      },
      std::chrono::seconds(120));
  stop_watch();
  std::printf("%llu operations, %llu batches while writing, %llu in all\n",
              static_cast<unsigned long long>(churn.ops()),
              static_cast<unsigned long long>(batches_during),
              static_cast<unsigned long long>(observer.batches()));

  EXPECT_FALSE(report.fatal) << report.fatal_message;
  ASSERT_TRUE(synced && diff.empty()) << "DEST never matched SRC; first differences:\n"
                                      << [&] {
                                           std::string s;
                                           for (size_t i = 0; i < diff.size() && i < 20; ++i) {
                                             s += "  " + diff[i] + "\n";
                                           }
                                           return s;
                                         }();
  EXPECT_EQ(t::FindTemps(dst), std::vector<std::string>{});
  EXPECT_EQ(CompareTreesAt(src, dst, compare, granularity_ns), std::vector<std::string>{});
  if (HasFailure() && sshd != nullptr) std::fprintf(stderr, "sshd log:\n%s\n", sshd->Log().c_str());
}

INSTANTIATE_TEST_SUITE_P(Both, WatchSoakTest, ::testing::Values(Where::kLocal, Where::kSftp),
                         WhereName);

}  // namespace
}  // namespace ferry::soak
