#include "lib/filter/filter.h"

#include <cerrno>
#include <cstdio>
#include <memory>
#include <utility>

#include "ferry/error.h"

namespace ferry::filter {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// Reads the whole file; errors carry the path.
Result<std::string> ReadFile(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return Error{LastSystemError(), "cannot open filter file " + path};
  std::string data;
  char buf[8192];
  for (;;) {
    const size_t got = std::fread(buf, 1, sizeof buf, file.get());
    data.append(buf, got);
    if (got < sizeof buf) break;
  }
  if (std::ferror(file.get())) {
    std::error_code code = LastSystemError();
    if (!code) code = std::make_error_code(std::errc::io_error);
    return Error{code, "cannot read filter file " + path};
  }
  return data;
}

}  // namespace

Status FilterSet::Add(std::string_view pattern, bool include) {
  Result<Pattern> compiled = Pattern::Compile(pattern);
  if (!compiled) return compiled.error();
  rules_.push_back({std::move(compiled).value(), include});
  return {};
}

Status FilterSet::AddExclude(std::string_view pattern) { return Add(pattern, false); }

Status FilterSet::AddInclude(std::string_view pattern) { return Add(pattern, true); }

Status FilterSet::AddRulesFromFile(const std::string& path, bool include) {
  errno = 0;
  Result<std::string> data = ReadFile(path);
  if (!data) return data.error();

  // Compile everything first so that a bad line adds nothing.
  std::vector<Rule> parsed;
  std::string_view rest = *data;
  size_t line_number = 0;
  while (!rest.empty()) {
    const size_t end = rest.find_first_of("\r\n");
    std::string_view line = rest.substr(0, end);
    const char terminator = end == std::string_view::npos ? '\0' : rest[end];
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    // A CRLF pair ends one line, not two (so line numbers stay right).
    if (terminator == '\r' && !rest.empty() && rest.front() == '\n') rest.remove_prefix(1);
    ++line_number;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    Result<Pattern> compiled = Pattern::Compile(line);
    if (!compiled) {
      return Error{compiled.code(),
                   path + ":" + std::to_string(line_number) + ": " + compiled.error().detail};
    }
    parsed.push_back({std::move(compiled).value(), include});
  }
  rules_.insert(rules_.end(), std::make_move_iterator(parsed.begin()),
                std::make_move_iterator(parsed.end()));
  return {};
}

bool FilterSet::Excluded(std::string_view rel_path, bool is_dir) const {
  for (const Rule& rule : rules_) {
    if (rule.pattern.Matches(rel_path, is_dir)) return !rule.include;
  }
  return false;
}

bool FilterSet::ExcludedWithParents(std::string_view rel_path, bool is_dir) const {
  if (rules_.empty()) return false;
  // Top-down, as a scanner would meet them.
  for (size_t slash = rel_path.find('/'); slash != std::string_view::npos;
       slash = rel_path.find('/', slash + 1)) {
    if (Excluded(rel_path.substr(0, slash), true)) return true;
  }
  return Excluded(rel_path, is_dir);
}

}  // namespace ferry::filter
