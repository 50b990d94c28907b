// rsync-style include/exclude filtering (--exclude, --include, --exclude-from).
//
// A FilterSet is an ordered list of rules. For a given path the rules are tried
// in the order they were added and the first one whose pattern matches decides:
// an exclude rule excludes the path, an include rule keeps it. A path no rule
// matches is included. Pattern syntax: pattern.h and docs/FILTERS.md.
//
// Excluded() looks at one path only. As in rsync, excluding a directory hides
// everything below it, but that is the caller's job: a scanner that walks the
// tree top-down simply does not descend into a directory Excluded() rejected,
// so "- build/" followed by nothing else also drops build/x.o without
// evaluating it. Code that sees deep paths directly (watch mode, a path given
// on the command line) should call ExcludedWithParents(), which also rejects a
// path any of whose parent directories is excluded. Note the consequence, the
// same as in rsync: "+ keep/me.txt" cannot rescue a file whose parent "keep" is
// excluded; include its parents too ("+ keep/", "+ keep/me.txt", "- *").
//
// Thread-safety: the Add* methods mutate; the const methods may be called
// concurrently once the set is built. A FilterSet is copyable and movable.
#ifndef FERRY_FILTER_FILTER_H_
#define FERRY_FILTER_FILTER_H_

#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"
#include "lib/filter/pattern.h"

namespace ferry::filter {

class FilterSet {
 public:
  // Append a rule. An invalid pattern gives errc::kInvalidArgument with the
  // pattern in the detail, and leaves the set unchanged.
  Status AddExclude(std::string_view pattern);
  Status AddInclude(std::string_view pattern);

  // Appends one rule per line of the file at `path`, as exclude rules or (if
  // `include`) include rules, like rsync's --exclude-from / --include-from.
  // Lines end at '\n' or '\r' (so CRLF files work); empty lines and lines
  // starting with '#' or ';' are skipped; nothing else is trimmed (a trailing
  // space is part of the pattern). rsync's "+ " / "- " line prefixes are not
  // interpreted: "- foo" is the pattern "- foo".
  //
  // Errors: the file cannot be opened or read -> the system error (e.g.
  // std::errc::no_such_file_or_directory) with the path in the detail; a bad
  // pattern -> errc::kInvalidArgument with "path:line" and the pattern in the
  // detail. On any error no rule from the file is added.
  Status AddRulesFromFile(const std::string& path, bool include);

  // Whether `rel_path` is excluded by the first rule that matches it.
  // `rel_path` is relative to the transfer root, '/'-separated, with no
  // leading or trailing '/' ("src/a/b.c"); `is_dir` says whether it is a
  // directory (patterns ending in '/' only match directories). The empty
  // path (the root) is never excluded. Parents are not consulted; see above.
  bool Excluded(std::string_view rel_path, bool is_dir) const;

  // Excluded(), or any parent directory of `rel_path` ("src", "src/a" for
  // "src/a/b.c") is Excluded() as a directory. Costs one Excluded() call per
  // path component.
  bool ExcludedWithParents(std::string_view rel_path, bool is_dir) const;

  // No rules: nothing is excluded.
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    Pattern pattern;
    bool include;
  };

  Status Add(std::string_view pattern, bool include);

  std::vector<Rule> rules_;
};

}  // namespace ferry::filter

#endif  // FERRY_FILTER_FILTER_H_
