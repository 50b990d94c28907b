// A persistent cache of local file hashes, so an unchanged file is not read again on
// the next run.
//
// A file is identified by (st_dev, st_ino); a cached hash is used only while the
// file's size, mtime and ctime (nanoseconds) are all unchanged. ctime matters: it
// changes on every write and cannot be set back by utimensat(), unlike mtime.
//
// File format (text, one record per line, '\n' line ends, fields separated by one
// space, numbers in decimal):
//
//   ferry-hash-cache v1
//   <dev> <ino> <size> <mtime_ns> <ctime_ns> <xxh3-128 as 32 lowercase hex digits>
//   ...
//
// e.g. "2049 1835093 4096 1700000000123456789 1700000000123456789 99aa06d3...497f".
// Any other first line (another version, another program's file) or any line that
// does not parse (truncation, corruption, duplicate identity) discards the whole
// cache: the run starts over with an empty one and discarded() says so. The cache is
// an optimisation, never a source of truth; starting over only costs re-reading.
#ifndef FERRY_HASH_HASH_CACHE_H_
#define FERRY_HASH_HASH_CACHE_H_

#include <sys/stat.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "lib/base/result.h"
#include "lib/hash/hash.h"

namespace ferry::hash {

// What identifies a file's contents without reading them.
struct FileIdentity {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;

  bool operator==(const FileIdentity&) const = default;

  static FileIdentity FromStat(const struct stat& st);
};

// Thread-safe: every method may be called concurrently (one mutex inside; Save()
// holds it while writing).
//
// Use from a run:
//   stat() the file; if cache.Lookup(id) hits, use it; otherwise hash the file,
//   stat() it again, and Store(id, hash) only if the identity did not change.
// At the end, Save(). Entries neither looked up (with a hit) nor stored since Load()
// are dropped by Save(): files that were deleted or not visited do not accumulate.
//
// Racy files: a write in the same timestamp tick as the file's previous write leaves
// mtime and ctime unchanged. Store() therefore ignores a file whose mtime or ctime is
// less than kRacyWindowNs before the current time; it is simply hashed again next run.
class HashCache {
 public:
  static constexpr std::string_view kHeader = "ferry-hash-cache v1";
  static constexpr int64_t kRacyWindowNs = 2'000'000'000;  // FAT's mtime granularity

  // Reads the cache at `path` (which Save() will write). A missing file gives an
  // empty cache; one with another version or corrupt content an empty cache with
  // discarded() true.
  // Errors: system errors other than ENOENT from open() or read() (EACCES, EIO, ...).
  static Result<HashCache> Load(const std::string& path);

  HashCache(HashCache&& other) noexcept;
  HashCache& operator=(HashCache&& other) noexcept;
  HashCache(const HashCache&) = delete;
  HashCache& operator=(const HashCache&) = delete;

  // The cached hash if `id` matches an entry in every field, else nullopt. A hit marks
  // the entry as still in use.
  std::optional<Hash128> Lookup(const FileIdentity& id) const;

  // Records the hash of the file with identity `id` (replacing any older entry for
  // the same dev/ino), unless the file is racy (see above).
  void Store(const FileIdentity& id, const Hash128& hash);

  // Writes the entries in use to the path given to Load(), atomically: a temporary
  // "<path>.tmp.<pid>" is written, fsync()ed and renamed over the path, then the
  // directory is synced (best effort). Creates missing parent directories. The file
  // is mode 0600. May be called more than once. Errors: system errors (ENOSPC, EACCES,
  // ...) with the file name in the detail; the previous cache file is then intact.
  Status Save() const;

  // True when Load() found a file it could not use and started empty.
  bool discarded() const { return discarded_; }
  // Number of entries held (in use or not).
  size_t size() const;
  const std::string& path() const { return path_; }

 private:
  struct Key {
    uint64_t dev;
    uint64_t ino;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept;
  };
  struct Entry {
    uint64_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    Hash128 hash;
    mutable bool in_use;  // looked up with a hit, or stored, since Load()
  };
  using Map = std::unordered_map<Key, Entry, KeyHash>;

  explicit HashCache(std::string path) : path_(std::move(path)) {}
  // Parses one record line (without its '\n') into `entries`; false if malformed.
  static bool ParseLine(std::string_view line, Map& entries);
  Status WriteTo(int fd, const std::string& name) const;  // requires mu_

  std::string path_;
  bool discarded_ = false;
  mutable std::mutex mu_;
  Map entries_;  // guarded by mu_
};

// Where the cache for `source_root` lives by default:
// "$XDG_CACHE_HOME/ferry/hashes-<hex>.v1", or "$HOME/.cache/ferry/..." when
// XDG_CACHE_HOME is unset or not absolute, where <hex> is the XXH3-128 of the
// absolute, lexically normalised source root (symlinks are not resolved). One cache
// per source tree keeps each file small and lets trees be synced independently.
std::string DefaultCachePath(std::string_view source_root);

// "$XDG_CACHE_HOME/ferry", or "$HOME/.cache/ferry" when XDG_CACHE_HOME is unset or
// not absolute (the password database's home when HOME is unset too). Every
// ferry cache file lives there.
std::string FerryCacheDirectory();

}  // namespace ferry::hash

#endif  // FERRY_HASH_HASH_CACHE_H_
