// The listing cache in front of the real SFTP destination (a real sshd): a
// second run answers unchanged directories from the cache, a directory that a
// third party changed is listed again, ferry's own changes make the cache
// forget, racy (just modified) directories are never recorded, and a damaged
// cache file only costs speed. End to end: a push after a remote file was
// deleted behind ferry's back puts it back.
#include "lib/transport/cache/caching_destination.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "ferry/push.h"
#include "lib/transport/sftp/sftp_destination.h"
#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

namespace ferry::transport {
namespace {

namespace fs = std::filesystem;
using ferry::testing::RunCoroutine;
using ferry::testing::WriteLocalFile;

const CommitAttrs kDefaultAttrs{};

// Sets mtime (and atime) to a fixed time long ago: older than the racy window,
// and the same value each time.
void Age(const std::string& path) {
  const time_t old = 1'600'000'000;
  struct timespec times[2] = {{old, 0}, {old, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

std::vector<std::string> Names(const Listing& l) {
  std::vector<std::string> names;
  for (const Entry& e : l.entries) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  return names;
}

class CachingDestinationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = sshd_.Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
    remote_ = sshd_.root() + "/dest";
    const char* tmp = std::getenv("TEST_TMPDIR");
    cache_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/cache_" + std::to_string(getpid()) +
             "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".v1";
    fs::remove(cache_);
    fs::create_directories(remote_ + "/a/b");
    WriteLocalFile(remote_ + "/top.txt", "top");
    WriteLocalFile(remote_ + "/a/one.txt", "one");
    WriteLocalFile(remote_ + "/a/b/two.txt", "two!");
    fs::create_symlink("../top.txt", remote_ + "/a/link");
    AgeAll();
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "sshd log:\n%s\n", sshd_.Log().c_str());
    fs::remove(cache_);
  }

  void AgeAll() {
    Age(remote_);
    Age(remote_ + "/a");
    Age(remote_ + "/a/b");
  }

  struct RunResult {
    std::map<std::string, Listing> listings;
    uint64_t hits = 0;
    uint64_t misses = 0;
  };

  // One "run": opens a cached destination, lists `dirs`, runs `extra`, closes.
  RunResult Run(std::vector<std::string> dirs,
                std::function<asio::awaitable<void>(Destination&)> extra = nullptr) {
    RunResult result;
    RunCoroutine(io_, [&]() -> asio::awaitable<void> {
      SftpConfig config;
      config.connect = sshd_.ConnectOptions();
      config.root = remote_;
      auto made = MakeSftpDestination(config, io_.get_executor(), pool_);
      CO_ASSERT_OK(made);
      CachingDestination dest(std::move(*made), cache_, pool_);
      Status opened = co_await dest.Open(false);
      CO_ASSERT_TRUE(opened.ok());
      for (const std::string& dir : dirs) {
        auto listing = co_await dest.List(dir);
        if (!listing.ok()) {
          ADD_FAILURE() << dir << ": " << listing.error().Message();
          continue;
        }
        result.listings[dir] = std::move(*listing);
      }
      if (extra) co_await extra(dest);
      Status closed = co_await dest.Close();
      EXPECT_TRUE(closed.ok());
      result.hits = dest.hits();
      result.misses = dest.misses();
    });
    return result;
  }

  ferry::testing::TestSshd sshd_;
  std::string remote_;
  std::string cache_;
  asio::io_context io_;
  asio::thread_pool pool_{2};
};

TEST_F(CachingDestinationTest, SecondRunAnswersUnchangedDirectoriesFromTheCache) {
  const std::vector<std::string> dirs = {"", "a", "a/b"};
  RunResult first = Run(dirs);
  EXPECT_EQ(first.hits, 0u);
  EXPECT_EQ(first.misses, 3u);
  ASSERT_TRUE(fs::exists(cache_));

  RunResult second = Run(dirs);
  EXPECT_EQ(second.hits, 3u);
  EXPECT_EQ(second.misses, 0u);
  for (const std::string& dir : dirs) {
    const Listing& a = first.listings[dir];
    const Listing& b = second.listings[dir];
    ASSERT_EQ(Names(a), Names(b)) << dir;
    for (size_t i = 0; i < a.entries.size(); ++i) {
      EXPECT_EQ(a.entries[i].size, b.entries[i].size);
      EXPECT_EQ(a.entries[i].mtime_ns, b.entries[i].mtime_ns);
      EXPECT_EQ(a.entries[i].mode, b.entries[i].mode);
      EXPECT_EQ(a.entries[i].type, b.entries[i].type);
      EXPECT_EQ(a.entries[i].link_target, b.entries[i].link_target);
    }
  }
  // The cache carries itself over: a third run still hits.
  EXPECT_EQ(Run(dirs).hits, 3u);
}

TEST_F(CachingDestinationTest, ADirectoryChangedBehindFerrysBackIsListedAgain) {
  Run({"", "a", "a/b"});
  // A third party adds one file and deletes another: both directories' mtimes move.
  WriteLocalFile(remote_ + "/a/new.txt", "new");
  fs::remove(remote_ + "/a/b/two.txt");
  RunResult run = Run({"", "a", "a/b"});
  EXPECT_EQ(run.hits, 1u);  // only the root
  EXPECT_EQ(Names(run.listings["a"]),
            (std::vector<std::string>{"b", "link", "new.txt", "one.txt"}));
  EXPECT_TRUE(run.listings["a/b"].entries.empty());
}

TEST_F(CachingDestinationTest, FerrysOwnChangesMakeTheCacheForgetThoseDirectories) {
  Run({"", "a", "a/b"});
  auto put = [](Destination& dest) -> asio::awaitable<void> {
    const std::string data = "fresh";
    Status st =
        co_await dest.PutFile("a/b/fresh.txt", std::as_bytes(std::span(data)), kDefaultAttrs);
    EXPECT_TRUE(st.ok());
  };
  Run({"", "a", "a/b"}, put);
  // Even with every directory back at its recorded mtime, the directory ferry
  // changed is listed for real: the cache forgot it.
  AgeAll();
  RunResult run = Run({"", "a", "a/b"});
  EXPECT_EQ(run.hits, 2u);
  EXPECT_EQ(Names(run.listings["a/b"]), (std::vector<std::string>{"fresh.txt", "two.txt"}));
}

TEST_F(CachingDestinationTest, RacyDirectoriesAreNeverRecorded) {
  WriteLocalFile(remote_ + "/a/b/just-now.txt", "x");  // a/b's mtime is now
  Run({"", "a", "a/b"});
  RunResult run = Run({"", "a", "a/b"});
  EXPECT_EQ(run.hits, 2u);
  EXPECT_EQ(run.misses, 1u);
}

TEST_F(CachingDestinationTest, ADamagedCacheFileOnlyCostsSpeed) {
  Run({"", "a", "a/b"});
  {
    std::fstream f(cache_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
  }
  RunResult run = Run({"", "a", "a/b"});
  EXPECT_EQ(run.hits, 0u);
  EXPECT_EQ(Names(run.listings["a"]), (std::vector<std::string>{"b", "link", "one.txt"}));
  EXPECT_EQ(Run({"", "a", "a/b"}).hits, 3u);  // and it was rewritten
}

TEST_F(CachingDestinationTest, PushPutsBackAFileDeletedOnTheServerAfterANoOpRun) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string src = std::string(tmp != nullptr ? tmp : "/tmp") + "/cache_push_src";
  fs::remove_all(src);
  fs::create_directories(src + "/d");
  WriteLocalFile(src + "/d/keep.txt", "keep me");
  WriteLocalFile(src + "/d/other.txt", "other");
  PushOptions options;
  options.source = src;
  options.destination = "sftp://" + sshd_.user() + "@127.0.0.1:" + std::to_string(sshd_.port()) +
                        sshd_.root() + "/pushed";
  options.ssh.known_hosts = sshd_.known_hosts();
  options.ssh.identity_files = {sshd_.user_key()};
  options.ssh.config_file = "none";
  options.listing_cache = cache_;
  Report first = PushBlocking(options);
  ASSERT_TRUE(first.ok()) << first.fatal_message;
  Age(sshd_.root() + "/pushed");
  Age(sshd_.root() + "/pushed/d");
  Report noop = PushBlocking(options);  // records the listings
  ASSERT_TRUE(noop.ok());
  EXPECT_EQ(noop.totals.files_sent, 0u);
  fs::remove(sshd_.root() + "/pushed/d/keep.txt");
  Report again = PushBlocking(options);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.totals.files_sent, 1u);
  EXPECT_EQ(ferry::testing::ReadLocalFile(sshd_.root() + "/pushed/d/keep.txt"), "keep me");
  fs::remove_all(src);
}

}  // namespace
}  // namespace ferry::transport
