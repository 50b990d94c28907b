#include "lib/ssh/ssh_config.h"

#include <glob.h>

#include <cctype>
#include <limits>
#include <utility>

#include "ferry/error.h"
#include "lib/base/small_file.h"

namespace ferry::ssh {
namespace {

// Guards against an Include fan-out (a file including itself twice would otherwise
// read 2^16 files before hitting the depth limit).
constexpr int kMaxIncludedFiles = 256;
constexpr size_t kMaxConfigFileSize = 4 << 20;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

Error Invalid(const std::string& origin, std::string_view what) {
  return Error{make_error_code(errc::kInvalidArgument), origin + ": " + std::string(what)};
}

// Splits one line into keyword + arguments, as OpenSSH's argv_split(): words are
// separated by blanks, "double" or 'single' quotes group blanks into a word, a
// backslash escapes a quote, a backslash or a blank, and a word starting with '#'
// ends the line. An empty keyword means a blank or comment line.
Status SplitLine(std::string_view line, const std::string& origin, std::string& keyword,
                 std::vector<std::string>& args) {
  keyword.clear();
  args.clear();
  size_t i = 0;
  while (i < line.size() && IsSpace(line[i])) ++i;
  if (i == line.size() || line[i] == '#') return {};
  const size_t start = i;
  while (i < line.size() && !IsSpace(line[i]) && line[i] != '=') ++i;
  if (i == start) return Invalid(origin, "missing keyword before '='");
  keyword = Lower(line.substr(start, i - start));
  while (i < line.size() && IsSpace(line[i])) ++i;
  if (i < line.size() && line[i] == '=') ++i;

  for (;;) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    if (i == line.size() || line[i] == '#') break;
    std::string word;
    char quote = 0;
    for (; i < line.size(); ++i) {
      const char c = line[i];
      if (quote == 0 && IsSpace(c)) break;
      if (c == '\\' && i + 1 < line.size()) {
        const char next = line[i + 1];
        if (next == '\\' || next == '"' || next == '\'' || (quote == 0 && next == ' ')) {
          word += next;
          ++i;
          continue;
        }
      }
      if (quote == 0 && (c == '"' || c == '\'')) {
        quote = c;
      } else if (quote != 0 && c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    }
    if (quote != 0) return Invalid(origin, "unterminated quote");
    args.push_back(std::move(word));
  }
  return {};
}

// OpenSSH's convtime(): "90", "1m30s", "2h"; units s m h d w, either case.
std::optional<int> ParseTime(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    int64_t n = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      n = n * 10 + (s[i] - '0');
      if (n > std::numeric_limits<int>::max()) return std::nullopt;
      ++i;
    }
    int64_t unit = 1;
    if (i < s.size()) {
      switch (std::tolower(static_cast<unsigned char>(s[i]))) {
        case 's':
          unit = 1;
          break;
        case 'm':
          unit = 60;
          break;
        case 'h':
          unit = 3600;
          break;
        case 'd':
          unit = 86400;
          break;
        case 'w':
          unit = int64_t{7} * 86400;
          break;
        default:
          return std::nullopt;
      }
      ++i;
    }
    total += n * unit;
    if (total > std::numeric_limits<int>::max()) return std::nullopt;
  }
  return static_cast<int>(total);
}

std::optional<bool> ParseYesNo(std::string_view s) {
  const std::string v = Lower(s);
  if (v == "yes" || v == "true") return true;
  if (v == "no" || v == "false") return false;
  return std::nullopt;
}

enum class TokenCheck { kOk, kUnsupported, kInvalid };

// Checks the %-tokens of a value against those ferry expands (`allowed`); tokens
// OpenSSH knows but ferry does not expand (%C %i %j %k %L %l) are kUnsupported.
TokenCheck CheckTokens(std::string_view value, std::string_view allowed, char* bad) {
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%') continue;
    if (i + 1 == value.size()) {
      *bad = '%';
      return TokenCheck::kInvalid;
    }
    const char t = value[++i];
    if (t == '%' || allowed.find(t) != std::string_view::npos) continue;
    *bad = t;
    return std::string_view("CijkLl").find(t) != std::string_view::npos ? TokenCheck::kUnsupported
                                                                        : TokenCheck::kInvalid;
  }
  return TokenCheck::kOk;
}

constexpr std::string_view kPathTokens = "dhnpru";

// Validates one setting. Returns false (with a warning) if it is to be dropped.
Result<bool> CheckEntry(const SshConfigEntry& e, std::vector<std::string>& warnings) {
  const std::string& k = e.keyword;
  const auto& args = e.args;
  auto one_arg = [&]() -> Status {
    if (args.empty()) return Invalid(e.origin, k + ": missing argument");
    if (args.size() > 1) return Invalid(e.origin, k + ": garbage at end of line");
    return {};
  };
  auto tokens = [&](std::string_view value, std::string_view allowed) -> Result<bool> {
    char bad = 0;
    switch (CheckTokens(value, allowed, &bad)) {
      case TokenCheck::kOk:
        return true;
      case TokenCheck::kUnsupported:
        warnings.push_back(e.origin + ": " + k + ": token %" + std::string(1, bad) +
                           " is not supported by ferry; line ignored");
        return false;
      case TokenCheck::kInvalid:
        return Invalid(e.origin, k + ": unknown token %" + std::string(1, bad));
    }
    return true;
  };

  if (k == "hostname") {
    if (Status s = one_arg(); !s) return s.error();
    return tokens(args[0], "h");
  }
  if (k == "user") {
    if (Status s = one_arg(); !s) return s.error();
    return true;
  }
  if (k == "port") {
    if (Status s = one_arg(); !s) return s.error();
    const std::string& v = args[0];
    int port = 0;
    bool digits = !v.empty() && v.size() <= 5;
    for (char c : v) {
      if (!std::isdigit(static_cast<unsigned char>(c))) digits = false;
    }
    if (digits) port = std::stoi(v);
    if (!digits || port < 1 || port > 65535) return Invalid(e.origin, "bad port '" + v + "'");
    return true;
  }
  if (k == "identityfile") {
    if (Status s = one_arg(); !s) return s.error();
    return tokens(args[0], kPathTokens);
  }
  if (k == "userknownhostsfile") {
    if (args.empty()) return Invalid(e.origin, k + ": missing argument");
    return tokens(args[0], kPathTokens);  // only the first file is used
  }
  if (k == "stricthostkeychecking") {
    if (Status s = one_arg(); !s) return s.error();
    const std::string v = Lower(args[0]);
    if (v != "yes" && v != "no" && v != "accept-new" && v != "ask" && v != "off" && v != "true" &&
        v != "false") {
      return Invalid(e.origin, "bad StrictHostKeyChecking value '" + args[0] + "'");
    }
    return true;
  }
  if (k == "identitiesonly") {
    if (Status s = one_arg(); !s) return s.error();
    if (!ParseYesNo(args[0]))
      return Invalid(e.origin, "bad IdentitiesOnly value '" + args[0] + "'");
    return true;
  }
  if (k == "connecttimeout") {
    if (Status s = one_arg(); !s) return s.error();
    if (!ParseTime(args[0])) return Invalid(e.origin, "bad ConnectTimeout '" + args[0] + "'");
    return true;
  }
  if (k == "include") {
    if (args.empty()) return Invalid(e.origin, "include: missing argument");
    return true;
  }
  return false;  // a keyword ferry does not honour
}

// `*` and `?` glob; both strings already lower case. Linear backtracking on the
// last star, so no pattern takes more than O(|pattern| * |text|).
bool Glob(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0;
  size_t star = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_t = t;
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string ExpandTilde(std::string_view path, const std::string& home) {
  if (path == "~") return home;
  if (path.starts_with("~/")) return home + std::string(path.substr(1));
  return std::string(path);
}

struct Tokens {
  std::string d, h, n, p, r, u;
};

std::string ExpandTokens(std::string_view value, const Tokens& t) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%' || i + 1 == value.size()) {
      out += value[i];
      continue;
    }
    switch (value[++i]) {
      case '%':
        out += '%';
        break;
      case 'd':
        out += t.d;
        break;
      case 'h':
        out += t.h;
        break;
      case 'n':
        out += t.n;
        break;
      case 'p':
        out += t.p;
        break;
      case 'r':
        out += t.r;
        break;
      case 'u':
        out += t.u;
        break;
      default:  // rejected by the parser; kept verbatim for hand-built configs
        out += '%';
        out += value[i];
    }
  }
  return out;
}

// Character devices are fine: `-F /dev/null` is an idiom.
Result<std::string> ReadConfigFile(const std::string& path) {
  return ReadSmallFile(path, kMaxConfigFileSize, SpecialFiles::kAllowCharDevices);
}

struct Loader {
  const std::string& home_dir;
  SshConfig out;
  int files = 0;

  Status Load(const std::string& path, int depth, const std::vector<std::vector<std::string>>& base,
              const std::string& from) {
    if (++files > kMaxIncludedFiles) {
      return Invalid(from, "more than " + std::to_string(kMaxIncludedFiles) + " files included");
    }
    auto text = ReadConfigFile(path);
    if (!text) {
      if (depth == 0) return text.error();
      out.warnings.push_back(from + ": cannot read included " + text.error().Message());
      return {};
    }
    auto parsed = ParseSshConfig(*text, path);
    if (!parsed) return parsed.error();
    for (std::string& w : parsed->warnings) out.warnings.push_back(std::move(w));
    for (SshConfigEntry& e : parsed->entries) {
      e.conditions.insert(e.conditions.begin(), base.begin(), base.end());
      if (e.keyword != "include") {
        out.entries.push_back(std::move(e));
        continue;
      }
      for (const std::string& arg : e.args) {
        std::string pattern = ExpandTilde(arg, home_dir);
        if (!pattern.starts_with('/')) {
          if (home_dir.empty()) {
            out.warnings.push_back(e.origin + ": Include " + arg +
                                   ": no home directory to resolve it from; ignored");
            continue;
          }
          pattern.insert(0, home_dir + "/.ssh/");
        }
        glob_t g{};
        const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
        std::vector<std::string> matches;
        if (rc == 0) matches.assign(g.gl_pathv, g.gl_pathv + g.gl_pathc);
        ::globfree(&g);
        if (rc != 0 && rc != GLOB_NOMATCH) {
          out.warnings.push_back(e.origin + ": Include " + arg + ": cannot expand; ignored");
        }
        for (const std::string& m : matches) {
          if (depth + 1 > kMaxIncludeDepth) {
            return Invalid(e.origin, "Include nested more than " +
                                         std::to_string(kMaxIncludeDepth) +
                                         " deep (does a file include itself?)");
          }
          if (Status s = Load(m, depth + 1, e.conditions, e.origin); !s) return s;
        }
      }
    }
    return {};
  }
};

}  // namespace

Result<SshConfig> ParseSshConfig(std::string_view text, std::string_view file_name) {
  SshConfig config;
  // The block being read: no Host line yet (applies always), a Host block, or a
  // Match block ferry cannot evaluate (its settings are dropped).
  std::vector<std::vector<std::string>> conditions;
  bool skipping = false;
  std::string keyword;
  std::vector<std::string> args;
  int line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    const std::string origin = std::string(file_name) + ":" + std::to_string(line_no);
    if (line.find('\0') != std::string_view::npos) return Invalid(origin, "NUL byte in line");
    if (Status s = SplitLine(line, origin, keyword, args); !s) return s.error();
    if (keyword.empty()) continue;

    if (keyword == "host") {
      if (args.empty()) return Invalid(origin, "host: missing pattern");
      std::vector<std::string> patterns;
      patterns.reserve(args.size());
      for (const std::string& a : args) patterns.push_back(Lower(a));
      conditions = {std::move(patterns)};
      skipping = false;
      continue;
    }
    if (keyword == "match") {
      if (args.empty()) return Invalid(origin, "match: missing criteria");
      if (args.size() == 1 && Lower(args[0]) == "all") {
        conditions = {{"*"}};
        skipping = false;
      } else {
        config.warnings.push_back(origin +
                                  ": only \"Match all\" is supported; this Match block is ignored");
        skipping = true;
      }
      continue;
    }
    SshConfigEntry entry{keyword, args, origin, conditions};
    auto keep = CheckEntry(entry, config.warnings);
    if (!keep) return keep.error();
    if (*keep && !skipping) config.entries.push_back(std::move(entry));
  }
  return config;
}

Result<SshConfig> LoadSshConfig(const std::string& path, const std::string& home_dir) {
  Loader loader{home_dir, {}, 0};
  if (Status s = loader.Load(path, 0, {}, path); !s) return s.error();
  return std::move(loader.out);
}

bool HostPatternsMatch(const std::vector<std::string>& patterns, std::string_view host) {
  const std::string h = Lower(host);
  bool matched = false;
  for (const std::string& raw : patterns) {
    const std::string p = Lower(raw);
    if (p.starts_with('!')) {
      if (Glob(std::string_view(p).substr(1), h)) return false;
    } else if (Glob(p, h)) {
      matched = true;
    }
  }
  return matched;
}

HostConfig Resolve(const SshConfig& config, std::string_view host_alias,
                   const ResolveContext& context) {
  HostConfig hc;
  std::optional<std::string> hostname, user, known_hosts;
  std::optional<bool> identities_only;
  std::vector<std::string> identity_files;
  for (const SshConfigEntry& e : config.entries) {
    if (e.args.empty()) continue;
    bool applies = true;
    for (const auto& patterns : e.conditions) {
      if (!HostPatternsMatch(patterns, host_alias)) {
        applies = false;
        break;
      }
    }
    if (!applies) continue;
    const std::string& k = e.keyword;
    const std::string& arg = e.args[0];
    if (k == "hostname") {
      if (!hostname) hostname = arg;
    } else if (k == "user") {
      if (!user) user = arg;
    } else if (k == "port") {
      if (hc.port == 0) {
        const int p = std::atoi(arg.c_str());
        if (p > 0 && p <= 65535) hc.port = static_cast<uint16_t>(p);
      }
    } else if (k == "identityfile") {
      identity_files.push_back(arg);
    } else if (k == "userknownhostsfile") {
      if (!known_hosts) known_hosts = arg;
    } else if (k == "stricthostkeychecking") {
      if (!hc.strict_host_key_checking) hc.strict_host_key_checking = Lower(arg);
    } else if (k == "identitiesonly") {
      if (!identities_only) identities_only = ParseYesNo(arg).value_or(false);
    } else if (k == "connecttimeout") {
      if (!hc.connect_timeout_s) hc.connect_timeout_s = ParseTime(arg);
    }
  }

  Tokens t;
  t.n = std::string(host_alias);
  t.h = t.n;
  if (hostname) hc.hostname = ExpandTokens(*hostname, t);
  if (!hc.hostname.empty()) t.h = hc.hostname;
  if (user) hc.user = *user;
  t.d = context.home_dir;
  t.u = context.local_user;
  t.r = !context.user_override.empty() ? context.user_override
        : !hc.user.empty()             ? hc.user
                                       : context.local_user;
  const uint16_t port = context.port_override ? context.port_override : hc.port ? hc.port : 22;
  t.p = std::to_string(port);
  for (const std::string& f : identity_files) {
    hc.identity_files.push_back(ExpandTokens(ExpandTilde(f, context.home_dir), t));
  }
  if (known_hosts) hc.known_hosts = ExpandTokens(ExpandTilde(*known_hosts, context.home_dir), t);
  hc.identities_only = identities_only.value_or(false);
  return hc;
}

}  // namespace ferry::ssh
