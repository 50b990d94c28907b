#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(SftpCodecFuzzCorpusTest, EverySeedRunsCleanly) {
  // Bazel runs tests from the runfiles root of the workspace.
  const std::filesystem::path dir = "tests/sftp/corpus";
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
              0);
    ++seeds;
  }
  EXPECT_GE(seeds, 5);
}

TEST(SftpCodecFuzzCorpusTest, EdgeInputsRunCleanly) {
  const std::string inputs[] = {
      std::string(),
      std::string("\x00", 1),
      std::string("\x00\x00\x00\x00\x00", 5),
      std::string("\xff\xff\xff\xff\xff"),
      std::string("\x03\x00\x00\x00\x01\x65", 6),
      std::string("\x00\x00\x00\x00\x05\x68\x00\x00\x00\x01", 10),
  };
  for (const std::string& in : inputs) {
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(in.data()), in.size()), 0);
  }
}

}  // namespace
