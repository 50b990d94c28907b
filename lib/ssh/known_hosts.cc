#include "lib/ssh/known_hosts.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "lib/ssh/host_key.h"

namespace ferry::ssh {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits on runs of spaces and tabs.
std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// Glob match with '*' and '?', as OpenSSH's match_pattern (inputs already lowercased).
bool Glob(std::string_view s, std::string_view p) {
  size_t si = 0, pi = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++si;
      ++pi;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool HashedMatches(std::string_view field, const std::string& name) {
  // |1|salt|hash
  field.remove_prefix(3);
  size_t bar = field.find('|');
  if (bar == std::string_view::npos) return false;
  auto salt = Base64Decode(field.substr(0, bar));
  auto hash = Base64Decode(field.substr(bar + 1));
  if (!salt || !hash || salt->size() != 20 || hash->size() != 20) return false;
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha1(), salt->data(), static_cast<int>(salt->size()),
           reinterpret_cast<const unsigned char*>(name.data()), name.size(), mac.data(),
           &mac_len) == nullptr) {
    return false;
  }
  return mac_len == hash->size() &&
         std::equal(hash->begin(), hash->end(), mac.begin(),
                    [](char a, unsigned char b) { return static_cast<unsigned char>(a) == b; });
}

bool IsSupportedKeyType(std::string_view type) {
  // Key types, not signature algorithms; certificates are not supported.
  return !type.empty() && type.find("-cert-") == std::string_view::npos;
}

}  // namespace

std::vector<KnownHostsEntry> ParseKnownHosts(std::string_view text) {
  std::vector<KnownHostsEntry> entries;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto fields = Fields(line);
    if (fields.empty() || fields[0].front() == '#') continue;
    KnownHostsEntry entry;
    entry.line = line_no;
    size_t i = 0;
    if (fields[0].front() == '@') {
      if (fields[0] == "@revoked") {
        entry.marker = KnownHostsEntry::Marker::kRevoked;
      } else if (fields[0] == "@cert-authority") {
        entry.marker = KnownHostsEntry::Marker::kCertAuthority;
      } else {
        continue;  // unknown marker: OpenSSH ignores the line
      }
      i = 1;
    }
    if (fields.size() < i + 3) continue;
    auto blob = Base64Decode(fields[i + 2]);
    if (!blob || blob->empty()) continue;
    entry.hosts = std::string(fields[i]);
    entry.key_type = std::string(fields[i + 1]);
    // The blob names its own type; a line where they disagree is malformed.
    if (KeyTypeOfBlob(*blob) != entry.key_type) continue;
    entry.key_blob = std::move(*blob);
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string KnownHostsName(std::string_view host, uint16_t port) {
  std::string name = Lower(host);
  if (port == 22) return name;
  return "[" + name + "]:" + std::to_string(port);
}

bool HostFieldMatches(std::string_view hosts, std::string_view host, uint16_t port) {
  const std::string name = KnownHostsName(host, port);
  if (hosts.starts_with("|1|")) return HashedMatches(hosts, name);
  if (hosts.starts_with("|")) return false;  // unknown hash scheme
  bool matched = false;
  while (!hosts.empty()) {
    size_t comma = hosts.find(',');
    std::string_view pattern = hosts.substr(0, comma);
    hosts.remove_prefix(comma == std::string_view::npos ? hosts.size() : comma + 1);
    bool negated = !pattern.empty() && pattern.front() == '!';
    if (negated) pattern.remove_prefix(1);
    if (pattern.empty()) continue;
    if (Glob(name, Lower(pattern))) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

HostKeyCheck CheckHostKey(const std::vector<KnownHostsEntry>& entries, std::string_view host,
                          uint16_t port, std::string_view key_type, std::string_view key_blob) {
  using Marker = KnownHostsEntry::Marker;
  HostKeyCheck result;
  // Revocation wins over everything, whichever host the line names.
  for (const auto& e : entries) {
    if (e.marker == Marker::kRevoked && e.key_type == key_type && e.key_blob == key_blob) {
      result.status = HostKeyStatus::kRevoked;
      result.line = e.line;
      return result;
    }
  }
  const KnownHostsEntry* same_type = nullptr;
  const KnownHostsEntry* other_type = nullptr;
  for (const auto& e : entries) {
    if (e.marker != Marker::kNone || !HostFieldMatches(e.hosts, host, port)) continue;
    if (e.key_type == key_type) {
      if (e.key_blob == key_blob) {
        result.status = HostKeyStatus::kKnown;
        result.line = e.line;
        return result;
      }
      if (same_type == nullptr) same_type = &e;
    } else if (other_type == nullptr) {
      other_type = &e;
    }
  }
  const KnownHostsEntry* deciding = same_type != nullptr ? same_type : other_type;
  if (deciding == nullptr) return result;  // kUnknown
  result.status = HostKeyStatus::kMismatch;
  result.line = deciding->line;
  result.known_key_type = deciding->key_type;
  result.known_key_blob = deciding->key_blob;
  return result;
}

std::vector<std::string> KnownKeyTypes(const std::vector<KnownHostsEntry>& entries,
                                       std::string_view host, uint16_t port) {
  std::vector<std::string> types;
  for (const auto& e : entries) {
    if (e.marker != KnownHostsEntry::Marker::kNone || !IsSupportedKeyType(e.key_type) ||
        !HostFieldMatches(e.hosts, host, port)) {
      continue;
    }
    if (std::find(types.begin(), types.end(), e.key_type) == types.end()) {
      types.push_back(e.key_type);
    }
  }
  return types;
}

std::string FormatKnownHostsLine(std::string_view host, uint16_t port, std::string_view key_type,
                                 std::string_view key_blob) {
  return KnownHostsName(host, port) + " " + std::string(key_type) + " " + Base64Encode(key_blob) +
         "\n";
}

}  // namespace ferry::ssh
