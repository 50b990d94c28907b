// `ferry push` to a local directory, through the public API, on real files:
// what an rsync -a / rclone sync user expects to find afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "ferry/push.h"
#include "tests/testing/tree.h"

namespace ferry {
namespace {

namespace t = ferry::testing;

constexpr int64_t kOld = 1'000'000'000'123'456'789;  // 2001-09-09, odd nanoseconds
constexpr int64_t kPre1970 = -86'400'000'000'001;    // 1969-12-31, minus a nanosecond

class Recorder : public Observer {
 public:
  void OnFile(const FileEvent& e) override { events.push_back(e); }
  void OnWarning(const std::string& m) override { warnings.push_back(m); }
  std::vector<std::string> Paths(FileAction action) const {
    std::vector<std::string> out;
    for (const FileEvent& e : events) {
      if (e.action == action) out.push_back(e.path);
    }
    return out;
  }
  std::vector<FileEvent> events;
  std::vector<std::string> warnings;
};

std::string Describe(const Report& r) {
  std::string s = r.fatal ? "fatal: " + r.fatal_message + "\n" : "";
  for (const Problem& p : r.problems) s += p.stage + " " + p.path + ": " + p.message + "\n";
  return s;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += x + "\n";
  return s;
}

// Directory and symlink mtimes are not carried over (the Destination interface
// has no way to set them; see the disabled test below), everything else is.
constexpr t::CompareOptions kAttrs{.ignore_dir_mtime = true, .ignore_symlink_mtime = true};

class PushLocalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = t::MakeTempDir("src");
    dst_ = t::MakeTempDir("dst") + "/out";  // created by the push
  }

  PushOptions Options() {
    PushOptions o;
    o.source = src_;
    o.destination = dst_;
    o.hash_cache = "none";
    o.observer = &rec_;
    return o;
  }

  Report Push(PushOptions o) {
    rec_ = Recorder();
    return PushBlocking(std::move(o));
  }
  Report Push() { return Push(Options()); }

  std::string S(const std::string& rel) const { return src_ + "/" + rel; }
  std::string D(const std::string& rel) const { return dst_ + "/" + rel; }

  // A tree with most things a real one has.
  void MakeRichTree() {
    t::WriteFile(S("top.txt"), "top\n", 0644, kOld);
    t::WriteFile(S("private"), "secret", 0600, kOld + 1);
    t::WriteFile(S("script.sh"), "#!/bin/sh\n", 0755, kOld + 2);
    t::WriteFile(S("readonly"), "ro", 0444, kOld + 3);
    t::WriteFile(S("empty"), "", 0644, kOld + 4);
    t::WriteFile(S("a/b/c/deep.txt"), "deep", 0644, kOld + 5);
    t::WriteFile(S("a/b/empty-too"), "", 0640, kPre1970);
    t::WriteFile(S("big/five-mib.bin"), t::RandomBytes(5 << 20, 42), 0644, kOld + 6);
    t::WriteFile(S("with space/and more spaces.txt"), "spaces", 0644, kOld + 7);
    t::WriteFile(S("new\nline"), "newline in name", 0644, kOld + 8);
    t::WriteFile(S("bad-utf8-\xff\xfe"), "latin1", 0644, kOld + 9);
    t::WriteFile(S("caf\xc3\xa9.txt"), "utf8", 0644, kOld + 10);
    t::MakeDir(S("empty-dir"), 0755);
    t::MakeDir(S("private-dir"), 0700);
    t::MakeDir(S("open-dir"), 0777);
    t::MakeSymlink(S("link-rel"), "a/b/c/deep.txt");
    t::MakeSymlink(S("link-abs"), "/etc/hostname");
    t::MakeSymlink(S("link-dangling"), "does/not/exist");
    t::MakeSymlink(S("a/link-up"), "../top.txt");
  }

  std::string src_;
  std::string dst_;
  Recorder rec_;
};

TEST_F(PushLocalTest, CopiesATreeByteForByteWithModesAndMtimes) {
  MakeRichTree();
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(Join(t::CompareTrees(src_, dst_, kAttrs)), "");
  EXPECT_EQ(r.totals.files_sent, 12u);
  EXPECT_EQ(r.totals.symlinks, 4u);
  EXPECT_EQ(r.totals.bytes_read, r.totals.bytes_written);
  EXPECT_TRUE(t::FindTemps(dst_).empty());
}

// rsync -a sets directory (and symlink) mtimes after filling them; ferry cannot
// yet: Destination has no call to set a directory's times. Kept as the spec.
TEST_F(PushLocalTest, DISABLED_DirectoryMtimesArePreserved) {
  t::WriteFile(S("d/f"), "f", 0644, kOld);
  t::SetMtime(S("d"), kOld);
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(Join(t::CompareTrees(src_, dst_)), "");
}

TEST_F(PushLocalTest, SecondRunSendsNothing) {
  MakeRichTree();
  ASSERT_TRUE(Push().ok());
  auto before = t::Snapshot(dst_);
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 0u);
  EXPECT_EQ(r.totals.files_skipped, 16u);  // 12 files + 4 unchanged symlinks
  EXPECT_EQ(r.totals.dirs_created, 0u);
  EXPECT_EQ(r.totals.bytes_written, 0u);
  EXPECT_TRUE(t::Snapshot(dst_) == before);
  EXPECT_TRUE(rec_.Paths(FileAction::kUpload).empty());
}

TEST_F(PushLocalTest, OnlyTheChangedFileMoves) {
  MakeRichTree();
  ASSERT_TRUE(Push().ok());
  t::WriteFile(S("a/b/c/deep.txt"), "deeper", 0644, kOld + 5);
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 1u);
  EXPECT_EQ(rec_.Paths(FileAction::kUpload), std::vector<std::string>{"a/b/c/deep.txt"});
  EXPECT_EQ(t::ReadFile(D("a/b/c/deep.txt")), "deeper");
  EXPECT_EQ(Join(t::CompareTrees(src_, dst_, kAttrs)), "");
}

TEST_F(PushLocalTest, ChangedMtimeAloneResendsTheFile) {
  t::WriteFile(S("f"), "same", 0644, kOld);
  ASSERT_TRUE(Push().ok());
  t::SetMtime(S("f"), kOld + 1);
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 1u);
  ASSERT_EQ(rec_.events.size(), 1u);
  EXPECT_EQ(rec_.events[0].reason, "mtime");
  EXPECT_EQ(t::GetMtime(D("f")), kOld + 1);
}

TEST_F(PushLocalTest, ChangedPermissionsAloneReachTheDestination) {
  t::WriteFile(S("f"), "same", 0644, kOld);
  ASSERT_TRUE(Push().ok());
  ASSERT_EQ(::chmod(S("f").c_str(), 0600), 0);
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 1u);
  ASSERT_EQ(rec_.events.size(), 1u);
  EXPECT_EQ(rec_.events[0].reason, "mode");
  struct stat st;
  ASSERT_EQ(::stat(D("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(t::GetMtime(D("f")), kOld);
  EXPECT_EQ(Push().totals.files_sent, 0u);  // and then it is settled
}

TEST_F(PushLocalTest, ChecksumCatchesASameSizeSameMtimeChangeAndWritesTheHashCache) {
  t::WriteFile(S("f"), "aaaa", 0644, kOld);
  t::WriteFile(S("g"), "unchanged", 0644, kOld);
  ASSERT_TRUE(Push().ok());
  t::WriteFile(S("f"), "bbbb", 0644, kOld);  // same size, mtime set back
  ASSERT_EQ(t::GetMtime(S("f")), kOld);

  Report quick = Push();  // size + mtime cannot see it, as with rsync
  EXPECT_EQ(quick.totals.files_sent, 0u);
  EXPECT_EQ(t::ReadFile(D("f")), "aaaa");

  std::string cache = t::MakeTempDir("cache") + "/hashes";
  PushOptions o = Options();
  o.checksum = true;
  o.hash_cache = cache;
  Report r = Push(o);
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 1u);
  EXPECT_EQ(rec_.Paths(FileAction::kUpload), std::vector<std::string>{"f"});
  EXPECT_EQ(t::ReadFile(D("f")), "bbbb");
  EXPECT_EQ(Join(t::CompareTrees(src_, dst_, kAttrs)), "");
  ASSERT_TRUE(t::Exists(cache));
  EXPECT_EQ(t::ReadFile(cache).rfind("ferry-hash-cache v1\n", 0), 0u);
}

TEST_F(PushLocalTest, DeleteRemovesExtrasButKeepsExcludedOnes) {
  t::WriteFile(S("keep.txt"), "k", 0644, kOld);
  ASSERT_TRUE(Push().ok());
  t::WriteFile(D("extra.txt"), "x");
  t::WriteFile(D("extra-dir/inside"), "x");
  t::WriteFile(D("notes.log"), "excluded on the destination");
  PushOptions o = Options();
  o.delete_extraneous = true;
  o.filters = {{FilterRule::Kind::kExclude, "*.log"}};
  Report r = Push(o);
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_deleted, 2u);
  EXPECT_FALSE(t::Exists(D("extra.txt")));
  EXPECT_FALSE(t::Exists(D("extra-dir")));
  EXPECT_TRUE(t::Exists(D("notes.log")));
  EXPECT_TRUE(t::Exists(D("keep.txt")));

  o.delete_excluded = true;
  Report r2 = Push(o);
  ASSERT_TRUE(r2.ok()) << Describe(r2);
  EXPECT_FALSE(t::Exists(D("notes.log")));
  EXPECT_EQ(r2.totals.files_deleted, 1u);
}

TEST_F(PushLocalTest, WithoutDeleteExtrasStay) {
  t::WriteFile(S("a"), "a", 0644, kOld);
  t::WriteFile(D("extra"), "x");
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_TRUE(t::Exists(D("extra")));
}

TEST_F(PushLocalTest, MaxDeleteRefusesAndDeletesNothing) {
  t::WriteFile(S("a"), "a", 0644, kOld);
  for (const char* name : {"x1", "x2", "x3"}) t::WriteFile(D(name), "x");
  PushOptions o = Options();
  o.delete_extraneous = true;
  o.max_delete = 2;
  Report r = Push(o);
  EXPECT_EQ(r.fatal, errc::kMaxDeleteExceeded) << Describe(r);
  for (const char* name : {"x1", "x2", "x3"}) EXPECT_TRUE(t::Exists(D(name))) << name;
  o.max_delete = 3;
  Report r2 = Push(o);
  EXPECT_TRUE(r2.ok()) << Describe(r2);
  EXPECT_FALSE(t::Exists(D("x1")));
}

TEST_F(PushLocalTest, DryRunTouchesNothingButReportsWhatItWouldDo) {
  MakeRichTree();
  t::WriteFile(D("extra"), "x", 0644, kOld);
  t::WriteFile(D("top.txt"), "stale", 0644, kOld);
  auto before = t::Snapshot(dst_);
  PushOptions o = Options();
  o.dry_run = true;
  o.delete_extraneous = true;
  Report r = Push(o);
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_TRUE(r.dry_run);
  EXPECT_TRUE(t::Snapshot(dst_) == before);
  EXPECT_EQ(r.totals.files_sent, 12u);
  EXPECT_EQ(r.totals.files_deleted, 1u);
  EXPECT_GT(r.totals.dirs_created, 0u);
  EXPECT_EQ(r.totals.bytes_written, 0u);
  for (const FileEvent& e : rec_.events) {
    EXPECT_EQ(e.outcome, Outcome::kDryRun) << e.path;
  }
  EXPECT_FALSE(rec_.Paths(FileAction::kDelete).empty());
}

TEST_F(PushLocalTest, DryRunDoesNotCreateTheDestination) {
  t::WriteFile(S("a"), "a", 0644, kOld);
  PushOptions o = Options();
  o.dry_run = true;
  Report r = Push(o);
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 1u);
  EXPECT_FALSE(t::Exists(dst_));
}

// Runs `zstd -d -c path` and returns what it printed.
std::string Unzstd(const std::string& path) {
  std::string cmd = "zstd -q -d -c '" + path + "'";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return "<popen failed>";
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  if (rc != 0) return "<zstd exit " + std::to_string(rc) + ">";
  return out;
}

TEST_F(PushLocalTest, CompressStoresZstFilesThatZstdRestores) {
  if (::system("zstd --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no zstd binary";
  t::WriteFile(S("text.txt"), std::string(100000, 'a') + "end", 0644, kOld);
  t::WriteFile(S("random.bin"), t::RandomBytes(3 << 20, 9), 0600, kOld + 1);
  t::WriteFile(S("d/empty"), "", 0644, kOld + 2);
  t::MakeSymlink(S("link"), "text.txt");
  PushOptions o = Options();
  o.compress_level = 3;
  Report r = Push(o);
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.totals.files_sent, 3u);
  EXPECT_LT(r.totals.bytes_written, r.totals.bytes_read);
  for (const char* name : {"text.txt", "random.bin", "d/empty"}) {
    EXPECT_FALSE(t::Exists(D(name))) << name;
    ASSERT_TRUE(t::Exists(D(std::string(name) + ".zst"))) << name;
    EXPECT_TRUE(Unzstd(D(std::string(name) + ".zst")) == t::ReadFile(S(name))) << name;
    EXPECT_EQ(t::GetMtime(D(std::string(name) + ".zst")), t::GetMtime(S(name))) << name;
  }
  EXPECT_TRUE(t::Exists(D("link")));

  Report again = Push(o);
  ASSERT_TRUE(again.ok()) << Describe(again);
  EXPECT_EQ(again.totals.files_sent, 0u);
  EXPECT_EQ(again.totals.files_skipped, 4u);  // 3 files + the unchanged link

  t::WriteFile(S("text.txt"), "changed", 0644, kOld);
  Report third = Push(o);
  EXPECT_EQ(third.totals.files_sent, 1u);
  EXPECT_EQ(Unzstd(D("text.txt.zst")), "changed");
}

TEST_F(PushLocalTest, ExcludeAndIncludePatternsFollowRsyncRules) {
  for (const char* rel :
       {"main.c", "main.o", "lib/util.c", "lib/util.o", "build/out.bin", "docs/build/page.html",
        "important.log", "other.log", "cache/x", "src/cache", "tmp/t"}) {
    t::WriteFile(S(rel), rel, 0644, kOld);
  }
  PushOptions o = Options();
  o.filters = {
      {FilterRule::Kind::kExclude, "*.o"},           {FilterRule::Kind::kExclude, "/build/"},
      {FilterRule::Kind::kInclude, "important.log"}, {FilterRule::Kind::kExclude, "*.log"},
      {FilterRule::Kind::kExclude, "cache/"},  // directories only
      {FilterRule::Kind::kExclude, "/tmp"},
  };
  Report r = Push(o);
  ASSERT_TRUE(r.ok()) << Describe(r);
  for (const char* kept :
       {"main.c", "lib/util.c", "docs/build/page.html", "important.log", "src/cache"}) {
    EXPECT_TRUE(t::Exists(D(kept))) << kept;
  }
  for (const char* gone : {"main.o", "lib/util.o", "build", "other.log", "cache", "tmp"}) {
    EXPECT_FALSE(t::Exists(D(gone))) << gone;
  }
}

TEST_F(PushLocalTest, OnlyCSourcesWithIncludeStarSlash) {
  for (const char* rel : {"a.c", "a.h", "x/b.c", "x/y/c.c", "x/y/d.txt"}) {
    t::WriteFile(S(rel), rel, 0644, kOld);
  }
  PushOptions o = Options();
  o.filters = {{FilterRule::Kind::kInclude, "*/"},
               {FilterRule::Kind::kInclude, "*.c"},
               {FilterRule::Kind::kExclude, "*"}};
  Report r = Push(o);
  ASSERT_TRUE(r.ok()) << Describe(r);
  auto snap = t::Snapshot(dst_);
  std::vector<std::string> files;
  for (const auto& [path, info] : snap) {
    if (info.type == 'f') files.push_back(path);
  }
  EXPECT_EQ(files, (std::vector<std::string>{"a.c", "x/b.c", "x/y/c.c"}));
}

TEST_F(PushLocalTest, SingleFileSourceLandsInsideTheDestinationDirectory) {
  t::WriteFile(S("one.txt"), "just me", 0640, kOld);
  t::WriteFile(S("other.txt"), "not me", 0644, kOld);
  PushOptions o = Options();
  o.source = S("one.txt");
  o.delete_extraneous = true;  // never deletes around a single file
  t::WriteFile(D("bystander"), "b");
  Report r = Push(o);
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(t::ReadFile(D("one.txt")), "just me");
  EXPECT_EQ(t::GetMtime(D("one.txt")), kOld);
  EXPECT_FALSE(t::Exists(D("other.txt")));
  EXPECT_TRUE(t::Exists(D("bystander")));
}

TEST_F(PushLocalTest, TrailingSlashOnTheSourceMakesNoDifference) {
  MakeRichTree();
  PushOptions a = Options();
  a.source = src_;
  Report ra = Push(a);
  ASSERT_TRUE(ra.ok()) << Describe(ra);
  std::string other = t::MakeTempDir("dst2");
  PushOptions b = Options();
  b.source = src_ + "/";
  b.destination = other + "/";
  Report rb = Push(b);
  ASSERT_TRUE(rb.ok()) << Describe(rb);
  EXPECT_EQ(Join(t::CompareTrees(dst_, other, kAttrs)), "");
  EXPECT_TRUE(t::Exists(other + "/top.txt"));  // contents, not a "src" subdirectory
  EXPECT_EQ(ra.totals.files_sent, rb.totals.files_sent);
}

TEST_F(PushLocalTest, DestinationInsideSourceIsRefused) {
  t::WriteFile(S("a"), "a", 0644, kOld);
  PushOptions o = Options();
  o.destination = S("backup");
  Report r = Push(o);
  EXPECT_EQ(r.fatal, errc::kDestinationInsideSource) << Describe(r);
  EXPECT_FALSE(t::Exists(S("backup")));
  o.destination = S("deeper/still");
  EXPECT_EQ(Push(o).fatal, errc::kDestinationInsideSource);
}

TEST_F(PushLocalTest, SourceEqualToDestinationIsRefused) {
  t::WriteFile(S("a"), "a", 0644, kOld);
  PushOptions o = Options();
  o.destination = src_;
  EXPECT_EQ(Push(o).fatal, errc::kSourceIsDestination);
  o.destination = src_ + "/.";
  EXPECT_EQ(Push(o).fatal, errc::kSourceIsDestination);
  o.destination = src_ + "/";
  EXPECT_EQ(Push(o).fatal, errc::kSourceIsDestination);
  EXPECT_EQ(t::Snapshot(src_).size(), 1u);
}

TEST_F(PushLocalTest, SiblingWithACommonPrefixIsNotInsideTheSource) {
  t::WriteFile(S("a"), "a", 0644, kOld);
  PushOptions o = Options();
  o.destination = src_ + "-copy";
  Report r = Push(o);
  EXPECT_TRUE(r.ok()) << Describe(r);
  EXPECT_TRUE(t::Exists(src_ + "-copy/a"));
}

TEST_F(PushLocalTest, MissingSourceIsFatal) {
  PushOptions o = Options();
  o.source = src_ + "/nope";
  Report r = Push(o);
  EXPECT_EQ(r.fatal, errc::kSourceMissing);
  EXPECT_FALSE(t::Exists(dst_));
}

// Root ignores permission bits through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH.
// Capabilities are per thread on Linux, and threads inherit them: a thread that
// drops both (and the pool threads it starts) sees a mode 000 file as unreadable.
bool DropDacCapabilitiesOfThisThread() {
  if (::geteuid() != 0) return true;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH}) {
    data[0].effective &= ~(1u << cap);
    data[0].permitted &= ~(1u << cap);
    data[0].inheritable &= ~(1u << cap);
  }
  return ::syscall(SYS_capset, &header, data) == 0;
}

TEST_F(PushLocalTest, UnreadableSourceFileIsAProblemAndTheRestIsCopied) {
  t::WriteFile(S("readable"), "r", 0644, kOld);
  t::WriteFile(S("unreadable"), "u", 0000, kOld);
  Report r;
  bool dropped = false;
  std::thread worker([&] {
    dropped = DropDacCapabilitiesOfThisThread();
    if (dropped) r = Push();
  });
  worker.join();
  if (!dropped) GTEST_SKIP() << "cannot drop CAP_DAC_OVERRIDE here";
  EXPECT_FALSE(r.fatal) << Describe(r);
  ASSERT_EQ(r.problems.size(), 1u) << Describe(r);
  EXPECT_EQ(r.problems[0].path, "unreadable");
  EXPECT_EQ(r.problems[0].stage, "read");
  EXPECT_EQ(r.problems[0].code, std::errc::permission_denied);
  EXPECT_EQ(r.totals.files_failed, 1u);
  EXPECT_TRUE(t::Exists(D("readable")));
  EXPECT_FALSE(t::Exists(D("unreadable")));
  EXPECT_TRUE(t::FindTemps(dst_).empty());
}

TEST_F(PushLocalTest, FifoInTheSourceIsSkippedWithAWarning) {
  t::WriteFile(S("a"), "a", 0644, kOld);
  t::MakeFifo(S("d/pipe"));
  Report r = Push();
  EXPECT_FALSE(r.fatal) << Describe(r);
  EXPECT_TRUE(r.problems.empty()) << Describe(r);
  EXPECT_EQ(r.totals.ignored, 1u);
  EXPECT_TRUE(t::Exists(D("a")));
  EXPECT_TRUE(t::Exists(D("d")));
  EXPECT_FALSE(t::Exists(D("d/pipe")));
  ASSERT_EQ(rec_.warnings.size(), 1u);
  EXPECT_NE(rec_.warnings[0].find("d/pipe"), std::string::npos);
}

TEST_F(PushLocalTest, DestinationSymlinkPointingOutsideIsReplacedNotFollowed) {
  std::string outside = t::MakeTempDir("outside");
  t::WriteFile(outside + "/victim", "do not touch", 0644, kOld);
  t::WriteFile(S("a/victim"), "from source", 0644, kOld);
  t::WriteFile(S("a/new"), "new", 0644, kOld);
  t::WriteFile(S("f"), "file over link", 0644, kOld);
  t::MakeDir(dst_);
  t::MakeSymlink(D("a"), outside);
  t::MakeSymlink(D("f"), outside + "/victim");
  auto outside_before = t::Snapshot(outside);

  Report r = Push();

  EXPECT_TRUE(t::Snapshot(outside) == outside_before);
  EXPECT_EQ(t::ReadFile(outside + "/victim"), "do not touch");
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(Join(t::CompareTrees(src_, dst_, kAttrs)), "");
}

TEST_F(PushLocalTest, DestinationFileWhereTheSourceHasADirectoryIsReplaced) {
  t::WriteFile(S("a/inner"), "inner", 0644, kOld);
  t::WriteFile(D("a"), "a file in the way", 0644, kOld);
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(Join(t::CompareTrees(src_, dst_, kAttrs)), "");
}

TEST_F(PushLocalTest, DestinationDirectoryWhereTheSourceHasAFileNeedsDelete) {
  t::WriteFile(S("a"), "now a file", 0644, kOld);
  t::WriteFile(D("a/old"), "old", 0644, kOld);
  Report r = Push();
  ASSERT_EQ(r.problems.size(), 1u) << Describe(r);
  EXPECT_EQ(r.problems[0].code, errc::kTypeConflict);
  EXPECT_TRUE(t::Exists(D("a/old")));
  PushOptions o = Options();
  o.delete_extraneous = true;
  Report r2 = Push(o);
  ASSERT_TRUE(r2.ok()) << Describe(r2);
  EXPECT_EQ(t::ReadFile(D("a")), "now a file");
}

TEST_F(PushLocalTest, FileThatKeepsChangingIsReportedAndNeverLandsHalfWritten) {
  const std::string path = S("growing.log");
  t::WriteFile(path, t::RandomBytes(16 << 20, 3), 0644, kOld);
  t::WriteFile(S("calm.txt"), "calm", 0644, kOld);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return;
    const std::string line(100, 'x');
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
      (void)::write(fd, line.data(), line.size());
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ::close(fd);
  });
  PushOptions o = Options();
  o.retries = 1;
  Report r = Push(o);
  stop = true;
  writer.join();

  ASSERT_EQ(r.problems.size(), 1u) << Describe(r);
  EXPECT_EQ(r.problems[0].path, "growing.log");
  EXPECT_EQ(r.problems[0].code, errc::kSourceChanged);
  EXPECT_FALSE(t::Exists(D("growing.log")));
  EXPECT_TRUE(t::Exists(D("calm.txt")));
  EXPECT_TRUE(t::FindTemps(dst_).empty());
}

TEST_F(PushLocalTest, LeftoverTempFromAnInterruptedRunIsCleanedUp) {
  t::WriteFile(S("a"), "a", 0644, kOld);
  t::WriteFile(D(".ferry-tmp-0123456789abcdef"), "half");
  Report r = Push();
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_TRUE(t::FindTemps(dst_).empty());
}

TEST_F(PushLocalTest, CancelledBeforeStartReportsCancelled) {
  t::WriteFile(S("a"), "a", 0644, kOld);
  std::stop_source stop;
  stop.request_stop();
  PushOptions o = Options();
  o.stop = stop.get_token();
  Report r = Push(o);
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(t::Exists(D("a")));
}

}  // namespace
}  // namespace ferry
