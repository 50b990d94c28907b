// Where a test that lists //cli:ferry in its `data` finds the built binary.
#ifndef FERRY_TESTS_TESTING_FERRY_BINARY_H_
#define FERRY_TESTS_TESTING_FERRY_BINARY_H_

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace ferry::testing {

// Tests run in the runfiles tree of the main repository; fall back to
// $TEST_SRCDIR/$TEST_WORKSPACE when started from elsewhere.
inline std::string FerryBinaryPath() {
  if (::access("cli/ferry", X_OK) == 0) return "cli/ferry";
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  if (srcdir != nullptr && ws != nullptr) return std::string(srcdir) + "/" + ws + "/cli/ferry";
  return "cli/ferry";
}

}  // namespace ferry::testing

#endif  // FERRY_TESTS_TESTING_FERRY_BINARY_H_
