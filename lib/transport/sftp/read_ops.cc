// Reading files back from the SFTP destination (ReadHead for zstd frame
// headers, ReadAll for --checksum), with READs pipelined.
#include <sys/stat.h>

#include <asio/thread_pool.hpp>
#include <deque>

#include "ferry/error.h"
#include "lib/base/offload.h"
#include "lib/base/path.h"
#include "lib/sftp/codec.h"
#include "lib/transport/sftp/destination_impl.h"

namespace ferry::transport::sftp_internal {
namespace {

using sftp::Client;
using sftp::Ticket;

// READs in flight per file: 8 x 255 KiB covers about 2 MiB per round trip.
constexpr size_t kReadWindow = 8;

// An open handle on a regular file (checked with an lstat sent alongside the
// OPEN, so a symlink on the destination is never followed).
struct OpenedFile {
  std::string handle;
  uint64_t size = 0;
};

asio::awaitable<Result<OpenedFile>> OpenRegular(Client& c, const std::string& abs) {
  const uint32_t lstat_id = c.NextId();
  std::string lstat_packet = sftp::EncodeLstat(lstat_id, abs);
  auto lstat = co_await c.Submit(lstat_id, std::move(lstat_packet));
  if (!lstat.ok()) co_return lstat.error();
  const uint32_t open_id = c.NextId();
  std::string open_packet = sftp::EncodeOpen(open_id, abs, sftp::kOpenRead, sftp::Attrs{});
  auto open = co_await c.Submit(open_id, std::move(open_packet));
  if (!open.ok()) co_return open.error();
  auto lstat_reply = co_await c.Await(*lstat);
  if (!lstat_reply.ok()) co_return lstat_reply.error();
  auto open_reply = co_await c.Await(*open);
  if (!open_reply.ok()) co_return open_reply.error();
  auto handle = sftp::ExpectHandle(*open_reply, "open");
  auto attrs = sftp::ExpectAttrs(*lstat_reply, "lstat");
  Error refused;
  if (!attrs.ok()) {
    refused = attrs.error();
  } else if (!attrs->Has(sftp::kAttrPermissions) || (attrs->permissions & S_IFMT) != S_IFREG) {
    const bool link = (attrs->permissions & S_IFMT) == S_IFLNK;
    refused = Error{std::make_error_code(link ? std::errc::too_many_symbolic_link_levels
                                              : std::errc::invalid_argument),
                    "not a regular file"};
  }
  if (refused.code) {
    if (handle.ok()) {
      const uint32_t id = c.NextId();
      std::string close = sftp::EncodeClose(id, *handle);
      (void)c.SubmitNow(id, std::move(close));
    }
    co_return refused;
  }
  if (!handle.ok()) co_return handle.error();
  co_return OpenedFile{std::move(*handle), attrs->size};
}

void CloseQuietly(Client& c, const std::string& handle) {
  const uint32_t id = c.NextId();
  std::string close = sftp::EncodeClose(id, handle);
  (void)c.SubmitNow(id, std::move(close));
}

}  // namespace

asio::awaitable<Result<std::vector<std::byte>>> SftpDestination::ReadHead(std::string path,
                                                                          size_t max_bytes) {
  if (path.empty() || !IsSafeRelPath(path)) {
    co_return Error{errc::kUnsafePath, "'" + Printable(path) + "'"};
  }
  for (int attempt = 1;; ++attempt) {
    auto head = co_await ReadHeadOnce(path, 0, max_bytes);
    if (head.ok() || head.code() != errc::kConnectionLost || attempt >= kAttemptsOnConnectionLoss) {
      co_return head;
    }
  }
}

asio::awaitable<Result<std::vector<std::byte>>> SftpDestination::ReadRange(std::string path,
                                                                           uint64_t offset,
                                                                           size_t max_bytes) {
  if (path.empty() || !IsSafeRelPath(path)) {
    co_return Error{errc::kUnsafePath, "'" + Printable(path) + "'"};
  }
  for (int attempt = 1;; ++attempt) {
    auto range = co_await ReadHeadOnce(path, offset, max_bytes);
    if (range.ok() || range.code() != errc::kConnectionLost ||
        attempt >= kAttemptsOnConnectionLoss) {
      co_return range;
    }
  }
}

// Up to `max_bytes` from `offset`, one READ at a time (a head or a
// verification range is small).
asio::awaitable<Result<std::vector<std::byte>>> SftpDestination::ReadHeadOnce(
    const std::string& path, uint64_t offset, size_t max_bytes) {
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return lease.error();
  Client& c = **lease;
  const std::string abs = Abs(path);
  auto file = co_await OpenRegular(c, abs);
  if (!file.ok()) co_return WithPath(file.error(), Display(path));
  std::vector<std::byte> head;
  while (head.size() < max_bytes) {
    const uint32_t want =
        static_cast<uint32_t>(std::min<size_t>(max_bytes - head.size(), c.max_read_length()));
    auto data = co_await c.Read(file->handle, offset + head.size(), want);
    if (!data.ok()) {
      CloseQuietly(c, file->handle);
      co_return WithPath(data.error(), Display(path));
    }
    if (data->empty()) break;
    const auto* bytes = reinterpret_cast<const std::byte*>(data->data());
    head.insert(head.end(), bytes, bytes + data->size());
  }
  CloseQuietly(c, file->handle);
  co_return head;
}

asio::awaitable<Status> SftpDestination::ReadAll(std::string path, ChunkFn chunk_fn) {
  if (path.empty() || !IsSafeRelPath(path)) {
    co_return Error{errc::kUnsafePath, "'" + Printable(path) + "'"};
  }
  for (int attempt = 1;; ++attempt) {
    // Once bytes went to chunk_fn, starting over would feed them twice.
    bool delivered = false;
    Status st = co_await ReadAllOnce(path, chunk_fn, delivered);
    if (st.code() != errc::kConnectionLost || delivered || attempt >= kAttemptsOnConnectionLoss) {
      co_return st;
    }
  }
}

asio::awaitable<Status> SftpDestination::ReadAllOnce(const std::string& path,
                                                     const ChunkFn& chunk_fn, bool& delivered) {
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return lease.error();
  Client& c = **lease;
  const std::string abs = Abs(path);
  auto file = co_await OpenRegular(c, abs);
  if (!file.ok()) co_return WithPath(file.error(), Display(path));
  const uint32_t chunk = c.max_read_length();
  struct InFlight {
    uint64_t offset;
    Ticket ticket;
  };
  std::deque<InFlight> inflight;
  uint64_t next_offset = 0;  // of the next READ to send
  uint64_t position = 0;     // bytes handed to chunk_fn so far
  bool eof = false;
  Status failure;

  // chunk_fn may be slow (hashing, zstd): it runs on the pool, one at a time.
  auto deliver = [&](std::string piece) -> asio::awaitable<void> {
    const ChunkFn* fn = &chunk_fn;
    auto job = [fn, piece = std::move(piece)]() -> int {
      (*fn)(std::as_bytes(std::span(piece.data(), piece.size())));
      return 0;
    };
    (void)co_await Offload(thread_pool_, std::move(job));
  };

  while (failure.ok()) {
    while (!eof && inflight.size() < kReadWindow) {
      const uint32_t id = c.NextId();
      std::string packet = sftp::EncodeRead(id, file->handle, next_offset, chunk);
      auto t = co_await c.Submit(id, std::move(packet));
      if (!t.ok()) co_return WithPath(t.error(), Display(path));
      inflight.push_back(InFlight{next_offset, std::move(*t)});
      next_offset += chunk;
    }
    if (inflight.empty()) break;
    InFlight front = std::move(inflight.front());
    inflight.pop_front();
    auto reply = co_await c.Await(front.ticket);
    if (!reply.ok()) co_return WithPath(reply.error(), Display(path));
    auto data = sftp::ExpectData(*reply, "read");
    if (!data.ok()) {
      failure = WithPath(data.error(), Display(path));
      break;
    }
    if (eof) continue;  // replies past the end: drained, ignored
    if (data->empty()) {
      eof = true;
      continue;
    }
    const size_t got = data->size();
    delivered = true;
    position += got;
    std::string piece = std::move(*data);
    co_await deliver(std::move(piece));
    // A short read that is not the end: fetch the rest of this range before
    // the replies already in flight for later ranges.
    const uint64_t range_end = front.offset + chunk;
    while (got < chunk && position < range_end && !eof && failure.ok()) {
      auto more =
          co_await c.Read(file->handle, position, static_cast<uint32_t>(range_end - position));
      if (!more.ok()) {
        if (more.code() == errc::kConnectionLost) co_return WithPath(more.error(), Display(path));
        failure = WithPath(more.error(), Display(path));
        break;
      }
      if (more->empty()) {
        eof = true;
        break;
      }
      position += more->size();
      std::string rest = std::move(*more);
      co_await deliver(std::move(rest));
    }
  }
  CloseQuietly(c, file->handle);
  co_return failure;
}

}  // namespace ferry::transport::sftp_internal
