// The remote disk fills up (issue #8): sshd runs in a private mount namespace
// whose remote root is a 2 MiB tmpfs, so the SFTP server's writes really fail
// with ENOSPC. Every file that does not fit is a per-file problem with its
// path; nothing partial lands under a final name; after the disk is grown a
// rerun converges. (The local destination's case is
// tests/integration/push_enospc_test.cc.)
#include <gtest/gtest.h>

#include <memory>

#include "tests/faults/fault_util.h"
#include "tests/testing/private_mounts.h"

namespace ferry::faults {
namespace {

std::string g_no_mounts_reason = "not started";  // "" once in a private mount namespace

constexpr int64_t kOld = 1'000'000'000'123'456'789;

class SftpEnospcTest : public FaultTest {
 protected:
  void SetUp() override {
    if (!g_no_mounts_reason.empty()) GTEST_SKIP() << g_no_mounts_reason;
    FaultTest::SetUp();
  }
  // The tmpfs goes over the (still empty) remote root before sshd starts; sshd
  // and its sessions are children of this process, so they share the namespace.
  void BeforeSshdStart() override {
    tmpfs_ = std::make_unique<t::Tmpfs>(sshd_->root(), "2m");
    ASSERT_TRUE(tmpfs_->ok()) << tmpfs_->error();
  }
  void TearDown() override {
    FaultTest::TearDown();
    tmpfs_.reset();
  }
  std::unique_ptr<t::Tmpfs> tmpfs_;
};

TEST_P(SftpEnospcTest, FullRemoteDiskFailsPerFileLeavesNothingPartialAndRerunConverges) {
  for (int i = 0; i < 6; ++i) {
    t::WriteFile(S("big" + std::to_string(i)), t::RandomBytes(700 << 10, i), 0644, kOld);
  }
  t::WriteFile(S("small"), "small", 0644, kOld);
  PushOptions o = Options();
  o.jobs = 1;  // deterministic: files fill the disk one after the other
  Report r = PushBlocking(o);

  EXPECT_FALSE(r.fatal) << Describe(r);
  ASSERT_FALSE(r.problems.empty()) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.path.rfind("big", 0), 0u) << Describe(r);
    EXPECT_TRUE(p.stage == "write" || p.stage == "commit") << Describe(r);
    // SFTP v3 has no ENOSPC status: OpenSSH answers SSH_FX_FAILURE for it;
    // ferry must still say which file and that the server refused the write.
    EXPECT_NE(p.message.find(p.path), std::string::npos) << p.message;
    EXPECT_FALSE(t::Exists(D(p.path))) << p.path;
  }
  std::printf("remote ENOSPC: %s\n", Describe(r).c_str());
  EXPECT_GE(r.totals.files_sent, 1u);
  EXPECT_EQ(r.totals.files_sent + r.totals.files_failed, 7u);
  ExpectNothingPartial();

  // More room: the rerun sends what failed and converges.
  ASSERT_EQ(tmpfs_->Resize("64m"), "");
  ExpectRerunConverges();
}

// SFTP v3 has no "no space" status: OpenSSH sends SSH_FX_FAILURE for ENOSPC.
// ferry asks statvfs@openssh.com after such a failure and, when the room left
// explains it, reports ENOSPC with the path and the free space.
TEST_P(SftpEnospcTest, FullRemoteDiskIsReportedAsNoSpace) {
  t::WriteFile(S("big"), t::RandomBytes(3 << 20, 1), 0644, kOld);
  Report r = Push();
  ASSERT_EQ(r.problems.size(), 1u) << Describe(r);
  const Problem& p = r.problems[0];
  EXPECT_EQ(p.code, std::errc::no_space_on_device) << Describe(r);
  EXPECT_EQ(p.path, "big");
  EXPECT_NE(p.message.find("big"), std::string::npos) << p.message;
  EXPECT_NE(p.message.find("bytes free for this user"), std::string::npos) << p.message;
  EXPECT_NE(p.message.find("No space left on device"), std::string::npos) << p.message;
  EXPECT_FALSE(t::Exists(D("big")));
  ExpectNothingPartial();
}

INSTANTIATE_TEST_SUITE_P(Sftp, SftpEnospcTest, ::testing::Values(Where::kSftp), WhereName);

}  // namespace
}  // namespace ferry::faults

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // A private mount namespace, entered before any thread exists: the tmpfs
  // disappears with this process.
  ferry::faults::g_no_mounts_reason = ferry::testing::EnterPrivateMountNamespace();
  return RUN_ALL_TESTS();
}
