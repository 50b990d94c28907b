// A Destination that remembers the listings of another one between runs (see
// listing_cache.h for the file and the validity rules). List(dir) asks the inner
// destination for the directory's mtime (DirMtime: one request) and, when it
// equals the recorded one, returns the recorded listing; otherwise it lists for
// real and records the new listing. Every change made through it (files,
// directories, symlinks, removes, renames) makes the cache forget the
// directories involved, so the next run lists them again.
//
// The cache only helps destinations whose DirMtime() is supported and whose
// listing is expensive (SFTP); with any other, it turns itself off at the first
// DirMtime() and forwards everything.
//
// Failures of the cache never fail the run: an unreadable cache file is ignored
// and an unwritable one only loses the next run's speed (TakeNotes() says so).
//
// Lifetime and threading: owns `inner`; `pool` (file I/O) must outlive it. Calls
// come from the engine's single-threaded executor, like every Destination.
#ifndef FERRY_TRANSPORT_CACHE_CACHING_DESTINATION_H_
#define FERRY_TRANSPORT_CACHE_CACHING_DESTINATION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "lib/transport/cache/listing_cache.h"
#include "lib/transport/destination.h"

namespace asio {
class thread_pool;
}

namespace ferry::transport {

class CachingDestination final : public Destination {
 public:
  CachingDestination(std::unique_ptr<Destination> inner, std::string cache_path,
                     asio::thread_pool& pool);
  ~CachingDestination() override;

  std::string Describe() const override { return inner_->Describe(); }
  int64_t MtimeGranularityNs() const override { return inner_->MtimeGranularityNs(); }
  asio::awaitable<Status> Open(bool dry_run) override;
  asio::awaitable<Result<Listing>> List(std::string dir) override;
  asio::awaitable<Result<std::optional<int64_t>>> DirMtime(std::string dir) override;
  asio::awaitable<Status> MakeDir(std::string path, uint32_t mode) override;
  asio::awaitable<Status> SetDirMode(std::string path, uint32_t mode) override;
  asio::awaitable<Result<std::unique_ptr<FileSink>>> CreateFile(std::string path) override;
  asio::awaitable<Status> PutFile(std::string path, std::span<const std::byte> data,
                                  CommitAttrs attrs) override;
  asio::awaitable<Status> Symlink(std::string path, std::string target) override;
  asio::awaitable<Status> Remove(std::string path, EntryType type) override;
  asio::awaitable<Status> Rename(std::string from, std::string to) override;
  asio::awaitable<Result<std::vector<std::byte>>> ReadHead(std::string path,
                                                           size_t max_bytes) override;
  asio::awaitable<Status> ReadAll(std::string path, ChunkFn chunk_fn) override;
  bool SupportsResume() const override { return inner_->SupportsResume(); }
  int SuggestedJobs() const override { return inner_->SuggestedJobs(); }
  asio::awaitable<Result<PartSink>> OpenPart(std::string path, std::string part_name) override;
  asio::awaitable<Result<std::vector<std::byte>>> ReadRange(std::string path, uint64_t offset,
                                                            size_t max_bytes) override;
  asio::awaitable<Status> Close() override;
  std::vector<std::string> TakeNotes() override;

  // For tests and the summary: listings answered from the cache / listed.
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  void Forget(std::string_view dir);
  void ForgetParentOf(std::string_view path);
  asio::awaitable<void> MaybeFlush();
  void TurnOff(std::string why);

  std::unique_ptr<Destination> inner_;
  std::string cache_path_;
  asio::thread_pool& pool_;
  bool enabled_ = false;
  ListingCacheSnapshot previous_;
  std::unique_ptr<ListingCacheWriter> writer_;
  std::string pending_;  // records not yet handed to the writer
  bool flushing_ = false;
  // Directories changed during this run: never answered from `previous_`.
  std::unordered_set<std::string> forgotten_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  std::vector<std::string> notes_;
};

}  // namespace ferry::transport

#endif  // FERRY_TRANSPORT_CACHE_CACHING_DESTINATION_H_
