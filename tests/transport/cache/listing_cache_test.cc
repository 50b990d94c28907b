// The listing cache file: what is written is read back exactly (names with
// newlines and invalid UTF-8 included), later records win, and any damage
// (truncation, a flipped byte, a hostile count, an unsafe name) discards the
// whole file instead of trusting part of it.
#include "lib/transport/cache/listing_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace ferry::transport {
namespace {

namespace fs = std::filesystem;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

Entry MakeEntry(std::string name, EntryType type, uint64_t size, int64_t mtime_ns, uint32_t mode,
                std::string target = {}) {
  Entry e;
  e.name = std::move(name);
  e.type = type;
  e.size = size;
  e.mtime_ns = mtime_ns;
  e.mode = mode;
  e.link_target = std::move(target);
  return e;
}

Listing Existing() {
  Listing l;
  l.exists = true;
  return l;
}

Listing Sample() {
  Listing l = Existing();
  l.unsafe_names = 2;
  l.entries = {
      MakeEntry("plain.txt", EntryType::kFile, 1234, 1'700'000'000'000'000'000, 0644),
      MakeEntry(std::string("new\nline \xff\xfe"), EntryType::kFile, 0, -5, 0600),
      MakeEntry("sub", EntryType::kDirectory, 0, 0, 0755),
      MakeEntry("link", EntryType::kSymlink, 7, 0, 0777, "../../etc"),
  };
  return l;
}

void ExpectSame(const Listing& a, const Listing& b) {
  EXPECT_EQ(a.exists, b.exists);
  EXPECT_EQ(a.unsafe_names, b.unsafe_names);
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (size_t i = 0; i < a.entries.size(); ++i) {
    const Entry& x = a.entries[i];
    const Entry& y = b.entries[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.type, y.type);
    EXPECT_EQ(x.size, y.size);
    EXPECT_EQ(x.mtime_ns, y.mtime_ns);
    EXPECT_EQ(x.mode, y.mode);
    EXPECT_EQ(x.link_target, y.link_target);
  }
}

std::string File(std::initializer_list<std::function<void(std::string&)>> records) {
  std::string out(kListingCacheHeader);
  for (const auto& r : records) r(out);
  AppendEndRecord(out);
  return out;
}

TEST(ListingCacheTest, RecordsReadBackExactly) {
  const Listing sample = Sample();
  const std::string bytes =
      File({[&](std::string& o) { AppendListingRecord(o, "", 11, sample); },
            [&](std::string& o) { AppendListingRecord(o, "a/b", 22, Existing()); }});
  auto snapshot = ListingCacheSnapshot::Parse(Bytes(bytes));
  EXPECT_FALSE(snapshot.discarded());
  EXPECT_EQ(snapshot.directories(), 2u);
  auto root = snapshot.Find("");
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->dir_mtime_ns, 11);
  ExpectSame(root->listing, sample);
  auto ab = snapshot.Find("a/b");
  ASSERT_TRUE(ab.has_value());
  EXPECT_EQ(ab->dir_mtime_ns, 22);
  EXPECT_TRUE(ab->listing.exists);
  EXPECT_TRUE(ab->listing.entries.empty());
  EXPECT_FALSE(snapshot.Find("a").has_value());
}

TEST(ListingCacheTest, LaterRecordsReplaceAndForgetEarlierOnes) {
  const Listing sample = Sample();
  const std::string bytes =
      File({[&](std::string& o) { AppendListingRecord(o, "x", 1, Existing()); },
            [&](std::string& o) { AppendListingRecord(o, "x", 2, sample); },
            [&](std::string& o) { AppendListingRecord(o, "y", 3, sample); },
            [&](std::string& o) { AppendForgetRecord(o, "y"); },
            [&](std::string& o) { AppendForgetRecord(o, "never/recorded"); }});
  auto snapshot = ListingCacheSnapshot::Parse(Bytes(bytes));
  ASSERT_FALSE(snapshot.discarded());
  auto x = snapshot.Find("x");
  ASSERT_TRUE(x.has_value());
  EXPECT_EQ(x->dir_mtime_ns, 2);
  ExpectSame(x->listing, sample);
  EXPECT_FALSE(snapshot.Find("y").has_value());
}

TEST(ListingCacheTest, EveryTruncationAndEveryFlippedByteIsDiscarded) {
  const Listing sample = Sample();
  const std::string good = File({[&](std::string& o) { AppendListingRecord(o, "d", 5, sample); }});
  for (size_t size = 0; size < good.size(); ++size) {
    const std::string cut = good.substr(0, size);
    auto s = ListingCacheSnapshot::Parse(Bytes(cut));
    EXPECT_TRUE(s.discarded()) << "size " << size;
    EXPECT_FALSE(s.Find("d").has_value());
  }
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    auto s = ListingCacheSnapshot::Parse(Bytes(bad));
    EXPECT_TRUE(s.discarded()) << "byte " << i;
  }
}

TEST(ListingCacheTest, HostileContentWithAValidChecksumIsStillDiscarded) {
  // A huge entry count: refused before any allocation.
  std::string huge(kListingCacheHeader);
  huge += 'D';
  huge += std::string("\0\0\0\0", 4);                   // path ""
  huge += std::string(8, '\0') + std::string(8, '\0');  // mtime, unsafe
  huge += std::string("\xff\xff\xff\xff", 4);           // count
  AppendEndRecord(huge);
  EXPECT_TRUE(ListingCacheSnapshot::Parse(Bytes(huge)).discarded());

  // Names that are not one safe component, and an unsafe directory path.
  for (const std::string name : {"..", ".", "a/b", ""}) {
    Listing l = Existing();
    l.entries.push_back(MakeEntry(name, EntryType::kFile, 0, 0, 0644));
    const std::string bytes = File({[&](std::string& o) { AppendListingRecord(o, "d", 1, l); }});
    EXPECT_TRUE(ListingCacheSnapshot::Parse(Bytes(bytes)).discarded()) << name;
  }
  const std::string escape =
      File({[&](std::string& o) { AppendListingRecord(o, "../up", 1, Existing()); }});
  EXPECT_TRUE(ListingCacheSnapshot::Parse(Bytes(escape)).discarded());

  // Another version's header.
  std::string other = File({});
  other[20] = '2';
  EXPECT_TRUE(ListingCacheSnapshot::Parse(Bytes(other)).discarded());
}

class ListingCacheFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ =
        std::string(tmp != nullptr ? tmp : "/tmp") + "/listing_cache_" + std::to_string(getpid());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ListingCacheFileTest, WriterCommitsAtomicallyAndLoadMapsIt) {
  const std::string path = dir_ + "/nested/listings.v1";
  EXPECT_FALSE(ListingCacheSnapshot::Load(path).discarded());  // missing: just empty
  {
    auto writer = ListingCacheWriter::Create(path);
    ASSERT_TRUE(writer.ok()) << writer.error().Message();
    std::string records;
    AppendListingRecord(records, "", 9, Sample());
    ASSERT_TRUE((*writer)->Write(records).ok());
    EXPECT_FALSE(fs::exists(path));  // nothing under the final name before Commit
    ASSERT_TRUE((*writer)->Commit().ok());
  }
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto snapshot = ListingCacheSnapshot::Load(path);
  EXPECT_FALSE(snapshot.discarded());
  auto root = snapshot.Find("");
  ASSERT_TRUE(root.has_value());
  ExpectSame(root->listing, Sample());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ + "/nested"), fs::directory_iterator()), 1);
}

TEST_F(ListingCacheFileTest, AnUncommittedWriterLeavesTheOldFileAndNoTemp) {
  const std::string path = dir_ + "/listings.v1";
  {
    auto first = ListingCacheWriter::Create(path);
    ASSERT_TRUE(first.ok());
    std::string records;
    AppendListingRecord(records, "kept", 1, Sample());
    ASSERT_TRUE((*first)->Write(records).ok());
    ASSERT_TRUE((*first)->Commit().ok());
  }
  {
    auto second = ListingCacheWriter::Create(path);
    ASSERT_TRUE(second.ok());
    ASSERT_TRUE((*second)->Write("Dgarbage").ok());
  }  // dropped without Commit: an interrupted run
  auto snapshot = ListingCacheSnapshot::Load(path);
  EXPECT_TRUE(snapshot.Find("kept").has_value());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(ListingCacheFileTest, TempsOfDeadProcessesAreRemoved) {
  const std::string path = dir_ + "/listings.v1";
  fs::create_directories(dir_);
  // pid 2^22 + 1 is above Linux's pid_max limit: no such process.
  std::ofstream(path + ".tmp.4194305") << "left by a killed run";
  std::ofstream(path + ".tmp.1") << "pid 1 is alive: not ours to touch";
  auto writer = ListingCacheWriter::Create(path);
  ASSERT_TRUE(writer.ok());
  EXPECT_FALSE(fs::exists(path + ".tmp.4194305"));
  EXPECT_TRUE(fs::exists(path + ".tmp.1"));
}

TEST(ListingCachePathTest, OnePerDestinationUnderTheCacheDirectory) {
  ::setenv("XDG_CACHE_HOME", "/xdg", 1);
  const std::string a = DefaultListingCachePath("sftp://u@h:22/a");
  const std::string b = DefaultListingCachePath("sftp://u@h:22/b");
  EXPECT_TRUE(a.starts_with("/xdg/ferry/listings-")) << a;
  EXPECT_TRUE(a.ends_with(".v1")) << a;
  EXPECT_NE(a, b);
  ::unsetenv("XDG_CACHE_HOME");
}

}  // namespace
}  // namespace ferry::transport
