#include "tests/testing/fuzz_corpus.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace ferry::testing {
namespace {

int Feed(FuzzEntry entry, const std::string& data) {
  return entry(reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

}  // namespace

void ExpectCorpusRunsCleanly(FuzzEntry entry, const std::string& dir, int min_seeds) {
  int seeds = 0;
  for (const auto& file : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(file.path(), std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(file.path().string());
    EXPECT_EQ(Feed(entry, data), 0);
    ++seeds;
  }
  EXPECT_GE(seeds, min_seeds) << dir;
}

void ExpectInputsRunCleanly(FuzzEntry entry, std::initializer_list<std::string> inputs) {
  for (const std::string& in : inputs) {
    SCOPED_TRACE(::testing::PrintToString(in));
    EXPECT_EQ(Feed(entry, in), 0);
  }
}

}  // namespace ferry::testing
