// One rsync include/exclude pattern, compiled once and matched many times.
//
// FilterSet (filter.h) is what callers normally use; Pattern is exposed so the
// matcher can be tested on its own. The syntax and the matching rules follow
// rsync's "INCLUDE/EXCLUDE PATTERN RULES" (see docs/FILTERS.md):
//
//   foo      matches a final path component "foo" at any depth
//   foo/     the same, directories only
//   /foo     anchored: only "foo" at the transfer root
//   a/b      contains a '/': matches the last two components ("x/a/b", "a/b")
//   *  ?     any run of / any one byte, never '/'
//   **       anything, '/' included; a pattern containing "**" is matched
//            against the whole path (still unanchored unless it starts with '/')
//   [a-z] [!a] [^a] [[:digit:]]   a byte class, never '/'
//   \*       a literal '*' (backslash escapes only in patterns that contain
//            one of "*?["; elsewhere it is an ordinary byte, as in rsync)
//   dir/***  the directory "dir" itself and everything below it
//
// Matching is byte-wise and case-sensitive. It runs in O(|pattern| * |path|)
// time and O(|pattern|) space whatever the pattern (no backtracking), so
// hostile patterns such as "*a*a*a*a*b" cannot blow up.
//
// Thread-safety: a Pattern is immutable after Compile; concurrent Matches()
// calls are safe.
#ifndef FERRY_FILTER_PATTERN_H_
#define FERRY_FILTER_PATTERN_H_

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"

namespace ferry::filter {

class Pattern {
 public:
  // Compiles `text`. Errors (all errc::kInvalidArgument, with the pattern,
  // escaped, in the detail): an empty pattern or one that is only slashes, a
  // NUL byte, an unterminated '[' class, an unknown "[:name:]" class, and a
  // trailing lone backslash in a wildcard pattern.
  static Result<Pattern> Compile(std::string_view text);

  // True if the pattern matches `rel_path`: a path relative to the transfer
  // root, '/'-separated, without a leading or trailing '/' and without "." or
  // ".." components ("src/a/b.c"). `is_dir` says whether it names a
  // directory. The empty path (the root itself) never matches.
  bool Matches(std::string_view rel_path, bool is_dir) const;

  // The pattern as given to Compile.
  const std::string& text() const { return text_; }
  // The pattern ended in '/': it only matches directories.
  bool directory_only() const { return directory_only_; }
  // The pattern started with '/': it is matched against the whole path.
  bool anchored() const { return anchored_; }

 private:
  enum class Kind : uint8_t { kByte, kAnyByte, kStar, kDoubleStar, kClass };
  struct Token {
    Kind kind;
    unsigned char byte = 0;    // kByte
    uint32_t class_index = 0;  // kClass: index into classes_
  };

  Pattern() = default;
  bool Accepts(const Token& token, unsigned char c) const;
  bool Run(std::string_view rel_path, bool leading_slash, bool trailing_slash,
           bool restart_at_slashes) const;

  std::string text_;
  std::vector<Token> tokens_;
  std::vector<std::bitset<256>> classes_;
  bool directory_only_ = false;
  bool anchored_ = false;
  // Unanchored and the body has neither '/' nor "**": only the final
  // component can match.
  bool final_component_only_ = false;
  // Unanchored body starting with "**": matched against "/" + path, so that
  // "**/foo" also matches "foo" at the root (rsync's FILTRULE_WILD2_PREFIX).
  bool double_star_prefix_ = false;
  // Wildcard body ending in "***": a directory is matched as "path/", so that
  // "dir/***" matches "dir" itself (rsync's FILTRULE_WILD3_SUFFIX).
  bool triple_star_suffix_ = false;
};

}  // namespace ferry::filter

#endif  // FERRY_FILTER_PATTERN_H_
