// ferry::PushBlocking to sftp:// end to end, against a real sshd: a tree of a
// few hundred files arrives byte for byte (content, mode, mtime seconds,
// symlinks, empty directories), a second run sends nothing, --delete and
// --compress work remotely, an unknown host key is a clear fatal error, and no
// temp file is ever left behind.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <map>
#include <random>

#include "ferry/error.h"
#include "ferry/push.h"
#include "lib/base/path.h"
#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using testing::ReadLocalFile;
using testing::TestBytes;
using testing::WriteLocalFile;

std::string TestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

void SetTimes(const std::string& path, int64_t sec, long nsec) {
  struct timespec times[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// Every path under `root` (relative), ferry temp files included.
std::vector<std::string> Walk(const std::string& root) {
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    out.push_back(it->path().lexically_relative(root).string());  // fs::relative follows links
  }
  std::sort(out.begin(), out.end());
  return out;
}

class PushSftpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = sshd_.Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
    src_ = TestDir() + "/push_src_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(src_);
    remote_ = sshd_.root() + "/deploy/site";  // created by the push (mkdir -p)
    MakeTree();
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "sshd log:\n%s\n", sshd_.Log().c_str());
    fs::remove_all(src_);
  }

  // ~300 files in nested directories, one file past the split threshold, an
  // empty directory, a symlink (plus a dangling one).
  void MakeTree() {
    std::mt19937 rng(42);
    const uint32_t modes[] = {0644, 0600, 0755, 0444, 0640};
    int n = 0;
    for (int d = 0; d < 6; ++d) {
      for (int s = 0; s < 5; ++s) {
        const std::string dir = src_ + "/dir" + std::to_string(d) + "/sub" + std::to_string(s);
        fs::create_directories(dir);
        for (int f = 0; f < 10; ++f, ++n) {
          const std::string path = dir + "/file" + std::to_string(f) + ".txt";
          WriteLocalFile(path, TestBytes(rng() % 20000, n));
          ::chmod(path.c_str(), modes[n % 5]);
          SetTimes(path, 1'500'000'000 + n * 1000, static_cast<long>(rng() % 1'000'000'000));
        }
      }
    }
    WriteLocalFile(src_ + "/big.bin", TestBytes(12 << 20, 999));
    WriteLocalFile(src_ + "/empty.txt", "");
    fs::create_directories(src_ + "/empty_dir");
    fs::create_symlink("dir0/sub0/file0.txt", src_ + "/link");
    fs::create_symlink("../nowhere", src_ + "/dir1/dangling");
    files_ = n + 2;
  }

  PushOptions Options() {
    PushOptions options;
    options.source = src_;
    options.destination =
        "sftp://" + sshd_.user() + "@127.0.0.1:" + std::to_string(sshd_.port()) + remote_;
    options.ssh.known_hosts = sshd_.known_hosts();
    options.ssh.identity_files = {sshd_.user_key()};
    options.ssh.config_file = "none";
    return options;
  }

  static std::string Problems(const Report& r) {
    std::string out = r.fatal_message;
    for (const Problem& p : r.problems) out += "\n" + p.path + " [" + p.stage + "]: " + p.message;
    return out;
  }

  // The remote tree is the local one: types, bytes, modes, mtime seconds, link targets.
  void ExpectSameTree(bool compressed = false) {
    std::vector<std::string> local = Walk(src_);
    std::vector<std::string> remote = Walk(remote_);
    for (const std::string& r : remote)
      EXPECT_FALSE(IsTempName(fs::path(r).filename().string())) << r;
    std::vector<std::string> expected;
    for (const std::string& rel : local) {
      const std::string l = src_ + "/" + rel;
      struct stat ls;
      ASSERT_EQ(::lstat(l.c_str(), &ls), 0);
      std::string remote_rel = rel;
      if (compressed && S_ISREG(ls.st_mode)) remote_rel += ".zst";
      expected.push_back(remote_rel);
      const std::string r = remote_ + "/" + remote_rel;
      struct stat rs;
      ASSERT_EQ(::lstat(r.c_str(), &rs), 0) << "missing remotely: " << remote_rel;
      EXPECT_EQ(ls.st_mode & S_IFMT, rs.st_mode & S_IFMT) << rel;
      if (S_ISLNK(ls.st_mode)) {
        EXPECT_EQ(fs::read_symlink(l), fs::read_symlink(r)) << rel;
      } else if (S_ISREG(ls.st_mode)) {
        EXPECT_EQ(ls.st_mode & 07777, rs.st_mode & 07777) << rel;
        EXPECT_EQ(ls.st_mtim.tv_sec, rs.st_mtim.tv_sec) << rel;
        if (!compressed) {
          EXPECT_EQ(ls.st_size, rs.st_size) << rel;
          EXPECT_TRUE(ReadLocalFile(l) == ReadLocalFile(r)) << "content differs: " << rel;
        }
      }
    }
    std::sort(expected.begin(), expected.end());
    std::vector<std::string> missing, extra;
    std::set_difference(expected.begin(), expected.end(), remote.begin(), remote.end(),
                        std::back_inserter(missing));
    std::set_difference(remote.begin(), remote.end(), expected.begin(), expected.end(),
                        std::back_inserter(extra));
    EXPECT_TRUE(missing.empty()) << "missing remotely: " << ::testing::PrintToString(missing);
    EXPECT_TRUE(extra.empty()) << "extra remotely: " << ::testing::PrintToString(extra);
  }

  testing::TestSshd sshd_;
  std::string src_;
  std::string remote_;
  uint64_t files_ = 0;
};

TEST_F(PushSftpTest, PushesATreeByteForByteAndASecondRunSendsNothing) {
  Report first = PushBlocking(Options());
  ASSERT_TRUE(first.ok()) << Problems(first);
  EXPECT_EQ(first.totals.files_sent, files_);
  EXPECT_EQ(first.totals.symlinks, 2u);
  ExpectSameTree();
  EXPECT_TRUE(fs::is_directory(remote_ + "/empty_dir"));
  EXPECT_TRUE(first.notes.empty());

  Report second = PushBlocking(Options());
  ASSERT_TRUE(second.ok()) << Problems(second);
  EXPECT_EQ(second.totals.files_sent, 0u);
  EXPECT_EQ(second.totals.files_skipped, files_ + 2);  // the two symlinks too
  EXPECT_EQ(second.totals.bytes_written, 0u);
  ExpectSameTree();

  // --checksum reads the remote files back (ReadAll) and finds them equal.
  PushOptions checksum = Options();
  checksum.checksum = true;
  checksum.hash_cache = "none";
  Report third = PushBlocking(checksum);
  ASSERT_TRUE(third.ok()) << Problems(third);
  EXPECT_EQ(third.totals.files_sent, 0u);
}

TEST_F(PushSftpTest, ChangedFilesAreSentAgain) {
  ASSERT_TRUE(PushBlocking(Options()).ok());
  WriteLocalFile(src_ + "/dir2/sub3/file4.txt", "changed content");
  SetTimes(src_ + "/dir2/sub3/file4.txt", 1'700'000'000, 0);
  Report again = PushBlocking(Options());
  ASSERT_TRUE(again.ok()) << Problems(again);
  EXPECT_EQ(again.totals.files_sent, 1u);
  ExpectSameTree();
}

TEST_F(PushSftpTest, DeleteRemovesWhatTheSourceNoLongerHas) {
  ASSERT_TRUE(PushBlocking(Options()).ok());
  fs::remove_all(src_ + "/dir3");
  fs::remove(src_ + "/link");
  fs::remove(src_ + "/dir0/sub1/file2.txt");
  fs::create_directories(remote_ + "/extra/deep/er");
  WriteLocalFile(remote_ + "/extra/deep/er/x", "x");
  fs::create_symlink("/etc", remote_ + "/extra/etc_link");
  WriteLocalFile(remote_ + "/stray", "s");
  PushOptions options = Options();
  options.delete_extraneous = true;
  Report report = PushBlocking(options);
  ASSERT_TRUE(report.ok()) << Problems(report);
  EXPECT_GE(report.totals.files_deleted, 5u);
  ExpectSameTree();
  EXPECT_TRUE(fs::exists("/etc/passwd"));  // the symlink was removed, not followed
}

TEST_F(PushSftpTest, CompressStoresZstFilesThatZstdRestores) {
  PushOptions options = Options();
  options.compress_level = 3;
  Report report = PushBlocking(options);
  ASSERT_TRUE(report.ok()) << Problems(report);
  ExpectSameTree(/*compressed=*/true);
  const std::string out = TestDir() + "/restored_" + std::to_string(::getpid());
  for (const char* rel : {"dir4/sub2/file7.txt", "big.bin", "empty.txt"}) {
    const std::string cmd = "zstd -q -d -f -o '" + out + "' '" + remote_ + "/" + rel + ".zst'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    EXPECT_TRUE(ReadLocalFile(out) == ReadLocalFile(src_ + "/" + rel)) << rel;
  }
  fs::remove(out);
  // A second run reads the frame headers back (ReadHead) and sends nothing.
  Report again = PushBlocking(options);
  ASSERT_TRUE(again.ok()) << Problems(again);
  EXPECT_EQ(again.totals.files_sent, 0u);
}

TEST_F(PushSftpTest, UnknownHostKeyIsAClearFatalError) {
  WriteLocalFile(sshd_.known_hosts(), "");
  Report report = PushBlocking(Options());
  EXPECT_EQ(report.fatal, errc::kHostKeyUnknown) << report.fatal_message;
  EXPECT_NE(report.fatal_message.find("127.0.0.1"), std::string::npos) << report.fatal_message;
  EXPECT_NE(report.fatal_message.find("SHA256:"), std::string::npos) << report.fatal_message;
  EXPECT_NE(report.fatal_message.find(sshd_.known_hosts()), std::string::npos)
      << report.fatal_message;
  EXPECT_FALSE(fs::exists(remote_));
  EXPECT_EQ(report.totals.files_sent, 0u);

  // --accept-new-host-key records it and the push goes through.
  PushOptions options = Options();
  options.ssh.accept_new_host_key = true;
  Report accepted = PushBlocking(options);
  ASSERT_TRUE(accepted.ok()) << Problems(accepted);
  ExpectSameTree();
}

// Restarts the server (dropping every connection) once `after` uploads are done.
class RestartServerAfter : public Observer {
 public:
  RestartServerAfter(testing::TestSshd& sshd, int after) : sshd_(sshd), after_(after) {}
  void OnFile(const FileEvent& e) override {
    if (e.action == FileAction::kUpload && e.outcome == Outcome::kDone && ++uploads_ == after_) {
      // Blocks the push's thread for a moment: fine in a test, and PDEATHSIG
      // wants Start() on the test thread, which is where PushBlocking runs.
      restarted_ = sshd_.Restart().ok();
    }
    if (e.outcome == Outcome::kFailed) ++failures_;
  }
  bool restarted() const { return restarted_; }
  int failures() const { return failures_; }

 private:
  testing::TestSshd& sshd_;
  int after_;
  int uploads_ = 0;
  int failures_ = 0;
  bool restarted_ = false;
};

TEST_F(PushSftpTest, ServerRestartMidPushIsRetriedToCompletion) {
  RestartServerAfter observer(sshd_, 60);
  PushOptions options = Options();
  options.observer = &observer;
  Report report = PushBlocking(options);
  EXPECT_TRUE(observer.restarted());
  ASSERT_TRUE(report.ok()) << Problems(report);
  EXPECT_EQ(observer.failures(), 0);
  EXPECT_EQ(report.totals.files_sent, files_);
  ExpectSameTree();  // also: no temp file left by the interrupted uploads
}

TEST_F(PushSftpTest, DryRunTouchesNothing) {
  PushOptions options = Options();
  options.dry_run = true;
  Report report = PushBlocking(options);
  ASSERT_TRUE(report.ok()) << Problems(report);
  EXPECT_EQ(report.totals.files_sent, files_);
  EXPECT_FALSE(fs::exists(remote_));
}

}  // namespace
}  // namespace ferry
