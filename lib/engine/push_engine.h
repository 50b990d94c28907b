// The push engine: scan -> plan -> read -> (compress) -> write, many files in
// flight, against any Destination.
//
// Data flow: `list_concurrency` lister coroutines take directories from a
// stack, list the source (on the pool) and the destination side by side, plan
// the directory, create missing directories and hand every file action to a
// bounded channel. `jobs` worker coroutines take actions from it, read the
// source in chunks on the pool, compress if asked, and write through a
// FileSink (temp + rename). Deletions wait until everything else is done.
// Memory: jobs x kSmallFileBuffer + min(jobs, large_jobs) x chunk buffers +
// the channel's capacity + one directory listing per lister + the stack of
// directories not yet visited.
#ifndef FERRY_ENGINE_PUSH_ENGINE_H_
#define FERRY_ENGINE_PUSH_ENGINE_H_

#include <asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "ferry/observer.h"
#include "ferry/report.h"
#include "lib/plan/plan.h"
#include "lib/transport/destination.h"

namespace asio {
class thread_pool;
}

namespace ferry::hash {
class HashCache;
}

namespace ferry::engine {

// rel_path relative to the source root; true = leave it out.
using ExcludeFn = std::function<bool(std::string_view rel_path, bool is_dir)>;

// For a destination that keeps coarser mtimes than the source (SFTP v3: whole
// seconds): a file rewritten with the same size within the second of the copy
// that was sent looks unchanged to size + mtime there. Watch mode, which sends
// files within milliseconds of their writes, remembers the exact source mtime
// of what it sent: a file the plan would skip (or verify by size) is sent when
// its mtime differs from that. Paths are relative to the run's source root.
class SentMtimes {
 public:
  virtual ~SentMtimes() = default;
  // The exact source mtime of the version last sent to `rel`, if known.
  virtual std::optional<int64_t> Find(const std::string& rel) const = 0;
  // `rel` was just sent with this exact source mtime.
  virtual void Sent(const std::string& rel, int64_t mtime_ns) = 0;
};

// Each worker's own read buffer: files smaller than this are read whole into
// it; larger ones wait for one of EngineConfig::large_jobs chunk buffers.
inline constexpr size_t kSmallFileBuffer = size_t{128} << 10;

struct EngineConfig {
  std::string source_root;                 // a directory
  std::optional<std::string> single_file;  // SRC was this file inside source_root
  plan::PlanOptions plan;
  ExcludeFn excluded;  // may be empty
  // false: only the root directory is compared; subdirectories are entered only
  // when they are new on the destination (watch mode syncs dirty directories).
  bool recursive = true;
  int jobs = 8;
  // The user did not choose `jobs`: the destination may ask for more once
  // open (Destination::SuggestedJobs: many small files over a slow link).
  bool jobs_from_destination = false;
  // Of the `jobs` files in flight, how many may be large (at least
  // kSmallFileBuffer bytes) at once. A large file is read through one of these
  // slots' chunk buffers; small files use their worker's small buffer. Many
  // small files in flight hide round trips; memory is set by the large ones.
  int large_jobs = 16;
  int list_concurrency = 4;
  size_t chunk_bytes = 1 << 20;
  bool dry_run = false;
  bool fsync = false;
  bool copy_links = false;
  // With copy_links, a followed directory that is one of its own ancestors is
  // reported and not entered. A run over part of a larger tree (watch mode's
  // runs over one directory or file) names that tree's root here, a prefix of
  // source_root, so that every directory from it down to source_root counts as
  // an ancestor too. Empty: the ancestry starts at source_root.
  std::string ancestry_top;
  int retries = 3;
  std::optional<int> compress_level;
  // Files at least this big are uploaded through a part file named after the
  // source's identity (PartFileName) that an interrupted run leaves behind and
  // the next run continues after verifying it; 0 = never. Not with compression.
  uint64_t resume_threshold_bytes = uint64_t{64} << 20;
  std::optional<uint64_t> max_delete;
  hash::HashCache* hash_cache = nullptr;  // --checksum's cache; may be null
  SentMtimes* sent_mtimes = nullptr;      // see SentMtimes; may be null
  Observer* observer = nullptr;
  std::chrono::milliseconds progress_interval{200};
  std::stop_token stop;
};

// The temp name (IsTempName) of the part file of a resumable upload to
// `dest_name`: ".ferry-tmp-part-" + 16 hex digits hashed from the name and the
// source's size, mtime and inode, so another version of the source never
// shares it.
std::string PartFileName(std::string_view dest_name, uint64_t size, int64_t mtime_ns, uint64_t ino);

// Runs one push to completion on the calling coroutine's executor. `dest` must
// already be constructed (not opened); it is opened here and not closed.
asio::awaitable<Report> RunPush(EngineConfig config, transport::Destination& dest,
                                asio::thread_pool& pool);

}  // namespace ferry::engine

#endif  // FERRY_ENGINE_PUSH_ENGINE_H_
