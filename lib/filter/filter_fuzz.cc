// libFuzzer entry point for the filter patterns (target //lib/filter:filter_fuzz).
//
// Input: one flags byte, then '\n'-separated lines. The last line is the path
// to test; every line before it is a pattern, added in order. Flags: bit 0 set
// makes the first rule an include (then rules alternate exclude/include), bit 1
// says the path is a directory. So "\x02*.o\nsrc/a.o" is: exclude "*.o", test
// the directory "src/a.o".
//
// Besides "does not crash or hang", it checks invariants and traps if one
// breaks: a rejected pattern is errc::kInvalidArgument; a single exclude rule
// excludes exactly what its Pattern matches; ExcludedWithParents() is never
// weaker than Excluded(); an empty set excludes nothing; a directory-only
// pattern never matches a file.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ferry/error.h"
#include "lib/filter/filter.h"
#include "lib/filter/pattern.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  std::vector<std::string_view> lines;
  for (;;) {
    const size_t nl = input.find('\n');
    lines.push_back(input.substr(0, nl));
    if (nl == std::string_view::npos) break;
    input.remove_prefix(nl + 1);
  }
  const std::string_view path = lines.back();
  lines.pop_back();
  const bool is_dir = (flags & 2) != 0;

  ferry::filter::FilterSet set;
  bool include = (flags & 1) != 0;
  for (std::string_view pattern : lines) {
    auto compiled = ferry::filter::Pattern::Compile(pattern);
    if (!compiled) {
      Check(compiled.code() == ferry::errc::kInvalidArgument);
      Check(set.AddExclude(pattern).code() == ferry::errc::kInvalidArgument);
      continue;
    }
    const bool matches = compiled->Matches(path, is_dir);
    if (compiled->directory_only() && !is_dir) Check(!matches);
    ferry::filter::FilterSet single;
    Check(single.AddExclude(pattern).ok());
    Check(single.Excluded(path, is_dir) == matches);

    Check((include ? set.AddInclude(pattern) : set.AddExclude(pattern)).ok());
    include = !include;
  }
  const bool excluded = set.Excluded(path, is_dir);
  const bool with_parents = set.ExcludedWithParents(path, is_dir);
  Check(!excluded || with_parents);
  if (set.empty()) Check(!excluded && !with_parents);
  return 0;
}
