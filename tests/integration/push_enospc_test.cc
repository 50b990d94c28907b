// A destination that runs out of space: every file that does not fit is a
// per-file ENOSPC problem, and no partial file is left under its final name.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ferry/push.h"
#include "tests/testing/tree.h"

namespace ferry {
namespace {

namespace t = ferry::testing;

TEST(PushEnospcTest, FullDestinationReportsEnospcPerFileAndLeavesNoPartialFile) {
  // A private mount namespace: the tmpfs disappears with this process.
  if (::unshare(CLONE_NEWNS) != 0) GTEST_SKIP() << "unshare(CLONE_NEWNS): " << std::strerror(errno);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    GTEST_SKIP() << "make / private: " << std::strerror(errno);
  }
  std::string src = t::MakeTempDir("src");
  std::string mnt = t::MakeTempDir("mnt");
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "mount tmpfs: " << std::strerror(errno);
  }
  for (int i = 0; i < 4; ++i) {
    t::WriteFile(src + "/big" + std::to_string(i), t::RandomBytes(400 << 10, i), 0644,
                 1'000'000'000'000'000'000);
  }
  t::WriteFile(src + "/small", "small", 0644, 1'000'000'000'000'000'000);

  PushOptions o;
  o.source = src;
  o.destination = mnt;
  o.jobs = 1;  // deterministic: files fill the disk one after the other
  Report r = PushBlocking(o);

  EXPECT_FALSE(r.fatal) << r.fatal_message;
  ASSERT_FALSE(r.problems.empty());
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.code, std::errc::no_space_on_device) << p.path << ": " << p.message;
    EXPECT_TRUE(p.stage == "write" || p.stage == "commit") << p.stage;
    EXPECT_FALSE(t::Exists(mnt + "/" + p.path)) << p.path;
  }
  EXPECT_GE(r.totals.files_sent, 1u);
  EXPECT_EQ(r.totals.files_sent + r.totals.files_failed, 5u);
  // Whatever landed is complete.
  for (const auto& [path, info] : t::Snapshot(mnt)) {
    EXPECT_EQ(info.content, t::ReadFile(src + "/" + path)) << path;
  }
  EXPECT_TRUE(t::FindTemps(mnt).empty());
  ::umount2(mnt.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace ferry
