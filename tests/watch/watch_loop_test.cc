// The watch loop with its test hooks: forced inotify overflows, a tiny dirty
// set, and a fault-injecting destination. Runs watch::RunWatch on an
// io_context thread; polls DEST with deadlines, never asserts on timing.
#include "lib/watch/watch_loop.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <atomic>
#include <cstdlib>
#include <optional>
#include <stop_token>

#include "ferry/error.h"
#include "lib/transport/local/local_destination.h"
#include "tests/watch/watch_test_util.h"

namespace ferry::watch {
namespace {

using namespace watch_test;

// Forwards to a real destination; fails chosen calls. Only touched from the
// loop's thread (the Destination contract), except the atomics the test reads.
class FlakyDestination final : public transport::Destination {
 public:
  explicit FlakyDestination(std::unique_ptr<transport::Destination> inner)
      : inner_(std::move(inner)) {}

  std::atomic<int> fail_creates{0};      // next N CreateFile calls: kConnectionLost
  std::atomic<int> fail_renames{0};      // next N Rename calls: kConnectionLost
  std::atomic<bool> refuse_auth{false};  // Open fails with kAuthFailed
  std::atomic<int> opens{0};

  std::string Describe() const override { return inner_->Describe(); }
  int64_t MtimeGranularityNs() const override { return inner_->MtimeGranularityNs(); }
  asio::awaitable<Status> Open(bool dry_run) override {
    ++opens;
    if (refuse_auth) co_return Status(errc::kAuthFailed, "test");
    co_return co_await inner_->Open(dry_run);
  }
  asio::awaitable<Result<transport::Listing>> List(std::string dir) override {
    co_return co_await inner_->List(std::move(dir));
  }
  asio::awaitable<Status> MakeDir(std::string path, uint32_t mode) override {
    co_return co_await inner_->MakeDir(std::move(path), mode);
  }
  asio::awaitable<Result<std::unique_ptr<transport::FileSink>>> CreateFile(
      std::string path) override {
    if (fail_creates > 0) {
      --fail_creates;
      co_return Error{errc::kConnectionLost, path};
    }
    co_return co_await inner_->CreateFile(std::move(path));
  }
  asio::awaitable<Status> Symlink(std::string path, std::string target) override {
    co_return co_await inner_->Symlink(std::move(path), std::move(target));
  }
  asio::awaitable<Status> Remove(std::string path, EntryType type) override {
    co_return co_await inner_->Remove(std::move(path), type);
  }
  asio::awaitable<Status> Rename(std::string from, std::string to) override {
    if (fail_renames > 0) {
      --fail_renames;
      co_return Status(errc::kConnectionLost, from);
    }
    co_return co_await inner_->Rename(std::move(from), std::move(to));
  }
  asio::awaitable<Result<std::vector<std::byte>>> ReadHead(std::string path,
                                                           size_t max_bytes) override {
    co_return co_await inner_->ReadHead(std::move(path), max_bytes);
  }
  asio::awaitable<Status> ReadAll(std::string path, ChunkFn chunk_fn) override {
    co_return co_await inner_->ReadAll(std::move(path), std::move(chunk_fn));
  }
  asio::awaitable<Status> Close() override { co_return co_await inner_->Close(); }

 private:
  std::unique_ptr<transport::Destination> inner_;
};

class WatchLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    base_ = fs::path(tmp != nullptr ? tmp : "/tmp") /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(base_);
    src_ = base_ / "src";
    dest_ = base_ / "dest";
    outside_ = base_ / "outside";
    fs::create_directories(src_);
    fs::create_directories(outside_);
    config_.engine.source_root = fs::canonical(src_).string();
    config_.engine.observer = &observer_;
    config_.engine.stop = stop_.get_token();
    config_.backoff_min = std::chrono::milliseconds(5);
    config_.backoff_max = std::chrono::milliseconds(50);
    dest_impl_ =
        std::make_unique<FlakyDestination>(transport::MakeLocalDestination(dest_.string(), pool_));
  }

  void TearDown() override {
    Stop();
    pool_.join();
  }

  void Start() {
    thread_ = std::thread([this] {
      asio::io_context io(1);
      asio::co_spawn(io, RunWatch(config_, *dest_impl_, pool_),
                     [this](std::exception_ptr e, Report r) {
                       if (e) {
                         failed_ = true;
                         return;
                       }
                       report_ = std::move(r);
                     });
      io.run();
      done_ = true;
    });
    ASSERT_TRUE(WaitFor([this] { return observer_.initial_done() || done_; }));
    ASSERT_FALSE(done_.load());
  }

  Report Stop() {
    if (thread_.joinable()) {
      stop_.request_stop();
      thread_.join();
    }
    EXPECT_FALSE(failed_) << "RunWatch threw";
    return report_.value_or(Report{});
  }

  bool SameExcept(const std::string& dest_only) {
    Tree d = ReadTree(dest_);
    d.erase(dest_only);
    return ReadTree(src_) == d;
  }

  fs::path base_, src_, dest_, outside_;
  asio::thread_pool pool_{4};
  LoopConfig config_;
  std::unique_ptr<FlakyDestination> dest_impl_;
  RecordingObserver observer_;
  std::stop_source stop_;
  std::thread thread_;
  std::optional<Report> report_;
  std::atomic<bool> done_{false};
  bool failed_ = false;
};

TEST_F(WatchLoopTest, ForcedOverflowStillEndsConsistentAndKeepsDestOnlyEntries) {
  WriteFile(src_ / "keep" / "a.txt", "a");
  WriteFile(src_ / "doomed.txt", "d");
  WriteFile(src_ / "old" / "x.txt", "x");
  WriteFile(dest_ / "dest-only.txt", "mine");
  // Every other read() is dropped and reported as IN_Q_OVERFLOW, starting with
  // the first: all the changes below may well arrive in a single read.
  auto reads = std::make_shared<std::atomic<int>>(0);
  config_.drop_read_as_overflow = [reads] { return (++*reads % 2) == 1; };
  Start();
  for (int round = 0; round < 5; ++round) {
    std::string r = std::to_string(round);
    fs::create_directories(src_ / ("new" + r) / "deep");
    WriteFile(src_ / ("new" + r) / "deep" / "f.txt", "round " + r);
    WriteFile(src_ / "keep" / "a.txt", "a" + r);
  }
  fs::remove(src_ / "doomed.txt");
  fs::rename(src_ / "old", src_ / "renamed");
  EXPECT_TRUE(WaitFor([&] { return SameExcept("dest-only.txt"); }));
  EXPECT_TRUE(fs::exists(dest_ / "dest-only.txt"));  // no --delete: stays
  bool rescanned = false;
  for (const BatchSummary& b : observer_.batches()) rescanned = rescanned || b.full_rescan;
  EXPECT_TRUE(rescanned);
  Report r = Stop();
  EXPECT_FALSE(r.fatal) << r.fatal_message;
  EXPECT_TRUE(r.problems.empty()) << r.problems.front().message;
}

// A directory created in a new directory after the watcher listed it, and
// reported before that listing reached the watcher, is watched too. Was a
// defect: its IN_CREATE came from a watch the watcher did not know yet and was
// dropped, so nothing written in it afterwards ever synced (seen with mkdir -p
// followed by writes, one run in four of a 1,000-file burst).
TEST_F(WatchLoopTest, DirectoryCreatedWhileItsParentIsWalkedIsWatchedToo) {
  const fs::path late = src_ / "top" / "late";
  config_.walk_listed = [late](const std::string& rel) {
    if (rel != "top") return;
    fs::create_directories(late);
    // Time for the loop to read the IN_CREATE before this walk lands (and to
    // send top/ once already: a batch waits for a walk at most max_delay).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  };
  config_.max_delay = std::chrono::milliseconds(20);
  Start();
  fs::create_directories(src_ / "top");
  // The initial sync, top/ sent while walked, and again once the walk landed:
  // what comes after that is news.
  ASSERT_TRUE(WaitFor(
      [&] { return fs::is_directory(dest_ / "top" / "late") && observer_.batches().size() >= 3; }));
  WriteFile(late / "f.txt", "written once the directory was synced");
  EXPECT_TRUE(WaitFor([&] { return ReadTree(src_) == ReadTree(dest_); }));
}

// A directory moved out of a new directory while the watcher walks it, to a
// place whose own walk lands first, is known by its new path. Was a defect
// (a soak run, about one in twenty under TSan): the older walk landed last and
// put back the old path for the moved directory's watch, so what was created
// in it afterwards was recorded under a path that no longer existed and never
// synced.
TEST_F(WatchLoopTest, DirectoryMovedOutOfADirectoryBeingWalkedKeepsItsNewPath) {
  fs::create_directories(src_ / "q");
  fs::create_directories(outside_ / "top" / "x");
  auto moved_walk_listed = std::make_shared<std::atomic<bool>>(false);
  auto top_walk_listed = std::make_shared<std::atomic<bool>>(false);
  const fs::path from = src_ / "top" / "x";
  const fs::path to = src_ / "q" / "x";
  config_.walk_listed = [from, to, moved_walk_listed, top_walk_listed](const std::string& rel) {
    if (rel == "q/x") *moved_walk_listed = true;
    if (rel != "top") return;
    fs::rename(from, to);
    // The move's walk (q/x) runs on another pool thread: let it land first.
    for (int i = 0; i < 200 && !*moved_walk_listed; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    *top_walk_listed = true;
  };
  Start();
  // Moved in whole, so that top's walk is the one that watches top/x.
  fs::rename(outside_ / "top", src_ / "top");
  ASSERT_TRUE(WaitFor([&] { return top_walk_listed->load(); }));
  EXPECT_TRUE(*moved_walk_listed);
  // The walk's result reaches the watcher right after the hook returns.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(WaitFor([&] { return ReadTree(src_) == ReadTree(dest_); }));
  WriteFile(to / "f.txt", "written in the moved directory");
  fs::create_symlink("f.txt", to / "l");
  EXPECT_TRUE(WaitFor([&] { return ReadTree(src_) == ReadTree(dest_); }));
}

TEST_F(WatchLoopTest, TinyDirtySetDegradesToFullRescanAndStaysConsistent) {
  config_.max_dirty = 4;
  Start();
  for (int i = 0; i < 200; ++i) {
    WriteFile(src_ / ("d" + std::to_string(i % 20)) / ("f" + std::to_string(i)), "x");
  }
  EXPECT_TRUE(WaitFor([&] { return ReadTree(src_) == ReadTree(dest_); }));
  bool rescanned = false;
  for (const BatchSummary& b : observer_.batches()) rescanned = rescanned || b.full_rescan;
  EXPECT_TRUE(rescanned);
}

TEST_F(WatchLoopTest, TransientDestinationErrorsAreRetriedNotFatal) {
  WriteFile(src_ / "a.txt", "a");
  Start();
  ASSERT_TRUE(WaitFor([&] { return ReadTree(src_) == ReadTree(dest_); }));
  // More failures than the engine's own per-file retries: the loop must retry.
  dest_impl_->fail_creates = 10;
  WriteFile(src_ / "b.txt", "b");
  EXPECT_TRUE(WaitFor([&] { return ReadTree(src_) == ReadTree(dest_); }));
  dest_impl_->fail_renames = 1;
  fs::rename(src_ / "a.txt", src_ / "c.txt");
  EXPECT_TRUE(WaitFor([&] { return ReadTree(src_) == ReadTree(dest_); }));
  Report r = Stop();
  EXPECT_FALSE(r.fatal) << r.fatal_message;
  EXPECT_TRUE(r.problems.empty()) << r.problems.front().message;
}

// A full rescan (events were lost) that meets a transient destination error
// is retried like any other batch. Was a defect: the rescan was taken from the
// dirty set and never put back, so the changes whose events were lost did not
// sync until some later overflow.
TEST_F(WatchLoopTest, FullRescanInterruptedByATransientErrorIsRetried) {
  WriteFile(src_ / "a.txt", "a");
  auto lose_events = std::make_shared<std::atomic<bool>>(false);
  config_.drop_read_as_overflow = [lose_events] { return lose_events->load(); };
  Start();
  ASSERT_TRUE(WaitFor([&] { return ReadTree(src_) == ReadTree(dest_); }));
  dest_impl_->fail_creates = 1000;  // the connection is down
  *lose_events = true;              // and b.txt's events are lost
  WriteFile(src_ / "b.txt", "b");
  auto rescans = [&] {
    size_t n = 0;
    for (const BatchSummary& b : observer_.batches()) n += b.full_rescan ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return rescans() >= 1; }));  // failed: b.txt could not be sent
  *lose_events = false;
  dest_impl_->fail_creates = 0;  // the connection is back
  EXPECT_TRUE(WaitFor([&] { return ReadTree(src_) == ReadTree(dest_); }));
  // b.txt lands before the rescan's batch is reported: wait for the report.
  EXPECT_TRUE(WaitFor([&] { return rescans() >= 2; }));
  Report r = Stop();
  EXPECT_FALSE(r.fatal) << r.fatal_message;
  EXPECT_TRUE(r.problems.empty()) << r.problems.front().message;
}

// Exact mtime of `p`, ns since the epoch.
int64_t MtimeNs(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return -1;
  return int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Over a destination that keeps whole seconds of mtime (SFTP v3; the plan's
// granularity simulates it here), a file rewritten with the same size in the
// second of the copy the watch just sent is sent again, also when its
// directory is planned from listings (no inotify hint). Was a defect: size and
// truncated mtime matched, the rewrite was skipped and DEST kept the old
// content for good (seen in the forced-overflow test over SFTP).
TEST_F(WatchLoopTest, SameSizeRewriteInTheSecondOfTheLastUploadIsSentOverCoarseMtimes) {
  config_.engine.plan.mtime_granularity_ns = 1'000'000'000;
  Start();
  for (int attempt = 0;; ++attempt) {
    ASSERT_LT(attempt, 10) << "never fitted an upload and a rewrite in one second";
    const std::string name = "f" + std::to_string(attempt);
    // Start early in a second, the upload and the rewrite must fit in it; not
    // at its very start: file times come from a coarse clock that lags a tick.
    const auto into = std::chrono::system_clock::now().time_since_epoch() % std::chrono::seconds(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1050) - into);
    WriteFile(src_ / name, "v1");
    ASSERT_TRUE(WaitFor([&] { return ReadTree(dest_)[name] == "F:v1"; }));
    // Moved in whole from outside: no hint, the directory is planned from listings.
    WriteFile(outside_ / name, "v2");
    const int64_t sent = MtimeNs(src_ / name);
    const int64_t rewritten = MtimeNs(outside_ / name);
    fs::rename(outside_ / name, src_ / name);
    if (sent / 1'000'000'000 != rewritten / 1'000'000'000) continue;  // a second passed
    EXPECT_TRUE(WaitFor([&] { return ReadTree(dest_)[name] == "F:v2"; }));
    break;
  }
  Report r = Stop();
  EXPECT_FALSE(r.fatal) << r.fatal_message;
  EXPECT_TRUE(r.problems.empty()) << r.problems.front().message;
}

TEST_F(WatchLoopTest, AuthFailureOnReconnectEndsTheWatch) {
  Start();
  // The connection drops; reconnecting is then refused.
  dest_impl_->fail_creates = 100;
  dest_impl_->refuse_auth = true;
  WriteFile(src_ / "a.txt", "a");
  ASSERT_TRUE(WaitFor([&] { return done_.load(); }));
  Report r = Stop();
  EXPECT_EQ(r.fatal, errc::kAuthFailed) << r.fatal_message;
}

TEST_F(WatchLoopTest, IdleLoopDoesNoDestinationWork) {
  WriteFile(src_ / "a.txt", "a");
  Start();
  int opens = dest_impl_->opens;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(dest_impl_->opens.load(), opens);  // no polling
}

}  // namespace
}  // namespace ferry::watch
