// Shared by the soak tests: the seed and duration (overridable from the
// environment so a failure can be replayed and a local run made longer), the
// two destinations each soak runs against, and the final comparison.
#ifndef FERRY_TESTS_SOAK_SOAK_COMMON_H_
#define FERRY_TESTS_SOAK_SOAK_COMMON_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tests/testing/tree.h"

namespace ferry::soak {

// Where DEST is: a local directory, or a real sshd (tests/sshd) reached over SFTP.
enum class Where { kLocal, kSftp };

inline std::string WhereName(const ::testing::TestParamInfo<Where>& info) {
  return info.param == Where::kLocal ? "Local" : "Sftp";
}

// FERRY_SOAK_SEED, else a fresh random seed. Printed so a failure can be replayed.
inline uint64_t Seed() {
  if (const char* s = std::getenv("FERRY_SOAK_SEED"); s != nullptr && *s != '\0') {
    return std::strtoull(s, nullptr, 10);
  }
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) | rd();
}

// FERRY_SOAK_SECONDS, else `fallback`.
inline int Seconds(int fallback) {
  if (const char* s = std::getenv("FERRY_SOAK_SECONDS"); s != nullptr && std::atoi(s) > 0) {
    return std::atoi(s);
  }
  return fallback;
}

inline std::string ReplayHint(uint64_t seed) {
  return "soak seed " + std::to_string(seed) + " (replay: FERRY_SOAK_SEED=" + std::to_string(seed) +
         ")";
}

// testing::CompareTrees for a destination that keeps a file's mtime only to
// `granularity_ns` (SFTP v3: whole seconds, truncated): two mtimes in the same
// granule are not a difference.
inline std::vector<std::string> CompareTreesAt(const std::string& src, const std::string& dst,
                                               ferry::testing::CompareOptions options,
                                               int64_t granularity_ns) {
  std::vector<std::string> diffs = ferry::testing::CompareTrees(src, dst, options);
  if (granularity_ns <= 1) return diffs;
  std::erase_if(diffs, [granularity_ns](const std::string& d) {
    // "mtime differs: PATH (SRC_NS vs DST_NS)"; the path may hold " (" itself.
    const size_t open = d.rfind(" (");
    long long a = 0, b = 0;
    if (!d.starts_with("mtime differs: ") || open == std::string::npos ||
        std::sscanf(d.c_str() + open, " (%lld vs %lld)", &a, &b) != 2) {
      return false;
    }
    const auto granule = [granularity_ns](long long ns) {
      return ns >= 0 ? ns / granularity_ns : (ns - granularity_ns + 1) / granularity_ns;
    };
    return granule(a) == granule(b);
  });
  return diffs;
}

}  // namespace ferry::soak

#endif  // FERRY_TESTS_SOAK_SOAK_COMMON_H_
