// The watch-mode columns of the fault matrix (issue #8, docs/RELIABILITY.md):
// each case starts ferry::WatchBlocking against a local directory AND a real
// sshd, waits for the initial sync, and only then injects the fault while the
// watch is running: a read-only or unlistable destination directory, a full
// destination disk, a source file growing or rewritten while it is uploaded,
// hostile names and names too long, a file where the source creates a
// directory and the other way round, source directory chmods and removals,
// symlink loops and directory cycles (with and without -L), and the CLI
// killed or interrupted. The watch must report per-file problems through the
// Observer and keep running, leave nothing partial under a final name, and
// converge once the fault is gone; a destination root that is a file ends it
// at start.
//
// Never asserts on timing: every wait polls with a generous deadline (a hang
// guard only).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <thread>

#include "ferry/error.h"
#include "ferry/watch.h"
#include "tests/faults/fault_util.h"
#include "tests/testing/ferry_process.h"
#include "tests/testing/private_mounts.h"
#include "tests/watch/watch_test_util.h"

namespace ferry::faults {
namespace {

using watch_test::RecordingObserver;
using watch_test::WaitFor;

bool g_permissions_apply = false;
std::string g_no_mounts_reason = "not started";  // "" once in a private mount namespace

constexpr auto kGuard = std::chrono::seconds(30);

// A destination directory ferry owns gets the source directory's mode back, so
// the permission faults use directories of another owner, which ferry may not
// chmod (as push_faults_test does).
constexpr uid_t kNobody = 65534;

// A FaultTest whose destination is fed by a running watch.
class WatchFaultTest : public FaultTest {
 protected:
  void TearDown() override {
    StopWatch();
    FaultTest::TearDown();
  }

  // Starts the watch and waits for its initial sync. `tweak` adjusts the
  // options (-L, --delete, compression, ...).
  void StartWatch(int jobs = 0, const std::function<void(PushOptions&)>& tweak = {}) {
    const size_t initial_before = InitialBatches();
    Launch(jobs, tweak);
    ASSERT_TRUE(WaitFor([&] { return InitialBatches() > initial_before || finished(); },
                        std::chrono::seconds(60)));
    ASSERT_FALSE(finished()) << "watch ended early: " << report_->fatal_message;
  }

  // Starts a watch that must end by itself (a fatal error at start) and
  // returns its report; a watch still running after 60 s is stopped and fails
  // the test.
  Report WatchUntilItEnds() {
    Launch(0, {});
    EXPECT_TRUE(WaitFor([this] { return finished(); }, std::chrono::seconds(60)))
        << "the watch did not end by itself";
    return StopWatch();
  }

  // Stops a running watch and makes the fixture ready for another one (the
  // observer keeps every event of both).
  Report StopForRestart() {
    Report r = StopWatch();
    stop_ = std::stop_source();
    report_.reset();
    done_ = false;
    return r;
  }

  bool finished() const { return done_.load(); }

  Report StopWatch() {
    if (thread_.joinable()) {
      stop_.request_stop();
      thread_.join();
    }
    return report_.value_or(Report{});
  }

  size_t InitialBatches() const {
    size_t n = 0;
    for (const BatchSummary& b : observer_.batches()) n += b.initial ? 1 : 0;
    return n;
  }

  // Waits until DEST matches SRC: types, modes, contents, link targets (mtimes
  // are checked by the suites that own them; SFTP v3 keeps only seconds).
  ::testing::AssertionResult Converges() {
    auto differences = [this] {
      std::vector<std::string> out;
      std::map<std::string, t::NodeInfo> src, dst;
      try {
        src = t::Snapshot(src_);
        dst = t::Snapshot(dst_);
      } catch (const std::exception& e) {
        // A temp renamed away between the listing and its read: not yet settled.
        return std::vector<std::string>{std::string("snapshot raced: ") + e.what()};
      }
      for (const auto& [path, info] : src) {
        auto it = dst.find(path);
        if (it == dst.end()) {
          out.push_back("missing in dst: " + path);
        } else if (info.type != it->second.type) {
          out.push_back("type differs: " + path);
        } else if (info.mode != it->second.mode || info.content != it->second.content ||
                   info.target != it->second.target) {
          out.push_back("differs: " + path);
        }
      }
      for (const auto& [path, info] : dst) {
        if (src.count(path) == 0) out.push_back("extra in dst: " + path);
      }
      return out;
    };
    if (WaitFor([&] { return differences().empty(); }, kGuard)) {
      return ::testing::AssertionSuccess();
    }
    std::string diff;
    for (const std::string& d : differences()) diff += "\n  " + d;
    for (const FileEvent& e : observer_.files()) {
      diff += std::string("\n  event: ") + FileActionName(e.action) + " " + OutcomeName(e.outcome) +
              " '" + e.path + "' " + e.message;
    }
    Report r = StopWatch();
    diff += "\n  report: " + Describe(r);
    return ::testing::AssertionFailure() << "DEST never matched SRC:" << diff;
  }

  // The failed file events seen so far for `path`.
  std::vector<FileEvent> Failures(const std::string& path) const {
    std::vector<FileEvent> out;
    for (const FileEvent& e : observer_.files()) {
      if (e.path == path && e.outcome == Outcome::kFailed) out.push_back(e);
    }
    return out;
  }

  bool HasFailed(const std::string& path) const { return !Failures(path).empty(); }

  // Every file event so far, one a line (for failure messages).
  std::string Events() const {
    std::string out;
    for (const FileEvent& e : observer_.files()) {
      out += std::string("\n  event: ") + FileActionName(e.action) + " " + OutcomeName(e.outcome) +
             " '" + e.path + "' " + e.reason + " " + e.message;
    }
    return out;
  }

  // Every failed file event seen so far.
  std::vector<FileEvent> AllFailures() const {
    std::vector<FileEvent> out;
    for (const FileEvent& e : observer_.files()) {
      if (e.outcome == Outcome::kFailed) out.push_back(e);
    }
    return out;
  }

  // Puts `content` at source path `rel` whole: written beside the tree (same
  // file system) and renamed in, so the watch can never read a half-written
  // version of it.
  void WriteWhole(const std::string& rel, const std::string& content) {
    if (staging_.empty()) staging_ = t::MakeTempDir("staging");
    const std::string tmp = staging_ + "/next";
    watch_test::WriteFile(tmp, content);
    ASSERT_EQ(::rename(tmp.c_str(), S(rel).c_str()), 0) << std::strerror(errno);
  }

  // Replaces a source file by a new inode with the same content (a new mtime):
  // a fresh change for the watch.
  void Touch(const std::string& rel) { WriteWhole(rel, t::ReadFile(S(rel))); }

  // While the watch runs: no final name holds anything but a state its source
  // passed through (temps may be in flight; a snapshot that races with one
  // being renamed away throws, and that round is skipped). The temp check is
  // ExpectNothingPartial's, once the watch has converged.
  void ExpectNothingPartialWhileRunning(
      const std::map<std::string, std::vector<std::string>>& alternatives, bool prefixes_ok) {
    std::map<std::string, t::NodeInfo> dst;
    try {
      dst = t::Snapshot(dst_);
    } catch (const std::exception&) {
      return;  // an entry vanished between the listing and its lstat
    }
    for (const auto& [path, info] : dst) {
      if (info.type != 'f' || path.find(".ferry-tmp-") != std::string::npos) continue;
      std::vector<std::string> allowed;
      auto alt = alternatives.find(path);
      if (alt != alternatives.end()) {
        allowed = alt->second;
      } else if (t::Exists(S(path))) {
        allowed = {t::ReadFile(S(path))};
      }
      bool matches = false;
      for (const std::string& c : allowed) {
        matches = matches || c == info.content ||
                  (prefixes_ok && c.compare(0, info.content.size(), info.content) == 0);
      }
      EXPECT_TRUE(matches) << "torn or foreign content under final name: " << path << " ("
                           << info.size << " bytes)";
    }
  }

  void Launch(int jobs, const std::function<void(PushOptions&)>& tweak) {
    WatchOptions options;
    options.push = Options();
    if (jobs > 0) options.push.jobs = jobs;
    if (tweak) tweak(options.push);
    options.push.observer = &observer_;
    options.push.stop = stop_.get_token();
    if (sftp()) options.push.ssh.connect_timeout = std::chrono::seconds(10);
    thread_ = std::thread([this, options = std::move(options)]() mutable {
      report_ = WatchBlocking(std::move(options));
      done_ = true;
    });
  }

  std::string staging_;

  RecordingObserver observer_;
  std::stop_source stop_;
  std::thread thread_;
  std::optional<Report> report_;
  std::atomic<bool> done_{false};
};

// --- 1. permission denied on a destination directory -----------------------

class WatchPermissionTest : public WatchFaultTest {
 protected:
  void SetUp() override {
    if (!g_permissions_apply) GTEST_SKIP() << "permission bits do not bind this process";
    WatchFaultTest::SetUp();
  }
  void TearDown() override {
    for (const char* dir : {"locked", "sealed"}) {
      if (t::Exists(D(dir))) (void)::chown(D(dir).c_str(), ::geteuid(), ::getegid());
    }
    if (t::Exists(D("sealed"))) (void)::chmod(D("sealed").c_str(), 0755);
    WatchFaultTest::TearDown();
  }
};

TEST_P(WatchPermissionTest, ReadOnlyDestinationDirectoryFailsItsFilesTheWatchGoesOnAndConverges) {
  t::WriteFile(S("locked/old"), "old");
  t::WriteFile(S("free/keep"), "keep");
  StartWatch();
  ASSERT_TRUE(Converges());

  // Read-only to ferry because another user owns it (a directory ferry owns
  // would get the source's mode back), with the source's mode: no chmod is due.
  ASSERT_EQ(::chown(D("locked").c_str(), kNobody, kNobody), 0) << std::strerror(errno);
  watch_test::WriteFile(S("locked/a"), "new a");
  watch_test::WriteFile(S("locked/b"), "new b");
  watch_test::WriteFile(S("free/c"), "lands");
  ASSERT_TRUE(WaitFor([&] { return HasFailed("locked/a") && HasFailed("locked/b"); }, kGuard));
  for (const char* path : {"locked/a", "locked/b"}) {
    const FileEvent e = Failures(path).front();
    EXPECT_EQ(e.error, std::errc::permission_denied) << e.message;
    EXPECT_NE(e.message.find(path), std::string::npos) << e.message;
    EXPECT_FALSE(t::Exists(D(path))) << path;
  }
  EXPECT_TRUE(WaitFor([&] { return t::Exists(D("free/c")); }, kGuard));
  EXPECT_FALSE(finished()) << "watch ended on a per-file error: " << report_->fatal_message;
  EXPECT_EQ(t::ReadFile(D("locked/old")), "old");
  ExpectNothingPartialWhileRunning({}, false);

  // The directory is writable again: a further change brings everything over.
  ASSERT_EQ(::chown(D("locked").c_str(), ::geteuid(), ::getegid()), 0);
  Touch("locked/a");
  Touch("locked/b");
  EXPECT_TRUE(Converges());
  EXPECT_FALSE(finished());
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});
}

// A destination file ferry cannot write (0444) is replaced by a rename, as a
// push does: its bits never stop the new version.
TEST_P(WatchPermissionTest, ReadOnlyDestinationFileIsReplacedByRename) {
  t::WriteFile(S("f"), "version 1");
  t::WriteFile(S("other"), "other");
  StartWatch();
  ASSERT_TRUE(Converges());

  ASSERT_EQ(::chmod(D("f").c_str(), 0444), 0) << std::strerror(errno);
  ASSERT_EQ(::open(D("f").c_str(), O_WRONLY), -1) << "0444 does not bind";
  WriteWhole("f", "version 2, longer than the first");
  EXPECT_TRUE(Converges());
  EXPECT_EQ(t::ReadFile(D("f")), "version 2, longer than the first");
  EXPECT_TRUE(Failures("f").empty()) << Failures("f").front().message;
  EXPECT_FALSE(finished());
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ExpectNothingPartial();
}

// A source file nobody may read (0000) created during the watch is reported
// per file (EACCES + its path); the watch goes on, and once readable and
// touched it arrives.
TEST_P(WatchPermissionTest, UnreadableSourceFileIsReportedTheWatchGoesOnAndItArrivesWhenReadable) {
  t::WriteFile(S("seed"), "seed");
  StartWatch();
  ASSERT_TRUE(Converges());

  // Written and made 0000 beside the tree, then renamed in: it never shows up
  // readable.
  if (staging_.empty()) staging_ = t::MakeTempDir("staging");
  watch_test::WriteFile(staging_ + "/secret", "hidden until chmod");
  ASSERT_EQ(::chmod((staging_ + "/secret").c_str(), 0000), 0) << std::strerror(errno);
  ASSERT_EQ(::rename((staging_ + "/secret").c_str(), S("secret").c_str()), 0)
      << std::strerror(errno);
  // A change after it: the watch must not stop at the unreadable file.
  watch_test::WriteFile(S("after"), "after");
  ASSERT_TRUE(WaitFor([&] { return HasFailed("secret"); }, kGuard));
  const FileEvent e = Failures("secret").front();
  EXPECT_EQ(e.error, std::errc::permission_denied) << e.message;
  EXPECT_NE(e.message.find("secret"), std::string::npos) << e.message;
  EXPECT_TRUE(WaitFor([&] { return t::Exists(D("after")); }, kGuard));
  EXPECT_FALSE(finished()) << "watch ended on an unreadable source: " << report_->fatal_message;
  ExpectNothingPartialWhileRunning({{"secret", {"hidden until chmod"}}}, false);

  ASSERT_EQ(::chmod(S("secret").c_str(), 0644), 0);
  Touch("secret");
  EXPECT_TRUE(Converges());
  EXPECT_EQ(t::ReadFile(D("secret")), "hidden until chmod");
  EXPECT_FALSE(finished());
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});
}

// A destination directory nobody but its owner may list (0000, another
// owner's): as for a push, the problems are all under it (the listing refused
// with EACCES; the chmod back to the source's mode refused), reported through
// the observer while the watch goes on; everything else lands. Once the
// directory is usable again, a change there converges.
TEST_P(WatchPermissionTest, UnlistableDestinationDirectoryIsReportedTheWatchGoesOnAndConverges) {
  t::WriteFile(S("sealed/x"), "x");
  t::WriteFile(S("ok/f"), "f");
  StartWatch();
  ASSERT_TRUE(Converges());

  ASSERT_EQ(::chmod(D("sealed").c_str(), 0000), 0) << std::strerror(errno);
  ASSERT_EQ(::chown(D("sealed").c_str(), kNobody, kNobody), 0) << std::strerror(errno);
  // A file's mode change re-plans `sealed` from both listings; a change to its
  // own mode re-plans the parent, which sets the directory's mode.
  ASSERT_EQ(::chmod(S("sealed/x").c_str(), 0600), 0);
  ASSERT_EQ(::chmod(S("sealed").c_str(), 0750), 0);
  watch_test::WriteFile(S("ok/g"), "lands");
  ASSERT_TRUE(WaitFor(
      [&] {
        bool listed = false;
        for (const FileEvent& e : AllFailures()) listed = listed || e.reason == "list";
        return listed && t::Exists(D("ok/g"));
      },
      kGuard));
  for (const FileEvent& e : AllFailures()) {
    EXPECT_EQ(e.path, "sealed") << e.message;
    EXPECT_NE(e.message.find("sealed"), std::string::npos) << e.message;
    if (e.reason == "chmod") {
      EXPECT_TRUE(e.error == std::errc::operation_not_permitted ||
                  e.error == std::errc::permission_denied)
          << e.message;
    } else {
      EXPECT_EQ(e.reason, "list") << e.message;
      EXPECT_EQ(e.error, std::errc::permission_denied) << e.message;
    }
  }
  EXPECT_EQ(t::ReadFile(D("ok/g")), "lands");
  EXPECT_FALSE(finished()) << "watch ended on an unlistable directory: " << report_->fatal_message;

  // Ours again: the next change in it brings everything over.
  ASSERT_EQ(::chown(D("sealed").c_str(), ::geteuid(), ::getegid()), 0);
  ASSERT_EQ(::chmod(D("sealed").c_str(), 0755), 0);
  Touch("sealed/x");
  ASSERT_EQ(::chmod(S("sealed").c_str(), 0755), 0);
  EXPECT_TRUE(Converges());
  EXPECT_FALSE(finished());
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ASSERT_FALSE(r.problems.empty()) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.path, "sealed") << Describe(r);
    EXPECT_TRUE(p.stage == "list" || p.stage == "chmod") << Describe(r);
  }
  ExpectNothingPartial();
}

INSTANTIATE_TEST_SUITE_P(Both, WatchPermissionTest, ::testing::Values(Where::kLocal, Where::kSftp),
                         WhereName);

// --- 2. destination disk full -----------------------------------------------

// DEST on a 2 MiB tmpfs in this process's private mount namespace: locally
// mounted over DEST's parent, for SFTP over the (still empty) remote root
// before sshd starts (its sessions are children: same namespace).
class WatchEnospcTest : public WatchFaultTest {
 protected:
  void SetUp() override {
    if (!g_no_mounts_reason.empty()) GTEST_SKIP() << g_no_mounts_reason;
    WatchFaultTest::SetUp();
    if (HasFatalFailure() || sftp()) return;
    tmpfs_ = std::make_unique<t::Tmpfs>(dst_.substr(0, dst_.rfind('/')), "2m");
    ASSERT_TRUE(tmpfs_->ok()) << tmpfs_->error();
  }
  void BeforeSshdStart() override {
    tmpfs_ = std::make_unique<t::Tmpfs>(sshd_->root(), "2m");
    ASSERT_TRUE(tmpfs_->ok()) << tmpfs_->error();
  }
  void TearDown() override {
    WatchFaultTest::TearDown();
    tmpfs_.reset();
  }
  std::unique_ptr<t::Tmpfs> tmpfs_;
};

TEST_P(WatchEnospcTest, FullDestinationDiskFailsPerFileTheWatchGoesOnAndConverges) {
  t::WriteFile(S("small"), "small");
  // One upload at a time, as in sftp_enospc_test: SFTP v3 has no ENOSPC status,
  // and ferry tells it from FX_FAILURE by the room left after the failure,
  // which a concurrent upload's cleanup can change.
  StartWatch(/*jobs=*/1);
  ASSERT_TRUE(Converges());

  // 5 × 700 KiB do not fit in 2 MiB: at least two fail.
  for (int i = 0; i < 5; ++i) {
    WriteWhole("big" + std::to_string(i), t::RandomBytes(700 << 10, i + 1));
  }
  auto settled = [&] {
    int n = 0;
    for (int i = 0; i < 5; ++i) {
      const std::string p = "big" + std::to_string(i);
      n += HasFailed(p) || observer_.Count(p, FileAction::kUpload) > Failures(p).size();
    }
    return n == 5;
  };
  ASSERT_TRUE(WaitFor(settled, kGuard));
  int failed = 0;
  for (int i = 0; i < 5; ++i) {
    const std::string p = "big" + std::to_string(i);
    for (const FileEvent& e : Failures(p)) {
      ++failed;
      EXPECT_EQ(e.error, std::errc::no_space_on_device) << e.message;
      EXPECT_NE(e.message.find(p), std::string::npos) << e.message;
    }
  }
  EXPECT_GE(failed, 2);
  EXPECT_FALSE(finished()) << "watch ended on a full disk: " << report_->fatal_message;
  ExpectNothingPartialWhileRunning({}, false);

  // Room again: touching the files brings them over, whole.
  ASSERT_EQ(tmpfs_->Resize("64m"), "");
  for (int i = 0; i < 5; ++i) Touch("big" + std::to_string(i));
  EXPECT_TRUE(Converges());
  EXPECT_FALSE(finished());
  // Stopped first: a watch may re-upload a file it already landed (a late
  // event), and that temp is in flight, not left over.
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ExpectNothingPartial();
}

INSTANTIATE_TEST_SUITE_P(Both, WatchEnospcTest, ::testing::Values(Where::kLocal, Where::kSftp),
                         WhereName);

// --- 3..5: sources changing during the upload, hostile names, type conflict -

class WatchFaultsTest : public WatchFaultTest {};

TEST_P(WatchFaultsTest, SourceGrowingAndRewrittenWhileUploadedNeverLandsTorn) {
  t::WriteFile(S("seed"), "seed");
  StartWatch();
  ASSERT_TRUE(Converges());

  // "grow": appended in 64 KiB steps to 3 MiB, every step closed (a batch may
  // start after each). "rewrite": rewritten in place with versions of
  // different sizes. DEST may only ever hold a state the source passed through.
  const std::string full = t::RandomBytes(3 << 20, 7);
  std::vector<std::string> versions;
  for (int v = 0; v < 12; ++v) {
    versions.push_back(t::RandomBytes((v % 3 + 1) * (300 << 10) + v, 100 + v));
  }
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (size_t off = 0, v = 0; off < full.size(); off += 64 << 10, ++v) {
      watch_test::AppendFile(S("grow"), full.substr(off, 64 << 10));
      if (v % 4 == 0) watch_test::WriteFile(S("rewrite"), versions[(v / 4) % versions.size()]);
    }
    watch_test::WriteFile(S("rewrite"), versions.back());
    writing = false;
  });
  const std::map<std::string, std::vector<std::string>> alternatives = {{"grow", {full}},
                                                                        {"rewrite", versions}};
  while (writing.load()) {
    ExpectNothingPartialWhileRunning(alternatives, /*prefixes_ok=*/true);
    if (HasFailure()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  writer.join();
  EXPECT_TRUE(Converges());
  EXPECT_EQ(t::ReadFile(D("grow")), full);
  EXPECT_TRUE(t::ReadFile(D("rewrite")) == versions.back());
  EXPECT_FALSE(finished());
  // Stopped first: a running watch may still be re-sending a file (whole-second
  // mtimes over SFTP), whose temp is no leftover.
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ExpectNothingPartial();
}

TEST_P(WatchFaultsTest, NewlinesInvalidUtf8AndLongNamesCreatedDuringTheWatchArriveIntact) {
  t::WriteFile(S("seed"), "seed");
  StartWatch();
  ASSERT_TRUE(Converges());

  watch_test::WriteFile(S("line\nbreak.txt"), "nl");
  watch_test::WriteFile(S("bad\xff\xfe-utf8.bin"), "utf");
  watch_test::WriteFile(S("tab\tand space .txt"), "ws");
  watch_test::WriteFile(S(std::string(255, 'n')), "long name");
  watch_test::WriteFile(S("dir\nwith\xff/inner"), "inner");
  std::string deep;
  for (int i = 0; i < 15; ++i) deep += std::string(200, static_cast<char>('a' + i)) + "/";
  watch_test::WriteFile(S(deep + "leaf.txt"), "deep");  // a ~3,000-byte path
  EXPECT_TRUE(Converges());
  EXPECT_EQ(t::ReadFile(D("line\nbreak.txt")), "nl");
  EXPECT_EQ(t::ReadFile(D(std::string(255, 'n'))), "long name");
  EXPECT_FALSE(finished());
  Report r = StopWatch();
  EXPECT_TRUE(r.problems.empty()) << Describe(r);
}

// A directory created during the watch is pushed as a subtree rooted at DEST/x
// (PrefixedDestination); a file standing there is replaced, as a push does
// (this was a bug: x stayed a file and its contents never arrived).
TEST_P(WatchFaultsTest, DestinationFileWhereTheSourceCreatesADirectoryIsReplacedByIt) {
  t::WriteFile(S("seed"), "seed");
  StartWatch();
  ASSERT_TRUE(Converges());

  t::WriteFile(D("x"), "someone else's file");
  watch_test::WriteFile(S("x/a"), "a");
  watch_test::WriteFile(S("x/sub/b"), "b");
  ASSERT_TRUE(Converges());
  EXPECT_FALSE(finished());
  // Stopped first: the walk of the new x/sub and b's own close event may both
  // upload b, and the second one's temp is in flight, not left over.
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ExpectNothingPartial();
}

// Waits (a hang guard) until the upload of `rel` is under way: a temp in DEST,
// or the file already there. Never fails: the checks after it hold either way.
void WaitForUploadStart(const std::string& dst, const std::string& final_path) {
  auto started = [&] {
    try {
      return !t::FindTemps(dst).empty() || t::Exists(final_path);
    } catch (const std::exception&) {
      return true;  // a temp renamed away during the walk: it was under way
    }
  };
  (void)WaitFor(started, std::chrono::seconds(10));
}

// A large file deleted while the watch uploads it: DEST ends without it (the
// deletion carried over, the upload dropped or replayed as a delete), never a
// torn file or a temp.
TEST_P(WatchFaultsTest, SourceDeletedWhileUploadedEndsDeletedNeverTorn) {
  t::WriteFile(S("seed"), "seed");
  StartWatch();
  ASSERT_TRUE(Converges());

  WriteWhole("big", t::RandomBytes(16 << 20, 41));
  WaitForUploadStart(dst_, D("big"));
  ASSERT_EQ(::unlink(S("big").c_str()), 0) << std::strerror(errno);
  EXPECT_TRUE(Converges());
  EXPECT_FALSE(t::Exists(D("big")));
  for (const FileEvent& e : Failures("big")) {
    EXPECT_NE(e.message.find("big"), std::string::npos) << e.message;
  }
  EXPECT_FALSE(finished());
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ExpectNothingPartial();
}

// A large file replaced by rename, again and again, while the watch uploads
// it: DEST only ever holds a whole version and ends with the last.
TEST_P(WatchFaultsTest, SourceReplacedByRenameWhileUploadedEndsWithTheFinalVersion) {
  t::WriteFile(S("seed"), "seed");
  StartWatch();
  ASSERT_TRUE(Converges());

  std::vector<std::string> versions;
  for (int v = 0; v < 4; ++v) versions.push_back(t::RandomBytes((8 << 20) + v, 60 + v));
  const std::map<std::string, std::vector<std::string>> alternatives = {{"big", versions}};
  for (const std::string& version : versions) {
    WriteWhole("big", version);
    WaitForUploadStart(dst_, D("big"));
    ExpectNothingPartialWhileRunning(alternatives, /*prefixes_ok=*/false);
  }
  EXPECT_TRUE(Converges());
  EXPECT_TRUE(t::ReadFile(D("big")) == versions.back());
  EXPECT_FALSE(finished());
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ExpectNothingPartial();
}

// A chmod of a source directory during the watch reaches its destination
// copy, as in a push (Destination::SetDirMode), keeping owner rwx on ferry's
// copies (plan::DestDirMode): a 0555 source directory stays 0755 there.
TEST_P(WatchFaultsTest, SourceDirectoryChmodReachesTheDestinationKeepingOwnerRwx) {
  t::WriteFile(S("d/f"), "f");
  t::WriteFile(S("d/e/g"), "g");
  t::WriteFile(S("ro/f"), "f");
  StartWatch();
  ASSERT_TRUE(Converges());

  ASSERT_EQ(::chmod(S("d").c_str(), 0750), 0);
  ASSERT_EQ(::chmod(S("d/e").c_str(), 0711), 0);
  EXPECT_TRUE(Converges());  // directory modes included
  EXPECT_EQ(t::Snapshot(dst_).at("d").mode, 0750u);
  EXPECT_EQ(t::Snapshot(dst_).at("d/e").mode, 0711u);

  ASSERT_EQ(::chmod(S("ro").c_str(), 0555), 0);
  // Batches apply in order: once a later change has landed, the chmod's batch is done.
  watch_test::WriteFile(S("later"), "later");
  ASSERT_TRUE(WaitFor([&] { return t::Exists(D("later")); }, kGuard));
  EXPECT_EQ(t::Snapshot(dst_).at("ro").mode, 0755u);
  EXPECT_TRUE(AllFailures().empty()) << AllFailures().front().message;
  EXPECT_FALSE(finished());
  Report r = StopWatch();
  ::chmod(S("ro").c_str(), 0755);
  EXPECT_TRUE(r.problems.empty()) << Describe(r);
}

// A directory (with contents) on DEST where the source now has a file: as in
// a push, one kTypeConflict for that path and the directory kept, whether the
// file was renamed in (the directory is re-planned) or written in place (a
// written-file hint, sent without listing); the watch goes on. A watch with
// --delete replaces such a directory, also one that appears during the watch.
TEST_P(WatchFaultsTest, DestinationDirectoryWhereTheSourceHasAFileIsATypeConflictUntilDelete) {
  t::WriteFile(S("seed"), "seed");
  StartWatch();
  ASSERT_TRUE(Converges());

  t::WriteFile(D("renamed/old.txt"), "old");
  t::WriteFile(D("written/old.txt"), "old");
  WriteWhole("renamed", "a file now");
  ASSERT_TRUE(WaitFor([&] { return HasFailed("renamed"); }, kGuard));
  // Alone in its batch: only written to, so it is sent on the hint first.
  watch_test::WriteFile(S("written"), "a file too");
  ASSERT_TRUE(WaitFor([&] { return HasFailed("written"); }, kGuard));
  watch_test::WriteFile(S("bystander"), "lands");
  // Each re-plan of the directory says a conflict again (as each push would):
  // "renamed" may be reported twice, once more when "written" re-plans it.
  for (const FileEvent& e : AllFailures()) {
    EXPECT_TRUE(e.path == "renamed" || e.path == "written") << Events();
    EXPECT_EQ(e.error, errc::kTypeConflict) << e.message;
    EXPECT_NE(e.message.find(e.path), std::string::npos) << e.message;
  }
  for (const char* path : {"renamed", "written"}) {
    EXPECT_EQ(t::ReadFile(D(std::string(path) + "/old.txt")), "old");  // nothing deleted
  }
  EXPECT_TRUE(WaitFor([&] { return t::Exists(D("bystander")); }, kGuard));
  EXPECT_FALSE(finished()) << "watch ended on a type conflict: " << report_->fatal_message;
  Report first = StopForRestart();
  EXPECT_FALSE(first.fatal) << Describe(first);
  for (const Problem& p : first.problems) {
    EXPECT_TRUE(p.path == "renamed" || p.path == "written") << Describe(first);
    EXPECT_EQ(p.code, errc::kTypeConflict) << Describe(first);
  }

  // With --delete: the initial sync replaces both, and a conflict that
  // appears while it runs is replaced too.
  StartWatch(0, [](PushOptions& o) { o.delete_extraneous = true; });
  ASSERT_TRUE(Converges());
  t::WriteFile(D("later/old.txt"), "old");
  watch_test::WriteFile(S("later"), "written during the --delete watch");
  EXPECT_TRUE(Converges());
  EXPECT_FALSE(finished());
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  EXPECT_TRUE(r.problems.empty()) << Describe(r);
  ExpectNothingPartial();
}

// A destination root that is a file cannot be watched into: the watch ends
// at start as a push does (fatal ENOTDIR, "cannot open destination ..."),
// before any batch, and the file is untouched.
TEST_P(WatchFaultsTest, DestinationRootThatIsAFileIsFatalAtStart) {
  t::WriteFile(S("seed"), "seed");
  t::WriteFile(dst_, "not a directory");
  Report r = WatchUntilItEnds();
  EXPECT_EQ(r.fatal, std::errc::not_a_directory) << Describe(r);
  EXPECT_NE(r.fatal_message.find("cannot open destination"), std::string::npos) << Describe(r);
  EXPECT_TRUE(observer_.batches().empty());
  EXPECT_EQ(t::ReadFile(dst_), "not a directory");
}

// 255 bytes is the longest name; the compressed copy adds ".zst", which the
// destination refuses (ENAMETOOLONG locally; the SFTP server's failure status
// otherwise): one failed event with the path, no temp, and the watch goes on.
TEST_P(WatchFaultsTest, NameLongerThanTheDestinationAllowsIsAPerFileProblemTheWatchGoesOn) {
  t::WriteFile(S("seed"), "seed");
  StartWatch(0, [](PushOptions& o) { o.compress_level = 1; });
  ASSERT_TRUE(t::Exists(D("seed.zst")));

  const std::string name(255, 'z');
  watch_test::WriteFile(S(name), "too long once compressed");
  ASSERT_TRUE(WaitFor([&] { return HasFailed(name); }, kGuard));
  watch_test::WriteFile(S("after"), "after");
  EXPECT_TRUE(WaitFor([&] { return t::Exists(D("after.zst")); }, kGuard));
  const FileEvent e = Failures(name).front();
  if (!sftp()) {
    EXPECT_EQ(e.error, std::errc::filename_too_long) << e.message;
  }
  EXPECT_NE(e.message.find(name), std::string::npos) << e.message;
  EXPECT_EQ(AllFailures().size(), 1u) << AllFailures().back().message;
  EXPECT_FALSE(finished()) << "watch ended on a long name: " << report_->fatal_message;
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ASSERT_EQ(r.problems.size(), 1u) << Describe(r);
  EXPECT_EQ(r.problems[0].path, name);
  std::printf("%s: name too long: %s\n", sftp() ? "sftp" : "local", Describe(r).c_str());
  EXPECT_FALSE(t::Exists(D(name + ".zst")));
  EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});
}

// A 50-file directory created and removed in a loop beside 200 files, from
// before the watch (its initial scan) until well into it: never fatal; the
// only failures are under `victim` and say it vanished; every other change
// lands, and once the churn stops DEST converges (the deletions carried over).
TEST_P(WatchFaultsTest, SourceDirectoryRemovedDuringTheScanAndWhileWatchedIsNotFatal) {
  for (int d = 0; d < 20; ++d) {
    for (int f = 0; f < 10; ++f)
      t::WriteFile(S("d" + std::to_string(d) + "/f" + std::to_string(f)), "x");
  }
  std::atomic<bool> churning{true};
  std::atomic<int> cycles{0};
  std::thread churn([&] {
    const auto guard = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (int i = 0; churning.load() && std::chrono::steady_clock::now() < guard; ++i) {
      if (i % 2 == 0) {
        for (int f = 0; f < 50; ++f) {
          watch_test::WriteFile(S("victim/deep/f" + std::to_string(f)), "v");
        }
      } else {
        std::error_code ec;
        std::filesystem::remove_all(S("victim"), ec);
      }
      ++cycles;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  StartWatch();
  for (int d = 0; d < 20; ++d) watch_test::WriteFile(S("d" + std::to_string(d) + "/new"), "new");
  const bool landed = WaitFor(
      [&] {
        for (int d = 0; d < 20; ++d) {
          if (!t::Exists(D("d" + std::to_string(d) + "/new"))) return false;
        }
        return cycles.load() >= 40;
      },
      kGuard);
  churning = false;
  churn.join();
  EXPECT_TRUE(landed);
  std::printf("%s: %d create/remove cycles of victim/\n", sftp() ? "sftp" : "local", cycles.load());
  EXPECT_TRUE(Converges());
  EXPECT_FALSE(finished()) << "watch ended: " << report_->fatal_message;
  // As a push's: vanished entries; and, for a directory run with delete
  // semantics (victim deleted and created again), its deletions skipped
  // because entries vanished under it (later events carry them over).
  auto expected = [](std::error_code ec) {
    return ec == errc::kSourceVanished || ec == std::errc::no_such_file_or_directory ||
           ec == errc::kDeleteSkipped;
  };
  for (const FileEvent& e : AllFailures()) {
    EXPECT_EQ(e.path.rfind("victim", 0), 0u) << e.path << ": " << e.message;
    EXPECT_TRUE(expected(e.error)) << e.message;
  }
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_TRUE(p.path == "victim" || p.path.rfind("victim/", 0) == 0) << Describe(r);
    EXPECT_TRUE(expected(p.code)) << Describe(r);
  }
  ExpectNothingPartial();
}

// Links that loop (self, ping <-> pong, tree/sub/up -> ../..) created during
// the watch are recreated as links, never followed (no -L).
TEST_P(WatchFaultsTest, SymlinkLoopsCreatedDuringTheWatchAreRecreatedAsLinks) {
  t::WriteFile(S("seed"), "seed");
  StartWatch();
  ASSERT_TRUE(Converges());

  t::MakeSymlink(S("self"), "self");
  t::MakeSymlink(S("ping"), "pong");
  t::MakeSymlink(S("pong"), "ping");
  t::MakeDir(S("tree/sub"));
  t::MakeSymlink(S("tree/sub/up"), "../..");
  EXPECT_TRUE(Converges());
  EXPECT_FALSE(finished());
  Report r = StopWatch();
  EXPECT_TRUE(r.problems.empty()) << Describe(r);
  ExpectNothingPartial();
}

// With -L, links created during the watch that cannot be followed are failed
// events with stat(2)'s reason, as in a push: ELOOP "symlink loop" for self,
// ping and pong; a followed directory that is one of its own ancestors
// (a/b/up -> ../.., a/b/root -> the source root) is ELOOP "directory cycle:
// not followed" and is not entered, not even one level; a link to a sibling
// directory is copied. The watch goes on.
TEST_P(WatchFaultsTest, SymlinkLoopsAndDirectoryCyclesWithCopyLinksAreReportedNotFollowed) {
  t::WriteFile(S("a/b/leaf.txt"), "leaf");
  t::WriteFile(S("other/o.txt"), "o");
  StartWatch(0, [](PushOptions& o) { o.copy_links = true; });
  ASSERT_TRUE(Converges());

  t::MakeSymlink(S("self"), "self");
  t::MakeSymlink(S("ping"), "pong");
  t::MakeSymlink(S("pong"), "ping");
  t::MakeSymlink(S("a/b/up"), "../..");
  t::MakeSymlink(S("a/b/root"), src_);
  t::MakeSymlink(S("a/sibling"), "../other");
  const std::vector<std::string> loops = {"self", "ping", "pong"};
  const std::vector<std::string> cycles = {"a/b/up", "a/b/root"};
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const std::string& p : loops) {
          if (!HasFailed(p)) return false;
        }
        for (const std::string& p : cycles) {
          if (!HasFailed(p)) return false;
        }
        return t::Exists(D("a/sibling/o.txt"));
      },
      kGuard))
      << Events();
  watch_test::WriteFile(S("after"), "after");
  EXPECT_TRUE(WaitFor([&] { return t::Exists(D("after")); }, kGuard));
  for (const FileEvent& e : AllFailures()) {
    EXPECT_EQ(e.error, std::errc::too_many_symbolic_link_levels) << e.message;
    const bool loop = std::find(loops.begin(), loops.end(), e.path) != loops.end();
    const bool cycle = std::find(cycles.begin(), cycles.end(), e.path) != cycles.end();
    EXPECT_TRUE(loop || cycle) << e.path << ": " << e.message;
    if (loop) {
      EXPECT_NE(e.message.find("symlink loop"), std::string::npos) << e.message;
    }
    if (cycle) {
      // The message names the link from the directory the watch re-planned
      // (a/b): "root", where the event's path is "a/b/root".
      const std::string name = e.path.substr(e.path.rfind('/') + 1);
      EXPECT_NE(e.message.find("directory cycle: not followed: " + name), std::string::npos)
          << e.message;
    }
  }
  EXPECT_EQ(t::ReadFile(D("a/sibling/o.txt")), "o");
  EXPECT_EQ(t::ReadFile(D("a/b/leaf.txt")), "leaf");
  for (const std::string& p : loops) EXPECT_FALSE(t::Exists(D(p))) << p;
  for (const std::string& p : cycles) EXPECT_FALSE(t::Exists(D(p))) << p;
  EXPECT_FALSE(finished()) << "watch ended: " << report_->fatal_message;
  Report r = StopWatch();
  EXPECT_FALSE(r.fatal) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.code, std::errc::too_many_symbolic_link_levels) << Describe(r);
  }
  EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});
}

INSTANTIATE_TEST_SUITE_P(Both, WatchFaultsTest, ::testing::Values(Where::kLocal, Where::kSftp),
                         WhereName);

// --- 6. the `ferry watch` CLI killed or interrupted mid-burst --------------

using t::FerryProcess;

class WatchCliTest : public WatchFaultTest {
 protected:
  std::vector<std::string> CliArgs(const std::string& command, bool json = true) const {
    std::vector<std::string> args = {command, "--no-progress", src_, Destination()};
    if (json) args.insert(args.begin() + 1, "--json");
    if (sftp()) {
      args.insert(args.end(), {"--known-hosts", sshd_->known_hosts(), "-i", sshd_->user_key()});
    }
    return args;
  }

  // Starts `ferry watch`, waits for its initial batch, then writes a burst (4 ×
  // 8 MiB and 200 small files, each whole by rename) and sends `sig` once the
  // burst's first file events or temps show. Returns the exit code.
  int SignalMidBurst(int sig) {
    for (int d = 0; d < 10; ++d) t::WriteFile(S("d" + std::to_string(d) + "/seed"), "seed");
    FerryProcess run(CliArgs("watch"));
    EXPECT_TRUE(run.started());
    const bool ready = WaitFor([&] { return run.Exited() || run.Count("\"event\":\"batch\"") > 0; },
                               std::chrono::seconds(60));
    if (!ready || run.Exited()) {
      ADD_FAILURE() << "watch never finished its initial sync: " << run.Stderr();
      return -1;
    }
    const size_t before = run.Count("\"event\":\"file\"");
    for (int b = 0; b < 4; ++b) {
      WriteWhole("big" + std::to_string(b), t::RandomBytes(8 << 20, 300 + b));
    }
    for (int f = 0; f < 200; ++f) {
      WriteWhole("d" + std::to_string(f % 10) + "/f" + std::to_string(f),
                 t::RandomBytes(1000 + f * 13, 400 + f));
    }
    (void)WaitFor(
        [&] {
          if (run.Exited() || run.Count("\"event\":\"file\"") > before) return true;
          try {
            return !t::FindTemps(dst_).empty();
          } catch (const std::exception&) {
            return true;  // a temp renamed away during the walk
          }
        },
        std::chrono::seconds(30));
    EXPECT_FALSE(run.Exited()) << "watch ended on its own: " << run.Stderr();
    run.Signal(sig);
    const int code = run.Wait();
    std::printf("%s: signal %d after %zu burst file events, exit %d\n", sftp() ? "sftp" : "local",
                sig, run.Count("\"event\":\"file\"") - before, code);
    return code;
  }

  // What a signal left: no final name holds anything its source never had;
  // over SFTP the server may still carry out requests sent before the death,
  // so a walk that meets a vanishing entry is repeated.
  void CheckAfterSignal(bool temps_allowed) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      std::map<std::string, t::NodeInfo> dst;
      try {
        dst = t::Snapshot(dst_);
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      for (const auto& [path, info] : dst) {
        if (info.type != 'f' || (temps_allowed && path.find(".ferry-tmp-") != std::string::npos)) {
          continue;
        }
        ASSERT_TRUE(t::Exists(S(path))) << "foreign file in destination: " << path;
        EXPECT_TRUE(t::ReadFile(S(path)) == info.content) << "torn file under final name: " << path;
      }
      if (!temps_allowed) {
        EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});
      }
      return;
    }
    ADD_FAILURE() << "destination never settled";
  }

  void ExpectPushConverges() {
    FerryProcess push(CliArgs("push"));
    ASSERT_TRUE(push.started());
    EXPECT_EQ(push.Wait(), 0) << push.Stderr();
    ExpectSameTree();
    EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});
  }
};

TEST_P(WatchCliTest, WatchSigkilledMidBurstThenPushConvergesWithNoTemps) {
  EXPECT_EQ(SignalMidBurst(SIGKILL), 128 + SIGKILL);
  CheckAfterSignal(/*temps_allowed=*/true);
  ExpectPushConverges();
}

// SIGTERM / SIGINT after the initial sync are a watch's normal end: exit 0
// (cli/watch_command.cc RunWatch; lib/ferry/watch.h: `cancelled` only before
// the initial sync completes), even mid-upload, where the in-flight files are
// abandoned cleanly. README's exit-code table says 130 for SIGINT/SIGTERM
// without this exception.
TEST_P(WatchCliTest, WatchSigtermMidUploadEndsItWithExit0LeavingNoTempAndNothingPartial) {
  EXPECT_EQ(SignalMidBurst(SIGTERM), 0);
  CheckAfterSignal(/*temps_allowed=*/false);
  ExpectPushConverges();
}

TEST_P(WatchCliTest, WatchSigintMidUploadEndsItWithExit0LeavingNoTempAndNothingPartial) {
  EXPECT_EQ(SignalMidBurst(SIGINT), 0);
  CheckAfterSignal(/*temps_allowed=*/false);
  ExpectPushConverges();
}

// `ferry watch` SIGKILLed again and again: once during its initial sync (at
// its 20th file event), then twice while a burst (one 4 MiB file, then 50
// small ones, each whole by rename) is still being written: after its first
// file, and after 25. Each kill exits 137 and leaves nothing torn or foreign
// under a final name (temps of the killed run may remain); each new watch
// takes over what the last one left, and a `ferry push` at the end exits 0
// with the tree identical and no temp.
TEST_P(WatchCliTest, WatchSigkilledRepeatedlyAtDifferentPointsThenPushConverges) {
  for (int f = 0; f < 120; ++f) {
    t::WriteFile(S("d" + std::to_string(f % 10) + "/seed" + std::to_string(f)),
                 t::RandomBytes(500 + f * 7, 700 + f));
  }
  t::WriteFile(S("big"), t::RandomBytes(2 << 20, 1));
  const auto t0 = std::chrono::steady_clock::now();
  auto ms = [&] {
    return static_cast<long long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count());
  };
  auto kill = [&](FerryProcess& run, const std::string& when) {
    ASSERT_FALSE(run.Exited()) << "watch ended on its own: " << run.Stderr();
    run.Signal(SIGKILL);
    EXPECT_EQ(run.Wait(), 128 + SIGKILL);
    std::printf("%s: killed %s, after %zu file events (at %lld ms)\n", sftp() ? "sftp" : "local",
                when.c_str(), run.FileEvents(), ms());
    CheckAfterSignal(/*temps_allowed=*/true);
  };
  {
    FerryProcess run(CliArgs("watch"));
    ASSERT_TRUE(run.started());
    (void)WaitFor(
        [&] {
          return run.Exited() || run.FileEvents() >= 20 || run.Count("\"event\":\"batch\"") > 0;
        },
        std::chrono::seconds(60));
    kill(run, "during the initial sync");
    if (HasFatalFailure()) return;
  }
  for (const int after : {1, 25}) {
    FerryProcess run(CliArgs("watch"));
    ASSERT_TRUE(run.started());
    ASSERT_TRUE(WaitFor([&] { return run.Exited() || run.Count("\"event\":\"batch\"") > 0; },
                        std::chrono::seconds(60)));
    const std::string r = "r" + std::to_string(after);
    WriteWhole(r + "big", t::RandomBytes(4 << 20, 900 + after));
    for (int f = 1; f <= 50; ++f) {
      if (f == after) kill(run, "after " + std::to_string(f) + " of 51 burst files");
      if (HasFatalFailure()) return;
      WriteWhole("d" + std::to_string(f % 10) + "/" + r + "f" + std::to_string(f),
                 t::RandomBytes(800 + f * 11, 1000 + after * 200 + f));
    }
  }
  ExpectPushConverges();
  std::printf("%s: converged at %lld ms\n", sftp() ? "sftp" : "local", ms());
}

// `ferry watch` into a destination root that is a file: exit 3 (fatal) at
// start with a one-line reason naming the destination, and the file untouched.
TEST_P(WatchCliTest, WatchIntoADestinationRootThatIsAFileExits3WithAClearMessage) {
  t::WriteFile(S("seed"), "seed");
  t::WriteFile(dst_, "not a directory");
  FerryProcess run(CliArgs("watch", /*json=*/false));  // the human message, on stderr
  ASSERT_TRUE(run.started());
  EXPECT_TRUE(WaitFor([&] { return run.Exited(); }, std::chrono::seconds(60)))
      << "the watch did not end by itself";
  EXPECT_EQ(run.Wait(), 3) << run.Stderr();
  const std::string err = run.Stderr();
  EXPECT_NE(err.find("cannot open destination"), std::string::npos) << err;
  EXPECT_NE(err.find(dst_), std::string::npos) << err;
  EXPECT_EQ(run.Count("initial sync"), 0u);
  EXPECT_EQ(t::ReadFile(dst_), "not a directory");
}

INSTANTIATE_TEST_SUITE_P(Both, WatchCliTest, ::testing::Values(Where::kLocal, Where::kSftp),
                         WhereName);

}  // namespace
}  // namespace ferry::faults

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Before any thread exists: a private mount namespace for the disk-full
  // cases (the tmpfs disappears with this process), then drop root's file
  // capabilities so that permission bits bind (see DropFileCapabilities).
  ferry::faults::g_no_mounts_reason = ferry::testing::EnterPrivateMountNamespace();
  if (::geteuid() == 0) ferry::faults::DropFileCapabilities();
  ferry::faults::g_permissions_apply = ferry::faults::PermissionsApply();
  return RUN_ALL_TESTS();
}
