// Compression of file contents as standard zstd frames.
//
// One file is one zstd frame, produced chunk by chunk so memory does not grow with the
// file size. The frame carries the content size (when the caller knows it) and a
// checksum, so `zstd -d` reads it byte for byte and a receiver can size its buffers
// and detect corruption without any ferry-specific framing.
//
// Pure and synchronous: nothing here does I/O; callers run it on a thread pool.
#ifndef FERRY_COMPRESS_COMPRESS_H_
#define FERRY_COMPRESS_COMPRESS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "lib/base/result.h"

struct ZSTD_CCtx_s;  // zstd.h stays out of ferry's headers.
struct ZSTD_DCtx_s;

namespace ferry::compress {

inline constexpr int kMinLevel = 1;
inline constexpr int kMaxLevel = 19;
inline constexpr int kDefaultLevel = 3;

// Enough leading bytes of a frame for FrameContentSize() to always succeed
// (ZSTD_FRAMEHEADERSIZE_MAX; checked against zstd.h in compress.cc).
inline constexpr size_t kFrameHeaderMaxBytes = 18;

// Compresses one file into one zstd frame, streaming.
//
//   FrameCompressor c(3, file_size);
//   while (...) RETURN_ON_ERROR(c.Compress(chunk, is_last_chunk, out));
//   c.Reset(3, next_file_size);  // same context, next file
//
// A compression context holds several MiB of tables; Reset() keeps them, so one
// FrameCompressor per worker thread serves every file that thread handles.
//
// Not thread-safe: one thread at a time (it is movable between threads).
class FrameCompressor {
 public:
  // `level` must be within [kMinLevel, kMaxLevel]. `pledged_size` is the exact number
  // of bytes the caller will feed; when given it is written into the frame header and
  // feeding a different amount fails with errc::kSourceChanged. Construction does not
  // fail: an invalid level (or an allocation failure) is reported by the first
  // Compress() call, with errc::kInvalidArgument (or std::errc::not_enough_memory).
  explicit FrameCompressor(int level = kDefaultLevel,
                           std::optional<uint64_t> pledged_size = std::nullopt);
  ~FrameCompressor();
  FrameCompressor(FrameCompressor&&) noexcept;
  FrameCompressor& operator=(FrameCompressor&&) noexcept;
  FrameCompressor(const FrameCompressor&) = delete;
  FrameCompressor& operator=(const FrameCompressor&) = delete;

  // Compresses `in` and appends whatever compressed bytes are ready to `out` (which
  // may be none while zstd buffers). `last` ends the frame: everything still buffered,
  // plus the checksum, is appended. After the last chunk, or after any error, only
  // Reset() makes the compressor usable again; Compress() fails with
  // errc::kInvalidArgument until then.
  //
  // Errors: errc::kSourceChanged when the bytes fed differ from `pledged_size`;
  // errc::kInvalidArgument for a bad level or misuse; std::errc::not_enough_memory.
  // On error, `out` may hold a partial frame: discard it.
  Status Compress(std::span<const std::byte> in, bool last, std::vector<std::byte>& out);

  // Starts a new frame, keeping the context's memory. Also abandons a frame in
  // progress. Returns the same errors as the constructor would report (and those are
  // reported again by the next Compress()).
  Status Reset(int level = kDefaultLevel, std::optional<uint64_t> pledged_size = std::nullopt);

  // Bytes held by the compression context (for memory budgets and tests).
  size_t MemoryUsage() const;

 private:
  struct ContextDeleter {
    void operator()(ZSTD_CCtx_s* cctx) const;
  };
  enum class State { kReady, kFinished, kFailed };

  Status Fail(Error error);

  std::unique_ptr<ZSTD_CCtx_s, ContextDeleter> cctx_;
  // Checked here, not only by zstd: zstd replaces the pledge with the input size when
  // a whole frame arrives in one call.
  std::optional<uint64_t> pledged_size_;
  uint64_t fed_ = 0;  // bytes of input so far in this frame
  State state_ = State::kFailed;
  Error error_;  // why state_ is kFailed
};

// Reads the content size from the beginning of a zstd frame (at least the full frame
// header; kFrameHeaderMaxBytes is always enough). nullopt when the frame does not
// record its size.
//
// Errors: errc::kInvalidArgument when `header` is shorter than the frame header;
// errc::kCorruptState when the bytes are not a zstd frame (wrong magic number,
// skippable frame, reserved bits set).
Result<std::optional<uint64_t>> FrameContentSize(std::span<const std::byte> header);

// Decompresses a stream of zstd frames fed in arbitrary pieces, handing the
// plain bytes to a callback (for hashing a stored .zst without holding it).
// Finish() tells whether the input ended on a frame boundary.
class FrameDecompressor {
 public:
  FrameDecompressor();
  ~FrameDecompressor();
  FrameDecompressor(FrameDecompressor&&) noexcept;
  FrameDecompressor& operator=(FrameDecompressor&&) noexcept;

  using Sink = std::function<void(std::span<const std::byte>)>;
  Status Decompress(std::span<const std::byte> in, const Sink& sink);
  // kCorruptState when the last frame is incomplete.
  Status Finish() const;

 private:
  struct ContextDeleter {
    void operator()(ZSTD_DCtx_s* dctx) const;
  };
  std::unique_ptr<ZSTD_DCtx_s, ContextDeleter> dctx_;
  std::vector<std::byte> out_;
  size_t hint_ = 0;  // ZSTD_decompressStream's last return: 0 = at a frame boundary
};

// Decompresses one or more concatenated zstd frames in memory, verifying checksums.
// Meant for tests and verification of data of bounded size: the output is not
// limited. Errors: errc::kCorruptState for data that is not zstd, is corrupt or is
// truncated; std::errc::not_enough_memory.
Result<std::vector<std::byte>> DecompressAll(std::span<const std::byte> frames);

}  // namespace ferry::compress

#endif  // FERRY_COMPRESS_COMPRESS_H_
