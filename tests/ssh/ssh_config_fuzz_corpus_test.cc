#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int Feed(const std::string& data) {
  return LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

TEST(SshConfigFuzzCorpusTest, EverySeedRunsCleanly) {
  // Bazel runs tests from the runfiles root of the workspace.
  const std::filesystem::path dir = "tests/ssh/corpus";
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    EXPECT_EQ(Feed(data), 0);
    ++seeds;
  }
  EXPECT_GE(seeds, 5);
}

TEST(SshConfigFuzzCorpusTest, EdgeInputsRunCleanly) {
  const std::string inputs[] = {
      std::string(),
      std::string("\n"),
      std::string("h\n="),
      std::string("h\nPort=\"\""),
      std::string("h\nHost \"\"\n Port 1"),
      std::string("h\nUser a\\"),
      std::string("h\nIdentityFile %"),
      std::string("h\nHost *\x00\nPort 1", 15),
      std::string("**\nHost !\n User x"),
      std::string("h\nConnectTimeout 99999999999w"),
      std::string("h\nMatch"),
      std::string("h\n#\n \t\r\n'"),
  };
  for (const std::string& in : inputs) {
    SCOPED_TRACE(in);
    EXPECT_EQ(Feed(in), 0);
  }
}

}  // namespace
