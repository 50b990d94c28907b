#include "lib/compress/compress.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_frameHeaderSize, ZSTD_FRAMEHEADERSIZE_MAX
#include <zstd.h>
#include <zstd_errors.h>

#include "ferry/error.h"

namespace ferry::compress {
namespace {

static_assert(kFrameHeaderMaxBytes == ZSTD_FRAMEHEADERSIZE_MAX);

// zstd's error codes mapped to the conditions ferry's callers branch on; zstd's own
// name for the error goes into the detail.
Error ZstdError(size_t code, const char* what) {
  std::string detail = std::string(what) + ": " + ZSTD_getErrorName(code);
  switch (ZSTD_getErrorCode(code)) {
    case ZSTD_error_srcSize_wrong:
      return {make_error_code(errc::kSourceChanged), std::move(detail)};
    case ZSTD_error_memory_allocation:
      return {std::make_error_code(std::errc::not_enough_memory), std::move(detail)};
    case ZSTD_error_parameter_unsupported:
    case ZSTD_error_parameter_outOfBound:
    case ZSTD_error_stage_wrong:
    case ZSTD_error_init_missing:
      return {make_error_code(errc::kInvalidArgument), std::move(detail)};
    default:
      return {make_error_code(errc::kCorruptState), std::move(detail)};
  }
}

// Applies the per-frame parameters to a context that has just been reset.
Status Configure(ZSTD_CCtx* cctx, int level, std::optional<uint64_t> pledged_size) {
  if (level < kMinLevel || level > kMaxLevel) {
    return Status(errc::kInvalidArgument, "zstd level " + std::to_string(level) + " is outside [" +
                                              std::to_string(kMinLevel) + ", " +
                                              std::to_string(kMaxLevel) + "]");
  }
  size_t rc = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  if (!ZSTD_isError(rc) && pledged_size) {
    rc = ZSTD_CCtx_setPledgedSrcSize(cctx, *pledged_size);
  }
  if (ZSTD_isError(rc)) return ZstdError(rc, "configuring zstd");
  return {};
}

uint32_t ReadLe32(const std::byte* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

void FrameCompressor::ContextDeleter::operator()(ZSTD_CCtx_s* cctx) const { ZSTD_freeCCtx(cctx); }

FrameCompressor::FrameCompressor(int level, std::optional<uint64_t> pledged_size)
    : cctx_(ZSTD_createCCtx()) {
  // A failure is kept in error_ and reported by Compress().
  (void)Reset(level, pledged_size);
}

FrameCompressor::~FrameCompressor() = default;
FrameCompressor::FrameCompressor(FrameCompressor&&) noexcept = default;
FrameCompressor& FrameCompressor::operator=(FrameCompressor&&) noexcept = default;

Status FrameCompressor::Fail(Error error) {
  state_ = State::kFailed;
  error_ = std::move(error);
  return error_;
}

Status FrameCompressor::Reset(int level, std::optional<uint64_t> pledged_size) {
  if (cctx_ == nullptr) {
    cctx_.reset(ZSTD_createCCtx());  // also covers a moved-from compressor
    if (cctx_ == nullptr) {
      return Fail({std::make_error_code(std::errc::not_enough_memory), "ZSTD_createCCtx"});
    }
  }
  // Parameters too: each frame states its level and size explicitly. The memory
  // (tables, buffers) stays allocated across resets.
  size_t rc = ZSTD_CCtx_reset(cctx_.get(), ZSTD_reset_session_and_parameters);
  if (ZSTD_isError(rc)) return Fail(ZstdError(rc, "resetting zstd context"));
  if (Status s = Configure(cctx_.get(), level, pledged_size); !s.ok()) return Fail(s.error());
  pledged_size_ = pledged_size;
  fed_ = 0;
  state_ = State::kReady;
  error_ = {};
  return {};
}

Status FrameCompressor::Compress(std::span<const std::byte> in, bool last,
                                 std::vector<std::byte>& out) {
  switch (state_) {
    case State::kReady:
      break;
    case State::kFinished:
      return Status(errc::kInvalidArgument, "frame already finished; call Reset()");
    case State::kFailed:
      return error_;
  }
  if (pledged_size_) {
    const uint64_t total = fed_ + in.size();
    if (total > *pledged_size_ || (last && total != *pledged_size_)) {
      return Fail({make_error_code(errc::kSourceChanged),
                   "pledged " + std::to_string(*pledged_size_) + " bytes, " +
                       (last ? "got " : "got at least ") + std::to_string(total)});
    }
  }
  fed_ += in.size();
  const ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  const size_t step = ZSTD_CStreamOutSize();  // one block plus its header
  for (;;) {
    const size_t old_size = out.size();
    out.resize(old_size + step);
    ZSTD_outBuffer output{out.data() + old_size, step, 0};
    const size_t remaining = ZSTD_compressStream2(cctx_.get(), &output, &input, mode);
    out.resize(old_size + output.pos);
    if (ZSTD_isError(remaining)) return Fail(ZstdError(remaining, "zstd compression"));
    // With e_continue zstd may keep data buffered once the input is consumed; with
    // e_end it returns 0 only when the whole frame, checksum included, is flushed.
    const bool done = last ? remaining == 0 : input.pos == input.size;
    if (done) break;
  }
  if (last) state_ = State::kFinished;
  return {};
}

size_t FrameCompressor::MemoryUsage() const {
  return cctx_ == nullptr ? 0 : ZSTD_sizeof_CCtx(cctx_.get());
}

Result<std::optional<uint64_t>> FrameContentSize(std::span<const std::byte> header) {
  if (header.size() < ZSTD_FRAMEHEADERSIZE_PREFIX(ZSTD_f_zstd1)) {
    return Error{make_error_code(errc::kInvalidArgument),
                 "zstd frame header needs at least " +
                     std::to_string(ZSTD_FRAMEHEADERSIZE_PREFIX(ZSTD_f_zstd1)) + " bytes, got " +
                     std::to_string(header.size())};
  }
  if (ReadLe32(header.data()) != ZSTD_MAGICNUMBER) {
    return Error{make_error_code(errc::kCorruptState), "not a zstd frame (bad magic number)"};
  }
  const size_t header_size = ZSTD_frameHeaderSize(header.data(), header.size());
  if (ZSTD_isError(header_size)) return ZstdError(header_size, "reading zstd frame header");
  if (header.size() < header_size) {
    return Error{make_error_code(errc::kInvalidArgument),
                 "zstd frame header is " + std::to_string(header_size) + " bytes, got " +
                     std::to_string(header.size())};
  }
  const unsigned long long size = ZSTD_getFrameContentSize(header.data(), header.size());
  if (size == ZSTD_CONTENTSIZE_UNKNOWN) return std::optional<uint64_t>();
  if (size == ZSTD_CONTENTSIZE_ERROR) {
    return Error{make_error_code(errc::kCorruptState), "invalid zstd frame header"};
  }
  return std::optional<uint64_t>(size);
}

void FrameDecompressor::ContextDeleter::operator()(ZSTD_DCtx_s* dctx) const { ZSTD_freeDCtx(dctx); }

FrameDecompressor::FrameDecompressor() : dctx_(ZSTD_createDCtx()), out_(ZSTD_DStreamOutSize()) {}
FrameDecompressor::~FrameDecompressor() = default;
FrameDecompressor::FrameDecompressor(FrameDecompressor&&) noexcept = default;
FrameDecompressor& FrameDecompressor::operator=(FrameDecompressor&&) noexcept = default;

Status FrameDecompressor::Decompress(std::span<const std::byte> in, const Sink& sink) {
  if (dctx_ == nullptr) {
    return Error{std::make_error_code(std::errc::not_enough_memory), "ZSTD_createDCtx"};
  }
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  while (true) {
    ZSTD_outBuffer output{out_.data(), out_.size(), 0};
    size_t rc = ZSTD_decompressStream(dctx_.get(), &output, &input);
    if (ZSTD_isError(rc)) return ZstdError(rc, "zstd decompression");
    hint_ = rc;
    if (output.pos > 0) sink(std::span<const std::byte>(out_.data(), output.pos));
    // Done with this input once it is consumed and the output buffer was not filled
    // (a full buffer may mean more output is pending).
    if (input.pos == input.size && output.pos < output.size) return {};
  }
}

Status FrameDecompressor::Finish() const {
  if (hint_ != 0) return Error{make_error_code(errc::kCorruptState), "truncated zstd frame"};
  return {};
}

Result<std::vector<std::byte>> DecompressAll(std::span<const std::byte> frames) {
  if (frames.empty()) {
    return Error{make_error_code(errc::kCorruptState), "empty input is not a zstd frame"};
  }
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  if (dctx == nullptr) {
    return Error{std::make_error_code(std::errc::not_enough_memory), "ZSTD_createDCtx"};
  }
  std::vector<std::byte> out;
  // Sized up front when the first frame says how big it is.
  if (auto size = FrameContentSize(frames); size.ok() && size->has_value()) {
    out.reserve(static_cast<size_t>(std::min<uint64_t>(**size, uint64_t{1} << 30)));
  }
  ZSTD_inBuffer input{frames.data(), frames.size(), 0};
  const size_t step = ZSTD_DStreamOutSize();
  size_t hint = 1;  // nonzero: no frame completed yet
  while (input.pos < input.size || hint != 0) {
    const size_t old_size = out.size();
    out.resize(old_size + step);
    ZSTD_outBuffer output{out.data() + old_size, step, 0};
    const size_t consumed_before = input.pos;
    hint = ZSTD_decompressStream(dctx.get(), &output, &input);
    out.resize(old_size + output.pos);
    if (ZSTD_isError(hint)) return ZstdError(hint, "zstd decompression");
    // All input consumed, frame unfinished, and no progress: the data is truncated.
    if (hint != 0 && input.pos == input.size && output.pos == 0 && input.pos == consumed_before) {
      return Error{make_error_code(errc::kCorruptState), "truncated zstd frame"};
    }
  }
  return out;
}

}  // namespace ferry::compress
