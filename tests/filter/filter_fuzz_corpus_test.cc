#include <gtest/gtest.h>

#include "tests/testing/fuzz_corpus.h"

namespace ferry::testing {
namespace {

TEST(FilterFuzzCorpusTest, EverySeedRunsCleanly) {
  ExpectCorpusRunsCleanly(LLVMFuzzerTestOneInput, "tests/filter/corpus");
}

TEST(FilterFuzzCorpusTest, EdgeInputsRunCleanly) {
  ExpectInputsRunCleanly(LLVMFuzzerTestOneInput, {
                                                     std::string(),
                                                     std::string("\x00", 1),
                                                     std::string("\x03"),
                                                     std::string("\x01\n"),
                                                     std::string("\x02[\n["),
                                                     std::string("\x00a\0b\nx", 6),
                                                     std::string("\x00/\n"),
                                                     std::string("\x02//\n/"),
                                                 });
}

}  // namespace
}  // namespace ferry::testing
