// Replays a libFuzzer target's checked-in seed corpus (and hand-picked edge
// inputs) through its entry point under gcc and the sanitizers, so the entry
// point keeps compiling and its invariants hold between real fuzz runs.
#ifndef FERRY_TESTS_TESTING_FUZZ_CORPUS_H_
#define FERRY_TESTS_TESTING_FUZZ_CORPUS_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

// Defined by the *_fuzz_entry library the test links (alwayslink).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace ferry::testing {

using FuzzEntry = int (*)(const uint8_t* data, size_t size);

// Feeds every file in `dir` (a path from the workspace root, where Bazel starts
// tests; list the files in the test's `data`) to `entry`, expecting 0 from each,
// and expects at least `min_seeds` files. Failures name the seed file.
void ExpectCorpusRunsCleanly(FuzzEntry entry, const std::string& dir, int min_seeds = 5);

// Feeds each of `inputs` to `entry`, expecting 0 from each.
void ExpectInputsRunCleanly(FuzzEntry entry, std::initializer_list<std::string> inputs);

}  // namespace ferry::testing

#endif  // FERRY_TESTS_TESTING_FUZZ_CORPUS_H_
