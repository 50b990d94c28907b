// The watch-mode columns of the fault matrix (issue #8, docs/RELIABILITY.md):
// each case starts ferry::WatchBlocking against a local directory AND a real
// sshd, waits for the initial sync, and only then injects the fault while the
// watch is running: a read-only destination directory, a full destination
// disk, a source file growing or rewritten while it is uploaded, hostile
// names, a destination file where the source creates a directory. The watch
// must report per-file problems through the Observer and keep running, leave
// nothing partial under a final name, and converge once the fault is gone.
//
// Never asserts on timing: every wait polls with a generous deadline (a hang
// guard only).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
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

// A FaultTest whose destination is fed by a running watch.
class WatchFaultTest : public FaultTest {
 protected:
  void TearDown() override {
    StopWatch();
    FaultTest::TearDown();
  }

  // Starts the watch and waits for its initial sync.
  void StartWatch(int jobs = 0) {
    WatchOptions options;
    options.push = Options();
    if (jobs > 0) options.push.jobs = jobs;
    options.push.observer = &observer_;
    options.push.stop = stop_.get_token();
    if (sftp()) options.push.ssh.connect_timeout = std::chrono::seconds(10);
    thread_ = std::thread([this, options = std::move(options)]() mutable {
      report_ = WatchBlocking(std::move(options));
      done_ = true;
    });
    ASSERT_TRUE(WaitFor([this] { return observer_.initial_done() || finished(); },
                        std::chrono::seconds(60)));
    ASSERT_FALSE(finished()) << "watch ended early: " << report_->fatal_message;
  }

  bool finished() const { return done_.load(); }

  Report StopWatch() {
    if (thread_.joinable()) {
      stop_.request_stop();
      thread_.join();
    }
    return report_.value_or(Report{});
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
    if (t::Exists(D("locked"))) (void)::chown(D("locked").c_str(), ::geteuid(), ::getegid());
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
  ASSERT_EQ(::chown(D("locked").c_str(), 65534, 65534), 0) << std::strerror(errno);
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

INSTANTIATE_TEST_SUITE_P(Both, WatchFaultsTest, ::testing::Values(Where::kLocal, Where::kSftp),
                         WhereName);

// --- 6. the `ferry watch` CLI killed or interrupted mid-burst --------------

using t::FerryProcess;

class WatchCliTest : public WatchFaultTest {
 protected:
  std::vector<std::string> CliArgs(const std::string& command) const {
    std::vector<std::string> args = {command, "--json", "--no-progress", src_, Destination()};
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
