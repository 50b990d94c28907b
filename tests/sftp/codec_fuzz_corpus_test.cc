#include <gtest/gtest.h>

#include "tests/testing/fuzz_corpus.h"

namespace ferry::testing {
namespace {

TEST(SftpCodecFuzzCorpusTest, EverySeedRunsCleanly) {
  ExpectCorpusRunsCleanly(LLVMFuzzerTestOneInput, "tests/sftp/corpus");
}

TEST(SftpCodecFuzzCorpusTest, EdgeInputsRunCleanly) {
  ExpectInputsRunCleanly(LLVMFuzzerTestOneInput,
                         {
                             std::string(),
                             std::string("\x00", 1),
                             std::string("\x00\x00\x00\x00\x00", 5),
                             std::string("\xff\xff\xff\xff\xff"),
                             std::string("\x03\x00\x00\x00\x01\x65", 6),
                             std::string("\x00\x00\x00\x00\x05\x68\x00\x00\x00\x01", 10),
                         });
}

}  // namespace
}  // namespace ferry::testing
