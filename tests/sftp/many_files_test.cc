// 20,000 files over SFTP against a real sshd, as issue #4 asks: every file
// arrives byte for byte with its mode and mtime, a second run sends nothing
// (and, once the directories are old enough to be cached, answers them from
// the listing cache), and after files vanish on the server a third run puts
// exactly those back.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "ferry/push.h"
#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using testing::ReadLocalFile;
using testing::TestBytes;
using testing::WriteLocalFile;

constexpr int kDirs = 200;
constexpr int kFilesPerDir = 100;
constexpr time_t kOld = 1'600'000'000;

void SetOld(const std::string& path) {
  struct timespec times[2] = {{kOld, 0}, {kOld, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

std::string Name(int d, int f) { return "d" + std::to_string(d) + "/f" + std::to_string(f); }

TEST(ManyFilesSftpTest, TwentyThousandFilesArriveAndASecondRunSendsNothing) {
  testing::TestSshd sshd;
  Status started = sshd.Start();
  ASSERT_TRUE(started.ok()) << started.error().Message();
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string src = std::string(tmp != nullptr ? tmp : "/tmp") + "/many_src";
  const std::string remote = sshd.root() + "/many";
  fs::remove_all(src);
  for (int d = 0; d < kDirs; ++d) {
    fs::create_directories(src + "/d" + std::to_string(d));
    for (int f = 0; f < kFilesPerDir; ++f) {
      const std::string path = src + "/" + Name(d, f);
      WriteLocalFile(path, TestBytes(static_cast<size_t>((d * 131 + f * 17) % 600), d * 1000 + f));
      ::chmod(path.c_str(), f % 3 == 0 ? 0600 : 0644);
      SetOld(path);
    }
  }

  PushOptions options;
  options.source = src;
  options.destination =
      "sftp://" + sshd.user() + "@127.0.0.1:" + std::to_string(sshd.port()) + remote;
  options.ssh.known_hosts = sshd.known_hosts();
  options.ssh.identity_files = {sshd.user_key()};
  options.ssh.config_file = "none";
  options.listing_cache = src + ".listings";
  constexpr uint64_t kTotal = uint64_t{kDirs} * kFilesPerDir;

  Report first = PushBlocking(options);
  ASSERT_TRUE(first.ok()) << first.fatal_message;
  EXPECT_EQ(first.totals.files_sent, kTotal);
  uint64_t checked = 0;
  for (int d = 0; d < kDirs; ++d) {
    for (int f = 0; f < kFilesPerDir; ++f) {
      const std::string l = src + "/" + Name(d, f);
      const std::string r = remote + "/" + Name(d, f);
      struct stat ls, rs;
      ASSERT_EQ(::stat(l.c_str(), &ls), 0);
      ASSERT_EQ(::stat(r.c_str(), &rs), 0) << "missing remotely: " << Name(d, f);
      ASSERT_EQ(ls.st_mode & 07777, rs.st_mode & 07777) << Name(d, f);
      ASSERT_EQ(rs.st_mtim.tv_sec, kOld) << Name(d, f);
      ASSERT_TRUE(ReadLocalFile(l) == ReadLocalFile(r)) << "content differs: " << Name(d, f);
      ++checked;
    }
  }
  EXPECT_EQ(checked, kTotal);
  size_t entries = 0;
  for (auto it = fs::recursive_directory_iterator(remote); it != fs::recursive_directory_iterator();
       ++it) {
    ++entries;
  }
  EXPECT_EQ(entries, kTotal + kDirs);  // nothing else: no temps

  // Make the remote directories old (not racy) so the no-op run records them.
  for (int d = 0; d < kDirs; ++d) SetOld(remote + "/d" + std::to_string(d));
  SetOld(remote);
  Report second = PushBlocking(options);
  ASSERT_TRUE(second.ok()) << second.fatal_message;
  EXPECT_EQ(second.totals.files_sent, 0u);
  EXPECT_EQ(second.totals.files_skipped, kTotal);

  // Files removed on the server behind ferry's back come back, and only they.
  fs::remove(remote + "/" + Name(7, 7));
  fs::remove(remote + "/" + Name(150, 42));
  Report third = PushBlocking(options);
  ASSERT_TRUE(third.ok()) << third.fatal_message;
  EXPECT_EQ(third.totals.files_sent, 2u);
  EXPECT_TRUE(ReadLocalFile(remote + "/" + Name(7, 7)) == ReadLocalFile(src + "/" + Name(7, 7)));
  fs::remove_all(src);
}

}  // namespace
}  // namespace ferry
