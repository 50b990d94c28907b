#include "lib/sftp/codec.h"

#include <cassert>
#include <cstring>

#include "ferry/error.h"

namespace ferry::sftp {
namespace {

// ---- the "sftp" error category ------------------------------------------------

class SftpCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sftp"; }

  std::string message(int value) const override {
    switch (static_cast<StatusCode>(value)) {
      case StatusCode::kOk:
        return "FX_OK (success)";
      case StatusCode::kEof:
        return "FX_EOF (end of file)";
      case StatusCode::kNoSuchFile:
        return "FX_NO_SUCH_FILE (no such file or directory)";
      case StatusCode::kPermissionDenied:
        return "FX_PERMISSION_DENIED (permission denied)";
      case StatusCode::kFailure:
        return "FX_FAILURE (the server reported a failure)";
      case StatusCode::kBadMessage:
        return "FX_BAD_MESSAGE (the server rejected the request)";
      case StatusCode::kNoConnection:
        return "FX_NO_CONNECTION (no connection)";
      case StatusCode::kConnectionLost:
        return "FX_CONNECTION_LOST (connection lost)";
      case StatusCode::kOpUnsupported:
        return "FX_OP_UNSUPPORTED (operation not supported)";
    }
    return "SFTP status " + std::to_string(value);
  }

  // Lets `code == std::errc::no_such_file_or_directory` work for sftp codes.
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<StatusCode>(value)) {
      case StatusCode::kNoSuchFile:
        return std::errc::no_such_file_or_directory;
      case StatusCode::kPermissionDenied:
        return std::errc::permission_denied;
      case StatusCode::kOpUnsupported:
        return std::errc::operation_not_supported;
      default:
        return {value, *this};
    }
  }
};

// ---- encoding -------------------------------------------------------------------

// Builds one packet: reserves the length, appends fields, patches the length.
class Builder {
 public:
  explicit Builder(PacketType type, size_t reserve = 64, std::string reuse = {})
      : out_(std::move(reuse)) {
    out_.clear();
    out_.reserve(reserve + 5);
    out_.append(4, '\0');
    out_.push_back(static_cast<char>(type));
  }
  Builder& U8(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Builder& U32(uint32_t v) {
    char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                 static_cast<char>(v)};
    out_.append(b, 4);
    return *this;
  }
  Builder& U64(uint64_t v) {
    U32(static_cast<uint32_t>(v >> 32));
    return U32(static_cast<uint32_t>(v));
  }
  Builder& String(std::string_view s) {
    assert(s.size() <= UINT32_MAX);
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s);
    return *this;
  }
  Builder& Bytes(std::span<const std::byte> s) {
    return String(std::string_view(reinterpret_cast<const char*>(s.data()), s.size()));
  }
  Builder& Raw(std::string_view s) {
    out_.append(s);
    return *this;
  }
  Builder& AttrsField(const Attrs& a) {
    U32(a.flags);
    if (a.Has(kAttrSize)) U64(a.size);
    if (a.Has(kAttrUidGid)) U32(a.uid).U32(a.gid);
    if (a.Has(kAttrPermissions)) U32(a.permissions);
    if (a.Has(kAttrAcModTime)) U32(a.atime).U32(a.mtime);
    if (a.Has(kAttrExtended)) {
      U32(static_cast<uint32_t>(a.extended.size()));
      for (const auto& [type, data] : a.extended) String(type).String(data);
    }
    return *this;
  }
  std::string Finish() {
    const uint32_t n = static_cast<uint32_t>(out_.size() - 4);
    out_[0] = static_cast<char>(n >> 24);
    out_[1] = static_cast<char>(n >> 16);
    out_[2] = static_cast<char>(n >> 8);
    out_[3] = static_cast<char>(n);
    return std::move(out_);
  }

 private:
  std::string out_;
};

std::string IdAndString(PacketType type, uint32_t id, std::string_view s) {
  return Builder(type, 8 + s.size()).U32(id).String(s).Finish();
}

std::string IdAndTwoStrings(PacketType type, uint32_t id, std::string_view a, std::string_view b) {
  return Builder(type, 12 + a.size() + b.size()).U32(id).String(a).String(b).Finish();
}

// ---- decoding -------------------------------------------------------------------

Error Malformed(std::string_view what) {
  return Error{errc::kProtocol, "malformed SFTP packet: " + std::string(what)};
}

// Reads big-endian fields; any overrun sets ok = false and yields zeros/empties.
struct Reader {
  std::string_view in;
  bool ok = true;

  uint8_t U8() {
    if (in.empty()) return Fail<uint8_t>();
    uint8_t v = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    return v;
  }
  uint32_t U32() {
    if (in.size() < 4) return Fail<uint32_t>();
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
    in.remove_prefix(4);
    return v;
  }
  uint64_t U64() {
    uint64_t hi = U32();
    uint64_t lo = U32();
    return (hi << 32) | lo;
  }
  // A string view into the input; its length is checked against what is left.
  std::string_view StringView() {
    uint32_t n = U32();
    if (!ok || n > in.size()) return Fail<std::string_view>();
    std::string_view s = in.substr(0, n);
    in.remove_prefix(n);
    return s;
  }
  std::string String() { return std::string(StringView()); }

  template <typename T>
  T Fail() {
    ok = false;
    in = {};
    return T{};
  }
};

constexpr uint32_t kKnownAttrFlags =
    kAttrSize | kAttrUidGid | kAttrPermissions | kAttrAcModTime | kAttrExtended;

bool ReadAttrs(Reader& r, Attrs& a) {
  a.flags = r.U32();
  if (!r.ok) return false;
  // Unknown flags announce fields of unknown size: the rest cannot be parsed.
  if ((a.flags & ~kKnownAttrFlags) != 0) return false;
  if (a.Has(kAttrSize)) a.size = r.U64();
  if (a.Has(kAttrUidGid)) {
    a.uid = r.U32();
    a.gid = r.U32();
  }
  if (a.Has(kAttrPermissions)) a.permissions = r.U32();
  if (a.Has(kAttrAcModTime)) {
    a.atime = r.U32();
    a.mtime = r.U32();
  }
  if (a.Has(kAttrExtended)) {
    uint32_t count = r.U32();
    // Each pair takes at least two length fields: a count beyond that is a lie.
    if (!r.ok || count > r.in.size() / 8) return false;
    a.extended.reserve(count);
    for (uint32_t i = 0; i < count && r.ok; ++i) {
      std::string type = r.String();
      std::string data = r.String();
      a.extended.emplace_back(std::move(type), std::move(data));
    }
  }
  return r.ok;
}

}  // namespace

const std::error_category& sftp_category() noexcept {
  static const SftpCategory category;
  return category;
}

bool Version::Has(std::string_view name) const {
  for (const auto& [n, data] : extensions) {
    if (n == name) return true;
  }
  return false;
}

// ---- encoders -----------------------------------------------------------------------

std::string EncodeInit(uint32_t version) {
  return Builder(PacketType::kInit).U32(version).Finish();
}

std::string EncodeOpen(uint32_t id, std::string_view path, uint32_t pflags, const Attrs& attrs) {
  return Builder(PacketType::kOpen, 32 + path.size())
      .U32(id)
      .String(path)
      .U32(pflags)
      .AttrsField(attrs)
      .Finish();
}

std::string EncodeClose(uint32_t id, std::string_view handle) {
  return IdAndString(PacketType::kClose, id, handle);
}

std::string EncodeRead(uint32_t id, std::string_view handle, uint64_t offset, uint32_t length) {
  return Builder(PacketType::kRead, 24 + handle.size())
      .U32(id)
      .String(handle)
      .U64(offset)
      .U32(length)
      .Finish();
}

std::string EncodeWrite(uint32_t id, std::string_view handle, uint64_t offset,
                        std::span<const std::byte> data, std::string reuse) {
  return Builder(PacketType::kWrite, 24 + handle.size() + data.size(), std::move(reuse))
      .U32(id)
      .String(handle)
      .U64(offset)
      .Bytes(data)
      .Finish();
}

std::string EncodeLstat(uint32_t id, std::string_view path) {
  return IdAndString(PacketType::kLstat, id, path);
}
std::string EncodeStat(uint32_t id, std::string_view path) {
  return IdAndString(PacketType::kStat, id, path);
}
std::string EncodeFstat(uint32_t id, std::string_view handle) {
  return IdAndString(PacketType::kFstat, id, handle);
}

std::string EncodeSetstat(uint32_t id, std::string_view path, const Attrs& attrs) {
  return Builder(PacketType::kSetstat, 40 + path.size())
      .U32(id)
      .String(path)
      .AttrsField(attrs)
      .Finish();
}

std::string EncodeFsetstat(uint32_t id, std::string_view handle, const Attrs& attrs) {
  return Builder(PacketType::kFsetstat, 40 + handle.size())
      .U32(id)
      .String(handle)
      .AttrsField(attrs)
      .Finish();
}

std::string EncodeOpendir(uint32_t id, std::string_view path) {
  return IdAndString(PacketType::kOpendir, id, path);
}
std::string EncodeReaddir(uint32_t id, std::string_view handle) {
  return IdAndString(PacketType::kReaddir, id, handle);
}
std::string EncodeRemove(uint32_t id, std::string_view path) {
  return IdAndString(PacketType::kRemove, id, path);
}

std::string EncodeMkdir(uint32_t id, std::string_view path, const Attrs& attrs) {
  return Builder(PacketType::kMkdir, 40 + path.size())
      .U32(id)
      .String(path)
      .AttrsField(attrs)
      .Finish();
}

std::string EncodeRmdir(uint32_t id, std::string_view path) {
  return IdAndString(PacketType::kRmdir, id, path);
}
std::string EncodeRealpath(uint32_t id, std::string_view path) {
  return IdAndString(PacketType::kRealpath, id, path);
}
std::string EncodeRename(uint32_t id, std::string_view old_path, std::string_view new_path) {
  return IdAndTwoStrings(PacketType::kRename, id, old_path, new_path);
}
std::string EncodeReadlink(uint32_t id, std::string_view path) {
  return IdAndString(PacketType::kReadlink, id, path);
}
std::string EncodeSymlink(uint32_t id, std::string_view link_path, std::string_view target) {
  // OpenSSH's order: target ("oldpath") first, then the link to create.
  return IdAndTwoStrings(PacketType::kSymlink, id, target, link_path);
}

std::string EncodeExtended(uint32_t id, std::string_view name, std::string_view payload) {
  return Builder(PacketType::kExtended, 12 + name.size() + payload.size())
      .U32(id)
      .String(name)
      .Raw(payload)
      .Finish();
}

namespace {
std::string Str(std::string_view s) {
  std::string out;
  out.reserve(4 + s.size());
  const uint32_t n = static_cast<uint32_t>(s.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(s);
  return out;
}
}  // namespace

std::string EncodePosixRename(uint32_t id, std::string_view old_path, std::string_view new_path) {
  return EncodeExtended(id, kPosixRename, Str(old_path) + Str(new_path));
}
std::string EncodeFsync(uint32_t id, std::string_view handle) {
  return EncodeExtended(id, kFsync, Str(handle));
}
std::string EncodeStatvfs(uint32_t id, std::string_view path) {
  return EncodeExtended(id, kStatvfs, Str(path));
}
std::string EncodeLimits(uint32_t id) { return EncodeExtended(id, kLimits, {}); }
std::string EncodeHardlink(uint32_t id, std::string_view old_path, std::string_view new_path) {
  return EncodeExtended(id, kHardlink, Str(old_path) + Str(new_path));
}

std::optional<uint32_t> RequestIdOf(std::string_view packet) {
  if (packet.size() < 9) return std::nullopt;
  Reader r{packet.substr(5)};
  return r.U32();
}

// ---- framing --------------------------------------------------------------------------

void PacketFramer::Append(std::span<const std::byte> bytes) {
  Append(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void PacketFramer::Append(std::string_view bytes) {
  // Drop what was consumed before growing, so the buffer stays about one packet.
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

Result<std::optional<std::string>> PacketFramer::Next() {
  std::string_view rest = std::string_view(buffer_).substr(consumed_);
  if (rest.size() < 4) return std::optional<std::string>();
  Reader r{rest};
  const uint32_t length = r.U32();
  if (length == 0) return Malformed("zero-length packet");
  if (length > kMaxPacketLength) {
    return Malformed("packet of " + std::to_string(length) + " bytes (limit " +
                     std::to_string(kMaxPacketLength) + ")");
  }
  if (rest.size() - 4 < length) return std::optional<std::string>();
  std::string body(rest.substr(4, length));
  consumed_ += 4 + size_t{length};
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  return std::optional<std::string>(std::move(body));
}

// ---- parsing ----------------------------------------------------------------------------

Result<Version> ParseVersion(std::string_view body) {
  Reader r{body};
  if (r.U8() != static_cast<uint8_t>(PacketType::kVersion)) return Malformed("expected VERSION");
  Version v;
  v.version = r.U32();
  if (!r.ok) return Malformed("short VERSION");
  while (r.ok && !r.in.empty()) {
    std::string name = r.String();
    std::string data = r.String();
    if (!r.ok) return Malformed("truncated extension in VERSION");
    v.extensions.emplace_back(std::move(name), std::move(data));
  }
  return v;
}

Result<Reply> ParseReply(std::string_view body) {
  Reader r{body};
  Reply reply;
  const uint8_t type = r.U8();
  reply.id = r.U32();
  if (!r.ok) return Malformed("short reply header");
  switch (static_cast<PacketType>(type)) {
    case PacketType::kStatus:
      reply.type = PacketType::kStatus;
      reply.status.code = r.U32();
      if (!r.ok) return Malformed("short STATUS");
      // Message and language tag are optional in practice (old servers omit them).
      if (!r.in.empty()) {
        reply.status.message = r.String();
        if (r.ok && !r.in.empty()) reply.status.language = r.String();
        if (!r.ok) return Malformed("truncated STATUS message");
      }
      return reply;
    case PacketType::kHandle:
      reply.type = PacketType::kHandle;
      reply.handle = r.String();
      // OpenSSH's are 4 bytes; the draft caps handles at 256 bytes.
      if (!r.ok || reply.handle.size() > 256) return Malformed("bad HANDLE");
      return reply;
    case PacketType::kData:
      reply.type = PacketType::kData;
      reply.data = r.String();
      if (!r.ok) return Malformed("truncated DATA");
      return reply;
    case PacketType::kName: {
      reply.type = PacketType::kName;
      const uint32_t count = r.U32();
      // Each entry is at least two string lengths and an attrs flags word.
      if (!r.ok || count > r.in.size() / 12) return Malformed("NAME count exceeds the packet");
      reply.names.reserve(count);
      for (uint32_t i = 0; i < count; ++i) {
        NameEntry e;
        e.filename = r.String();
        e.longname = r.String();
        if (!r.ok || !ReadAttrs(r, e.attrs)) return Malformed("truncated NAME entry");
        reply.names.push_back(std::move(e));
      }
      return reply;
    }
    case PacketType::kAttrs:
      reply.type = PacketType::kAttrs;
      if (!ReadAttrs(r, reply.attrs)) return Malformed("bad ATTRS");
      return reply;
    case PacketType::kExtendedReply:
      reply.type = PacketType::kExtendedReply;
      reply.data = std::string(r.in);
      return reply;
    default:
      return Malformed("unexpected packet type " + std::to_string(type));
  }
}

Result<StatVfs> ParseStatVfs(std::string_view payload) {
  Reader r{payload};
  StatVfs s;
  for (uint64_t* field : {&s.bsize, &s.frsize, &s.blocks, &s.bfree, &s.bavail, &s.files, &s.ffree,
                          &s.favail, &s.fsid, &s.flag, &s.namemax}) {
    *field = r.U64();
  }
  if (!r.ok) return Malformed("short statvfs reply");
  return s;
}

uint64_t AvailableBytes(const StatVfs& vfs) {
  const uint64_t unit = vfs.frsize != 0 ? vfs.frsize : vfs.bsize;
  if (unit != 0 && vfs.bavail > UINT64_MAX / unit) return UINT64_MAX;
  return vfs.bavail * unit;
}

bool LooksOutOfSpace(const StatVfs& vfs, uint64_t needed) {
  const uint64_t available = AvailableBytes(vfs);
  return available == 0 || available < needed;
}

Result<Limits> ParseLimits(std::string_view payload) {
  Reader r{payload};
  Limits l;
  l.max_packet_length = r.U64();
  l.max_read_length = r.U64();
  l.max_write_length = r.U64();
  l.max_open_handles = r.U64();
  if (!r.ok) return Malformed("short limits reply");
  return l;
}

// ---- interpreting ---------------------------------------------------------------------------

Status ErrorFromStatus(const StatusReply& status, std::string_view what) {
  if (status.code == static_cast<uint32_t>(StatusCode::kOk)) return {};
  std::string detail(what);
  // The server's text, when it adds something ("No such file" repeats the code).
  if (!status.message.empty() && status.message.size() < 512) {
    detail += " (server: ";
    for (char c : status.message) {
      detail.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
    }
    detail += ")";
  }
  // Codes above INT_MAX would turn negative: they are nonsense anyway.
  const int value = status.code > 0x7fffffff ? static_cast<int>(StatusCode::kFailure)
                                             : static_cast<int>(status.code);
  return Error{{value, sftp_category()}, std::move(detail)};
}

namespace {
Error Unexpected(const Reply& reply, std::string_view what, std::string_view expected) {
  return Error{errc::kProtocol, std::string(what) + ": expected " + std::string(expected) +
                                    ", got packet type " +
                                    std::to_string(static_cast<int>(reply.type))};
}
}  // namespace

Status ExpectOk(const Reply& reply, std::string_view what) {
  if (reply.type != PacketType::kStatus) return Unexpected(reply, what, "STATUS");
  return ErrorFromStatus(reply.status, what);
}

Result<std::string> ExpectHandle(const Reply& reply, std::string_view what) {
  if (reply.type == PacketType::kHandle) return reply.handle;
  if (reply.type == PacketType::kStatus) {
    Status st = ErrorFromStatus(reply.status, what);
    if (!st.ok()) return st.error();
  }
  return Unexpected(reply, what, "HANDLE");
}

Result<Attrs> ExpectAttrs(const Reply& reply, std::string_view what) {
  if (reply.type == PacketType::kAttrs) return reply.attrs;
  if (reply.type == PacketType::kStatus) {
    Status st = ErrorFromStatus(reply.status, what);
    if (!st.ok()) return st.error();
  }
  return Unexpected(reply, what, "ATTRS");
}

Result<std::string> ExpectData(const Reply& reply, std::string_view what) {
  if (reply.type == PacketType::kData) return reply.data;
  if (reply.type == PacketType::kStatus) {
    if (reply.status.code == static_cast<uint32_t>(StatusCode::kEof)) return std::string();
    Status st = ErrorFromStatus(reply.status, what);
    if (!st.ok()) return st.error();
  }
  return Unexpected(reply, what, "DATA");
}

Result<std::vector<NameEntry>> ExpectNames(const Reply& reply, std::string_view what) {
  if (reply.type == PacketType::kName) return reply.names;
  if (reply.type == PacketType::kStatus) {
    if (reply.status.code == static_cast<uint32_t>(StatusCode::kEof)) {
      return std::vector<NameEntry>();
    }
    Status st = ErrorFromStatus(reply.status, what);
    if (!st.ok()) return st.error();
  }
  return Unexpected(reply, what, "NAME");
}

Result<std::string> ExpectOneName(const Reply& reply, std::string_view what) {
  if (reply.type == PacketType::kName) {
    if (reply.names.size() != 1) {
      return Error{errc::kProtocol, std::string(what) + ": expected exactly one name, got " +
                                        std::to_string(reply.names.size())};
    }
    return reply.names[0].filename;
  }
  if (reply.type == PacketType::kStatus) {
    Status st = ErrorFromStatus(reply.status, what);
    if (!st.ok()) return st.error();
  }
  return Unexpected(reply, what, "NAME");
}

Result<std::string> ExpectExtendedReply(const Reply& reply, std::string_view what) {
  if (reply.type == PacketType::kExtendedReply) return reply.data;
  if (reply.type == PacketType::kStatus) {
    Status st = ErrorFromStatus(reply.status, what);
    if (!st.ok()) return st.error();
  }
  return Unexpected(reply, what, "EXTENDED_REPLY");
}

}  // namespace ferry::sftp
