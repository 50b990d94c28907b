#include "lib/transport/prefixed_destination.h"

#include "ferry/error.h"
#include "lib/base/path.h"

namespace ferry::transport {

PrefixedDestination::PrefixedDestination(Destination& inner, std::string prefix, uint32_t leaf_mode,
                                         bool open_inner)
    : inner_(inner), prefix_(std::move(prefix)), leaf_mode_(leaf_mode), open_inner_(open_inner) {}

std::string PrefixedDestination::Full(std::string_view rel) const {
  if (prefix_.empty()) return std::string(rel);
  if (rel.empty()) return prefix_;
  return JoinRel(prefix_, rel);
}

std::string PrefixedDestination::Describe() const {
  std::string base = inner_.Describe();
  if (prefix_.empty()) return base;
  return base.ends_with('/') ? base + prefix_ : base + "/" + prefix_;
}

asio::awaitable<Status> PrefixedDestination::Open(bool dry_run) {
  if (!IsSafeRelPath(prefix_)) co_return Status(errc::kUnsafePath, prefix_);
  Status st;
  if (open_inner_) st = co_await inner_.Open(dry_run);
  if (!st.ok() || dry_run || prefix_.empty()) co_return st;
  // Usually the directory exists or only its last component is missing: one call.
  st = co_await MakeDirReplacing(prefix_, leaf_mode_);
  if (st.ok() || st.code() != std::errc::no_such_file_or_directory) co_return st;
  // mkdir -p: MakeDir succeeds on an existing directory.
  size_t pos = 0;
  while (true) {
    size_t slash = prefix_.find('/', pos);
    bool last = slash == std::string::npos;
    std::string partial = prefix_.substr(0, last ? std::string::npos : slash);
    uint32_t mode = last ? leaf_mode_ : 0755;
    st = co_await MakeDirReplacing(partial, mode);
    if (!st.ok() || last) co_return st;
    pos = slash + 1;
  }
}

// A file or symlink where the prefix needs a directory is replaced, as a push
// replaces a non-directory with a directory (an overwrite: no --delete needed).
asio::awaitable<Status> PrefixedDestination::MakeDirReplacing(std::string path, uint32_t mode) {
  Status st = co_await inner_.MakeDir(path, mode);
  if (st.code() != std::errc::file_exists) co_return st;
  Status removed = co_await inner_.Remove(path, EntryType::kFile);
  if (!removed.ok()) co_return removed;
  co_return co_await inner_.MakeDir(std::move(path), mode);
}

asio::awaitable<Result<Listing>> PrefixedDestination::List(std::string dir) {
  std::string full = Full(dir);
  co_return co_await inner_.List(std::move(full));
}

asio::awaitable<Status> PrefixedDestination::MakeDir(std::string path, uint32_t mode) {
  std::string full = Full(path);
  co_return co_await inner_.MakeDir(std::move(full), mode);
}

asio::awaitable<Status> PrefixedDestination::SetDirMode(std::string path, uint32_t mode) {
  std::string full = Full(path);
  co_return co_await inner_.SetDirMode(std::move(full), mode);
}

asio::awaitable<Status> PrefixedDestination::PutFile(std::string path,
                                                     std::span<const std::byte> data,
                                                     CommitAttrs attrs) {
  std::string full = Full(path);
  co_return co_await inner_.PutFile(std::move(full), data, attrs);
}

asio::awaitable<Result<std::unique_ptr<FileSink>>> PrefixedDestination::CreateFile(
    std::string path) {
  std::string full = Full(path);
  co_return co_await inner_.CreateFile(std::move(full));
}

asio::awaitable<Status> PrefixedDestination::Symlink(std::string path, std::string target) {
  std::string full = Full(path);
  co_return co_await inner_.Symlink(std::move(full), std::move(target));
}

asio::awaitable<Status> PrefixedDestination::Remove(std::string path, EntryType type) {
  // Never the prefix itself through an empty path: that is the caller's root.
  if (path.empty()) co_return Status(errc::kUnsafePath, Describe());
  std::string full = Full(path);
  co_return co_await inner_.Remove(std::move(full), type);
}

asio::awaitable<Status> PrefixedDestination::Rename(std::string from, std::string to) {
  std::string full_from = Full(from);
  std::string full_to = Full(to);
  co_return co_await inner_.Rename(std::move(full_from), std::move(full_to));
}

asio::awaitable<Result<std::vector<std::byte>>> PrefixedDestination::ReadHead(std::string path,
                                                                              size_t max_bytes) {
  std::string full = Full(path);
  co_return co_await inner_.ReadHead(std::move(full), max_bytes);
}

asio::awaitable<Status> PrefixedDestination::ReadAll(std::string path, ChunkFn chunk_fn) {
  std::string full = Full(path);
  co_return co_await inner_.ReadAll(std::move(full), std::move(chunk_fn));
}

asio::awaitable<Status> PrefixedDestination::Close() { co_return Status(); }

}  // namespace ferry::transport
