#include <gtest/gtest.h>

#include "tests/testing/fuzz_corpus.h"

namespace ferry::testing {
namespace {

TEST(SshConfigFuzzCorpusTest, EverySeedRunsCleanly) {
  ExpectCorpusRunsCleanly(LLVMFuzzerTestOneInput, "tests/ssh/corpus");
}

TEST(SshConfigFuzzCorpusTest, EdgeInputsRunCleanly) {
  ExpectInputsRunCleanly(LLVMFuzzerTestOneInput, {
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
                                                 });
}

}  // namespace
}  // namespace ferry::testing
