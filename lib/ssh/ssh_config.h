// The subset of OpenSSH's ssh_config(5) that ferry honours, parsed and resolved
// for one host alias.
//
// Honoured: Host (several patterns per line, `*`, `?`, negation `!pattern`),
// `Match all` (same as `Host *`), HostName (%h, %%), User, Port, IdentityFile
// (several; `~/` and the %d %u %h %r %n %p %% tokens), UserKnownHostsFile (the
// first file of the first line that applies; same expansions), StrictHostKeyChecking,
// IdentitiesOnly, ConnectTimeout and Include (relative paths are taken from
// ~/.ssh, globs are expanded, nesting is limited to kMaxIncludeDepth). Keywords
// are case-insensitive; `Keyword value`, `Keyword=value` and "quoted values" are
// accepted; `#` starts a comment. Unknown keywords are ignored; `Match` lines
// other than `Match all` are skipped with a warning, together with the settings
// of their block (ferry cannot evaluate `exec`, `canonical`, ...).
//
// As in ssh_config(5), for each setting the first value obtained wins, except for
// IdentityFile, which accumulates every line that applies, in file order.
//
// ParseSshConfig() is pure: it keeps Include lines as entries. LoadSshConfig()
// reads a file, parses it and splices the included files in. Both are
// thread-compatible; LoadSshConfig() blocks on file I/O (call it off the
// io_context).
//
// Errors (Error::code == errc::kInvalidArgument, Error::detail starts with
// "file:line: "): a bad Port or ConnectTimeout, an unterminated quote, a missing
// argument, an unknown %-token, an invalid yes/no value, Include nested too deeply.
#ifndef FERRY_SSH_SSH_CONFIG_H_
#define FERRY_SSH_SSH_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"

namespace ferry::ssh {

// What a config says about one host. Empty / 0 / nullopt: not set by the config.
struct HostConfig {
  std::string hostname;                     // HostName, %h expanded
  std::string user;                         // User
  uint16_t port = 0;                        // Port
  std::vector<std::string> identity_files;  // IdentityFile, expanded, in order
  std::string known_hosts;                  // UserKnownHostsFile (first), expanded
  // Lower case as written: "yes", "no", "accept-new", "ask", "off", "true", "false".
  std::optional<std::string> strict_host_key_checking;
  bool identities_only = false;
  std::optional<int> connect_timeout_s;  // ConnectTimeout in seconds (0: none)
};

// One setting line (Host and Match lines are folded into `conditions`).
struct SshConfigEntry {
  std::string keyword;            // lower case, e.g. "identityfile", "include"
  std::vector<std::string> args;  // unquoted, at least one
  std::string origin;             // "file:line", for messages
  // Host pattern lists that must all match for the entry to apply: one per
  // enclosing Host block, outermost first (an Include inside a Host block adds
  // that block's patterns to every entry of the included file). Empty: always.
  std::vector<std::vector<std::string>> conditions;
};

struct SshConfig {
  std::vector<SshConfigEntry> entries;
  std::vector<std::string> warnings;  // "file:line: ..." (skipped Match blocks, ...)
};

inline constexpr int kMaxIncludeDepth = 16;  // as OpenSSH's READCONF_MAX_DEPTH

// Parses the text of one config file; `file_name` only labels messages. Include
// entries are kept as they are (see LoadSshConfig()). No I/O.
Result<SshConfig> ParseSshConfig(std::string_view text, std::string_view file_name);

// Reads `path`, parses it and replaces every Include entry by the entries of the
// files it names: `~/` is expanded with `home_dir`, relative paths are taken from
// `home_dir`/.ssh, globs are expanded (sorted, no match is not an error), and an
// included file that cannot be read is skipped with a warning. Errors: those of
// ParseSshConfig(), a system error (e.g. ENOENT) with the path in the detail if
// `path` itself cannot be read, and kInvalidArgument if Includes nest deeper than
// kMaxIncludeDepth (e.g. a file that includes itself).
Result<SshConfig> LoadSshConfig(const std::string& path, const std::string& home_dir);

// What Resolve() needs to expand `~` and %-tokens.
struct ResolveContext {
  std::string home_dir;    // `~/` and %d
  std::string local_user;  // %u, and %r when no other user is known
  // The user that will log in if it is already known (e.g. from user@host): wins
  // over the config's User for %r. HostConfig::user still reports the config's.
  std::string user_override;
  uint16_t port_override = 0;  // likewise for %p
};

// True if `host` matches the patterns of one Host line: some positive pattern
// matches and no negated (`!`) one does. `*` and `?` are wildcards; case-insensitive.
bool HostPatternsMatch(const std::vector<std::string>& patterns, std::string_view host);

// What `config` says about `host_alias` (the name given by the user, before HostName).
// Entries whose conditions do not all match are ignored; Include entries left by
// ParseSshConfig() are ignored.
HostConfig Resolve(const SshConfig& config, std::string_view host_alias,
                   const ResolveContext& context);

}  // namespace ferry::ssh

#endif  // FERRY_SSH_SSH_CONFIG_H_
