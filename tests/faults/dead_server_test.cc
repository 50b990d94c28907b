// sshd SIGKILLed with many small files still queued, and left down (issue #8,
// "giving up on a dead server"): the push must end within a bound that does
// not grow with the number of queued files (the fault matrix once measured
// ~1 s per file: 208 files, 234 s), report every unsent file with
// kConnectionLost and its path, and leave nothing partial under a final name.
//
// Measured (2026-11-25, 2 cores): 102 files 2.7 s, 402 files 9.9 s, 802 files
// 18.6 s; with PushOptions::retries = 0, 802 files 0.5 s. The pool fails each
// Acquire at once; what remains per file (~23 ms, spread over the jobs) is the
// engine retrying kConnectionLost 3 times with 50/100/200 ms pauses.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>

#include "ferry/error.h"
#include "tests/faults/fault_util.h"

namespace ferry::faults {
namespace {

constexpr int64_t kOld = 1'000'000'000'123'456'789;
constexpr int kFiles = 400;

// Kills sshd (listener and every session) once `bytes` were sent, for good.
class KillSshdAfterBytes : public Observer {
 public:
  KillSshdAfterBytes(t::TestSshd& sshd, uint64_t bytes) : sshd_(sshd), bytes_(bytes) {}
  void OnProgress(const ProgressSnapshot& p) override {
    if (!killed_ && p.bytes_sent >= bytes_ && p.bytes_sent < p.bytes_to_send) {
      killed_ = true;
      sshd_.Kill();
    }
  }
  bool killed() const { return killed_; }

 private:
  t::TestSshd& sshd_;
  uint64_t bytes_;
  bool killed_ = false;
};

using DeadServerTest = FaultTest;

TEST_P(DeadServerTest, ServerKilledWithManyFilesQueuedFailsThemAllPromptly) {
  // Many small files (one transfer each) behind two large ones, so that the
  // kill lands while most of the small ones are still queued.
  for (int b = 0; b < 2; ++b) {
    t::WriteFile(S("a_large/l" + std::to_string(b)), t::RandomBytes(8 << 20, 100 + b), 0644, kOld);
  }
  for (int f = 0; f < kFiles; ++f) {
    t::WriteFile(S("small/s" + std::to_string(f)), t::RandomBytes(4000, 3000 + f), 0644, kOld);
  }
  KillSshdAfterBytes observer(*sshd_, 2 << 20);
  PushOptions o = Options();
  o.observer = &observer;
  o.progress_interval = std::chrono::milliseconds(10);
  o.ssh.connect_timeout = std::chrono::milliseconds(3000);
  const auto start = std::chrono::steady_clock::now();
  Report r = PushBlocking(o);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  ASSERT_TRUE(observer.killed()) << "the push ended before 2 MiB were sent";
  std::printf("server down, %d files queued: gave up after %lld ms, %llu sent, %llu failed\n",
              kFiles + 2, static_cast<long long>(ms),
              static_cast<unsigned long long>(r.totals.files_sent),
              static_cast<unsigned long long>(r.totals.files_failed));
  // A hang guard, not a timing claim: ~1 s per queued file would be 400 s.
  EXPECT_LT(ms, 60'000) << Describe(r).substr(0, 2000);

  ASSERT_FALSE(r.ok());
  ASSERT_FALSE(r.fatal) << Describe(r).substr(0, 2000);
  EXPECT_EQ(r.problems_dropped, 0u);
  // Every file is either sent (and then whole) or reported, with its path, as
  // lost with the connection.
  std::set<std::string> failed;
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.code, errc::kConnectionLost) << p.path << ": " << p.message;
    EXPECT_NE(p.path, "") << p.message;
    EXPECT_NE(p.message.find(p.path), std::string::npos) << p.message;
    failed.insert(p.path);
  }
  EXPECT_EQ(r.totals.files_sent + failed.size(), static_cast<uint64_t>(kFiles + 2))
      << Describe(r).substr(0, 2000);
  EXPECT_GE(failed.size(), static_cast<size_t>(kFiles / 2)) << "the kill came too late";
  for (const auto& [path, info] : t::Snapshot(dst_)) {
    if (info.type != 'f' || path.find(".ferry-tmp-") != std::string::npos) continue;
    EXPECT_EQ(failed.count(path), 0u) << "reported failed but present: " << path;
    EXPECT_TRUE(t::ReadFile(S(path)) == info.content) << "torn file under final name: " << path;
  }

  Status started = sshd_->Start();
  ASSERT_TRUE(started.ok()) << started.error().Message();
  ExpectRerunConverges();  // also: the rerun removed the leftover temps
}

INSTANTIATE_TEST_SUITE_P(Sftp, DeadServerTest, ::testing::Values(Where::kSftp), WhereName);

}  // namespace
}  // namespace ferry::faults
