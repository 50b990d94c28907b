// The network rows of the fault matrix's "watch sftp" column (issue #8,
// docs/RELIABILITY.md): ferry::WatchBlocking to a real sshd, with the fault
// injected in the middle of a batch (once part of a burst of about a thousand
// files has been uploaded): sshd SIGKILLed and left down through several
// failed reconnections, sshd restarted with SIGTERM, every connection cut with
// RST through a FaultProxy, and a server that stops answering (the proxy
// stalls) under a short io timeout. The watch must not end on any of these
// transient errors, must keep every pending change (those made while the
// server was away included), and once the server answers again must bring DEST
// to a byte-for-byte copy of SRC with no temp left; a change made afterwards
// still syncs.
//
// Never asserts on timing: every wait polls with a generous deadline (a hang
// guard only).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "ferry/error.h"
#include "ferry/watch.h"
#include "tests/bench/proxy/fault_proxy.h"
#include "tests/faults/fault_util.h"
#include "tests/watch/watch_test_util.h"

namespace ferry::faults {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

using watch_test::RecordingObserver;
using watch_test::WaitFor;
// One open/write/close and nothing after it (no chmod), as an editor or a
// compiler writes: the close is what the watch reacts to.
using watch_test::WriteFile;

class WatchNetFaultsTest : public ::testing::Test {
 protected:
  // A burst: kDirs x kPerDir files written straight into SRC, and a directory
  // of kMoved files (four of them 1 MiB) built beside the tree and moved in
  // whole: the two ways a watch batch sends files (changed directories,
  // new subtrees).
  static constexpr int kDirs = 8;
  static constexpr int kPerDir = 100;
  static constexpr int kMoved = 200;
  static constexpr int kBurstFiles = kDirs * kPerDir + kMoved;
  // Uploads of a burst before the fault is injected: well into the batch,
  // far from its end.
  static constexpr uint64_t kFaultAfter = 100;

  void SetUp() override {
    Status started = sshd_.Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
    src_ = t::MakeTempDir("src");
    staging_ = t::MakeTempDir("staging");
    dst_ = sshd_.root() + "/dst";
    t::WriteFile(src_ + "/initial.txt", "synced before any fault");
  }

  void TearDown() override {
    StopWatch();
    proxy_.reset();  // before sshd goes
    if (HasFailure()) std::fprintf(stderr, "sshd log:\n%s\n", sshd_.Log().c_str());
  }

  // Routes the watch through a FaultProxy; call before StartWatch.
  void UseProxy() {
    proxy_ = std::make_unique<t::FaultProxy>(sshd_.port());
    // The proxy's port is another "host" for known_hosts: list the server's key for it.
    known_hosts_ = t::MakeTempDir("known_hosts") + "/known_hosts";
    t::WriteFile(known_hosts_, "[127.0.0.1]:" + std::to_string(proxy_->port()) + " " +
                                   sshd_.host_key_ed25519() + "\n");
  }

  WatchOptions Options() {
    const uint16_t port = proxy_ != nullptr ? proxy_->port() : sshd_.port();
    WatchOptions o;
    o.push.source = src_;
    o.push.destination = "sftp://" + sshd_.user() + "@127.0.0.1:" + std::to_string(port) + dst_;
    o.push.hash_cache = "none";
    o.push.ssh.known_hosts = proxy_ != nullptr ? known_hosts_ : sshd_.known_hosts();
    o.push.ssh.identity_files = {sshd_.user_key()};
    o.push.ssh.config_file = "none";
    o.push.ssh.use_agent = false;
    o.push.ssh.connect_timeout = seconds(10);
    o.push.observer = &observer_;
    o.push.stop = stop_.get_token();
    return o;
  }

  // Starts the watch on a thread and waits for its initial sync.
  void StartWatch(WatchOptions options) {
    thread_ = std::thread([this, options = std::move(options)]() mutable {
      report_ = WatchBlocking(std::move(options));
      done_ = true;
    });
    ASSERT_TRUE(WaitFor([this] { return observer_.initial_done() || finished(); }, seconds(60)));
    ASSERT_FALSE(finished()) << "watch ended early: " << Describe(*report_);
  }

  bool finished() const { return done_.load(); }

  // What the observer saw so far.
  uint64_t Uploads() const {
    uint64_t n = 0;
    for (const FileEvent& e : observer_.files()) {
      n += e.action == FileAction::kUpload && e.outcome == Outcome::kDone;
    }
    return n;
  }
  uint64_t Batches() const { return observer_.batches().size(); }
  std::vector<FileEvent> Failures() const {
    std::vector<FileEvent> out;
    for (const FileEvent& e : observer_.files()) {
      if (e.outcome == Outcome::kFailed) out.push_back(e);
    }
    return out;
  }
  // For failure messages: every event for `path`, one line each; the batches,
  // as the files each changed ("rescan:" a full rescan).
  std::string History(const std::string& path) const {
    std::string out;
    for (const FileEvent& e : observer_.files()) {
      if (e.path != path) continue;
      out += std::string("\n    ") + FileActionName(e.action) + " " + OutcomeName(e.outcome) + " " +
             e.reason + " " + e.message;
    }
    return out;
  }
  std::string BatchLog() const {
    std::string out;
    for (const BatchSummary& b : observer_.batches()) {
      out += std::string(b.initial       ? " initial:"
                         : b.full_rescan ? " rescan:"
                                         : " ") +
             std::to_string(b.files);
    }
    return out;
  }

  Report StopWatch() {
    if (thread_.joinable()) {
      stop_.request_stop();
      thread_.join();
    }
    return report_.value_or(Report{});
  }

  // Writes a burst named `tag` (see kDirs); returns at once, the watch is
  // already sending it.
  void WriteBurst(const std::string& tag) {
    const std::string pkg = staging_ + "/" + tag;
    for (int i = 0; i < kMoved; ++i) {
      const size_t size = i % 50 == 0 ? (1 << 20) : 1000 + (i * 37) % 3000;
      WriteFile(pkg + "/m" + std::to_string(i), t::RandomBytes(size, 1000 + i));
    }
    for (int i = 0; i < kDirs * kPerDir; ++i) {
      WriteFile(src_ + "/" + tag + "/d" + std::to_string(i % kDirs) + "/f" + std::to_string(i),
                t::RandomBytes(1000 + (i * 53) % 3000, i));
      if (i == kDirs * kPerDir / 2) std::filesystem::rename(pkg, src_ + "/" + tag + "-pkg");
    }
  }

  // Writes a burst and, once kFaultAfter of its files were uploaded, calls
  // `fault`. Expects the fault to have landed mid-batch.
  void FaultMidBurst(const std::function<void()>& fault) {
    const uint64_t before = Uploads();
    WriteBurst("burst");
    ASSERT_TRUE(WaitFor([&] { return Uploads() >= before + kFaultAfter; }, seconds(60)))
        << "the burst never started uploading";
    fault();
    const uint64_t sent = Uploads() - before;
    std::printf("fault injected after %llu of %d uploads\n", static_cast<unsigned long long>(sent),
                kBurstFiles);
    EXPECT_LT(sent, static_cast<uint64_t>(kBurstFiles)) << "the fault came after the batch";
  }

  // No file under a final name in DEST holds anything but its source's
  // content, or nothing at all: a recursive run may send a file the burst has
  // just created and not yet written (its one write comes at close);
  // its close then sends it again. Temps may be there while the server is away.
  void ExpectNothingTorn() {
    std::map<std::string, t::NodeInfo> dst;
    try {
      dst = t::Snapshot(dst_);
    } catch (const std::exception&) {
      return;  // an entry went away between the listing and its lstat: next time
    }
    for (const auto& [path, info] : dst) {
      if (info.type != 'f' || path.find(".ferry-tmp-") != std::string::npos) continue;
      ASSERT_TRUE(t::Exists(src_ + "/" + path)) << "foreign file in DEST: " << path;
      const std::string want = t::ReadFile(src_ + "/" + path);
      EXPECT_TRUE(want == info.content || info.content.empty())
          << "torn: " << path << ": " << info.size << " bytes, the source has " << want.size()
          << (want.compare(0, info.content.size(), info.content) == 0 ? " (a prefix)" : "")
          << History(path);
    }
  }

  // DEST == SRC: types, modes, contents, link targets (file mtimes are whole
  // seconds over SFTP v3; their suites check them), and no temp left.
  std::vector<std::string> Differences() const {
    std::vector<std::string> diff;
    try {
      diff = t::CompareTrees(src_, dst_, {.ignore_dir_mtime = true, .ignore_symlink_mtime = true});
      for (const std::string& temp : t::FindTemps(dst_)) diff.push_back("temp left: " + temp);
    } catch (const std::exception& e) {
      return {std::string("DEST changed under the walk: ") + e.what()};
    }
    std::erase_if(diff, [](const std::string& d) { return d.starts_with("mtime differs"); });
    return diff;
  }

  ::testing::AssertionResult Converges(milliseconds limit = seconds(60)) {
    if (WaitFor([this] { return Differences().empty(); }, limit)) {
      return ::testing::AssertionSuccess();
    }
    std::string out;
    const std::vector<std::string> diff = Differences();
    // A few of each kind of difference, the first ones with their file events.
    std::map<std::string, int> kinds;
    for (const std::string& d : diff) {
      const size_t colon = d.find(": ");
      const std::string kind = d.substr(0, colon);
      if (++kinds[kind] > 6) continue;
      out += "\n  " + d;
      if (kinds[kind] <= 2 && colon != std::string::npos) {
        std::string path = d.substr(colon + 2);
        path = path.substr(0, path.find(" ("));
        out += History(path);
      }
    }
    for (const auto& [kind, n] : kinds) out += "\n  " + std::to_string(n) + " x " + kind;
    out += "\n  " + std::to_string(diff.size()) + " differences; batches:" + BatchLog() +
           "; the watch " + (finished() ? "ended" : "was running") +
           "; report: " + Describe(StopWatch());
    return ::testing::AssertionFailure() << "DEST never matched SRC:" << out;
  }

  // The end every case shares: the watch is still running, follows one more
  // change, and its report holds no problem (transient failures were retried,
  // not kept).
  void ExpectTheWatchGoesOn() {
    ASSERT_FALSE(finished()) << "the watch ended: " << Describe(*report_);
    t::WriteFile(src_ + "/after.txt", "written once the server was back");
    EXPECT_TRUE(Converges());
    EXPECT_FALSE(finished());
    Report r = StopWatch();
    EXPECT_FALSE(r.fatal) << Describe(r);
    EXPECT_FALSE(r.cancelled);
    EXPECT_TRUE(r.problems.empty()) << Describe(r);
  }

  // The failed file events (the watch retries them): a test failure for any
  // that is not kConnectionLost.
  size_t ConnectionLostFailures() const {
    const std::vector<FileEvent> failures = Failures();
    for (const FileEvent& e : failures) {
      if (e.error != errc::kConnectionLost) {
        ADD_FAILURE() << "unexpected failure " << e.path << ": " << e.message;
      }
    }
    return static_cast<size_t>(
        std::count_if(failures.begin(), failures.end(),
                      [](const FileEvent& e) { return e.error == errc::kConnectionLost; }));
  }

  t::TestSshd sshd_;
  std::unique_ptr<t::FaultProxy> proxy_;
  std::string src_, staging_, dst_, known_hosts_;
  RecordingObserver observer_;
  std::stop_source stop_;
  std::thread thread_;
  std::optional<Report> report_;
  std::atomic<bool> done_{false};
};

// sshd SIGKILLed mid-batch and kept down while the watch fails to reconnect
// several times (each failed attempt ends a batch and backs off: 100 ms,
// 200 ms, 400 ms, ...); changes made meanwhile are kept, and everything
// arrives once sshd is back.
TEST_F(WatchNetFaultsTest, SshdKilledMidBatchAndDownForSeveralBackoffsThenEverythingArrives) {
  StartWatch(Options());
  uint64_t batches_at_kill = 0;
  FaultMidBurst([&] {
    sshd_.Kill();
    batches_at_kill = Batches();
  });
  ExpectNothingTorn();
  // Changes while the server is away: new files, a rewrite, a deletion, a rename.
  for (int i = 0; i < 50; ++i) {
    WriteFile(src_ + "/while-down/f" + std::to_string(i),
              "written while sshd was down " + std::to_string(i));
  }
  t::WriteFile(src_ + "/initial.txt", "rewritten while sshd was down");
  std::filesystem::remove(src_ + "/burst/d0/f0");
  std::filesystem::rename(src_ + "/burst/d1/f1", src_ + "/burst/d1/renamed");
  constexpr uint64_t kFailedAttempts = 5;
  ASSERT_TRUE(WaitFor([&] { return Batches() >= batches_at_kill + kFailedAttempts || finished(); },
                      seconds(120)));
  ASSERT_FALSE(finished()) << "the watch ended while sshd was down: " << Describe(*report_);
  // Files in flight at the kill fail with kConnectionLost (none may be, when
  // the kill came between two): nothing else fails.
  ConnectionLostFailures();

  const uint64_t failed_batches = Batches() - batches_at_kill;
  const auto back = Clock::now();
  Status restarted = sshd_.Start();
  ASSERT_TRUE(restarted.ok()) << restarted.error().Message();
  ASSERT_TRUE(Converges());
  std::printf(
      "sshd back after %llu failed batches; DEST converged %lld ms later (batches:%s)\n",
      static_cast<unsigned long long>(failed_batches),
      static_cast<long long>(std::chrono::duration_cast<milliseconds>(Clock::now() - back).count()),
      BatchLog().c_str());
  ExpectTheWatchGoesOn();
}

// sshd stopped with SIGTERM mid-batch (its per-connection children too) and
// started again at once, as a service restart does.
TEST_F(WatchNetFaultsTest, SshdRestartedWithSigtermMidBatchEverythingArrives) {
  StartWatch(Options());
  FaultMidBurst([&] {
    Status restarted = sshd_.Restart();
    ASSERT_TRUE(restarted.ok()) << restarted.error().Message();
  });
  ASSERT_TRUE(Converges());
  ExpectTheWatchGoesOn();
}

// Every connection cut with RST on both sides mid-batch (a NAT or firewall
// dropping its state): the watch reconnects and everything arrives.
TEST_F(WatchNetFaultsTest, ConnectionsCutWithRstMidBatchReconnectAndEverythingArrives) {
  UseProxy();
  StartWatch(Options());
  const uint64_t connections_before = proxy_->connections();
  FaultMidBurst([&] { proxy_->CutAll(); });
  EXPECT_TRUE(Converges());
  EXPECT_GT(proxy_->connections(), connections_before) << "it never reconnected";
  ExpectTheWatchGoesOn();
}

// The server stops answering mid-batch (the proxy stalls every connection,
// new ones included) under a 1 s io timeout: the connection is declared dead,
// reconnections time out while the stall lasts, the files in flight fail with
// kConnectionLost and the watch puts its batch back and retries with backoff
// instead of ending. Once the stall ends, everything arrives.
TEST_F(WatchNetFaultsTest, StalledServerMidBatchIsDeclaredDeadAndEverythingArrivesAfterIt) {
  UseProxy();
  WatchOptions options = Options();
  options.push.ssh.io_timeout = milliseconds(1000);
  options.push.ssh.connect_timeout = milliseconds(1500);
  options.push.ssh.connections = 1;
  StartWatch(std::move(options));
  uint64_t connections_at_stall = 0;
  FaultMidBurst([&] {
    connections_at_stall = proxy_->connections();
    proxy_->Stall();
  });
  // Stalled until the watch itself was told: a file failed (after the engine's
  // own retries, each through a reconnection that ran into the stall).
  const bool failed = WaitFor([&] { return !Failures().empty() || finished(); }, seconds(120));
  EXPECT_FALSE(finished()) << "the watch ended on a stalled server: " << Describe(*report_);
  proxy_->Resume();
  ASSERT_TRUE(failed) << "no file ever failed while the server was stalled";
  // A new connection means the stalled one was given up: the proxy never
  // closes it by itself.
  EXPECT_GT(proxy_->connections(), connections_at_stall) << "never declared dead";
  EXPECT_GT(ConnectionLostFailures(), 0u);
  ExpectNothingTorn();
  ASSERT_TRUE(Converges());
  ExpectTheWatchGoesOn();
}

}  // namespace
}  // namespace ferry::faults
