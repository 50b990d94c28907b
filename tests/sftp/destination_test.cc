// The SFTP destination against a real sshd: the Destination contract (atomic
// commit with mode and mtime, abort, lstat listings, recursive remove, unsafe
// paths), the fallback without posix-rename, big files over several channels,
// and reconnection after the server drops the connection.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <memory>

#include "ferry/error.h"
#include "lib/base/path.h"
#include "lib/base/task_group.h"
#include "lib/transport/sftp/sftp_destination.h"
#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

namespace ferry::transport {
namespace {

namespace fs = std::filesystem;
using ferry::testing::Exists;
using ferry::testing::ReadLocalFile;
using ferry::testing::RunCoroutine;
using ferry::testing::TestBytes;
using ferry::testing::WriteLocalFile;

// Named, not braced inside co_await (g++ 12 destroys such temporaries twice).
const CommitAttrs kDefaultAttrs{};

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Names under `dir` (recursively) that are ferry temp files.
std::vector<std::string> TempsUnder(const std::string& dir) {
  std::vector<std::string> temps;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    if (IsTempName(e.path().filename().string())) temps.push_back(e.path().string());
  }
  return temps;
}

class SftpDestinationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = sshd_.Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
    remote_ = sshd_.root() + "/dest";
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "sshd log:\n%s\n", sshd_.Log().c_str());
  }

  SftpConfig Config() {
    SftpConfig config;
    config.connect = sshd_.ConnectOptions();
    config.root = remote_;
    return config;
  }

  // Makes and opens a destination, runs `body(dest)`, closes it.
  template <typename Body>
  void WithDestination(SftpConfig config, Body body, bool dry_run = false) {
    RunCoroutine(io_, [&]() -> asio::awaitable<void> {
      auto made = MakeSftpDestination(config, io_.get_executor(), pool_);
      CO_ASSERT_OK(made);
      Destination& dest = **made;
      Status opened = co_await dest.Open(dry_run);
      if (!opened.ok()) {
        ADD_FAILURE() << "Open: " << opened.error().Message();
      } else {
        co_await body(dest);
      }
      Status closed = co_await dest.Close();
      EXPECT_TRUE(closed.ok()) << closed.error().Message();
    });
  }
  template <typename Body>
  void WithDestination(Body body) {
    WithDestination(Config(), std::move(body));
  }

  asio::io_context io_;
  asio::thread_pool pool_{2};
  ferry::testing::TestSshd sshd_;
  std::string remote_;
};

TEST_F(SftpDestinationTest, OpenCreatesTheRootLikeMkdirP) {
  remote_ = sshd_.root() + "/a/b/c";
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    auto listing = co_await dest.List("");
    CO_ASSERT_OK(listing);
    EXPECT_TRUE(listing->exists);
    EXPECT_TRUE(listing->entries.empty());
    EXPECT_EQ(dest.MtimeGranularityNs(), 1'000'000'000);
  });
  EXPECT_TRUE(fs::is_directory(remote_));
}

TEST_F(SftpDestinationTest, DryRunOpenOfAMissingRootCreatesNothing) {
  WithDestination(
      Config(),
      [&](Destination& dest) -> asio::awaitable<void> {
        auto listing = co_await dest.List("");
        CO_ASSERT_OK(listing);
        EXPECT_FALSE(listing->exists);
        co_return;
      },
      /*dry_run=*/true);
  EXPECT_FALSE(Exists(remote_));
}

TEST_F(SftpDestinationTest, RelativeRootIsFromTheLoginDirectory) {
  fs::create_directories(remote_ + "/sub");
  WriteLocalFile(remote_ + "/sub/x", "x");
  // sftp-server starts in the user's home directory from the password database.
  const struct passwd* pw = ::getpwuid(::getuid());
  ASSERT_NE(pw, nullptr);
  const std::string home = pw->pw_dir;
  SftpConfig config = Config();
  // The same directory, spelled relative to the login directory.
  config.root = fs::relative(remote_, fs::canonical(home)).string();
  ASSERT_FALSE(config.root.starts_with('/'));
  WithDestination(config, [&](Destination& dest) -> asio::awaitable<void> {
    auto listing = co_await dest.List("sub");
    CO_ASSERT_OK(listing);
    CO_ASSERT_TRUE(listing->entries.size() == 1);
    EXPECT_EQ(listing->entries[0].name, "x");
    EXPECT_NE(dest.Describe().find("sftp://"), std::string::npos);
  });
}

TEST_F(SftpDestinationTest, CommitLandsAtomicallyWithModeAndMtime) {
  const std::string data = TestBytes(3 << 20, 1);
  fs::create_directories(remote_ + "/d");
  WriteLocalFile(remote_ + "/d/f", "old content");
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    auto sink = co_await dest.CreateFile("d/f");
    CO_ASSERT_OK(sink);
    for (size_t off = 0; off < data.size(); off += 1 << 20) {
      CO_ASSERT_OK(co_await (*sink)->Write(Bytes(data).subspan(off, 1 << 20)));
    }
    // Until the commit, readers see the old file; the data is in a temp file.
    EXPECT_EQ(ReadLocalFile(remote_ + "/d/f"), "old content");
    CommitAttrs attrs;
    attrs.mode = 0640;
    attrs.mtime_ns = 1'500'000'000'987'654'321;
    attrs.fsync = true;
    CO_ASSERT_OK(co_await (*sink)->Commit(attrs));
  });
  EXPECT_TRUE(ReadLocalFile(remote_ + "/d/f") == data);
  struct stat st;
  ASSERT_EQ(::stat((remote_ + "/d/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'500'000'000);  // whole seconds over SFTP v3
  EXPECT_TRUE(TempsUnder(remote_).empty());
}

TEST_F(SftpDestinationTest, AbortLeavesNothing) {
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    auto sink = co_await dest.CreateFile("f");
    CO_ASSERT_OK(sink);
    const std::string data = TestBytes(100'000, 2);
    CO_ASSERT_OK(co_await (*sink)->Write(Bytes(data)));
    EXPECT_EQ(TempsUnder(remote_).size(), 1u);
    co_await (*sink)->Abort();
  });
  EXPECT_TRUE(fs::is_empty(remote_));
}

TEST_F(SftpDestinationTest, DroppingAnUnfinishedSinkRemovesItsTemp) {
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    auto sink = co_await dest.CreateFile("f");
    CO_ASSERT_OK(sink);
    CO_ASSERT_OK(co_await (*sink)->Write(Bytes("abc")));
    sink->reset();  // Close() below waits for the clean-up's replies
  });
  EXPECT_TRUE(fs::is_empty(remote_));
}

TEST_F(SftpDestinationTest, ListReturnsLstatEntriesWithSymlinkTargets) {
  fs::create_directories(remote_ + "/dir");
  WriteLocalFile(remote_ + "/file", "12345");
  ::chmod((remote_ + "/file").c_str(), 0604);
  struct timespec times[2] = {{0, UTIME_OMIT}, {1'400'000'000, 0}};
  ::utimensat(AT_FDCWD, (remote_ + "/file").c_str(), times, 0);
  fs::create_symlink("file", remote_ + "/link");
  fs::create_symlink("../../nowhere", remote_ + "/dangling");
  fs::create_symlink("dir", remote_ + "/dirlink");
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    auto listing = co_await dest.List("");
    CO_ASSERT_OK(listing);
    EXPECT_EQ(listing->unsafe_names, 0u);
    std::map<std::string, Entry> byname;
    for (Entry& e : listing->entries) byname[e.name] = e;
    EXPECT_EQ(byname.size(), 5u);
    CO_ASSERT_TRUE(byname.count("file") && byname.count("dir") && byname.count("link"));
    EXPECT_EQ(byname["file"].type, EntryType::kFile);
    EXPECT_EQ(byname["file"].size, 5u);
    EXPECT_EQ(byname["file"].mode, 0604u);
    EXPECT_EQ(byname["file"].mtime_ns, int64_t{1'400'000'000} * 1'000'000'000);
    EXPECT_EQ(byname["dir"].type, EntryType::kDirectory);
    EXPECT_EQ(byname["link"].type, EntryType::kSymlink);
    EXPECT_EQ(byname["link"].link_target, "file");
    EXPECT_EQ(byname["dangling"].type, EntryType::kSymlink);
    EXPECT_EQ(byname["dangling"].link_target, "../../nowhere");
    EXPECT_EQ(byname["dirlink"].type, EntryType::kSymlink);

    auto missing = co_await dest.List("nope");
    CO_ASSERT_OK(missing);
    EXPECT_FALSE(missing->exists);
    // A directory that is a symlink on the destination is not followed.
    auto through_link = co_await dest.List("dirlink");
    EXPECT_EQ(through_link.code(), errc::kUnsafePath);
  });
}

TEST_F(SftpDestinationTest, ListOfABigDirectoryGetsEveryEntry) {
  fs::create_directories(remote_ + "/big");
  for (int i = 0; i < 1234; ++i) WriteLocalFile(remote_ + "/big/f" + std::to_string(i), "");
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    auto listing = co_await dest.List("big");
    CO_ASSERT_OK(listing);
    EXPECT_EQ(listing->entries.size(), 1234u);
  });
}

TEST_F(SftpDestinationTest, RemoveIsRecursiveAndNeverFollowsSymlinks) {
  const std::string outside = sshd_.root() + "/outside";
  fs::create_directories(outside + "/keep");
  WriteLocalFile(outside + "/keep/precious", "p");
  fs::create_directories(remote_ + "/tree/a/b/c");
  WriteLocalFile(remote_ + "/tree/a/b/c/f", "f");
  WriteLocalFile(remote_ + "/tree/top", "t");
  fs::create_symlink(outside, remote_ + "/tree/a/escape");
  fs::create_symlink(outside + "/keep/precious", remote_ + "/tree/filelink");
  fs::create_symlink(outside, remote_ + "/rootlink");
  WriteLocalFile(remote_ + "/plain", "x");
  fs::create_directories(remote_ + "/was_dir");
  WriteLocalFile(remote_ + "/was_dir/x", "x");
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    CO_ASSERT_OK(co_await dest.Remove("tree", EntryType::kDirectory));
    CO_ASSERT_OK(co_await dest.Remove("rootlink", EntryType::kSymlink));
    CO_ASSERT_OK(co_await dest.Remove("plain", EntryType::kFile));
    CO_ASSERT_OK(co_await dest.Remove("missing", EntryType::kFile));
    CO_ASSERT_OK(co_await dest.Remove("missing_dir", EntryType::kDirectory));
    // The listing said file, the server has a directory now: still removed.
    CO_ASSERT_OK(co_await dest.Remove("was_dir", EntryType::kFile));
  });
  EXPECT_TRUE(fs::is_empty(remote_));
  EXPECT_EQ(ReadLocalFile(outside + "/keep/precious"), "p");
}

TEST_F(SftpDestinationTest, UnsafeRelativePathsAreRefused) {
  WriteLocalFile(sshd_.root() + "/victim", "v");
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    const char* bad[] = {"../victim", "a/../../victim", "/etc/passwd", "a//b", "./x", "a/"};
    for (const char* p : bad) {
      std::string path = p;
      SCOPED_TRACE(path);
      const std::string ok = "ok";
      auto listing = co_await dest.List(path);
      EXPECT_EQ(listing.code(), errc::kUnsafePath);
      Status mkdir = co_await dest.MakeDir(path, 0755);
      EXPECT_EQ(mkdir.code(), errc::kUnsafePath);
      auto sink = co_await dest.CreateFile(path);
      EXPECT_EQ(sink.code(), errc::kUnsafePath);
      Status symlink = co_await dest.Symlink(path, ok);
      EXPECT_EQ(symlink.code(), errc::kUnsafePath);
      Status remove = co_await dest.Remove(path, EntryType::kFile);
      EXPECT_EQ(remove.code(), errc::kUnsafePath);
      Status rename_from = co_await dest.Rename(path, ok);
      EXPECT_EQ(rename_from.code(), errc::kUnsafePath);
      Status rename_to = co_await dest.Rename(ok, path);
      EXPECT_EQ(rename_to.code(), errc::kUnsafePath);
      auto head = co_await dest.ReadHead(path, 4);
      EXPECT_EQ(head.code(), errc::kUnsafePath);
    }
    // The root itself is never removed nor written as a file.
    std::string root;
    Status remove_root = co_await dest.Remove(root, EntryType::kDirectory);
    EXPECT_EQ(remove_root.code(), errc::kUnsafePath);
    auto sink = co_await dest.CreateFile(root);
    EXPECT_EQ(sink.code(), errc::kUnsafePath);
  });
  EXPECT_EQ(ReadLocalFile(sshd_.root() + "/victim"), "v");
}

TEST_F(SftpDestinationTest, MakeDirIsIdempotentAndKeepsOwnerAccess) {
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    CO_ASSERT_OK(co_await dest.MakeDir("d", 0555));
    CO_ASSERT_OK(co_await dest.MakeDir("d", 0555));
    auto sink = co_await dest.CreateFile("f");
    CO_ASSERT_OK(sink);
    CO_ASSERT_OK(co_await (*sink)->Commit(kDefaultAttrs));
    Status over_file = co_await dest.MakeDir("f", 0755);
    EXPECT_FALSE(over_file.ok());
    Status no_parent = co_await dest.MakeDir("x/y", 0755);
    EXPECT_EQ(no_parent.code(), std::errc::no_such_file_or_directory)
        << no_parent.error().Message();
  });
  struct stat st;
  ASSERT_EQ(::stat((remote_ + "/d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0700, 0700u);
}

TEST_F(SftpDestinationTest, SymlinkIsCreatedAndReplacedAtomically) {
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    CO_ASSERT_OK(co_await dest.Symlink("l", "first"));
    CO_ASSERT_OK(co_await dest.Symlink("l", "../second"));
    CO_ASSERT_OK(co_await dest.MakeDir("sub", 0755));
    CO_ASSERT_OK(co_await dest.Symlink("sub/l", "/absolute/target"));
  });
  EXPECT_EQ(fs::read_symlink(remote_ + "/l").string(), "../second");
  EXPECT_EQ(fs::read_symlink(remote_ + "/sub/l").string(), "/absolute/target");
  EXPECT_TRUE(TempsUnder(remote_).empty());
}

TEST_F(SftpDestinationTest, RenameReplacesAnExistingFile) {
  fs::create_directories(remote_ + "/sub");
  WriteLocalFile(remote_ + "/a", "new");
  WriteLocalFile(remote_ + "/sub/b", "old");
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    CO_ASSERT_OK(co_await dest.Rename("a", "sub/b"));
    Status missing = co_await dest.Rename("a", "c");
    EXPECT_EQ(missing.code(), std::errc::no_such_file_or_directory);
  });
  EXPECT_FALSE(Exists(remote_ + "/a"));
  EXPECT_EQ(ReadLocalFile(remote_ + "/sub/b"), "new");
}

TEST_F(SftpDestinationTest, ReadHeadAndReadAllReturnTheContent) {
  const std::string data = TestBytes(5'000'000, 3);
  fs::create_directories(remote_);
  WriteLocalFile(remote_ + "/big", data);
  WriteLocalFile(remote_ + "/empty", "");
  fs::create_symlink("big", remote_ + "/link");
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    auto head = co_await dest.ReadHead("big", 18);
    CO_ASSERT_OK(head);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(head->data()), head->size()),
              data.substr(0, 18));
    auto empty_head = co_await dest.ReadHead("empty", 18);
    CO_ASSERT_OK(empty_head);
    EXPECT_TRUE(empty_head->empty());
    std::string all;
    int calls = 0;
    Destination::ChunkFn collect = [&](std::span<const std::byte> chunk) {
      all.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
      ++calls;
    };
    CO_ASSERT_OK(co_await dest.ReadAll("big", collect));
    EXPECT_TRUE(all == data);
    EXPECT_GT(calls, 1);
    // Symlinks on the destination are not followed.
    auto through_link = co_await dest.ReadHead("link", 18);
    EXPECT_FALSE(through_link.ok());
    auto missing = co_await dest.ReadHead("missing", 18);
    EXPECT_EQ(missing.code(), std::errc::no_such_file_or_directory);
  });
}

TEST_F(SftpDestinationTest, WithoutPosixRenameReplacingWorksAndIsNotedOnce) {
  fs::create_directories(remote_);
  WriteLocalFile(remote_ + "/f", "old");
  WriteLocalFile(remote_ + "/g", "old");
  SftpConfig config = Config();
  config.use_posix_rename = false;
  WithDestination(config, [&](Destination& dest) -> asio::awaitable<void> {
    for (const char* name : {"f", "g"}) {
      std::string path = name;
      auto sink = co_await dest.CreateFile(path);
      CO_ASSERT_OK(sink);
      CO_ASSERT_OK(co_await (*sink)->Write(Bytes("new")));
      CO_ASSERT_OK(co_await (*sink)->Commit(kDefaultAttrs));
    }
    CO_ASSERT_OK(co_await dest.Symlink("l", "t1"));
    CO_ASSERT_OK(co_await dest.Symlink("l", "t2"));
    std::vector<std::string> notes = dest.TakeNotes();
    CO_ASSERT_TRUE(notes.size() == 1);
    EXPECT_EQ(notes[0],
              "server lacks posix-rename@openssh.com: replaced files were briefly absent");
    EXPECT_TRUE(dest.TakeNotes().empty());
  });
  EXPECT_EQ(ReadLocalFile(remote_ + "/f"), "new");
  EXPECT_EQ(ReadLocalFile(remote_ + "/g"), "new");
  EXPECT_EQ(fs::read_symlink(remote_ + "/l").string(), "t2");
  EXPECT_TRUE(TempsUnder(remote_).empty());
}

TEST_F(SftpDestinationTest, BigFilesAreSplitOverSeveralChannels) {
  SftpConfig config = Config();
  config.connections = 1;
  config.channels_per_connection = 4;
  config.split_threshold_bytes = 1 << 20;
  config.split_min_rtt = std::chrono::milliseconds(0);  // loopback: split anyway
  const std::string data = TestBytes(24 << 20, 9);
  WithDestination(config, [&](Destination& dest) -> asio::awaitable<void> {
    // Something to make the pool open more channels first.
    TaskGroup busy(io_.get_executor());
    auto lister = [&]() -> asio::awaitable<void> {
      for (int i = 0; i < 20; ++i) (void)co_await dest.List("");
    };
    busy.Spawn(lister());
    busy.Spawn(lister());
    co_await busy.Wait();
    auto sink = co_await dest.CreateFile("big");
    CO_ASSERT_OK(sink);
    for (size_t off = 0; off < data.size(); off += 1 << 20) {
      CO_ASSERT_OK(co_await (*sink)->Write(Bytes(data).subspan(off, 1 << 20)));
    }
    CommitAttrs attrs;
    attrs.mode = 0600;
    attrs.mtime_ns = 1'000'000'000;
    CO_ASSERT_OK(co_await (*sink)->Commit(attrs));
  });
  EXPECT_TRUE(ReadLocalFile(remote_ + "/big") == data);
  EXPECT_TRUE(TempsUnder(remote_).empty());
}

TEST_F(SftpDestinationTest, TwoHundredFilesInFlightAtOnce) {
  constexpr int kFiles = 200;
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    CO_ASSERT_OK(co_await dest.MakeDir("many", 0755));
    int failures = 0;
    auto put = [&](int i) -> asio::awaitable<void> {
      const std::string path = "many/f" + std::to_string(i);
      const std::string data = TestBytes(100 + i * 331, i);
      auto sink = co_await dest.CreateFile(path);
      if (!sink.ok()) {
        ++failures;
        co_return;
      }
      Status st = co_await (*sink)->Write(Bytes(data));
      CommitAttrs attrs;
      attrs.mtime_ns = int64_t{1'600'000'000 + i} * 1'000'000'000;
      if (st.ok()) st = co_await (*sink)->Commit(attrs);
      if (!st.ok()) ++failures;
    };
    TaskGroup group(io_.get_executor());
    for (int i = 0; i < kFiles; ++i) group.Spawn(put(i));
    co_await group.Wait();
    EXPECT_EQ(failures, 0);
  });
  for (int i = 0; i < kFiles; ++i) {
    const std::string path = remote_ + "/many/f" + std::to_string(i);
    EXPECT_TRUE(ReadLocalFile(path) == TestBytes(100 + i * 331, i)) << i;
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mtime, 1'600'000'000 + i);
  }
  EXPECT_TRUE(TempsUnder(remote_).empty());
}

// Over a slow link a channel leased to 8 files is crowded: new files wait for
// the channels and the connection the pool is opening instead of piling on
// the first one. Here loopback counts as slow; 64 sinks are held open at once
// (more than the pool can spread at 8 each until it has grown), and every file
// must still land: the waits end when growth ends, whatever the limits.
TEST_F(SftpDestinationTest, CrowdedChannelsWaitForNewOnesAndEveryFileLands) {
  constexpr int kFiles = 64;
  SftpConfig config = Config();
  config.connections = 2;
  config.channels_per_connection = 2;
  config.split_min_rtt = std::chrono::milliseconds(0);
  WithDestination(config, [&](Destination& dest) -> asio::awaitable<void> {
    std::vector<std::unique_ptr<FileSink>> sinks(kFiles);
    int failures = 0;
    auto open = [&](int i) -> asio::awaitable<void> {
      auto sink = co_await dest.CreateFile("f" + std::to_string(i));
      if (sink.ok()) {
        sinks[i] = std::move(*sink);
      } else {
        ++failures;
      }
    };
    TaskGroup opening(io_.get_executor());
    for (int i = 0; i < kFiles; ++i) opening.Spawn(open(i));
    co_await opening.Wait();  // all 64 leases held at once
    CO_ASSERT_TRUE(failures == 0);
    for (int i = 0; i < kFiles; ++i) {
      const std::string data = TestBytes(1000 + i, i);
      CO_ASSERT_OK(co_await sinks[i]->Write(Bytes(data)));
      CommitAttrs attrs;
      attrs.mtime_ns = 1'000'000'000;
      CO_ASSERT_OK(co_await sinks[i]->Commit(attrs));
    }
  });
  for (int i = 0; i < kFiles; ++i) {
    EXPECT_TRUE(ReadLocalFile(remote_ + "/f" + std::to_string(i)) == TestBytes(1000 + i, i)) << i;
  }
  EXPECT_TRUE(TempsUnder(remote_).empty());
}

// More files in flight only over a slow link (here: loopback counted as slow).
TEST_F(SftpDestinationTest, SuggestsMoreJobsOnlyOverASlowLink) {
  WithDestination([&](Destination& dest) -> asio::awaitable<void> {
    EXPECT_EQ(dest.SuggestedJobs(), 0);  // loopback: well under 10 ms
    co_return;
  });
  SftpConfig config = Config();
  config.split_min_rtt = std::chrono::milliseconds(0);
  WithDestination(config, [&](Destination& dest) -> asio::awaitable<void> {
    EXPECT_GT(dest.SuggestedJobs(), 64);
    co_return;
  });
}

TEST_F(SftpDestinationTest, DroppedConnectionFailsInFlightWorkThenReconnects) {
  SftpConfig config = Config();
  config.connections = 1;
  WithDestination(config, [&](Destination& dest) -> asio::awaitable<void> {
    auto sink = co_await dest.CreateFile("f");
    CO_ASSERT_OK(sink);
    // The server drops every connection and comes back on the same port.
    Status restarted = sshd_.Restart();
    CO_ASSERT_TRUE(restarted.ok());
    const std::string data = TestBytes(2 << 20, 4);
    Status st = co_await (*sink)->Write(Bytes(data));
    if (st.ok()) st = co_await (*sink)->Commit(kDefaultAttrs);
    EXPECT_EQ(st.code(), errc::kConnectionLost) << st.error().Message();
    co_await (*sink)->Abort();
    // The next operations reconnect.
    auto listing = co_await dest.List("");
    CO_ASSERT_OK(listing);
    auto again = co_await dest.CreateFile("f");
    CO_ASSERT_OK(again);
    CO_ASSERT_OK(co_await (*again)->Write(Bytes(data)));
    CO_ASSERT_OK(co_await (*again)->Commit(kDefaultAttrs));
  });
  EXPECT_TRUE(ReadLocalFile(remote_ + "/f") == TestBytes(2 << 20, 4));
  EXPECT_TRUE(TempsUnder(remote_).empty());
}

// A temp that could not be removed because the server was down is removed as
// soon as the server answers again (before the next file is created), not left
// to a later run that lists its directory: a watch may never list it again.
TEST_F(SftpDestinationTest, TempLeftWhileTheServerWasDownIsRemovedOnceItIsBack) {
  SftpConfig config = Config();
  config.connections = 1;
  WithDestination(config, [&](Destination& dest) -> asio::awaitable<void> {
    auto sink = co_await dest.CreateFile("f");
    CO_ASSERT_OK(sink);
    CO_ASSERT_OK(co_await (*sink)->Write(Bytes(TestBytes(100'000, 5))));
    sshd_.Kill();
    co_await (*sink)->Abort();  // the server is not there to remove it
    EXPECT_EQ(TempsUnder(remote_).size(), 1u);
    Status started = sshd_.Start();
    CO_ASSERT_TRUE(started.ok());
    // The pool backs off after failed connection attempts: try until it is back.
    auto again = co_await dest.CreateFile("g");
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer pause(ex);
    for (int attempt = 0; attempt < 100 && !again.ok(); ++attempt) {
      pause.expires_after(std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::use_awaitable);
      again = co_await dest.CreateFile("g");
    }
    CO_ASSERT_OK(again);
    EXPECT_EQ(TempsUnder(remote_).size(), 1u);  // g's own
    CO_ASSERT_OK(co_await (*again)->Commit(kDefaultAttrs));
  });
  EXPECT_TRUE(TempsUnder(remote_).empty());
  EXPECT_TRUE(fs::exists(remote_ + "/g"));
}

TEST_F(SftpDestinationTest, OpenReportsAnUnknownHostKey) {
  WriteLocalFile(sshd_.known_hosts(), "");
  RunCoroutine(io_, [&]() -> asio::awaitable<void> {
    auto made = MakeSftpDestination(Config(), io_.get_executor(), pool_);
    CO_ASSERT_OK(made);
    Status opened = co_await (*made)->Open(false);
    EXPECT_EQ(opened.code(), errc::kHostKeyUnknown) << opened.error().Message();
    CO_ASSERT_OK(co_await (*made)->Close());
  });
}

TEST(SftpDestinationLimitsTest, ServerMaxSessionsCapsTheChannelsWithoutErrors) {
  // The server allows 2 channels per connection; the config asks for 6.
  ferry::testing::TestSshd sshd(ferry::testing::SshdOptions{2, {}});
  Status started = sshd.Start();
  ASSERT_TRUE(started.ok()) << started.error().Message();
  asio::io_context io;
  asio::thread_pool pool(2);
  SftpConfig config;
  config.connect = sshd.ConnectOptions();
  config.root = sshd.root() + "/dest";
  config.connections = 1;
  config.channels_per_connection = 6;
  constexpr int kFiles = 60;
  RunCoroutine(io, [&]() -> asio::awaitable<void> {
    auto made = MakeSftpDestination(config, io.get_executor(), pool);
    CO_ASSERT_OK(made);
    Destination& dest = **made;
    CO_ASSERT_OK(co_await dest.Open(false));
    int failures = 0;
    auto put = [&](int i) -> asio::awaitable<void> {
      const std::string path = "f" + std::to_string(i);
      const std::string data = TestBytes(5000 + i, i);
      auto sink = co_await dest.CreateFile(path);
      Status st;
      if (!sink.ok()) st = sink.error();
      if (st.ok()) st = co_await (*sink)->Write(Bytes(data));
      if (st.ok()) st = co_await (*sink)->Commit(kDefaultAttrs);
      if (!st.ok()) {
        ++failures;
        ADD_FAILURE() << st.error().Message();
      }
    };
    TaskGroup group(io.get_executor());
    for (int i = 0; i < kFiles; ++i) group.Spawn(put(i));
    co_await group.Wait();
    EXPECT_EQ(failures, 0);
    CO_ASSERT_OK(co_await dest.Close());
  });
  for (int i = 0; i < kFiles; ++i) {
    EXPECT_TRUE(ReadLocalFile(sshd.root() + "/dest/f" + std::to_string(i)) ==
                TestBytes(5000 + i, i));
  }
  // The pool went up to the server's limit and stayed there.
  const std::string log = sshd.Log();
  size_t sessions = 0;
  for (size_t at = log.find("Starting session"); at != std::string::npos;
       at = log.find("Starting session", at + 1)) {
    ++sessions;
  }
  EXPECT_EQ(sessions, 2u) << log;
}

TEST(SftpDestinationConfigTest, BadConfigIsRefused) {
  asio::io_context io;
  asio::thread_pool pool(1);
  SftpConfig config;
  EXPECT_EQ(MakeSftpDestination(config, io.get_executor(), pool).code(), errc::kInvalidArgument);
  config.connect.host = "h";
  config.connections = 0;
  EXPECT_EQ(MakeSftpDestination(config, io.get_executor(), pool).code(), errc::kInvalidArgument);
  config.connections = 1;
  config.root = "a\nb";
  EXPECT_EQ(MakeSftpDestination(config, io.get_executor(), pool).code(), errc::kInvalidArgument);
  config.root = "/srv";
  EXPECT_TRUE(MakeSftpDestination(config, io.get_executor(), pool).ok());
}

}  // namespace
}  // namespace ferry::transport
