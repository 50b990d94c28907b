// The one interface every destination implements (a local directory, SFTP, and
// the fakes tests use). The engine only ever talks to a destination through it.
//
// Contract:
// - All paths are relative to the destination root, '/'-separated, and pass
//   IsSafeRelPath; implementations must still refuse anything else (kUnsafePath)
//   and must never follow a symlink on the destination while resolving a path.
// - Methods are called from one executor (the engine's io_context thread) and
//   must not block it; an implementation hands blocking work to a thread pool or
//   does non-blocking I/O. Several calls may be in flight at once.
// - Failures come back as Status/Result (never exceptions), with the path in
//   Error::detail.
#ifndef FERRY_TRANSPORT_DESTINATION_H_
#define FERRY_TRANSPORT_DESTINATION_H_

#include <asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lib/base/entry.h"
#include "lib/base/result.h"

namespace ferry::transport {

struct Listing {
  bool exists = false;         // false: the directory is not there (not an error)
  std::vector<Entry> entries;  // unsafe names already dropped
  size_t unsafe_names = 0;     // how many were dropped (reported by the engine)
  // The directory's own mtime, read no later than its entries, when the
  // destination learns it without extra work (0: unknown). See DirMtime().
  int64_t dir_mtime_ns = 0;
};

struct CommitAttrs {
  int64_t mtime_ns = 0;
  uint32_t mode = 0644;
  bool fsync = false;  // make the data durable before the rename
};

// One file being written under a temporary name next to its final name.
// Exactly one of Commit or Abort ends it; destroying an unfinished sink aborts
// it on a best-effort basis.
class FileSink {
 public:
  virtual ~FileSink() = default;
  // Appends `data`. The caller keeps `data` alive and unchanged until it returns.
  virtual asio::awaitable<Status> Write(std::span<const std::byte> data) = 0;
  // Sets mode and mtime, optionally syncs, then renames over the final name
  // atomically: readers see the old file or the new one, never a partial one.
  virtual asio::awaitable<Status> Commit(CommitAttrs attrs) = 0;
  // Removes the temporary file. A part-file sink (Destination::OpenPart) keeps
  // its file instead, so that a later run can resume from it; its destructor
  // keeps it too.
  virtual asio::awaitable<void> Abort() = 0;
  // Part-file sinks only, before the first Write: truncates the file to
  // `offset` bytes and makes the next Write land there. Others: kUnsupported.
  virtual asio::awaitable<Status> ResumeAt(uint64_t offset);
};

// A part file opened for a resumable upload, and how many bytes it held.
struct PartSink {
  std::unique_ptr<FileSink> sink;
  uint64_t existing_bytes = 0;
};

class Destination {
 public:
  virtual ~Destination() = default;

  // For messages: "/abs/path" or "sftp://user@host:port/path".
  virtual std::string Describe() const = 0;
  // Resolution of stored mtimes (1 ns for a local directory, 1 s for SFTP v3).
  virtual int64_t MtimeGranularityNs() const = 0;

  // Connects and checks the root; creates it (mkdir -p) unless `dry_run`.
  virtual asio::awaitable<Status> Open(bool dry_run) = 0;
  virtual asio::awaitable<Result<Listing>> List(std::string dir) = 0;
  // The mtime of directory `dir` (never following a symlink: kUnsafePath), or
  // nullopt when there is no such directory. One cheap request, so that a
  // listing cache can tell whether a directory changed without listing it. The
  // default says errc::kUnsupported: the destination lists cheaply.
  virtual asio::awaitable<Result<std::optional<int64_t>>> DirMtime(std::string dir);
  // Succeeds if the directory exists already.
  virtual asio::awaitable<Status> MakeDir(std::string path, uint32_t mode) = 0;
  // Sets the permission bits of the existing directory `path` (never following a
  // symlink: anything but a directory there is refused). The default says
  // errc::kUnsupported: the engine then leaves directory modes as created.
  virtual asio::awaitable<Status> SetDirMode(std::string path, uint32_t mode);
  virtual asio::awaitable<Result<std::unique_ptr<FileSink>>> CreateFile(std::string path) = 0;
  // A whole file already in memory, with the same atomic temp + rename
  // guarantee as CreateFile/Write/Commit. Small files are most files: a
  // destination can do this in one step (one pool job, or one pipelined burst
  // of requests). The default goes through CreateFile/Write/Commit.
  virtual asio::awaitable<Status> PutFile(std::string path, std::span<const std::byte> data,
                                          CommitAttrs attrs);
  // Creates or atomically replaces a symlink.
  virtual asio::awaitable<Status> Symlink(std::string path, std::string target) = 0;
  // Removes a file, symlink, or a directory with everything in it.
  virtual asio::awaitable<Status> Remove(std::string path, EntryType type) = 0;
  virtual asio::awaitable<Status> Rename(std::string from, std::string to) = 0;
  // Up to `max_bytes` from the start of a file (e.g. a zstd frame header).
  virtual asio::awaitable<Result<std::vector<std::byte>>> ReadHead(std::string path,
                                                                   size_t max_bytes) = 0;
  // Streams a whole file into `sink_fn` chunk by chunk (for --checksum). The
  // callback runs on an unspecified thread, never concurrently with itself.
  using ChunkFn = std::function<void(std::span<const std::byte>)>;
  virtual asio::awaitable<Status> ReadAll(std::string path, ChunkFn chunk_fn) = 0;
  virtual asio::awaitable<Status> Close() = 0;

  // ---- resumable uploads of large files (optional) ---------------------
  // A destination that supports them returns true; the defaults below say
  // kUnsupported and the engine then uses CreateFile.
  //
  // The engine names part files itself (a deterministic temp name, see
  // IsTempName, derived from the final name and the source's identity), so a
  // leftover of an interrupted run is found again by the next run while the
  // source is unchanged; every other temp is removed as before.
  virtual bool SupportsResume() const { return false; }
  // Opens the regular file `part_name` in the directory of `path` for writing,
  // creating it (mode 0600) if missing and keeping its content otherwise. A
  // symlink or anything else under that name is refused. The sink's first
  // Write lands at `existing_bytes` unless ResumeAt moves it; Commit renames
  // the part over `path` exactly as a CreateFile sink does; Abort keeps it.
  virtual asio::awaitable<Result<PartSink>> OpenPart(std::string path, std::string part_name);
  // Up to `max_bytes` of a regular file from `offset` (fewer only at its end):
  // lets the engine verify a part file's content against the source.
  virtual asio::awaitable<Result<std::vector<std::byte>>> ReadRange(std::string path,
                                                                    uint64_t offset,
                                                                    size_t max_bytes);

  // Once opened: how many files in flight this destination works best with,
  // when the user did not say (0: no opinion). Over a slow link every file
  // costs round trips that only overlap when many are in flight.
  virtual int SuggestedJobs() const { return 0; }

  // Things the user should hear about once per run (e.g. "server lacks
  // posix-rename: replaced files were briefly absent"). Called after the run.
  virtual std::vector<std::string> TakeNotes() { return {}; }
};

}  // namespace ferry::transport

#endif  // FERRY_TRANSPORT_DESTINATION_H_
