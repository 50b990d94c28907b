// OpenSSH known_hosts parsing and host key checking, as pure functions (no I/O):
// the caller reads the file and decides what to do with the verdict.
//
// ferry must not be laxer than OpenSSH (libssh2 1.10's own known_hosts code is:
// it reads @revoked lines as host names and lets a port-less entry match any port).
// Rules implemented, following OpenSSH's hostfile.c / match.c:
//   - Lines: `[@marker] hosts keytype base64 [comment]`; blank lines and `#`
//     comments are skipped, malformed lines are ignored (never match).
//   - Hosts are looked up as `host` on port 22 and as `[host]:port` otherwise, so
//     an entry without a port matches only port 22, and `[host]:port` only that port.
//   - Host fields are comma lists of patterns with `*` and `?` wildcards and `!`
//     negation (a negated match makes the whole line not match), compared without
//     regard to case; or a hashed `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
//   - `@revoked`: the key is refused. Stricter than OpenSSH, a revoked key is refused
//     for every host, whatever the line's host field says.
//   - `@cert-authority` lines are ignored (ferry does not do host certificates).
//   - Keys compare on key type plus the decoded key blob.
//   - If the host has keys on record but none of the offered type, the verdict is
//     kMismatch (OpenSSH would treat it as a new key and, with accept-new, add it).
#ifndef FERRY_SSH_KNOWN_HOSTS_H_
#define FERRY_SSH_KNOWN_HOSTS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::ssh {

struct KnownHostsEntry {
  enum class Marker { kNone, kRevoked, kCertAuthority };
  Marker marker = Marker::kNone;
  std::string hosts;     // the host field as written (patterns, or |1|salt|hash)
  std::string key_type;  // e.g. "ssh-ed25519"
  std::string key_blob;  // decoded public key blob
  int line = 0;          // 1-based line number in the file
};

// Parses a whole known_hosts file; malformed lines are skipped.
std::vector<KnownHostsEntry> ParseKnownHosts(std::string_view text);

// The name OpenSSH looks up and writes: "host" for port 22, "[host]:port" otherwise.
std::string KnownHostsName(std::string_view host, uint16_t port);

// Whether a host field (pattern list or hashed entry) matches host:port.
bool HostFieldMatches(std::string_view hosts, std::string_view host, uint16_t port);

enum class HostKeyStatus { kKnown, kUnknown, kMismatch, kRevoked };

struct HostKeyCheck {
  HostKeyStatus status = HostKeyStatus::kUnknown;
  int line = 0;                // the deciding line, 0 for kUnknown
  std::string known_key_type;  // kMismatch: the key on record at `line`
  std::string known_key_blob;
};

// The verdict for a server at host:port that offered (key_type, key_blob).
HostKeyCheck CheckHostKey(const std::vector<KnownHostsEntry>& entries, std::string_view host,
                          uint16_t port, std::string_view key_type, std::string_view key_blob);

// Key types on record for host:port (plain entries only), in file order, no repeats.
// Used to ask the server for a key type we can verify.
std::vector<std::string> KnownKeyTypes(const std::vector<KnownHostsEntry>& entries,
                                       std::string_view host, uint16_t port);

// The line to append for a newly accepted key, with its trailing '\n'.
std::string FormatKnownHostsLine(std::string_view host, uint16_t port, std::string_view key_type,
                                 std::string_view key_blob);

}  // namespace ferry::ssh

#endif  // FERRY_SSH_KNOWN_HOSTS_H_
