#include "lib/transport/destination.h"

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

asio::awaitable<Result<std::optional<int64_t>>> Destination::DirMtime(std::string dir) {
  co_return Error{std::make_error_code(std::errc::operation_not_supported), "DirMtime " + dir};
}

}  // namespace ferry::transport
