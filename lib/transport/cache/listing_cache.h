// A persistent cache of a remote destination's directory listings, so that a
// no-op re-sync does not read every remote directory again: one LSTAT per
// directory replaces its OPENDIR + READDIRs + CLOSE (+ READLINKs). On a 20k-file
// tree that moves most of the work off the SSH server, which is what bounds a
// no-op run over SFTP (see docs/PERFORMANCE.md).
//
// Validity: a cached listing of directory D is used only while D's mtime on the
// destination equals the mtime recorded with it. Creating, removing or renaming
// an entry changes a directory's mtime, so those changes are always seen. What a
// directory's mtime does NOT cover is a file rewritten in place on the server
// (same name, new content or times): ferry then trusts the cached size and mtime
// until the directory changes. ferry itself never writes in place (temp +
// rename), so only a third party can do that; `--no-listing-cache` turns the
// cache off for such destinations.
//
// Racy directories: SFTP v3 mtimes are whole seconds, so a change in the same
// second as the listing would go unseen. A listing is therefore recorded only
// when its directory's mtime is at least kRacyWindowNs older than the local
// clock when the listing started (like git's racy-clean rule; a server clock
// running ahead only makes fewer listings cacheable).
//
// File format (all integers little-endian):
//   "ferry-listing-cache v1\n"
//   records, each one of
//     'D' path:str dir_mtime_ns:i64 unsafe_names:u64 count:u32 entry*count
//          entry = type:u8 name:str size:u64 mtime_ns:i64 mode:u32 link_target:str
//     'X' path:str          (forget what was recorded for `path` so far)
//   'E' xxh3_128:low u64, high u64  (of every byte before the 'E'; then end of file)
//   where str = length:u32 bytes.
// Records are applied in order; a later 'D' for a path replaces an earlier one.
// Anything else (another version, truncation, a bad checksum, a name that is
// not one safe path component) discards the whole file: the cache is an
// optimisation, never a source of truth.
#ifndef FERRY_TRANSPORT_CACHE_LISTING_CACHE_H_
#define FERRY_TRANSPORT_CACHE_LISTING_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "lib/base/result.h"
#include "lib/hash/hash.h"
#include "lib/transport/destination.h"

namespace ferry::transport {

inline constexpr std::string_view kListingCacheHeader = "ferry-listing-cache v1\n";
inline constexpr int64_t kListingRacyWindowNs = 2'000'000'000;

// What a previous run recorded, read-only. Memory: the file is mapped, not
// copied; only an index of directory paths is built.
class ListingCacheSnapshot {
 public:
  ListingCacheSnapshot() = default;
  ListingCacheSnapshot(ListingCacheSnapshot&&) noexcept;
  ListingCacheSnapshot& operator=(ListingCacheSnapshot&&) noexcept;
  ~ListingCacheSnapshot();

  // Maps and indexes the file at `path`. A missing file gives an empty
  // snapshot; an unusable one an empty snapshot with discarded() true.
  static ListingCacheSnapshot Load(const std::string& path);
  // Parses `bytes` (which must outlive the snapshot). For tests and fuzzing.
  static ListingCacheSnapshot Parse(std::span<const std::byte> bytes);

  struct Recorded {
    int64_t dir_mtime_ns = 0;
    Listing listing;
  };
  // The listing recorded for directory `path`, if any.
  std::optional<Recorded> Find(const std::string& path) const;

  bool discarded() const { return discarded_; }
  size_t directories() const { return index_.size(); }

 private:
  bool Index(std::span<const std::byte> bytes);

  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::span<const std::byte> bytes_;
  // path -> offset of the record's dir_mtime_ns field
  std::unordered_map<std::string, size_t> index_;
  bool discarded_ = false;
};

// Writes the next cache to "<path>.tmp.<pid>" chunk by chunk (records made with
// the Append functions below), and Commit() renames it over `path`. Memory does
// not grow with the tree. Blocking and not thread-safe: one pool job at a time.
class ListingCacheWriter {
 public:
  // Creates parent directories and the temp file (header written); removes
  // temps left by dead processes. Errors: system errors with the file name.
  static Result<std::unique_ptr<ListingCacheWriter>> Create(const std::string& path);
  ~ListingCacheWriter();  // removes the temp unless committed
  ListingCacheWriter(const ListingCacheWriter&) = delete;
  ListingCacheWriter& operator=(const ListingCacheWriter&) = delete;

  Status Write(std::string_view records);
  // Appends the end record and renames the temp over the path.
  Status Commit();

 private:
  ListingCacheWriter(std::string path, std::string temp, int fd);
  std::string path_;
  std::string temp_;
  int fd_ = -1;
  hash::StreamingHasher hasher_;
  bool committed_ = false;
};

// Record encoders (see the format above).
void AppendListingRecord(std::string& out, const std::string& dir, int64_t dir_mtime_ns,
                         const Listing& listing);
void AppendForgetRecord(std::string& out, const std::string& dir);
void AppendEndRecord(std::string& out);  // checksum of everything in `out` so far

// "$XDG_CACHE_HOME/ferry/listings-<hex>.v1" (or ~/.cache/...), <hex> the XXH3-128
// of `destination` (its Describe() string).
std::string DefaultListingCachePath(std::string_view destination);

}  // namespace ferry::transport

#endif  // FERRY_TRANSPORT_CACHE_LISTING_CACHE_H_
