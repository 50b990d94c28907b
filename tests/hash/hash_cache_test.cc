#include "lib/hash/hash_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ferry::hash {
namespace {

namespace fs = std::filesystem;

// Old enough not to be racy.
constexpr int64_t kMtime = 1'600'000'000'123'456'789;
constexpr int64_t kCtime = 1'600'000'001'987'654'321;

FileIdentity Id(uint64_t ino, uint64_t size = 100) {
  return {.dev = 2049, .ino = ino, .size = size, .mtime_ns = kMtime, .ctime_ns = kCtime};
}

Hash128 H(uint64_t n) { return {n * 0x1111, ~n}; }

class HashCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "cache" / "hashes.v1").string();  // parent does not exist yet
  }

  HashCache MustLoad() {
    Result<HashCache> cache = HashCache::Load(path_);
    EXPECT_TRUE(cache.ok()) << cache.error().Message();
    return std::move(cache).value();
  }

  void WriteRaw(const std::string& content) {
    fs::create_directories(fs::path(path_).parent_path());
    std::ofstream(path_, std::ios::binary) << content;
  }

  std::string ReadRaw() {
    std::ifstream f(path_, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(HashCacheTest, MissingFileIsAnEmptyCacheNotDiscarded) {
  HashCache cache = MustLoad();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.discarded());
  EXPECT_EQ(cache.Lookup(Id(1)), std::nullopt);
}

TEST_F(HashCacheTest, SaveAndLoadRoundTrip) {
  {
    HashCache cache = MustLoad();
    cache.Store(Id(1), H(1));
    cache.Store(Id(2, 0), H(2));
    cache.Store({.dev = UINT64_MAX,
                 .ino = UINT64_MAX,
                 .size = UINT64_MAX,
                 .mtime_ns = -5,
                 .ctime_ns = INT64_MIN},
                H(3));
    ASSERT_TRUE(cache.Save().ok());
  }
  HashCache cache = MustLoad();
  EXPECT_FALSE(cache.discarded());
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Lookup(Id(1)), H(1));
  EXPECT_EQ(cache.Lookup(Id(2, 0)), H(2));
  EXPECT_EQ(cache.Lookup({.dev = UINT64_MAX,
                          .ino = UINT64_MAX,
                          .size = UINT64_MAX,
                          .mtime_ns = -5,
                          .ctime_ns = INT64_MIN}),
            H(3));
  // No temporary file left behind, and only the owner can read the cache.
  for (const auto& entry : fs::directory_iterator(fs::path(path_).parent_path())) {
    EXPECT_EQ(entry.path().string(), path_);
  }
  EXPECT_EQ(fs::status(path_).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(HashCacheTest, FileFormatIsTheDocumentedText) {
  HashCache cache = MustLoad();
  cache.Store(Id(7, 4096), Hash128{0x99aa06d3014798d8ull, 0x6001c324468d497full});
  ASSERT_TRUE(cache.Save().ok());
  EXPECT_EQ(ReadRaw(),
            "ferry-hash-cache v1\n"
            "2049 7 4096 1600000000123456789 1600000001987654321 "
            "99aa06d3014798d86001c324468d497f\n");
}

TEST_F(HashCacheTest, ChangedSizeMtimeOrCtimeMisses) {
  HashCache cache = MustLoad();
  cache.Store(Id(1), H(1));
  FileIdentity id = Id(1);
  EXPECT_EQ(cache.Lookup(id), H(1));

  id.mtime_ns += 1;
  EXPECT_EQ(cache.Lookup(id), std::nullopt);
  id = Id(1);
  id.ctime_ns += 1;
  EXPECT_EQ(cache.Lookup(id), std::nullopt);
  id = Id(1);
  id.size += 1;
  EXPECT_EQ(cache.Lookup(id), std::nullopt);
  id = Id(1);
  id.dev += 1;
  EXPECT_EQ(cache.Lookup(id), std::nullopt);
}

TEST_F(HashCacheTest, StoreReplacesTheEntryForTheSameInode) {
  HashCache cache = MustLoad();
  cache.Store(Id(1, 100), H(1));
  cache.Store(Id(1, 200), H(2));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Lookup(Id(1, 100)), std::nullopt);
  EXPECT_EQ(cache.Lookup(Id(1, 200)), H(2));
}

TEST_F(HashCacheTest, UnknownVersionStartsEmptyAndDiscarded) {
  WriteRaw(
      "ferry-hash-cache v2\n2049 1 100 1600000000123456789 1600000001987654321 "
      "99aa06d3014798d86001c324468d497f\n");
  HashCache cache = MustLoad();
  EXPECT_TRUE(cache.discarded());
  EXPECT_EQ(cache.size(), 0u);
  // Saving replaces the unusable file with a v1 one.
  cache.Store(Id(1), H(1));
  ASSERT_TRUE(cache.Save().ok());
  HashCache again = MustLoad();
  EXPECT_FALSE(again.discarded());
  EXPECT_EQ(again.Lookup(Id(1)), H(1));
}

TEST_F(HashCacheTest, EmptyFileIsDiscarded) {
  WriteRaw("");
  EXPECT_TRUE(MustLoad().discarded());
}

TEST_F(HashCacheTest, TruncatedTrailingRecordDiscardsTheCache) {
  HashCache cache = MustLoad();
  cache.Store(Id(1), H(1));
  cache.Store(Id(2), H(2));
  ASSERT_TRUE(cache.Save().ok());
  const std::string full = ReadRaw();
  // Every cut point: never a crash, never a partial cache.
  for (size_t len = 1; len < full.size(); ++len) {
    if (full[len - 1] == '\n') continue;  // a whole-line prefix is a valid, smaller cache
    WriteRaw(full.substr(0, len));
    HashCache cut = MustLoad();
    EXPECT_TRUE(cut.discarded()) << len;
    EXPECT_EQ(cut.size(), 0u) << len;
  }
}

TEST_F(HashCacheTest, CorruptLinesDiscardTheCache) {
  const std::string header = "ferry-hash-cache v1\n";
  const std::string good =
      "2049 1 100 1600000000123456789 1600000001987654321 99aa06d3014798d86001c324468d497f\n";
  const std::vector<std::string> bad_lines = {
      "\n",
      "garbage\n",
      "2049 1 100 1600000000123456789 1600000001987654321\n",
      "2049 1 100 1600000000123456789 1600000001987654321 99aa06d3014798d86001c324468d497\n",
      "2049 1 100 1600000000123456789 1600000001987654321 99aa06d3014798d86001c324468d497f0\n",
      "2049 1 100 1600000000123456789 1600000001987654321 99aa06d3014798d86001c324468d497f \n",
      "2049  1 100 1600000000123456789 1600000001987654321 99aa06d3014798d86001c324468d497f\n",
      "-2049 1 100 1600000000123456789 1600000001987654321 99aa06d3014798d86001c324468d497f\n",
      "2049 1 1e2 1600000000123456789 1600000001987654321 99aa06d3014798d86001c324468d497f\n",
      "2049 1 100 99999999999999999999 1600000001987654321 99aa06d3014798d86001c324468d497f\n",
      "2049 1 100 1600000000123456789 1600000001987654321 zzaa06d3014798d86001c324468d497f\n",
      std::string("2049 1 100 1600000000123456789 1600000001987654321 99aa06d3014798d8") + '\0' +
          "001c324468d497f\n",
      good,  // a duplicate identity
  };
  for (const std::string& bad : bad_lines) {
    WriteRaw(header + good + bad);
    HashCache cache = MustLoad();
    EXPECT_TRUE(cache.discarded()) << bad;
    EXPECT_EQ(cache.size(), 0u) << bad;
  }
  WriteRaw(header + good);
  EXPECT_FALSE(MustLoad().discarded());
}

TEST_F(HashCacheTest, EntriesNotUsedSinceLoadAreDroppedOnSave) {
  {
    HashCache cache = MustLoad();
    for (uint64_t ino = 1; ino <= 4; ++ino) cache.Store(Id(ino), H(ino));
    ASSERT_TRUE(cache.Save().ok());
  }
  {
    HashCache cache = MustLoad();
    ASSERT_EQ(cache.size(), 4u);
    EXPECT_EQ(cache.Lookup(Id(1)), H(1));  // hit: kept
    FileIdentity changed = Id(2);
    changed.mtime_ns += 1;
    EXPECT_EQ(cache.Lookup(changed), std::nullopt);  // stale: dropped
    cache.Store(Id(3, 999), H(33));                  // re-hashed: new value kept
    cache.Store(Id(5), H(5));                        // new file: kept
    // ino 4 not visited: dropped.
    ASSERT_TRUE(cache.Save().ok());
  }
  HashCache cache = MustLoad();
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Lookup(Id(1)), H(1));
  EXPECT_EQ(cache.Lookup(Id(2)), std::nullopt);
  EXPECT_EQ(cache.Lookup(Id(3, 999)), H(33));
  EXPECT_EQ(cache.Lookup(Id(4)), std::nullopt);
  EXPECT_EQ(cache.Lookup(Id(5)), H(5));
}

TEST_F(HashCacheTest, RecentlyModifiedFilesAreNotCached) {
  HashCache cache = MustLoad();
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  const int64_t now_ns = now.tv_sec * 1'000'000'000ll + now.tv_nsec;
  FileIdentity fresh_mtime = Id(1);
  fresh_mtime.mtime_ns = now_ns;
  FileIdentity fresh_ctime = Id(2);
  fresh_ctime.ctime_ns = now_ns - HashCache::kRacyWindowNs / 2;
  cache.Store(fresh_mtime, H(1));
  cache.Store(fresh_ctime, H(2));
  EXPECT_EQ(cache.Lookup(fresh_mtime), std::nullopt);
  EXPECT_EQ(cache.Lookup(fresh_ctime), std::nullopt);
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(HashCacheTest, SaveFailureLeavesThePreviousFileIntact) {
  HashCache cache = MustLoad();
  cache.Store(Id(1), H(1));
  ASSERT_TRUE(cache.Save().ok());
  const std::string before = ReadRaw();
  // A directory where the temporary file goes: the write fails (even for root).
  const std::string tmp = path_ + ".tmp." + std::to_string(getpid());
  fs::create_directories(tmp);
  cache.Store(Id(2), H(2));
  Status s = cache.Save();
  EXPECT_EQ(s.code(), std::error_code(EISDIR, std::system_category()));
  EXPECT_NE(s.error().detail.find(tmp), std::string::npos);
  EXPECT_EQ(ReadRaw(), before);
  fs::remove(tmp);
  EXPECT_TRUE(cache.Save().ok());
  EXPECT_EQ(MustLoad().size(), 2u);
}

TEST_F(HashCacheTest, LoadingADirectoryIsASystemError) {
  fs::create_directories(path_);
  Result<HashCache> loaded = HashCache::Load(path_);
  EXPECT_EQ(loaded.code(), std::error_code(EISDIR, std::system_category()));
}

TEST_F(HashCacheTest, ConcurrentLookupsAndStores) {
  HashCache cache = MustLoad();
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 8; ++t) {
    threads.emplace_back([&cache, t] {
      for (uint64_t i = 0; i < 2000; ++i) {
        const uint64_t ino = t * 100000 + i;
        cache.Store(Id(ino), H(ino));
        EXPECT_EQ(cache.Lookup(Id(ino)), H(ino));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache.size(), 16000u);
  ASSERT_TRUE(cache.Save().ok());
  EXPECT_EQ(MustLoad().size(), 16000u);
}

TEST_F(HashCacheTest, FromStatOfARealFile) {
  const std::string file = (dir_ / "f").string();
  std::ofstream(file) << "hello";
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  const FileIdentity id = FileIdentity::FromStat(st);
  EXPECT_EQ(id.ino, st.st_ino);
  EXPECT_EQ(id.size, 5u);
  EXPECT_EQ(id.mtime_ns, st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec);
  EXPECT_EQ(id.ctime_ns, st.st_ctim.tv_sec * 1'000'000'000ll + st.st_ctim.tv_nsec);
}

TEST(DefaultCachePathTest, UsesXdgCacheHomeAndHashesTheAbsoluteRoot) {
  // Restores an environment variable when the test ends.
  struct SavedEnv {
    explicit SavedEnv(const char* name) : name(name) {
      const char* v = std::getenv(name);
      if (v != nullptr) value = v;
    }
    ~SavedEnv() {
      if (value) {
        setenv(name, value->c_str(), 1);
      } else {
        unsetenv(name);
      }
    }
    const char* name;
    std::optional<std::string> value;
  };
  SavedEnv saved_xdg("XDG_CACHE_HOME"), saved_home("HOME");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  const std::string path = DefaultCachePath("/data/src");
  EXPECT_EQ(path, "/xdg/ferry/hashes-" + HashBytes(std::string_view("/data/src")).ToHex() + ".v1");
  EXPECT_EQ(DefaultCachePath("/data/src/"), path);
  EXPECT_EQ(DefaultCachePath("/data/./other/../src"), path);
  EXPECT_NE(DefaultCachePath("/data/src2"), path);
  // Relative roots are made absolute against the working directory.
  EXPECT_EQ(DefaultCachePath("rel"), DefaultCachePath((fs::current_path() / "rel").string()));

  setenv("XDG_CACHE_HOME", "relative/not/allowed", 1);
  setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(DefaultCachePath("/data/src"), "/home/someone/.cache/ferry/hashes-" +
                                               HashBytes(std::string_view("/data/src")).ToHex() +
                                               ".v1");
}

}  // namespace
}  // namespace ferry::hash
