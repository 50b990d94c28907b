#include "lib/transport/cache/caching_destination.h"

#include <time.h>

#include <asio/thread_pool.hpp>
#include <utility>

#include "ferry/error.h"
#include "lib/base/offload.h"
#include "lib/base/path.h"

namespace ferry::transport {
namespace {

// Records are handed to the pool in chunks of about this size.
constexpr size_t kFlushBytes = 1 << 20;

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

CachingDestination::CachingDestination(std::unique_ptr<Destination> inner, std::string cache_path,
                                       asio::thread_pool& pool)
    : inner_(std::move(inner)), cache_path_(std::move(cache_path)), pool_(pool) {}

CachingDestination::~CachingDestination() = default;

void CachingDestination::TurnOff(std::string why) {
  if (!why.empty()) notes_.push_back("listing cache off: " + why);
  enabled_ = false;
  pending_.clear();
  // A flush in flight still uses the writer; it drops it when it returns.
  if (!flushing_) writer_.reset();
}

asio::awaitable<Status> CachingDestination::Open(bool dry_run) {
  Status opened = co_await inner_->Open(dry_run);
  if (!opened.ok()) co_return opened;
  struct Loaded {
    ListingCacheSnapshot snapshot;
    Result<std::unique_ptr<ListingCacheWriter>> writer{std::unique_ptr<ListingCacheWriter>()};
  };
  auto load = [path = cache_path_]() {
    auto loaded = std::make_shared<Loaded>();
    loaded->snapshot = ListingCacheSnapshot::Load(path);
    loaded->writer = ListingCacheWriter::Create(path);
    return loaded;
  };
  std::shared_ptr<Loaded> loaded = co_await Offload(pool_, std::move(load));
  previous_ = std::move(loaded->snapshot);
  if (!loaded->writer.ok()) {
    // Without a writer the cache would only go stale: do without it this run.
    notes_.push_back("listing cache off: " + loaded->writer.error().Message());
    co_return Status{};
  }
  writer_ = std::move(*loaded->writer);
  enabled_ = true;
  co_return Status{};
}

asio::awaitable<void> CachingDestination::MaybeFlush() {
  if (!writer_ || flushing_ || pending_.size() < kFlushBytes) co_return;
  flushing_ = true;
  auto write = [writer = writer_.get(), chunk = std::exchange(pending_, {})]() {
    return writer->Write(chunk);
  };
  Status written = co_await Offload(pool_, std::move(write));
  flushing_ = false;
  if (!enabled_) {
    writer_.reset();
  } else if (!written.ok()) {
    TurnOff(written.error().Message());
  }
}

void CachingDestination::Forget(std::string_view dir) {
  if (!enabled_) return;
  std::string path(dir);
  AppendForgetRecord(pending_, path);
  forgotten_.insert(std::move(path));
}

void CachingDestination::ForgetParentOf(std::string_view path) { Forget(ParentOf(path)); }

asio::awaitable<Result<Listing>> CachingDestination::List(std::string dir) {
  if (!enabled_) co_return co_await inner_->List(std::move(dir));
  const int64_t started_ns = NowNs();
  std::optional<ListingCacheSnapshot::Recorded> recorded;
  if (!forgotten_.contains(dir)) recorded = previous_.Find(dir);
  if (recorded) {
    auto stamp = co_await inner_->DirMtime(dir);
    if (!stamp.ok() && stamp.code() == errc::kUnsupported) {
      TurnOff("");
      co_return co_await inner_->List(std::move(dir));
    }
    // Any other failure: the listing below reports it properly.
    if (stamp.ok() && stamp->has_value() && **stamp == recorded->dir_mtime_ns && enabled_) {
      ++hits_;
      AppendListingRecord(pending_, dir, recorded->dir_mtime_ns, recorded->listing);
      co_await MaybeFlush();
      co_return std::move(recorded->listing);
    }
  }
  std::string listed = dir;
  auto listing = co_await inner_->List(std::move(listed));
  ++misses_;
  // Racy: a change in the same (whole) second as the listing would not move
  // the mtime, so only directories that were quiet for a while are recorded.
  if (enabled_ && listing.ok() && listing->exists && listing->dir_mtime_ns != 0 &&
      listing->dir_mtime_ns < started_ns - kListingRacyWindowNs && !forgotten_.contains(dir)) {
    AppendListingRecord(pending_, dir, listing->dir_mtime_ns, *listing);
    co_await MaybeFlush();
  }
  co_return listing;
}

asio::awaitable<Result<std::optional<int64_t>>> CachingDestination::DirMtime(std::string dir) {
  co_return co_await inner_->DirMtime(std::move(dir));
}

asio::awaitable<Status> CachingDestination::MakeDir(std::string path, uint32_t mode) {
  ForgetParentOf(path);
  Forget(path);
  co_return co_await inner_->MakeDir(std::move(path), mode);
}

asio::awaitable<Status> CachingDestination::SetDirMode(std::string path, uint32_t mode) {
  ForgetParentOf(path);  // the parent's listing holds the old mode
  co_return co_await inner_->SetDirMode(std::move(path), mode);
}

asio::awaitable<Result<std::unique_ptr<FileSink>>> CachingDestination::CreateFile(
    std::string path) {
  ForgetParentOf(path);
  co_return co_await inner_->CreateFile(std::move(path));
}

asio::awaitable<Status> CachingDestination::PutFile(std::string path,
                                                    std::span<const std::byte> data,
                                                    CommitAttrs attrs) {
  ForgetParentOf(path);
  co_return co_await inner_->PutFile(std::move(path), data, attrs);
}

asio::awaitable<Status> CachingDestination::Symlink(std::string path, std::string target) {
  ForgetParentOf(path);
  co_return co_await inner_->Symlink(std::move(path), std::move(target));
}

asio::awaitable<Status> CachingDestination::Remove(std::string path, EntryType type) {
  ForgetParentOf(path);
  if (type == EntryType::kDirectory) Forget(path);
  co_return co_await inner_->Remove(std::move(path), type);
}

asio::awaitable<Status> CachingDestination::Rename(std::string from, std::string to) {
  // Either may be a directory: forgetting a file's path costs nothing.
  ForgetParentOf(from);
  ForgetParentOf(to);
  Forget(from);
  Forget(to);
  co_return co_await inner_->Rename(std::move(from), std::move(to));
}

asio::awaitable<Result<std::vector<std::byte>>> CachingDestination::ReadHead(std::string path,
                                                                             size_t max_bytes) {
  co_return co_await inner_->ReadHead(std::move(path), max_bytes);
}

asio::awaitable<Status> CachingDestination::ReadAll(std::string path, ChunkFn chunk_fn) {
  co_return co_await inner_->ReadAll(std::move(path), std::move(chunk_fn));
}

asio::awaitable<Result<PartSink>> CachingDestination::OpenPart(std::string path,
                                                               std::string part_name) {
  ForgetParentOf(path);
  co_return co_await inner_->OpenPart(std::move(path), std::move(part_name));
}

asio::awaitable<Result<std::vector<std::byte>>> CachingDestination::ReadRange(std::string path,
                                                                              uint64_t offset,
                                                                              size_t max_bytes) {
  co_return co_await inner_->ReadRange(std::move(path), offset, max_bytes);
}

asio::awaitable<Status> CachingDestination::Close() {
  if (writer_ && enabled_ && !flushing_) {
    auto commit = [writer = writer_.get(), chunk = std::exchange(pending_, {})]() {
      Status st = writer->Write(chunk);
      return st.ok() ? writer->Commit() : st;
    };
    Status committed = co_await Offload(pool_, std::move(commit));
    if (!committed.ok())
      notes_.push_back("listing cache not saved: " + committed.error().Message());
    writer_.reset();
  }
  co_return co_await inner_->Close();
}

std::vector<std::string> CachingDestination::TakeNotes() {
  std::vector<std::string> notes = inner_->TakeNotes();
  for (std::string& note : notes_) notes.push_back(std::move(note));
  notes_.clear();
  return notes;
}

}  // namespace ferry::transport
