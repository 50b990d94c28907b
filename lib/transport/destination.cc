#include "lib/transport/destination.h"

#include "ferry/error.h"

namespace ferry::transport {

asio::awaitable<Status> Destination::PutFile(std::string path, std::span<const std::byte> data,
                                             CommitAttrs attrs) {
  auto created = co_await CreateFile(std::move(path));
  if (!created.ok()) co_return created.error();
  std::unique_ptr<FileSink> sink = std::move(*created);
  if (!data.empty()) {
    Status written = co_await sink->Write(data);
    if (!written.ok()) {
      co_await sink->Abort();
      co_return written;
    }
  }
  co_return co_await sink->Commit(attrs);
}

asio::awaitable<Status> FileSink::ResumeAt(uint64_t) {
  co_return Error{errc::kUnsupported, "this destination cannot resume uploads"};
}

asio::awaitable<Result<PartSink>> Destination::OpenPart(std::string path, std::string) {
  co_return Error{errc::kUnsupported, Describe() + ": cannot resume uploads (" + path + ")"};
}

asio::awaitable<Result<std::vector<std::byte>>> Destination::ReadRange(std::string path, uint64_t,
                                                                       size_t) {
  co_return Error{errc::kUnsupported, Describe() + ": no ranged reads (" + path + ")"};
}

asio::awaitable<Status> Destination::SetDirMode(std::string path, uint32_t) {
  co_return Error{errc::kUnsupported,
                  Describe() + ": cannot change directory modes (" + path + ")"};
}

asio::awaitable<Result<std::optional<int64_t>>> Destination::DirMtime(std::string dir) {
  co_return Error{errc::kUnsupported, Describe() + ": no directory mtimes (" + dir + ")"};
}

}  // namespace ferry::transport
