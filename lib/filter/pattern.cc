#include "lib/filter/pattern.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "ferry/error.h"

namespace ferry::filter {
namespace {

// The pattern as it can appear in an error message: control and non-ASCII
// bytes (a NUL in particular) become \xHH.
std::string Printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

Error Invalid(std::string_view pattern, std::string_view why) {
  return Error{make_error_code(errc::kInvalidArgument),
               "filter pattern \"" + Printable(pattern) + "\": " + std::string(why)};
}

// The POSIX classes rsync's wildmatch knows, for ASCII bytes only (as rsync:
// bytes >= 128 are in no class). Returns false for an unknown name.
bool AddNamedClass(std::string_view name, std::bitset<256>& set) {
  bool (*in)(int) = nullptr;
  if (name == "alnum") {
    in = [](int c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    };
  } else if (name == "alpha") {
    in = [](int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  } else if (name == "blank") {
    in = [](int c) { return c == ' ' || c == '\t'; };
  } else if (name == "cntrl") {
    in = [](int c) { return c < 0x20 || c == 0x7f; };
  } else if (name == "digit") {
    in = [](int c) { return c >= '0' && c <= '9'; };
  } else if (name == "graph") {
    in = [](int c) { return c > 0x20 && c < 0x7f; };
  } else if (name == "lower") {
    in = [](int c) { return c >= 'a' && c <= 'z'; };
  } else if (name == "print") {
    in = [](int c) { return c >= 0x20 && c < 0x7f; };
  } else if (name == "punct") {
    in = [](int c) {
      return c > 0x20 && c < 0x7f &&
             !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    };
  } else if (name == "space") {
    in = [](int c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  } else if (name == "upper") {
    in = [](int c) { return c >= 'A' && c <= 'Z'; };
  } else if (name == "xdigit") {
    in = [](int c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    };
  } else {
    return false;
  }
  for (int c = 0; c < 128; ++c) {
    if (in(c)) set.set(c);
  }
  return true;
}

}  // namespace

Result<Pattern> Pattern::Compile(std::string_view text) {
  if (text.empty()) return Invalid(text, "empty pattern");
  if (text.find('\0') != std::string_view::npos) return Invalid(text, "NUL byte in pattern");

  Pattern p;
  p.text_ = std::string(text);
  std::string_view body = text;
  // As rsync's add_rule(): one trailing '/' means "directories only".
  if (body.size() > 1 && body.back() == '/') {
    body.remove_suffix(1);
    p.directory_only_ = true;
  }
  // Like rsync, the choice between wildcard and literal matching looks at the
  // raw characters, so "foo\*" is a wildcard pattern matching "foo*" while
  // "foo\bar" is literal and matches a name containing a backslash.
  const bool wild = body.find_first_of("*?[") != std::string_view::npos;
  if (body.front() == '/') {
    p.anchored_ = true;
    body.remove_prefix(1);
  }
  if (body.empty()) return Invalid(text, "pattern is only slashes");

  const bool has_slash = body.find('/') != std::string_view::npos;
  const bool double_star = wild && body.find("**") != std::string_view::npos;
  p.final_component_only_ = !p.anchored_ && !has_slash && !double_star;
  p.double_star_prefix_ = !p.anchored_ && double_star && body.starts_with("**");
  p.triple_star_suffix_ = double_star && body.ends_with("***");

  if (!wild) {
    for (unsigned char c : body) p.tokens_.push_back({Kind::kByte, c});
    return p;
  }

  const size_t n = body.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = body[i];
    if (c == '\\') {
      if (i + 1 == n) return Invalid(text, "trailing backslash escapes nothing");
      p.tokens_.push_back({Kind::kByte, static_cast<unsigned char>(body[i + 1])});
      i += 2;
    } else if (c == '?') {
      p.tokens_.push_back({Kind::kAnyByte});
      ++i;
    } else if (c == '*') {
      size_t run = 0;
      while (i < n && body[i] == '*') ++i, ++run;
      p.tokens_.push_back({run == 1 ? Kind::kStar : Kind::kDoubleStar});
    } else if (c == '[') {
      // Follows rsync's wildmatch: '!' or '^' first negates; a ']' right
      // after the opening (and negation) is literal; "a-z" is a range unless
      // the '-' is first or last; '\' escapes; "[:name:]" is a POSIX class.
      std::bitset<256> set;
      size_t j = i + 1;
      bool negated = false;
      if (j < n && (body[j] == '!' || body[j] == '^')) {
        negated = true;
        ++j;
      }
      int prev = -1;  // the previous single byte, a possible range start
      bool first = true;
      for (;;) {
        if (j >= n) return Invalid(text, "unterminated '['");
        unsigned char e = body[j];
        if (e == ']' && !first) break;
        first = false;
        if (e == '\\') {
          if (++j >= n) return Invalid(text, "unterminated '['");
          e = body[j];
          set.set(e);
          prev = e;
          ++j;
        } else if (e == '-' && prev >= 0 && j + 1 < n && body[j + 1] != ']') {
          ++j;
          unsigned char hi = body[j];
          if (hi == '\\') {
            if (++j >= n) return Invalid(text, "unterminated '['");
            hi = body[j];
          }
          for (int b = prev; b <= hi; ++b) set.set(b);
          prev = -1;
          ++j;
        } else if (e == '[' && j + 1 < n && body[j + 1] == ':') {
          const size_t close = body.find(']', j + 2);
          if (close == std::string_view::npos) return Invalid(text, "unterminated '['");
          if (close < j + 4 || body[close - 1] != ':') {
            // No "[:name:]" here: an ordinary '['.
            set.set('[');
            prev = '[';
            ++j;
          } else {
            std::string_view name = body.substr(j + 2, close - 1 - (j + 2));
            if (!AddNamedClass(name, set)) {
              return Invalid(text, "unknown character class [:" + std::string(name) + ":]");
            }
            prev = -1;
            j = close + 1;
          }
        } else {
          set.set(e);
          prev = e;
          ++j;
        }
      }
      if (negated) set.flip();
      set.reset('/');  // a class never matches a directory separator
      p.tokens_.push_back({Kind::kClass, 0, static_cast<uint32_t>(p.classes_.size())});
      p.classes_.push_back(set);
      i = j + 1;
    } else {
      p.tokens_.push_back({Kind::kByte, c});
      ++i;
    }
  }
  return p;
}

bool Pattern::Accepts(const Token& token, unsigned char c) const {
  switch (token.kind) {
    case Kind::kByte:
      return c == token.byte;
    case Kind::kAnyByte:
      return c != '/';
    case Kind::kClass:
      return classes_[token.class_index].test(c);
    case Kind::kStar:
      return c != '/';
    case Kind::kDoubleStar:
      return true;
  }
  return false;
}

bool Pattern::Matches(std::string_view rel_path, bool is_dir) const {
  if (rel_path.empty()) return false;
  if (directory_only_ && !is_dir) return false;
  const bool trailing_slash = is_dir && triple_star_suffix_;
  if (final_component_only_) {
    const size_t slash = rel_path.rfind('/');
    if (slash != std::string_view::npos) rel_path.remove_prefix(slash + 1);
    return Run(rel_path, false, false, false);
  }
  if (anchored_) return Run(rel_path, false, trailing_slash, false);
  if (double_star_prefix_) return Run(rel_path, true, trailing_slash, false);
  // Unanchored with a '/' or an inner "**": any trailing run of whole
  // components may match, i.e. the match may start after any '/'.
  return Run(rel_path, false, trailing_slash, true);
}

// A Thompson-style simulation: `cur[i]` says "the first i tokens can match the
// text read so far". Each byte is read once and each token looked at once per
// byte, hence O(tokens * bytes) and no backtracking. With
// `restart_at_slashes`, state 0 is re-entered after every '/', which tries all
// component-boundary suffixes of the path in the same single pass.
bool Pattern::Run(std::string_view path, bool leading_slash, bool trailing_slash,
                  bool restart_at_slashes) const {
  const size_t n = tokens_.size();
  auto is_star = [this](size_t i) {
    return tokens_[i].kind == Kind::kStar || tokens_[i].kind == Kind::kDoubleStar;
  };
  // A star may match nothing, so reaching it also reaches what follows it.
  auto close = [&](std::vector<uint8_t>& s) {
    for (size_t i = 0; i < n; ++i) {
      if (s[i] && is_star(i)) s[i + 1] = 1;
    }
  };

  std::vector<uint8_t> cur(n + 1, 0), next(n + 1, 0);
  cur[0] = 1;
  close(cur);
  bool alive = true;

  auto step = [&](unsigned char c, bool restart) {
    std::fill(next.begin(), next.end(), 0);
    alive = false;
    for (size_t i = 0; i < n; ++i) {
      if (!cur[i]) continue;
      const Token& t = tokens_[i];
      if (t.kind == Kind::kStar || t.kind == Kind::kDoubleStar) {
        if (Accepts(t, c)) next[i] = alive = 1;
      } else if (Accepts(t, c)) {
        next[i + 1] = alive = 1;
      }
    }
    if (restart) next[0] = alive = 1;
    close(next);
    alive = alive || next[n];
    std::swap(cur, next);
  };

  if (leading_slash) step('/', false);
  for (size_t k = 0; k < path.size(); ++k) {
    if (!alive) {
      if (!restart_at_slashes) return false;
      // Nothing can match until the next component starts.
      const size_t slash = path.find('/', k);
      if (slash == std::string_view::npos) return false;
      k = slash;
    }
    const unsigned char c = path[k];
    step(c, restart_at_slashes && c == '/');
  }
  if (trailing_slash && alive) step('/', false);
  return cur[n] != 0;
}

}  // namespace ferry::filter
