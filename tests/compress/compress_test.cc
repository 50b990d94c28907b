#include "lib/compress/compress.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "ferry/error.h"

namespace ferry::compress {
namespace {

constexpr size_t kTenMiB = 10 << 20;

std::vector<std::byte> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> bytes(n);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) bytes[i + j] = std::byte(v >> (8 * j));
  }
  return bytes;
}

// Compressible, log-like text.
std::vector<std::byte> Text(size_t n) {
  static constexpr const char* kWords[] = {"sync",   "ferry", "file", "chunk", "frame",
                                           "delta",  "hash",  "the",  "of",    "transfer",
                                           "remote", "local", "\n",   "1024",  "error"};
  std::mt19937 rng(7);
  std::string text;
  text.reserve(n + 16);
  while (text.size() < n) {
    text += kWords[rng() % std::size(kWords)];
    text += ' ';
  }
  text.resize(n);
  auto* p = reinterpret_cast<const std::byte*>(text.data());
  return {p, p + n};
}

// Feeds `data` in chunks whose sizes cycle through `chunk_sizes`.
std::vector<std::byte> CompressInChunks(FrameCompressor& c, std::span<const std::byte> data,
                                        const std::vector<size_t>& chunk_sizes) {
  std::vector<std::byte> out;
  size_t pos = 0, i = 0;
  do {
    size_t n = std::min(chunk_sizes[i++ % chunk_sizes.size()], data.size() - pos);
    bool last = pos + n == data.size();
    Status s = c.Compress(data.subspan(pos, n), last, out);
    EXPECT_TRUE(s.ok()) << s.error().Message();
    if (!s.ok()) return {};
    pos += n;
  } while (pos < data.size());
  return out;
}

std::vector<std::byte> CompressWhole(std::span<const std::byte> data, int level = kDefaultLevel) {
  FrameCompressor c(level, data.size());
  std::vector<std::byte> out;
  Status s = c.Compress(data, /*last=*/true, out);
  EXPECT_TRUE(s.ok()) << s.error().Message();
  return out;
}

void ExpectRoundTrip(std::span<const std::byte> data, std::span<const std::byte> frame) {
  Result<std::vector<std::byte>> back = DecompressAll(frame);
  ASSERT_TRUE(back.ok()) << back.error().Message();
  ASSERT_EQ(back->size(), data.size());
  EXPECT_TRUE(std::equal(data.begin(), data.end(), back->begin()));
}

const std::vector<size_t> kOddChunks = {1, 7, 4093, 131073, 65535, 3, 1 << 20, 999983};

TEST(FrameCompressorTest, EmptyFileIsAValidFrameWithSizeZero) {
  FrameCompressor c(kDefaultLevel, 0);
  std::vector<std::byte> out;
  ASSERT_TRUE(c.Compress({}, /*last=*/true, out).ok());
  ASSERT_FALSE(out.empty());
  ExpectRoundTrip({}, out);
  auto size = FrameContentSize(out);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, std::optional<uint64_t>(0));
}

TEST(FrameCompressorTest, TinyInputRoundTrips) {
  const std::string s = "x";
  auto data = std::as_bytes(std::span(s));
  ExpectRoundTrip(data, CompressWhole(data));
}

TEST(FrameCompressorTest, RandomDataInOddChunksRoundTrips) {
  auto data = RandomBytes(kTenMiB, 1);
  FrameCompressor c(1, data.size());
  auto frame = CompressInChunks(c, data, kOddChunks);
  // Incompressible data: zstd stores it raw, with only block overhead.
  EXPECT_LT(frame.size(), data.size() + data.size() / 100);
  ExpectRoundTrip(data, frame);
}

TEST(FrameCompressorTest, TextInOddChunksRoundTripsAndShrinks) {
  auto data = Text(kTenMiB);
  FrameCompressor c(kDefaultLevel, data.size());
  auto frame = CompressInChunks(c, data, kOddChunks);
  EXPECT_LT(frame.size(), data.size() / 3);
  ExpectRoundTrip(data, frame);
}

TEST(FrameCompressorTest, EmptyNonLastChunksAreAllowed) {
  auto data = Text(100000);
  FrameCompressor c;
  std::vector<std::byte> out;
  ASSERT_TRUE(c.Compress({}, false, out).ok());
  ASSERT_TRUE(c.Compress(std::span(data).first(5000), false, out).ok());
  ASSERT_TRUE(c.Compress({}, false, out).ok());
  ASSERT_TRUE(c.Compress(std::span(data).subspan(5000), false, out).ok());
  ASSERT_TRUE(c.Compress({}, true, out).ok());
  ExpectRoundTrip(data, out);
}

TEST(FrameCompressorTest, HeaderCarriesPledgedContentSize) {
  auto data = Text(123457);
  FrameCompressor c(kDefaultLevel, data.size());
  auto frame = CompressInChunks(c, data, {1000});
  auto size = FrameContentSize(std::span(frame).first(kFrameHeaderMaxBytes));
  ASSERT_TRUE(size.ok()) << size.error().Message();
  EXPECT_EQ(*size, std::optional<uint64_t>(data.size()));
}

TEST(FrameCompressorTest, UnknownSizeStreamedHasNoContentSize) {
  auto data = Text(300000);
  FrameCompressor c(kDefaultLevel);
  auto frame = CompressInChunks(c, data, {4096});
  auto size = FrameContentSize(frame);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, std::nullopt);
  ExpectRoundTrip(data, frame);
}

TEST(FrameCompressorTest, FeedingMoreThanPledgedIsSourceChanged) {
  auto data = Text(10000);
  FrameCompressor c(kDefaultLevel, 5000);
  std::vector<std::byte> out;
  Status s = c.Compress(data, true, out);
  EXPECT_EQ(s.code(), make_error_code(errc::kSourceChanged));
  // Stays failed until Reset.
  EXPECT_EQ(c.Compress({}, true, out).code(), make_error_code(errc::kSourceChanged));
}

TEST(FrameCompressorTest, FeedingLessThanPledgedIsSourceChanged) {
  auto data = Text(10000);
  FrameCompressor c(kDefaultLevel, 20000);
  std::vector<std::byte> out;
  EXPECT_EQ(c.Compress(data, true, out).code(), make_error_code(errc::kSourceChanged));
}

TEST(FrameCompressorTest, InvalidLevelIsReportedByCompressAndReset) {
  std::vector<std::byte> out;
  FrameCompressor c(0);
  EXPECT_EQ(c.Compress({}, true, out).code(), make_error_code(errc::kInvalidArgument));
  EXPECT_EQ(c.Reset(20).code(), make_error_code(errc::kInvalidArgument));
  EXPECT_TRUE(c.Reset(19).ok());
  EXPECT_TRUE(c.Compress({}, true, out).ok());
}

TEST(FrameCompressorTest, CompressAfterLastChunkNeedsReset) {
  FrameCompressor c;
  std::vector<std::byte> out;
  ASSERT_TRUE(c.Compress({}, true, out).ok());
  EXPECT_EQ(c.Compress({}, true, out).code(), make_error_code(errc::kInvalidArgument));
}

TEST(FrameCompressorTest, ResetReusesTheContextAndMatchesAFreshCompressor) {
  auto first = Text(2 << 20);
  auto second = RandomBytes(300000, 2);
  FrameCompressor c(kDefaultLevel, first.size());
  auto frame1 = CompressInChunks(c, first, {65536});
  const size_t warmed = c.MemoryUsage();

  ASSERT_TRUE(c.Reset(kDefaultLevel, second.size()).ok());
  // The tables and buffers survive the reset: nothing was freed.
  EXPECT_EQ(c.MemoryUsage(), warmed);
  auto frame2 = CompressInChunks(c, second, {65536});
  EXPECT_EQ(c.MemoryUsage(), warmed);

  // Same bytes as a fresh context would produce.
  FrameCompressor fresh(kDefaultLevel, second.size());
  EXPECT_EQ(frame2, CompressInChunks(fresh, second, {65536}));
  ExpectRoundTrip(first, frame1);
  ExpectRoundTrip(second, frame2);
}

TEST(FrameCompressorTest, ResetAbandonsAFrameInProgress) {
  auto data = Text(500000);
  FrameCompressor c(kDefaultLevel, data.size());
  std::vector<std::byte> scratch;
  ASSERT_TRUE(c.Compress(std::span(data).first(100000), false, scratch).ok());
  ASSERT_TRUE(c.Reset(5, data.size()).ok());
  auto frame = CompressInChunks(c, data, {77777});
  ExpectRoundTrip(data, frame);
}

TEST(FrameCompressorTest, ResetAfterFailureRecovers) {
  auto data = Text(10000);
  FrameCompressor c(kDefaultLevel, 1);
  std::vector<std::byte> out;
  ASSERT_FALSE(c.Compress(data, true, out).ok());
  ASSERT_TRUE(c.Reset(kDefaultLevel, data.size()).ok());
  ExpectRoundTrip(data, CompressInChunks(c, data, {3333}));
}

TEST(FrameCompressorTest, MovedCompressorKeepsWorking) {
  auto data = Text(10000);
  FrameCompressor a(kDefaultLevel, data.size());
  FrameCompressor b = std::move(a);
  ExpectRoundTrip(data, CompressInChunks(b, data, {100}));
}

TEST(FrameContentSizeTest, ShortHeaderIsInvalidArgument) {
  auto frame = CompressWhole(std::as_bytes(std::span("hello", 5)));
  auto size = FrameContentSize(std::span(frame).first(3));
  EXPECT_EQ(size.code(), make_error_code(errc::kInvalidArgument));
  // Magic and descriptor present, size field cut off.
  auto size2 = FrameContentSize(std::span(frame).first(5));
  EXPECT_EQ(size2.code(), make_error_code(errc::kInvalidArgument));
}

TEST(FrameContentSizeTest, NotAZstdFrameIsCorruptState) {
  const std::string text = "definitely not a zstd frame";
  auto size = FrameContentSize(std::as_bytes(std::span(text)));
  EXPECT_EQ(size.code(), make_error_code(errc::kCorruptState));
}

TEST(DecompressAllTest, TruncatedFrameIsCorruptState) {
  auto data = Text(200000);
  auto frame = CompressWhole(data);
  auto back = DecompressAll(std::span(frame).first(frame.size() - 5));
  EXPECT_EQ(back.code(), make_error_code(errc::kCorruptState));
}

TEST(DecompressAllTest, FlippedByteIsCorruptState) {
  auto data = Text(200000);
  auto frame = CompressWhole(data);
  frame[frame.size() / 2] ^= std::byte{0x40};
  auto back = DecompressAll(frame);
  EXPECT_EQ(back.code(), make_error_code(errc::kCorruptState));
}

// The frames are standard: the zstd command line reads them.
class ZstdCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("zstd --version >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "zstd CLI not installed";
    }
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = tmp != nullptr ? tmp : "/tmp";
  }

  std::vector<std::byte> ZstdDecompress(const std::vector<std::byte>& frame,
                                        const std::string& name) {
    const std::string in = dir_ + "/" + name + ".zst";
    const std::string out = dir_ + "/" + name;
    {
      std::ofstream f(in, std::ios::binary);
      f.write(reinterpret_cast<const char*>(frame.data()), frame.size());
    }
    const std::string cmd = "zstd -q -d -c '" + in + "' > '" + out + "'";
    int rc = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << cmd << " -> " << rc;
    std::ifstream f(out, std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto* p = reinterpret_cast<const std::byte*>(chars.data());
    return {p, p + chars.size()};
  }

  std::string dir_;
};

TEST_F(ZstdCliTest, TextFrameDecompressesByteForByte) {
  auto data = Text(kTenMiB);
  FrameCompressor c(kDefaultLevel, data.size());
  EXPECT_EQ(ZstdDecompress(CompressInChunks(c, data, kOddChunks), "text"), data);
}

TEST_F(ZstdCliTest, RandomFrameOfUnknownSizeDecompressesByteForByte) {
  auto data = RandomBytes(3 << 20, 3);
  FrameCompressor c(1);
  EXPECT_EQ(ZstdDecompress(CompressInChunks(c, data, kOddChunks), "random"), data);
}

TEST_F(ZstdCliTest, EmptyFrameDecompressesToNothing) {
  FrameCompressor c(kDefaultLevel, 0);
  std::vector<std::byte> frame;
  ASSERT_TRUE(c.Compress({}, true, frame).ok());
  EXPECT_TRUE(ZstdDecompress(frame, "empty").empty());
}

}  // namespace
}  // namespace ferry::compress
