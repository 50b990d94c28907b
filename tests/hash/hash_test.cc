#include "lib/hash/hash.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace ferry::hash {
namespace {

// Canonical values as printed by `xxh128sum` (xxhsum -H2).
constexpr const char* kEmptyHex = "99aa06d3014798d86001c324468d497f";
constexpr const char* kAbcHex = "06b05ab6733a618578af5f94892f3950";

std::vector<std::byte> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> bytes(n);
  for (auto& b : bytes) b = std::byte(rng());
  return bytes;
}

std::string TempDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

TEST(HashBytesTest, KnownValues) {
  EXPECT_EQ(HashBytes(std::string_view()).ToHex(), kEmptyHex);
  EXPECT_EQ(HashBytes(std::string_view("abc")).ToHex(), kAbcHex);
  const std::string abc = "abc";
  EXPECT_EQ(HashBytes(std::as_bytes(std::span(abc))), HashBytes(std::string_view("abc")));
}

TEST(Hash128Test, HexRoundTrips) {
  const Hash128 h{0x0123456789abcdefull, 0xfedcba9876543210ull};
  EXPECT_EQ(h.ToHex(), "0123456789abcdeffedcba9876543210");
  EXPECT_EQ(Hash128::FromHex(h.ToHex()), h);
  EXPECT_EQ(Hash128::FromHex("0123456789ABCDEFFEDCBA9876543210"), h);
  EXPECT_EQ(Hash128::FromHex(kAbcHex)->ToHex(), kAbcHex);
}

TEST(Hash128Test, FromHexRejectsMalformed) {
  EXPECT_EQ(Hash128::FromHex(""), std::nullopt);
  EXPECT_EQ(Hash128::FromHex("0123456789abcdeffedcba987654321"), std::nullopt);    // 31
  EXPECT_EQ(Hash128::FromHex("0123456789abcdeffedcba98765432100"), std::nullopt);  // 33
  EXPECT_EQ(Hash128::FromHex("0123456789abcdeffedcba987654321g"), std::nullopt);
  EXPECT_EQ(Hash128::FromHex(" 123456789abcdeffedcba9876543210"), std::nullopt);
  EXPECT_EQ(Hash128::FromHex("+123456789abcdeffedcba9876543210"), std::nullopt);
}

TEST(StreamingHasherTest, OddChunksEqualOneShot) {
  const auto data = RandomBytes(3 << 20, 1);
  const std::vector<size_t> chunks = {1, 2, 3, 63, 64, 65, 239, 240, 241, 1023, 4099, 100003};
  StreamingHasher hasher;
  size_t pos = 0;
  for (size_t i = 0; pos < data.size(); ++i) {
    const size_t n = std::min(chunks[i % chunks.size()], data.size() - pos);
    hasher.Update(std::span(data).subspan(pos, n));
    pos += n;
  }
  EXPECT_EQ(hasher.Final(), HashBytes(data));
}

TEST(StreamingHasherTest, EveryPrefixLengthUpTo600MatchesOneShot) {
  // Crosses XXH3's short-input, mid-size and long-input code paths.
  const auto data = RandomBytes(600, 2);
  for (size_t len = 0; len <= data.size(); ++len) {
    StreamingHasher hasher;
    hasher.Update(std::span(data).first(len / 2));
    hasher.Update(std::span(data).subspan(len / 2, len - len / 2));
    ASSERT_EQ(hasher.Final(), HashBytes(std::span(data).first(len))) << len;
  }
}

TEST(StreamingHasherTest, FinalDoesNotEndTheStreamAndResetStartsOver) {
  StreamingHasher hasher;
  EXPECT_EQ(hasher.Final().ToHex(), kEmptyHex);
  hasher.Update(std::as_bytes(std::span("ab", 2)));
  (void)hasher.Final();
  hasher.Update(std::as_bytes(std::span("c", 1)));
  EXPECT_EQ(hasher.Final().ToHex(), kAbcHex);
  hasher.Reset();
  EXPECT_EQ(hasher.Final().ToHex(), kEmptyHex);
  StreamingHasher moved = std::move(hasher);
  moved.Update(std::as_bytes(std::span("abc", 3)));
  EXPECT_EQ(moved.Final().ToHex(), kAbcHex);
}

class HashFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, std::span<const std::byte> data) {
    const std::string path = TempDir() + "/" + name;
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    close(fd);
    return path;
  }
};

TEST_F(HashFileTest, MultiChunkFileMatchesOneShot) {
  // Not a multiple of the read size, so the last pread is short.
  const auto data = RandomBytes(kHashReadBytes * 2 + 12345, 3);
  const std::string path = Write("multi", data);
  Result<Hash128> h = HashFile(path);
  ASSERT_TRUE(h.ok()) << h.error().Message();
  EXPECT_EQ(*h, HashBytes(data));
}

TEST_F(HashFileTest, EmptyFile) {
  Result<Hash128> h = HashFile(Write("empty", {}));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->ToHex(), kEmptyHex);
}

TEST_F(HashFileTest, FdVersionIgnoresAndKeepsTheFileOffset) {
  const auto data = RandomBytes(5000, 4);
  const int fd = open(Write("fd", data).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(lseek(fd, 100, SEEK_SET), 100);
  Result<Hash128> h = HashFile(fd);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, HashBytes(data));
  EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 100);
  close(fd);
}

TEST_F(HashFileTest, MissingFileIsENOENT) {
  Result<Hash128> h = HashFile(TempDir() + "/does-not-exist");
  EXPECT_EQ(h.code(), std::error_code(ENOENT, std::system_category()));
  EXPECT_NE(h.error().detail.find("does-not-exist"), std::string::npos);
}

TEST_F(HashFileTest, DirectoryIsEISDIR) {
  Result<Hash128> h = HashFile(TempDir());
  EXPECT_EQ(h.code(), std::error_code(EISDIR, std::system_category()));
}

TEST_F(HashFileTest, BadFdIsEBADF) {
  EXPECT_EQ(HashFile(-1).code(), std::error_code(EBADF, std::system_category()));
}

}  // namespace
}  // namespace ferry::hash
