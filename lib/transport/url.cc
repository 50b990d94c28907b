#include "lib/transport/url.h"

#include <cctype>
#include <charconv>

#include "ferry/error.h"

namespace ferry::transport {
namespace {

Error Bad(std::string_view text, std::string_view why) {
  return Error{errc::kInvalidArgument,
               "bad destination '" + std::string(text) + "': " + std::string(why)};
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view in, std::string_view whole) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return Bad(whole, "truncated %-escape");
    int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return Bad(whole, "invalid %-escape");
    char c = static_cast<char>(hi * 16 + lo);
    if (c == '\0') return Bad(whole, "NUL in path");
    out.push_back(c);
    i += 2;
  }
  return out;
}

bool HasControlChars(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// "user@host:port" or "user@[v6]:port"; port optional.
Status ParseAuthority(std::string_view auth, std::string_view whole, DestinationSpec& spec,
                      bool allow_port) {
  size_t at = auth.rfind('@');
  if (at != std::string_view::npos) {
    spec.user = std::string(auth.substr(0, at));
    if (spec.user.empty()) return Bad(whole, "empty user name");
    auth = auth.substr(at + 1);
  }
  std::string_view host = auth, port;
  if (auth.starts_with('[')) {
    size_t close = auth.find(']');
    if (close == std::string_view::npos) return Bad(whole, "unterminated '[' in host");
    host = auth.substr(1, close - 1);
    std::string_view rest = auth.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':') || !allow_port) return Bad(whole, "junk after ']'");
      port = rest.substr(1);
    }
  } else if (allow_port) {
    size_t colon = auth.find(':');
    if (colon != std::string_view::npos) {
      host = auth.substr(0, colon);
      port = auth.substr(colon + 1);
    }
  }
  if (host.empty()) return Bad(whole, "empty host name");
  for (char c : host) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
              c == ':' || c == '%';
    if (!ok) return Bad(whole, "invalid character in host name");
  }
  spec.host = std::string(host);
  if (!port.empty() || (allow_port && auth.ends_with(':'))) {
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
      return Bad(whole, "invalid port");
    }
    spec.port = static_cast<uint16_t>(value);
  }
  return {};
}

}  // namespace

std::string DestinationSpec::ToString() const {
  if (kind == Kind::kLocal) return path;
  std::string out = "sftp://";
  if (!user.empty()) out += user + "@";
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != 0) out += ":" + std::to_string(port);
  out += path.starts_with('/') ? path : "/~/" + path;
  return out;
}

Result<DestinationSpec> ParseDestination(std::string_view text) {
  if (text.empty()) return Bad(text, "empty");
  if (text.find('\0') != std::string_view::npos || HasControlChars(text)) {
    return Bad(text, "control characters");
  }
  DestinationSpec spec;
  if (text.starts_with("file://")) {
    auto path = PercentDecode(text.substr(7), text);
    if (!path.ok()) return path.error();
    if (path->empty()) return Bad(text, "empty path");
    spec.path = std::move(*path);
    return spec;
  }
  size_t scheme_end = text.find("://");
  if (scheme_end != std::string_view::npos) {
    std::string_view scheme = text.substr(0, scheme_end);
    if (scheme != "sftp" && scheme != "ssh") {
      return Bad(text, "unknown scheme '" + std::string(scheme) + "' (use sftp:// or a path)");
    }
    std::string_view rest = text.substr(scheme_end + 3);
    size_t slash = rest.find('/');
    std::string_view auth = rest.substr(0, slash);
    spec.kind = DestinationSpec::Kind::kSftp;
    if (auto st = ParseAuthority(auth, text, spec, true); !st.ok()) return st.error();
    std::string_view raw_path = slash == std::string_view::npos ? "" : rest.substr(slash);
    auto path = PercentDecode(raw_path, text);
    if (!path.ok()) return path.error();
    spec.path = std::move(*path);
    if (spec.path == "/~") {
      spec.path.clear();
    } else if (spec.path.starts_with("/~/")) {
      spec.path = spec.path.substr(3);
    }
    return spec;
  }
  // scp-style: a colon before any '/' (and not a lone drive-like "./x").
  size_t colon = text.find(':');
  size_t slash = text.find('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash) &&
      colon > 0) {
    spec.kind = DestinationSpec::Kind::kSftp;
    std::string_view auth = text.substr(0, colon);
    // scp allows [v6]:path; a plain host has no port here.
    if (auto st = ParseAuthority(auth, text, spec, false); !st.ok()) return st.error();
    spec.path = std::string(text.substr(colon + 1));
    return spec;
  }
  spec.path = std::string(text);
  return spec;
}

}  // namespace ferry::transport
