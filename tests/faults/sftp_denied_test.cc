// EACCES on the SFTP server (SSH_FX_PERMISSION_DENIED) reaches the report as
// std::errc::permission_denied with the file's path and what was refused, in
// the user's terms (not the name of ferry's temp file).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/faults/fault_util.h"

namespace ferry::faults {
namespace {

bool g_permissions_apply = false;

constexpr int64_t kOld = 1'000'000'000'123'456'789;

class SftpDeniedTest : public FaultTest {
 protected:
  void SetUp() override {
    if (!g_permissions_apply) GTEST_SKIP() << "permission bits do not bind this process";
    FaultTest::SetUp();
  }
};

TEST_P(SftpDeniedTest, ReadOnlyRemoteDirectoryIsReportedAsPermissionDeniedWithItsPath) {
  t::WriteFile(S("ok"), "fine", 0644, kOld);
  t::WriteFile(S("locked/new"), "new", 0644, kOld);
  t::MakeDir(D("locked"), 0755);
  // Read-only to ferry because another user owns it, with the source's mode:
  // a directory ferry owned would simply get its mode set back.
  ASSERT_EQ(::chown(D("locked").c_str(), 65534, 65534), 0);

  Report r = Push();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ASSERT_EQ(r.problems.size(), 1u) << Describe(r);
  const Problem& p = r.problems[0];
  EXPECT_EQ(p.path, "locked/new");
  EXPECT_EQ(p.code, std::errc::permission_denied) << Describe(r);
  EXPECT_NE(p.message.find("/locked/new: the server refused to create files in "),
            std::string::npos)
      << p.message;
  EXPECT_EQ(p.message.find(".ferry-tmp-"), std::string::npos) << p.message;
  EXPECT_EQ(t::ReadFile(D("ok")), "fine");
  EXPECT_FALSE(t::Exists(D("locked/new")));
  ASSERT_EQ(::chown(D("locked").c_str(), ::geteuid(), ::getegid()), 0);
  ExpectNothingPartial();
}

INSTANTIATE_TEST_SUITE_P(Sftp, SftpDeniedTest, ::testing::Values(Where::kSftp), WhereName);

}  // namespace
}  // namespace ferry::faults

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Before any thread exists: see DropFileCapabilities.
  if (::geteuid() == 0) ferry::faults::DropFileCapabilities();
  ferry::faults::g_permissions_apply = ferry::faults::PermissionsApply();
  return RUN_ALL_TESTS();
}
