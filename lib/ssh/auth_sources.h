// Where the settings of an SSH connection come from: turns a destination, ferry's
// SSH options, ~/.ssh/config and the environment into ssh::ConnectOptions.
//
// Precedence, per setting: explicit options (SshOptions) > the destination
// (user@host:port) > ssh config (~/.ssh/config, or SshOptions::config_file; "none"
// skips it) > defaults:
//   host         config HostName, else the destination's host
//   port         destination > config Port > 22
//   user         destination > config User > Environment::user
//   known_hosts  SshOptions::known_hosts > config UserKnownHostsFile > ~/.ssh/known_hosts
//   host keys    SshOptions::accept_new_host_key > config StrictHostKeyChecking > strict
//   identities   SshOptions::identity_files (each must exist) > config IdentityFile
//                (those that exist) > ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa (those that
//                exist) > none, which makes the session use ssh-agent
//   timeout      SshOptions::connect_timeout if changed from its default > config
//                ConnectTimeout > SshOptions' default
//   password     SshOptions::password_callback (asked by the Session only when keys
//                did not do) > Environment::password ($FERRY_PASSWORD)
//   passphrase   asked for only if a chosen key is encrypted:
//                SshOptions::passphrase_callback > Environment::passphrase
//                ($FERRY_PASSPHRASE) > Environment::prompt_passphrase
//   host key cb  SshOptions::host_key_callback, passed to the Session
// The password and host key callbacks are wrapped so that each answer is asked
// once and reused by every connection made with the returned options (copies
// share the memo).
//
// Blocking: reads the config and key files. Call it off the io_context. Secrets
// (password, passphrase) never appear in errors or warnings.
#ifndef FERRY_SSH_AUTH_SOURCES_H_
#define FERRY_SSH_AUTH_SOURCES_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ferry/options.h"
#include "lib/base/result.h"
#include "lib/ssh/session.h"
#include "lib/transport/url.h"

namespace ferry::ssh {

// The process environment, passed in so that tests and embedders control it.
struct Environment {
  std::string home_dir;                   // $HOME; empty: no ~/.ssh lookups at all
  std::string user;                       // $USER
  std::string ssh_auth_sock;              // $SSH_AUTH_SOCK; empty: no agent
  std::optional<std::string> password;    // $FERRY_PASSWORD
  std::optional<std::string> passphrase;  // $FERRY_PASSPHRASE
  // Asks for a key's passphrase; nullopt means "none given". May be empty (no
  // prompting). The CLI reads /dev/tty with echo off; an embedder passes its own.
  // Called at most once per BuildConnectOptions(), from the calling thread.
  std::function<std::optional<std::string>(std::string prompt)> prompt_passphrase;

  // From getenv() ($HOME, else the password database), without a prompt.
  static Environment FromProcess();
};

struct ConnectSetup {
  ConnectOptions options;
  // For the user, e.g. RSA identities, ignored Match blocks, encrypted keys left
  // out for want of a passphrase. Never hold secrets.
  std::vector<std::string> warnings;
};

// Errors: kInvalidArgument (a local destination; no user name; a malformed
// config file, with "file:line" in the detail), a system error such as ENOENT
// with the path in the detail (an identity file given in `opts`, or
// opts.config_file, does not exist).
Result<ConnectSetup> BuildConnectOptions(const transport::DestinationSpec& spec,
                                         const SshOptions& opts, const Environment& env);

// Key facts read from a private key file (and its .pub), for the choices above.
struct KeyFileInfo {
  std::string type;        // "ssh-ed25519", "ssh-rsa", ...; empty if unknown
  bool encrypted = false;  // a passphrase is needed to use it
};
// Reads `private_key` (and `private_key`.pub if present). Understands OpenSSH's
// openssh-key-v1 format (kdfname "none" vs "bcrypt") and PEM headers
// ("Proc-Type: 4,ENCRYPTED", "BEGIN ENCRYPTED PRIVATE KEY"). Errors: system errors.
Result<KeyFileInfo> InspectKeyFile(const std::string& private_key);

}  // namespace ferry::ssh

#endif  // FERRY_SSH_AUTH_SOURCES_H_
