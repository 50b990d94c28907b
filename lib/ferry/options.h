// Options of a push (and of the initial sync of a watch), as a plain struct.
// The CLI fills it from flags; an embedder fills it directly.
#ifndef FERRY_OPTIONS_H_
#define FERRY_OPTIONS_H_

#include <chrono>
#include <cstdint>
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

struct SshOptions {
  std::string known_hosts;            // empty: ~/.ssh/known_hosts
  bool accept_new_host_key = false;   // record unknown host keys instead of refusing
  std::vector<std::string> identity_files;  // empty: ~/.ssh/id_ed25519, id_ecdsa
  bool use_agent = true;
  std::string config_file;            // empty: ~/.ssh/config; "none" to skip
  std::chrono::milliseconds connect_timeout{15000};
};

struct PushOptions {
  std::string source;        // a directory (its contents are copied) or a file
  std::string destination;   // a path, sftp://[user@]host[:port]/path or [user@]host:path

  std::vector<FilterRule> filters;         // first match wins
  std::vector<std::string> exclude_from;   // files of exclude patterns, added after `filters`

  int jobs = 0;                      // files in flight; 0 picks the default
  bool checksum = false;             // compare content hashes instead of size+mtime
  std::optional<int> compress_level; // store files as NAME.zst (zstd level 1..19)
  bool delete_extraneous = false;    // remove destination entries absent from the source
  bool delete_excluded = false;      // ... including excluded ones
  std::optional<uint64_t> max_delete;  // refuse to delete more than this many entries
  bool dry_run = false;
  bool fsync = false;                // durable data before each rename
  bool copy_links = false;           // follow source symlinks instead of recreating them
  int retries = 3;                   // per file, when it changes while being read
  // Where --checksum keeps local hashes; empty: ~/.cache/ferry/...; "none": no cache.
  std::string hash_cache;

  SshOptions ssh;

  Observer* observer = nullptr;      // not owned; may be null
  std::chrono::milliseconds progress_interval{200};
  // Cancellation: when requested, in-flight files are abandoned (their temps
  // removed), nothing new starts, and the report says cancelled.
  std::stop_token stop;
};

}  // namespace ferry

#endif  // FERRY_OPTIONS_H_
