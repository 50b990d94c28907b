// Options of a push (and of the initial sync of a watch), as a plain struct.
// The CLI fills it from flags; an embedder fills it directly.
#ifndef FERRY_OPTIONS_H_
#define FERRY_OPTIONS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace ferry {

class Observer;

struct FilterRule {
  enum class Kind { kExclude, kInclude };
  Kind kind = Kind::kExclude;
  std::string pattern;  // rsync-like glob, see docs/FILTERS.md
};

// What host_key_callback is asked: the server's key is not known-good.
struct HostKeyQuestion {
  std::string host;  // as connected to (after ssh config HostName)
  uint16_t port = 22;
  std::string key_type;     // "ssh-ed25519", "ecdsa-sha2-nistp256", ...
  std::string fingerprint;  // "SHA256:..." of the offered key
  // true: known_hosts holds a DIFFERENT key for this host (the key changed, or a
  // man-in-the-middle is answering); false: the host is not in known_hosts at all.
  bool changed = false;
  std::string known_fingerprint;  // when changed: "SHA256:..." of the recorded key
};

enum class HostKeyDecision {
  kReject,         // refuse: kHostKeyUnknown, or kHostKeyMismatch when changed
  kAcceptOnce,     // connect this time; known_hosts is not touched
  kAcceptAndSave,  // connect and append the key to known_hosts (OpenSSH format)
};

// Credential callbacks (all optional). Contract, for all three: each may BLOCK
// (e.g. to ask a person) and is called rarely: at most once per connection, only
// while connecting, before any file is touched. They are called from a ferry
// thread, not the caller's: passphrase_callback from the worker that prepares the
// push, host_key_callback and password_callback from the io_context thread that
// runs the push, which they stall while they run (time spent in them counts
// towards connect_timeout). Never two at once for one push. They must not throw
// (an exception counts as kReject / nullopt) and must not call back into ferry.
// A watch calls them again on each reconnection.
struct SshOptions {
  std::string known_hosts;           // empty: ~/.ssh/known_hosts
  bool accept_new_host_key = false;  // record unknown host keys instead of refusing
  // Decides about a host key that is not known-good: unknown, or CHANGED. When set,
  // it replaces accept_new_host_key / StrictHostKeyChecking for unknown keys. It
  // is never asked about a known-good key, nor about a key marked @revoked (always
  // refused). DANGER: accepting a changed key (question.changed) defeats the
  // protection against a man-in-the-middle; this callback is the ONLY way ferry
  // connects to a host whose key changed. Show the user both fingerprints and
  // make rejecting the default. kAcceptAndSave of a changed key appends the new
  // key; the old line stays (remove it with ssh-keygen -R).
  std::function<HostKeyDecision(const HostKeyQuestion&)> host_key_callback;
  // Asked for the passphrase of an encrypted identity file (once, naming the first
  // encrypted one; the answer is used for all). nullopt or "": none, and the
  // encrypted keys are skipped (an explicit identity_files entry then fails with
  // kAuthFailed). Overrides $FERRY_PASSPHRASE.
  std::function<std::optional<std::string>(const std::string& prompt)> passphrase_callback;
  // Asked for the password when key authentication did not succeed and the server
  // offers password or keyboard-interactive authentication. nullopt: give up
  // (kAuthFailed). Overrides $FERRY_PASSWORD.
  std::function<std::optional<std::string>(const std::string& prompt)> password_callback;
  std::vector<std::string> identity_files;  // empty: ~/.ssh/id_ed25519, id_ecdsa
  bool use_agent = true;
  std::string config_file;  // empty: ~/.ssh/config; "none" to skip
  // Resolving, TCP connect, handshake, host key check and authentication, per
  // connection. When left at this default, ~/.ssh/config's ConnectTimeout applies.
  std::chrono::milliseconds connect_timeout{15000};
  // SSH connections to open at most (1..16); 0: the default (2). Each carries
  // several SFTP channels; more connections help on links with a large
  // bandwidth-delay product.
  int connections = 0;
  // While replies are due and nothing arrives from the server for this long,
  // the connection is declared dead: its files fail with kConnectionLost and
  // are retried on a new connection (reconnects back off 100 ms .. 5 s).
  // 0: wait forever (a stalled server then hangs the push).
  std::chrono::milliseconds io_timeout{60000};
  // An idle connection sends an SSH keepalive this often, so that NAT and
  // firewall state and server idle limits keep it open. 0: none. Whole seconds.
  std::chrono::milliseconds keepalive_interval{15000};
};

struct PushOptions {
  std::string source;       // a directory (its contents are copied) or a file
  std::string destination;  // a path, sftp://[user@]host[:port]/path or [user@]host:path

  std::vector<FilterRule> filters;        // first match wins
  std::vector<std::string> exclude_from;  // files of exclude patterns, added after `filters`

  int jobs = 0;                        // files in flight; 0 picks the default
  bool checksum = false;               // compare content hashes instead of size+mtime
  std::optional<int> compress_level;   // store files as NAME.zst (zstd level 1..19)
  bool delete_extraneous = false;      // remove destination entries absent from the source
  bool delete_excluded = false;        // ... including excluded ones
  std::optional<uint64_t> max_delete;  // refuse to delete more than this many entries
  bool dry_run = false;
  bool fsync = false;       // durable data before each rename
  bool copy_links = false;  // follow source symlinks instead of recreating them
  int retries = 3;          // per file, when it changes while being read
  // Where --checksum keeps local hashes; empty: ~/.cache/ferry/...; "none": no cache.
  std::string hash_cache;
  // SFTP: where the remote listing cache lives (a no-op re-sync then checks one
  // mtime per directory instead of reading it; see docs/ARCHITECTURE.md);
  // empty: ~/.cache/ferry/listings-*.v1; "none": list every directory. Turn it
  // off if something other than ferry rewrites files in place on the server.
  std::string listing_cache;
  // Files at least this large upload through a part file that an interrupted
  // run leaves behind, and the next run resumes from (verified first); 0:
  // never. Not with compress_level (a zstd stream cannot be continued).
  uint64_t resume_threshold_bytes = uint64_t{64} << 20;

  SshOptions ssh;
  // Cap on file bytes sent per second, over all connections (0: none). SFTP
  // destinations only: set for a local destination it is kInvalidArgument.
  uint64_t bwlimit_bytes_per_s = 0;

  Observer* observer = nullptr;  // not owned; may be null
  std::chrono::milliseconds progress_interval{200};
  // Cancellation: when requested, in-flight files are abandoned (their temps
  // removed), nothing new starts, and the report says cancelled.
  std::stop_token stop;
};

}  // namespace ferry

#endif  // FERRY_OPTIONS_H_
