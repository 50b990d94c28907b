// The fault matrix of ferry::PushBlocking (issue #8), each case run against a
// local directory AND a real sshd: permission denied, a file where a directory
// is expected, sources that change while read, a directory removed during the
// scan, symlink loops, unreadable files and hostile names. Every case asserts
// the outcome (report, per-file problem with path and reason), then checks the
// destination file by file (nothing torn or foreign under a final name, no
// temp) and that a rerun converges.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "ferry/error.h"
#include "tests/faults/fault_util.h"

namespace ferry::faults {
namespace {

namespace fs = std::filesystem;

bool g_permissions_apply = false;

constexpr int64_t kOld = 1'000'000'000'123'456'789;

// Writes `content` to `path` through a temp file (outside the source tree, same
// file system) and rename(2): readers see the old or the new inode, never a mix.
void ReplaceByRename(const std::string& path, const std::string& content) {
  static const std::string dir = t::MakeTempDir("writer");
  const std::string tmp = dir + "/tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  ::rename(tmp.c_str(), path.c_str());
}

// Runs `step` in a loop on a background thread until destroyed (a 60 s guard
// against a hung test only; nothing is timed).
class Hammer {
 public:
  template <typename Step>
  explicit Hammer(Step step)
      : thread_([this, step] {
          auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
          for (int i = 0; !stop_.load() && std::chrono::steady_clock::now() < deadline; ++i) {
            step(i);
          }
        }) {}
  ~Hammer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class PushFaultTest : public FaultTest {
 protected:
  void RequirePermissions() {
    if (!g_permissions_apply) GTEST_SKIP() << "permission bits do not bind this process";
  }
  // A few files that must land whatever else fails.
  void MakeBystanders() {
    for (int i = 0; i < 5; ++i) {
      t::WriteFile(S("ok/f" + std::to_string(i)), t::RandomBytes(3000 + i, i), 0644, kOld);
    }
  }
  void ExpectBystandersLanded() {
    for (int i = 0; i < 5; ++i) {
      const std::string rel = "ok/f" + std::to_string(i);
      ASSERT_TRUE(t::Exists(D(rel))) << rel;
      EXPECT_TRUE(t::ReadFile(D(rel)) == t::ReadFile(S(rel))) << rel;
    }
  }
};

// ---- permission denied on the destination --------------------------------

// A destination directory ferry owns gets the source directory's mode back
// (ChangedSourceDirectoryModeReachesTheDestination), so the permission faults
// below use directories of another owner, which ferry may not chmod.
constexpr uid_t kNobody = 65534;

TEST_P(PushFaultTest, ReadOnlyDestinationDirectoryFailsItsFilesAndTheRestLands) {
  RequirePermissions();
  MakeBystanders();
  t::WriteFile(S("locked/a"), "new a", 0644, kOld);
  t::WriteFile(S("locked/b"), "new b", 0644, kOld);
  t::WriteFile(D("locked/a"), "old a", 0644, kOld + 1'000'000'000);  // differs: must be sent
  // Read-only to ferry (not its owner), with the source's mode: no chmod is due.
  ASSERT_EQ(::chown(D("locked").c_str(), kNobody, kNobody), 0);

  Report r = Push();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ASSERT_EQ(r.problems.size(), 2u) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_TRUE(p.path == "locked/a" || p.path == "locked/b") << Describe(r);
    EXPECT_EQ(p.code, std::errc::permission_denied) << Describe(r);
    EXPECT_NE(p.message.find(p.path), std::string::npos) << p.message;
  }
  ExpectBystandersLanded();
  EXPECT_EQ(t::ReadFile(D("locked/a")), "old a");  // untouched, not torn
  EXPECT_FALSE(t::Exists(D("locked/b")));
  EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});

  ASSERT_EQ(::chown(D("locked").c_str(), ::getuid(), ::getgid()), 0);
  ExpectRerunConverges();
}

TEST_P(PushFaultTest, ReadOnlyDestinationFileIsReplacedAtomically) {
  // Replacing is a rename in the (writable) directory, as with rsync: the old
  // file's own mode does not matter.
  RequirePermissions();
  t::WriteFile(S("ro.txt"), "new content", 0644, kOld);
  t::WriteFile(D("ro.txt"), "old", 0444, kOld);
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(t::ReadFile(D("ro.txt")), "new content");
  ExpectRerunConverges();
}

TEST_P(PushFaultTest, UnlistableDestinationDirectoryIsReportedAndTheRestLands) {
  RequirePermissions();
  MakeBystanders();
  t::WriteFile(S("sealed/x"), "x", 0644, kOld);
  t::MakeDir(D("sealed"), 0755);
  ::chmod(D("sealed").c_str(), 0000);
  ASSERT_EQ(::chown(D("sealed").c_str(), kNobody, kNobody), 0);

  Report r = Push();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ASSERT_FALSE(r.problems.empty()) << Describe(r);
  bool listed = false;
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.path.rfind("sealed", 0), 0u) << Describe(r);
    // The chmod back to 0755 is refused (not the owner: EPERM locally, SFTP's
    // FX_PERMISSION_DENIED remotely), then the listing.
    if (p.stage == "chmod") {
      EXPECT_TRUE(p.code == std::errc::operation_not_permitted ||
                  p.code == std::errc::permission_denied)
          << Describe(r);
    } else {
      EXPECT_EQ(p.code, std::errc::permission_denied) << Describe(r);
      listed = true;
    }
  }
  EXPECT_TRUE(listed) << Describe(r);
  ExpectBystandersLanded();
  ASSERT_EQ(::chown(D("sealed").c_str(), ::getuid(), ::getgid()), 0);
  ::chmod(D("sealed").c_str(), 0755);
  EXPECT_FALSE(t::Exists(D("sealed/x")));
  ExpectNothingPartial();
  ExpectRerunConverges();
}

// ---- a file where a directory is expected ----------------------------------

// Replacing a non-directory is an overwrite, as for files (no --delete needed):
// the file goes, the directory and its contents land.
TEST_P(PushFaultTest, FileWhereADirectoryIsExpectedIsReplacedByTheDirectory) {
  MakeBystanders();
  t::WriteFile(S("sub/inner.txt"), "inner", 0644, kOld);
  t::WriteFile(D("sub"), "I am a file", 0644, kOld);

  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  ExpectBystandersLanded();
  EXPECT_EQ(t::Snapshot(dst_).at("sub").type, 'd');
  EXPECT_EQ(t::ReadFile(D("sub/inner.txt")), "inner");
  ExpectNothingPartial();
  ExpectRerunConverges();
}

// The other way round: a directory (with contents) where the source has a
// file. Replacing it would delete the directory's contents, so without --delete
// it is a per-path type conflict and the directory is left alone; the rerun with
// --delete replaces it.
TEST_P(PushFaultTest, DirectoryWhereAFileIsExpectedIsATypeConflictUntilDelete) {
  MakeBystanders();
  t::WriteFile(S("thing"), "a file now", 0644, kOld);
  t::WriteFile(D("thing/old.txt"), "old", 0644, kOld);

  Report r = Push();
  EXPECT_FALSE(r.fatal) << Describe(r);
  ASSERT_EQ(r.problems.size(), 1u) << Describe(r);
  EXPECT_EQ(r.problems[0].path, "thing");
  EXPECT_EQ(r.problems[0].code, errc::kTypeConflict) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 5u);
  ExpectBystandersLanded();
  EXPECT_EQ(t::ReadFile(D("thing/old.txt")), "old");  // nothing deleted without --delete
  ExpectNothingPartial({{"thing/old.txt", {"old"}}});
  ExpectRerunConverges(/*with_delete=*/true);
}

TEST_P(PushFaultTest, DestinationRootThatIsAFileIsFatal) {
  MakeBystanders();
  t::WriteFile(dst_, "not a directory", 0644, kOld);
  Report r = Push();
  EXPECT_TRUE(r.fatal) << Describe(r);
  EXPECT_NE(r.fatal_message, "");
  EXPECT_EQ(t::ReadFile(dst_), "not a directory");
  std::printf("root-is-file: %s\n", Describe(r).c_str());
}

// ---- the source changes while it is read -----------------------------------

TEST_P(PushFaultTest, SourceGrowingWhileReadNeverLandsTorn) {
  MakeBystanders();
  const std::string initial = t::RandomBytes(8 << 20, 7);
  t::WriteFile(S("growing.log"), initial, 0644, kOld);
  Hammer writer([&](int) {
    int fd = ::open(S("growing.log").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return;
    const std::string line(100, 'x');
    (void)::write(fd, line.data(), line.size());
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  });
  PushOptions o = Options();
  o.retries = 1;
  Report r = PushBlocking(o);
  writer.Stop();

  EXPECT_FALSE(r.fatal) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.path, "growing.log") << Describe(r);
    EXPECT_EQ(p.code, errc::kSourceChanged) << Describe(r);
  }
  ExpectBystandersLanded();
  // Landed or not, what is there is a prefix of the file as it grew.
  const std::string now = t::ReadFile(S("growing.log"));
  if (t::Exists(D("growing.log"))) {
    const std::string got = t::ReadFile(D("growing.log"));
    EXPECT_GE(got.size(), initial.size());
    EXPECT_TRUE(now.compare(0, got.size(), got) == 0) << "torn growing.log";
  } else {
    EXPECT_EQ(r.problems.size(), 1u) << Describe(r);
  }
  EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});
  ExpectRerunConverges();
}

TEST_P(PushFaultTest, SourceShrinkingWhileReadNeverLandsTorn) {
  // Two versions of different sizes, rewritten in place (O_TRUNC), with a pause
  // longer than a timestamp tick so that every rewrite changes mtime.
  const std::string big = t::RandomBytes(6 << 20, 11), small = t::RandomBytes(1 << 20, 12);
  t::WriteFile(S("shrinking.bin"), big, 0644, kOld);
  Hammer writer([&](int i) {
    const std::string& v = (i % 2 == 0) ? small : big;
    int fd = ::open(S("shrinking.bin").c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) return;
    size_t off = 0;
    while (off < v.size()) {
      ssize_t n = ::write(fd, v.data() + off, v.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  });
  PushOptions o = Options();
  o.retries = 1;
  Report r = PushBlocking(o);
  writer.Stop();

  EXPECT_FALSE(r.fatal) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.path, "shrinking.bin") << Describe(r);
    EXPECT_EQ(p.code, errc::kSourceChanged) << Describe(r);
  }
  // O_TRUNC then write: the source really is empty, then a prefix of a version,
  // for a moment, and a read that fits in that moment is a consistent copy. A
  // mix of the two versions would be torn.
  ExpectNothingPartial({{"shrinking.bin", {big, small}}}, /*prefixes_ok=*/true);
  ExpectRerunConverges();
}

TEST_P(PushFaultTest, SourceReplacedByRenameWhileReadLandsOneWholeVersion) {
  MakeBystanders();
  const std::string a = t::RandomBytes(4 << 20, 21), b = t::RandomBytes(3 << 20, 22);
  t::WriteFile(S("swapped.bin"), a, 0644, kOld);
  Hammer writer([&](int i) { ReplaceByRename(S("swapped.bin"), i % 2 == 0 ? b : a); });
  Report r = Push();
  writer.Stop();

  EXPECT_FALSE(r.fatal) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.path, "swapped.bin") << Describe(r);
    EXPECT_TRUE(p.code == errc::kSourceChanged || p.code == errc::kSourceVanished) << Describe(r);
  }
  ExpectBystandersLanded();
  ExpectNothingPartial({{"swapped.bin", {a, b}}});
  ExpectRerunConverges();
}

TEST_P(PushFaultTest, SourceDeletedWhileReadIsReportedOrSentWhole) {
  MakeBystanders();
  const std::string v = t::RandomBytes(4 << 20, 31);
  t::WriteFile(S("flicker.bin"), v, 0644, kOld);
  Hammer writer([&](int i) {
    if (i % 2 == 0) {
      ::unlink(S("flicker.bin").c_str());
    } else {
      ReplaceByRename(S("flicker.bin"), v);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  Report r = Push();
  writer.Stop();

  EXPECT_FALSE(r.fatal) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.path, "flicker.bin") << Describe(r);
    EXPECT_TRUE(p.code == errc::kSourceChanged || p.code == errc::kSourceVanished ||
                p.code == std::errc::no_such_file_or_directory)
        << Describe(r);
  }
  ExpectBystandersLanded();
  ExpectNothingPartial({{"flicker.bin", {v}}});
  ReplaceByRename(S("flicker.bin"), v);
  ExpectRerunConverges();
}

TEST_P(PushFaultTest, DirectoryRemovedDuringTheScanIsNotFatal) {
  for (int d = 0; d < 60; ++d) {
    for (int f = 0; f < 20; ++f) {
      t::WriteFile(S("d" + std::to_string(d) + "/f" + std::to_string(f)), "x", 0644, kOld);
    }
  }
  Hammer churn([&](int i) {
    const std::string dir = S("victim");
    if (i % 2 == 0) {
      for (int f = 0; f < 50; ++f) t::WriteFile(dir + "/deep/f" + std::to_string(f), "v", 0644);
    } else {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  });
  Report r = Push();
  churn.Stop();

  EXPECT_FALSE(r.fatal) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.path.rfind("victim", 0), 0u) << Describe(r);
    EXPECT_TRUE(p.code == errc::kSourceVanished || p.code == std::errc::no_such_file_or_directory)
        << Describe(r);
  }
  // Everything outside the victim landed.
  for (int d = 0; d < 60; ++d) EXPECT_TRUE(t::Exists(D("d" + std::to_string(d) + "/f19"))) << d;
  std::map<std::string, std::vector<std::string>> victims;
  // WriteFile creates, then writes: a reader between the two sees a real empty file.
  for (int f = 0; f < 50; ++f) victims["victim/deep/f" + std::to_string(f)] = {"", "v"};
  ExpectNothingPartial(victims);
  ExpectRerunConverges(/*with_delete=*/true);
}

// ---- symlink loops -----------------------------------------------------------

TEST_P(PushFaultTest, SymlinkLoopsAreRecreatedAsLinks) {
  MakeBystanders();
  t::MakeSymlink(S("self"), "self");
  t::MakeSymlink(S("ping"), "pong");
  t::MakeSymlink(S("pong"), "ping");
  t::MakeDir(S("tree/sub"));
  t::MakeSymlink(S("tree/sub/up"), "../..");
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  ExpectSameTree();
  ExpectRerunConverges();
}

TEST_P(PushFaultTest, SymlinkLoopsWithCopyLinksAreReportedNotFollowedForever) {
  MakeBystanders();
  t::MakeSymlink(S("self"), "self");
  t::MakeSymlink(S("ping"), "pong");
  t::MakeSymlink(S("pong"), "ping");
  t::MakeDir(S("tree/sub"));
  t::MakeSymlink(S("tree/sub/up"), "../..");
  PushOptions o = Options();
  o.copy_links = true;
  Report r = PushBlocking(o);
  EXPECT_FALSE(r.fatal) << Describe(r);
  std::printf("copy-links loops: sent=%llu failed=%llu problems=%zu\n",
              static_cast<unsigned long long>(r.totals.files_sent),
              static_cast<unsigned long long>(r.totals.files_failed), r.problems.size());
  // One problem per loop, each with stat(2)'s reason: the three links loop
  // (ELOOP), and the directory cycle tree/sub/up -> ../.. is not entered.
  ASSERT_EQ(r.problems.size(), 4u) << Describe(r);
  std::map<std::string, std::string> messages;
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.code, std::errc::too_many_symbolic_link_levels) << Describe(r);
    messages[p.path] = p.message;
  }
  EXPECT_NE(messages["self"].find("symlink loop"), std::string::npos) << Describe(r);
  EXPECT_NE(messages["ping"].find("symlink loop"), std::string::npos) << Describe(r);
  EXPECT_NE(messages["pong"].find("symlink loop"), std::string::npos) << Describe(r);
  EXPECT_NE(messages["tree/sub/up"].find("directory cycle: not followed"), std::string::npos)
      << Describe(r);
  ExpectBystandersLanded();
  EXPECT_FALSE(t::Exists(D("self")));
  EXPECT_FALSE(t::Exists(D("tree/sub/up")));
  EXPECT_TRUE(t::Exists(D("tree/sub")));
  ExpectNothingPartial();
}

// -L through a cycle that is not a loop of links: a followed link to an
// ancestor (`../..`) and one to the root by absolute path. Each is reported
// once and not entered; a link to a sibling directory (no cycle) is copied.
TEST_P(PushFaultTest, DirectoryCyclesWithCopyLinksAreReportedOnceAndNotEntered) {
  t::WriteFile(S("a/b/leaf.txt"), "leaf", 0644, kOld);
  t::WriteFile(S("other/o.txt"), "o", 0644, kOld);
  t::MakeSymlink(S("a/b/up"), "../..");
  t::MakeSymlink(S("a/b/root"), src_);
  t::MakeSymlink(S("a/sibling"), "../other");
  PushOptions o = Options();
  o.copy_links = true;
  Report r = PushBlocking(o);
  EXPECT_FALSE(r.fatal) << Describe(r);
  ASSERT_EQ(r.problems.size(), 2u) << Describe(r);
  for (const Problem& p : r.problems) {
    EXPECT_TRUE(p.path == "a/b/up" || p.path == "a/b/root") << Describe(r);
    EXPECT_EQ(p.code, std::errc::too_many_symbolic_link_levels) << Describe(r);
    EXPECT_NE(p.message.find("directory cycle: not followed: " + p.path), std::string::npos)
        << Describe(r);
  }
  EXPECT_EQ(r.totals.files_sent, 3u) << Describe(r);
  EXPECT_EQ(t::ReadFile(D("a/b/leaf.txt")), "leaf");
  EXPECT_EQ(t::ReadFile(D("a/sibling/o.txt")), "o");
  EXPECT_FALSE(t::Exists(D("a/b/up")));
  EXPECT_FALSE(t::Exists(D("a/b/root")));
}

// With -L a link that cannot be followed is reported with stat(2)'s reason:
// ELOOP for a loop, ENOENT "no referent" for a dangling link, EACCES when a
// directory on the way cannot be searched.
TEST_P(PushFaultTest, SymlinkLoopWithCopyLinksIsReportedAsALoop) {
  t::MakeSymlink(S("self"), "self");
  PushOptions o = Options();
  o.copy_links = true;
  Report r = PushBlocking(o);
  ASSERT_EQ(r.problems.size(), 1u) << Describe(r);
  EXPECT_EQ(r.problems[0].code, std::errc::too_many_symbolic_link_levels) << Describe(r);
  EXPECT_NE(r.problems[0].message.find("symlink loop"), std::string::npos) << Describe(r);
}

TEST_P(PushFaultTest, DanglingSymlinkWithCopyLinksHasNoReferent) {
  t::MakeSymlink(S("dangling"), "nowhere");
  PushOptions o = Options();
  o.copy_links = true;
  Report r = PushBlocking(o);
  ASSERT_EQ(r.problems.size(), 1u) << Describe(r);
  EXPECT_EQ(r.problems[0].code, std::errc::no_such_file_or_directory) << Describe(r);
  EXPECT_NE(r.problems[0].message.find("symlink has no referent: dangling"), std::string::npos)
      << Describe(r);
}

TEST_P(PushFaultTest, SymlinkIntoAnUnsearchableDirectoryWithCopyLinksIsPermissionDenied) {
  RequirePermissions();
  t::WriteFile(S("closed/inside.txt"), "inside", 0644, kOld);
  t::MakeSymlink(S("link"), "closed/inside.txt");
  ::chmod(S("closed").c_str(), 0000);
  PushOptions o = Options();
  o.copy_links = true;
  Report r = PushBlocking(o);
  ::chmod(S("closed").c_str(), 0755);
  bool link = false;
  for (const Problem& p : r.problems) {
    if (p.path != "link") continue;
    link = true;
    EXPECT_EQ(p.code, std::errc::permission_denied) << Describe(r);
    EXPECT_NE(p.message.find("cannot follow symlink: link"), std::string::npos) << Describe(r);
  }
  EXPECT_TRUE(link) << Describe(r);
}

// ---- unreadable source entries -----------------------------------------------

TEST_P(PushFaultTest, UnreadableSourceFileAndDirectoryAreReportedAndTheRestLands) {
  RequirePermissions();
  MakeBystanders();
  t::WriteFile(S("secret.txt"), "secret", 0000, kOld);
  t::WriteFile(S("closed/inside.txt"), "inside", 0644, kOld);
  ::chmod(S("closed").c_str(), 0000);

  Report r = Push();
  EXPECT_FALSE(r.fatal) << Describe(r);
  bool file = false, dir = false;
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.code, std::errc::permission_denied) << Describe(r);
    EXPECT_NE(p.message.find(p.path), std::string::npos) << p.message;
    file = file || p.path == "secret.txt";
    dir = dir || p.path.rfind("closed", 0) == 0;
  }
  EXPECT_TRUE(file) << Describe(r);
  EXPECT_TRUE(dir) << Describe(r);
  ExpectBystandersLanded();
  EXPECT_FALSE(t::Exists(D("secret.txt")));
  EXPECT_FALSE(t::Exists(D("closed/inside.txt")));

  ::chmod(S("closed").c_str(), 0755);
  ::chmod(S("secret.txt").c_str(), 0644);
  ExpectNothingPartial();
  // The first run created closed/ as 0700 (it could not be read); the rerun
  // sets its mode to the source's 0755.
  ExpectRerunConverges();
}

// A chmod of an existing source directory reaches its destination copy (the
// permission bits; ferry keeps owner rwx on its copies: see plan::DestDirMode).
TEST_P(PushFaultTest, ChangedSourceDirectoryModeReachesTheDestination) {
  t::WriteFile(S("d/f"), "f", 0644, kOld);
  t::WriteFile(S("d/e/g"), "g", 0644, kOld);
  ASSERT_TRUE(Push().ok());
  ::chmod(S("d").c_str(), 0750);
  ::chmod(S("d/e").c_str(), 0711);
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 0u);
  EXPECT_EQ(t::Snapshot(dst_).at("d").mode, 0750u);
  EXPECT_EQ(t::Snapshot(dst_).at("d/e").mode, 0711u);
  ::chmod(S("d/e").c_str(), 0755);  // Snapshot of the source needs to read it
  ExpectRerunConverges();
}

// A source directory without owner write is copied with owner rwx (ferry must
// be able to fill it), and that is not seen as a change on the next run.
TEST_P(PushFaultTest, ReadOnlySourceDirectoryKeepsOwnerRwxAndStaysQuiet) {
  t::WriteFile(S("ro/f"), "f", 0644, kOld);
  ::chmod(S("ro").c_str(), 0555);
  ASSERT_TRUE(Push().ok());
  EXPECT_EQ(t::Snapshot(dst_).at("ro").mode, 0755u);
  t::WriteFile(S("new.txt"), "n", 0644, kOld);
  Report r = Push();
  ::chmod(S("ro").c_str(), 0755);
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 1u);
  EXPECT_EQ(t::Snapshot(dst_).at("ro").mode, 0755u);
}

// ---- hostile names -------------------------------------------------------------

TEST_P(PushFaultTest, NewlinesInvalidUtf8LongNamesAndDeepPathsArriveIntact) {
  t::WriteFile(S("line\nbreak.txt"), "nl", 0644, kOld);
  t::WriteFile(S("bad\xff\xfe-utf8.bin"), "utf", 0644, kOld);
  t::WriteFile(S("tab\tand space .txt"), "ws", 0644, kOld);
  t::WriteFile(S(std::string(255, 'n')), "long name", 0644, kOld);
  std::string deep;
  for (int i = 0; i < 15; ++i) deep += std::string(200, 'a' + i) + "/";
  t::WriteFile(S(deep + "leaf.txt"), "deep", 0644, kOld);  // ~3000-byte path
  ASSERT_GE((deep + "leaf.txt").size(), 3000u);

  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 5u);
  ExpectSameTree();
  ExpectRerunConverges();
}

TEST_P(PushFaultTest, NameLongerThanTheDestinationAllowsIsAPerFileProblem) {
  // 255 bytes is the limit of a name; a compressed copy adds ".zst" and so
  // cannot exist on the destination.
  MakeBystanders();
  t::WriteFile(S(std::string(255, 'z')), "too long once compressed", 0644, kOld);
  PushOptions o = Options();
  o.compress_level = 1;
  Report r = PushBlocking(o);
  EXPECT_FALSE(r.fatal) << Describe(r);
  ASSERT_EQ(r.problems.size(), 1u) << Describe(r);
  EXPECT_EQ(r.problems[0].path, std::string(255, 'z'));
  std::printf("name too long: %s\n", Describe(r).c_str());
  EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});
}

INSTANTIATE_TEST_SUITE_P(Both, PushFaultTest, ::testing::Values(Where::kLocal, Where::kSftp),
                         WhereName);

}  // namespace
}  // namespace ferry::faults

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Before any thread exists: see DropFileCapabilities.
  if (::geteuid() == 0) ferry::faults::DropFileCapabilities();
  ferry::faults::g_permissions_apply = ferry::faults::PermissionsApply();
  return RUN_ALL_TESTS();
}
