// SFTP version 3 (draft-ietf-secsh-filexfer-02) packets, as OpenSSH's sftp-server
// speaks them. Pure: no I/O and no Asio, so every byte rule is unit-testable and
// fuzzable (//lib/sftp:codec_fuzz).
//
// Encoders return whole packets (uint32 length prefix included) ready to be
// written to the channel. The decoding side is a PacketFramer that cuts the
// received byte stream into packets, plus parsers for the server's replies.
// Decoding treats its input as hostile: every length and count is checked
// against the bytes that are actually there (and packets against
// kMaxPacketLength) before anything is allocated, and a violation is
// errc::kProtocol, never a crash.
//
// SFTP status codes live in their own error category ("sftp"): an FX_* status
// turns into std::error_code{code, sftp_category()}. FX_NO_SUCH_FILE compares
// equal to std::errc::no_such_file_or_directory, FX_PERMISSION_DENIED to
// std::errc::permission_denied and FX_OP_UNSUPPORTED to
// std::errc::operation_not_supported, so callers can test portable conditions.
#ifndef FERRY_SFTP_CODEC_H_
#define FERRY_SFTP_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "lib/base/result.h"

namespace ferry::sftp {

inline constexpr uint32_t kProtocolVersion = 3;

// The largest packet body (the length field's value) accepted from a server.
// OpenSSH never sends more than SFTP_MAX_MSG_LENGTH (256 KiB); the rest is slack.
inline constexpr uint32_t kMaxPacketLength = 256 * 1024 + 4096;

// What every SFTP v3 server must accept as READ/WRITE length (the draft's 32768);
// limits@openssh.com may allow more.
inline constexpr uint32_t kDefaultMaxDataLength = 32768;

enum class PacketType : uint8_t {
  kInit = 1,
  kVersion = 2,
  kOpen = 3,
  kClose = 4,
  kRead = 5,
  kWrite = 6,
  kLstat = 7,
  kFstat = 8,
  kSetstat = 9,
  kFsetstat = 10,
  kOpendir = 11,
  kReaddir = 12,
  kRemove = 13,
  kMkdir = 14,
  kRmdir = 15,
  kRealpath = 16,
  kStat = 17,
  kRename = 18,
  kReadlink = 19,
  kSymlink = 20,
  kStatus = 101,
  kHandle = 102,
  kData = 103,
  kName = 104,
  kAttrs = 105,
  kExtended = 200,
  kExtendedReply = 201,
};

// OPEN pflags.
inline constexpr uint32_t kOpenRead = 0x01;
inline constexpr uint32_t kOpenWrite = 0x02;
inline constexpr uint32_t kOpenAppend = 0x04;
inline constexpr uint32_t kOpenCreate = 0x08;
inline constexpr uint32_t kOpenTruncate = 0x10;
inline constexpr uint32_t kOpenExclusive = 0x20;

// ATTRS flags.
inline constexpr uint32_t kAttrSize = 0x01;
inline constexpr uint32_t kAttrUidGid = 0x02;
inline constexpr uint32_t kAttrPermissions = 0x04;
inline constexpr uint32_t kAttrAcModTime = 0x08;
inline constexpr uint32_t kAttrExtended = 0x80000000;

// Extension names (OpenSSH).
inline constexpr std::string_view kPosixRename = "posix-rename@openssh.com";
inline constexpr std::string_view kFsync = "fsync@openssh.com";
inline constexpr std::string_view kStatvfs = "statvfs@openssh.com";
inline constexpr std::string_view kLimits = "limits@openssh.com";
inline constexpr std::string_view kHardlink = "hardlink@openssh.com";

// SSH_FX_* status codes.
enum class StatusCode : uint32_t {
  kOk = 0,
  kEof = 1,
  kNoSuchFile = 2,
  kPermissionDenied = 3,
  kFailure = 4,
  kBadMessage = 5,
  kNoConnection = 6,
  kConnectionLost = 7,
  kOpUnsupported = 8,
};

// The "sftp" category: value = the FX_* code, message "FX_NO_SUCH_FILE (...)".
const std::error_category& sftp_category() noexcept;

inline std::error_code make_error_code(StatusCode code) noexcept {
  return {static_cast<int>(code), sftp_category()};
}

// File attributes. A field is meaningful only when its flag is set in `flags`.
struct Attrs {
  uint32_t flags = 0;
  uint64_t size = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t permissions = 0;  // st_mode: type bits and permission bits
  uint32_t atime = 0;        // seconds since the epoch (SFTP v3 has no more precision)
  uint32_t mtime = 0;
  std::vector<std::pair<std::string, std::string>> extended;

  bool Has(uint32_t flag) const { return (flags & flag) == flag; }
};

// One READDIR / REALPATH result.
struct NameEntry {
  std::string filename;
  std::string longname;  // "ls -l" style, informative only
  Attrs attrs;
};

struct Version {
  uint32_t version = 0;
  std::vector<std::pair<std::string, std::string>> extensions;  // name, data

  bool Has(std::string_view name) const;
};

struct StatusReply {
  uint32_t code = 0;  // an FX_* value (servers may send codes past kOpUnsupported)
  std::string message;
  std::string language;
};

// Any reply to a request (everything but VERSION). Which member is filled
// depends on `type`.
struct Reply {
  PacketType type = PacketType::kStatus;
  uint32_t id = 0;
  StatusReply status;            // kStatus
  std::string handle;            // kHandle
  std::string data;              // kData (file bytes); kExtendedReply (raw payload)
  std::vector<NameEntry> names;  // kName
  Attrs attrs;                   // kAttrs
};

// statvfs@openssh.com's reply (struct statvfs, all fields as uint64).
struct StatVfs {
  uint64_t bsize = 0, frsize = 0, blocks = 0, bfree = 0, bavail = 0, files = 0, ffree = 0,
           favail = 0, fsid = 0, flag = 0, namemax = 0;
};

// limits@openssh.com's reply; 0 means "no limit stated".
struct Limits {
  uint64_t max_packet_length = 0;
  uint64_t max_read_length = 0;
  uint64_t max_write_length = 0;
  uint64_t max_open_handles = 0;
};

// ---- Encoding ---------------------------------------------------------------
// Each returns a complete packet: uint32 length, type byte, then the fields.

std::string EncodeInit(uint32_t version = kProtocolVersion);
std::string EncodeOpen(uint32_t id, std::string_view path, uint32_t pflags, const Attrs& attrs);
std::string EncodeClose(uint32_t id, std::string_view handle);
std::string EncodeRead(uint32_t id, std::string_view handle, uint64_t offset, uint32_t length);
// `reuse`: a spent packet whose capacity is kept (WRITEs are the bulk of an
// upload; fresh 255 KiB allocations cost a page fault per 4 KiB here).
std::string EncodeWrite(uint32_t id, std::string_view handle, uint64_t offset,
                        std::span<const std::byte> data, std::string reuse = {});
std::string EncodeLstat(uint32_t id, std::string_view path);
std::string EncodeStat(uint32_t id, std::string_view path);
std::string EncodeFstat(uint32_t id, std::string_view handle);
std::string EncodeSetstat(uint32_t id, std::string_view path, const Attrs& attrs);
std::string EncodeFsetstat(uint32_t id, std::string_view handle, const Attrs& attrs);
std::string EncodeOpendir(uint32_t id, std::string_view path);
std::string EncodeReaddir(uint32_t id, std::string_view handle);
std::string EncodeRemove(uint32_t id, std::string_view path);
std::string EncodeMkdir(uint32_t id, std::string_view path, const Attrs& attrs);
std::string EncodeRmdir(uint32_t id, std::string_view path);
std::string EncodeRealpath(uint32_t id, std::string_view path);
// Plain SFTP v3 rename: OpenSSH refuses it when `new_path` exists.
std::string EncodeRename(uint32_t id, std::string_view old_path, std::string_view new_path);
std::string EncodeReadlink(uint32_t id, std::string_view path);
// Creates `link_path` pointing at `target`. The draft puts linkpath first, but
// OpenSSH's server (and client) send the TARGET first and the link path second
// (OpenSSH's PROTOCOL file, "SSH_FXP_SYMLINK arguments reversed"); this encodes
// OpenSSH's order, which is what servers in the wild follow. Tested against sshd.
std::string EncodeSymlink(uint32_t id, std::string_view link_path, std::string_view target);
// EXTENDED with an arbitrary name and already-encoded payload.
std::string EncodeExtended(uint32_t id, std::string_view name, std::string_view payload);
std::string EncodePosixRename(uint32_t id, std::string_view old_path, std::string_view new_path);
std::string EncodeFsync(uint32_t id, std::string_view handle);
std::string EncodeStatvfs(uint32_t id, std::string_view path);
std::string EncodeLimits(uint32_t id);
std::string EncodeHardlink(uint32_t id, std::string_view old_path, std::string_view new_path);

// The request id of an encoded request packet (bytes 5..8), for tests and logs.
std::optional<uint32_t> RequestIdOf(std::string_view packet);

// ---- Decoding ---------------------------------------------------------------

// Cuts a received byte stream into packet bodies (type byte first, length
// prefix removed). Memory: what Append was given and Next has not returned yet.
class PacketFramer {
 public:
  void Append(std::span<const std::byte> bytes);
  void Append(std::string_view bytes);
  // The next complete packet body; std::nullopt when more bytes are needed;
  // kProtocol when the length field is 0 or above kMaxPacketLength (the stream
  // cannot be resynchronised after that: the caller must give up on it).
  Result<std::optional<std::string>> Next();
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::string buffer_;
  size_t consumed_ = 0;
};

// Parses a VERSION body (the first packet a server sends).
Result<Version> ParseVersion(std::string_view body);
// Parses STATUS, HANDLE, DATA, NAME, ATTRS or EXTENDED_REPLY. Anything else
// (including VERSION after the handshake) is kProtocol.
Result<Reply> ParseReply(std::string_view body);
// Payloads of EXTENDED_REPLY (Reply::data).
Result<StatVfs> ParseStatVfs(std::string_view payload);
Result<Limits> ParseLimits(std::string_view payload);

// Bytes of the file system free for an unprivileged user (f_bavail fragments;
// f_bsize when a server leaves f_frsize 0). Saturates instead of overflowing.
uint64_t AvailableBytes(const StatVfs& vfs);
// SFTP v3 has no "no space" status: OpenSSH answers ENOSPC (and EDQUOT) with
// FX_FAILURE. After such a failure, whether the file system explains it: less
// is available than the `needed` bytes the upload still had to store, or
// nothing at all (needed 0: e.g. a CLOSE, whose size is unknown).
bool LooksOutOfSpace(const StatVfs& vfs, uint64_t needed);

// ---- Interpreting replies -----------------------------------------------------
// `what` names the operation and path for error details ("open /x/y"). A STATUS
// with a non-OK code becomes {code in sftp_category(), what + server message};
// an unexpected reply type is kProtocol.

Status ErrorFromStatus(const StatusReply& status, std::string_view what);
Status ExpectOk(const Reply& reply, std::string_view what);
Result<std::string> ExpectHandle(const Reply& reply, std::string_view what);
Result<Attrs> ExpectAttrs(const Reply& reply, std::string_view what);
// DATA's bytes; an empty string for FX_EOF.
Result<std::string> ExpectData(const Reply& reply, std::string_view what);
// NAME's entries; an empty vector for FX_EOF (end of a directory).
Result<std::vector<NameEntry>> ExpectNames(const Reply& reply, std::string_view what);
// The single name of a REALPATH / READLINK reply.
Result<std::string> ExpectOneName(const Reply& reply, std::string_view what);
Result<std::string> ExpectExtendedReply(const Reply& reply, std::string_view what);

}  // namespace ferry::sftp

template <>
struct std::is_error_code_enum<ferry::sftp::StatusCode> : std::true_type {};

#endif  // FERRY_SFTP_CODEC_H_
