// Shared by the soak tests: the seed and duration (overridable from the
// environment so a failure can be replayed and a local run made longer).
#ifndef FERRY_TESTS_SOAK_SOAK_COMMON_H_
#define FERRY_TESTS_SOAK_SOAK_COMMON_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace ferry::soak {

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

}  // namespace ferry::soak

#endif  // FERRY_TESTS_SOAK_SOAK_COMMON_H_
