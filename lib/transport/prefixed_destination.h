// A view of another Destination rooted at one of its subdirectories: every
// path gets "sub/dir/" prepended, everything else is forwarded. Watch mode runs
// the push engine on a changed subdirectory through it, against the one
// destination (and connection) the whole watch uses.
//
// Lifetime: does not own `inner`, which must outlive it. Close() does not
// close `inner`. Threading and errors: as `inner`.
#ifndef FERRY_TRANSPORT_PREFIXED_DESTINATION_H_
#define FERRY_TRANSPORT_PREFIXED_DESTINATION_H_

#include <cstdint>
#include <string>

#include "lib/transport/destination.h"

namespace ferry::transport {

class PrefixedDestination final : public Destination {
 public:
  // `prefix`: a safe relative path ("" forwards paths unchanged). Open()
  // opens `inner` (unless `open_inner` is false: the caller knows it is open)
  // and creates the prefix's missing directories on it (mkdir -p), the last
  // one with `leaf_mode`, the others 0755.
  PrefixedDestination(Destination& inner, std::string prefix, uint32_t leaf_mode = 0755,
                      bool open_inner = true);

  std::string Describe() const override;
  int64_t MtimeGranularityNs() const override { return inner_.MtimeGranularityNs(); }
  asio::awaitable<Status> Open(bool dry_run) override;
  asio::awaitable<Result<Listing>> List(std::string dir) override;
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
  asio::awaitable<Status> Close() override;
  std::vector<std::string> TakeNotes() override { return inner_.TakeNotes(); }

 private:
  std::string Full(std::string_view rel) const;
  asio::awaitable<Status> MakeDirReplacing(std::string path, uint32_t mode);

  Destination& inner_;
  std::string prefix_;
  uint32_t leaf_mode_;
  bool open_inner_;
};

}  // namespace ferry::transport

#endif  // FERRY_TRANSPORT_PREFIXED_DESTINATION_H_
