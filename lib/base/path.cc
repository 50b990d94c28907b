#include "lib/base/path.h"

#include <cstdio>

#include "lib/base/entry.h"

namespace ferry {

const char* EntryTypeName(EntryType type) {
  switch (type) {
    case EntryType::kFile:
      return "file";
    case EntryType::kDirectory:
      return "directory";
    case EntryType::kSymlink:
      return "symlink";
    case EntryType::kSpecial:
      return "special file";
  }
  return "unknown";
}

bool IsSafeName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

bool IsSafeRelPath(std::string_view rel) {
  if (rel.empty()) return true;
  size_t start = 0;
  while (true) {
    size_t slash = rel.find('/', start);
    std::string_view part =
        rel.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!IsSafeName(part)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

std::string JoinRel(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out.append(dir).push_back('/');
  out.append(name);
  return out;
}

std::string_view ParentOf(std::string_view rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : rel.substr(0, slash);
}

std::string_view BaseName(std::string_view rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string_view::npos ? rel : rel.substr(slash + 1);
}

bool IsTempName(std::string_view name) { return name.starts_with(kTempPrefix); }

std::string Printable(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    // Accept well-formed UTF-8 sequences as they are.
    int extra = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 && c < 0xE0 ? 1 : 0;
    if (extra > 0 && i + extra < name.size()) {
      bool ok = true;
      for (int k = 1; ok && k <= extra; ++k) {
        unsigned char cc = static_cast<unsigned char>(name[i + k]);
        ok = (cc & 0xC0) == 0x80;
      }
      if (ok) {
        out.append(name.substr(i, extra + 1));
        i += extra;
        continue;
      }
    }
    if (c < 0x20 || c == 0x7F || c >= 0x80 || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace ferry
