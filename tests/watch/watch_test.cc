// End to end: ferry::WatchBlocking on a background thread, real files on both
// sides, DEST compared byte for byte after each step. Never asserts on timing:
// every wait polls with a generous deadline.
#include "ferry/watch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <stop_token>
#include <thread>

#include "ferry/error.h"
#include "tests/watch/watch_test_util.h"

namespace ferry {
namespace {

using namespace watch_test;

class WatchTest : public ::testing::Test {
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
  }

  void TearDown() override { Stop(); }

  void Start(std::function<void(WatchOptions&)> tweak = {}) {
    WatchOptions options;
    options.push.source = src_.string();
    options.push.destination = dest_.string();
    options.push.observer = &observer_;
    options.push.stop = stop_.get_token();
    if (tweak) tweak(options);
    thread_ = std::thread([this, options = std::move(options)]() mutable {
      report_ = WatchBlocking(std::move(options));
      done_ = true;
    });
    ASSERT_TRUE(WaitFor([this] { return observer_.initial_done() || finished(); }));
    ASSERT_FALSE(finished()) << "watch ended early: " << report_->fatal_message;
  }

  bool finished() const { return done_.load(); }

  Report Stop() {
    if (thread_.joinable()) {
      stop_.request_stop();
      thread_.join();
    }
    return report_.value_or(Report{});
  }

  // DEST equals SRC, and no temporary file is left anywhere.
  ::testing::AssertionResult InSync() {
    bool same = WaitFor([this] { return ReadTree(src_) == ReadTree(dest_); });
    if (!same) {
      Tree s = ReadTree(src_), d = ReadTree(dest_);
      std::string diff;
      for (auto& [k, v] : s) {
        if (d.count(k) == 0)
          diff += " missing:" + k;
        else if (d[k] != v)
          diff += " differs:" + k;
      }
      for (auto& [k, v] : d) {
        if (s.count(k) == 0) diff += " extra:" + k;
      }
      return ::testing::AssertionFailure() << "DEST never matched SRC:" << diff;
    }
    return ::testing::AssertionSuccess();
  }

  fs::path base_, src_, dest_, outside_;
  RecordingObserver observer_;
  std::stop_source stop_;
  std::thread thread_;
  std::optional<Report> report_;
  std::atomic<bool> done_{false};
};

TEST_F(WatchTest, InitialSyncThenCreateModifyAppendDelete) {
  WriteFile(src_ / "before.txt", "initial");
  Start();
  EXPECT_TRUE(InSync());

  WriteFile(src_ / "new.txt", "hello");
  EXPECT_TRUE(InSync());
  WriteFile(src_ / "new.txt", "changed content");
  EXPECT_TRUE(InSync());
  AppendFile(src_ / "new.txt", " and more");
  EXPECT_TRUE(InSync());
  fs::remove(src_ / "before.txt");
  EXPECT_TRUE(InSync());
  fs::create_symlink("new.txt", src_ / "link");
  EXPECT_TRUE(InSync());

  Report r = Stop();
  EXPECT_FALSE(r.fatal) << r.fatal_message;
  EXPECT_FALSE(r.cancelled);
  EXPECT_TRUE(r.problems.empty()) << r.problems.front().message;
  EXPECT_GE(r.totals.files_deleted, 1u);
  EXPECT_GE(observer_.batches().size(), 2u);
}

TEST_F(WatchTest, FileRenameIsReplayedWithoutUpload) {
  WriteFile(src_ / "a" / "big.bin", std::string(1 << 20, 'x'));
  fs::create_directories(src_ / "b");
  Start();
  ASSERT_TRUE(InSync());
  fs::rename(src_ / "a" / "big.bin", src_ / "b" / "moved.bin");
  EXPECT_TRUE(InSync());
  EXPECT_TRUE(WaitFor([&] { return observer_.Count("b/moved.bin", FileAction::kRename) == 1; }));
  EXPECT_EQ(observer_.Count("b/moved.bin", FileAction::kUpload), 0u);
}

TEST_F(WatchTest, DirectoryRenameIsReplayedWithoutUpload) {
  for (int i = 0; i < 20; ++i) {
    WriteFile(src_ / "dir" / "sub" / ("f" + std::to_string(i)), std::string(1000, 'a' + i % 26));
  }
  Start();
  ASSERT_TRUE(InSync());
  fs::rename(src_ / "dir", src_ / "renamed");
  EXPECT_TRUE(InSync());
  EXPECT_EQ(observer_.Count("renamed", FileAction::kRename), 1u);
  for (const FileEvent& e : observer_.files()) {
    EXPECT_FALSE(e.action == FileAction::kUpload && e.path.starts_with("renamed/")) << e.path;
  }
  // The watches followed the rename: changes inside are still seen.
  WriteFile(src_ / "renamed" / "sub" / "later.txt", "later");
  EXPECT_TRUE(InSync());
}

TEST_F(WatchTest, MkdirPWithFilesThenRmR) {
  Start();
  fs::create_directories(src_ / "a" / "b" / "c");
  WriteFile(src_ / "a" / "b" / "c" / "deep.txt", "deep");
  WriteFile(src_ / "a" / "top.txt", "top");
  EXPECT_TRUE(InSync());
  fs::remove_all(src_ / "a");
  EXPECT_TRUE(InSync());
}

TEST_F(WatchTest, DirectoryDeletedAndRecreatedLosesItsOldContent) {
  WriteFile(src_ / "d" / "old1", "1");
  WriteFile(src_ / "d" / "old2", "2");
  Start();
  ASSERT_TRUE(InSync());
  fs::remove_all(src_ / "d");
  fs::create_directories(src_ / "d");
  WriteFile(src_ / "d" / "new", "n");
  EXPECT_TRUE(InSync());
}

TEST_F(WatchTest, DirectoryMovedIntoAndOutOfTheTree) {
  for (int i = 0; i < 10; ++i) {
    WriteFile(outside_ / "pkg" / "lib" / ("m" + std::to_string(i)), std::to_string(i));
  }
  Start();
  fs::rename(outside_ / "pkg", src_ / "pkg");
  EXPECT_TRUE(InSync());
  // Its watches work: a change inside arrives.
  WriteFile(src_ / "pkg" / "lib" / "added", "x");
  EXPECT_TRUE(InSync());
  fs::rename(src_ / "pkg", outside_ / "pkg2");
  EXPECT_TRUE(InSync());
  // Changes in the moved-out directory are no longer followed.
  WriteFile(outside_ / "pkg2" / "after", "x");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(InSync());
}

TEST_F(WatchTest, DeletionsAreCarriedOverWithoutDeleteButDestOnlyEntriesStay) {
  WriteFile(src_ / "keep.txt", "k");
  WriteFile(src_ / "remove.txt", "r");
  WriteFile(dest_ / "dest-only.txt", "mine");
  Start();
  fs::remove(src_ / "remove.txt");
  ASSERT_TRUE(WaitFor([&] { return !fs::exists(dest_ / "remove.txt"); }));
  EXPECT_TRUE(fs::exists(dest_ / "dest-only.txt"));
  EXPECT_TRUE(fs::exists(dest_ / "keep.txt"));
}

TEST_F(WatchTest, ExcludedPathsAreNotSynced) {
  Start([](WatchOptions& o) {
    o.push.filters.push_back({FilterRule::Kind::kExclude, "build/"});
    o.push.filters.push_back({FilterRule::Kind::kExclude, "*.tmp"});
  });
  WriteFile(src_ / "build" / "out.o", "obj");
  WriteFile(src_ / "x.tmp", "t");
  WriteFile(src_ / "real.txt", "r");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(dest_ / "real.txt"); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(fs::exists(dest_ / "build"));
  EXPECT_FALSE(fs::exists(dest_ / "x.tmp"));
}

TEST_F(WatchTest, BurstOfTenThousandSmallFilesAllArrive) {
  Start();
  for (int d = 0; d < 10; ++d) {
    fs::create_directories(src_ / ("d" + std::to_string(d)));
  }
  for (int i = 0; i < 10000; ++i) {
    std::ofstream out(src_ / ("d" + std::to_string(i % 10)) / ("f" + std::to_string(i)));
    out << i;
  }
  EXPECT_TRUE(
      WaitFor([&] { return ReadTree(src_) == ReadTree(dest_); }, std::chrono::seconds(120)));
}

TEST_F(WatchTest, StopDuringALargeUploadLeavesNoTempAndNoPartialFile) {
  Start();
  const std::string big(64 << 20, 'z');
  // Written outside, then renamed in: the file appears complete at once.
  WriteFile(outside_ / "big.bin", big);
  fs::rename(outside_ / "big.bin", src_ / "big.bin");
  // Stop as soon as the upload is visibly under way (or already done).
  WaitFor([&] {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(dest_, ec)) {
      if (e.path().filename().string().starts_with(".ferry-tmp-")) return true;
    }
    return fs::exists(dest_ / "big.bin");
  });
  Report r = Stop();
  EXPECT_FALSE(r.fatal) << r.fatal_message;
  for (auto& e : fs::recursive_directory_iterator(dest_)) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".ferry-tmp-")) << e.path();
  }
  if (fs::exists(dest_ / "big.bin")) {
    EXPECT_EQ(fs::file_size(dest_ / "big.bin"), big.size());
  }
}

TEST_F(WatchTest, RemovingTheSourceEndsTheWatchWithAFatalError) {
  Start();
  fs::remove_all(src_);
  EXPECT_TRUE(WaitFor([&] { return finished(); }));  // ends by itself
  stop_.request_stop();
  thread_.join();
  ASSERT_TRUE(report_.has_value());
  EXPECT_EQ(report_->fatal, errc::kSourceMissing) << report_->fatal_message;
}

TEST_F(WatchTest, SingleFileSource) {
  WriteFile(src_ / "one.txt", "v1");
  WriteFile(src_ / "other.txt", "not watched");
  Start([&](WatchOptions& o) { o.push.source = (src_ / "one.txt").string(); });
  ASSERT_TRUE(WaitFor([&] { return ReadTree(dest_) == Tree{{"one.txt", "F:v1"}}; }));
  WriteFile(src_ / "one.txt", "v2 longer");
  EXPECT_TRUE(WaitFor([&] { return ReadTree(dest_) == Tree{{"one.txt", "F:v2 longer"}}; }));
  WriteFile(src_ / "other.txt", "still not");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(ReadTree(dest_), (Tree{{"one.txt", "F:v2 longer"}}));
}

TEST_F(WatchTest, StopWhileIdleEndsCleanly) {
  Start();
  Report r = Stop();
  EXPECT_TRUE(r.ok()) << r.fatal_message;
}

}  // namespace
}  // namespace ferry
