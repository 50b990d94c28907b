#include "tests/sshd/sftp_wire.h"

#include <span>

#include "ferry/error.h"

namespace ferry::testing {
namespace {

enum : uint8_t {
  kInit = 1,
  kVersion = 2,
  kOpen = 3,
  kClose = 4,
  kRead = 5,
  kWrite = 6,
  kStatus = 101,
  kHandle = 102,
  kData = 103,
};
enum : uint32_t { kRead_ = 0x1, kWriteFlag = 0x2, kCreat = 0x8, kTrunc = 0x10 };
constexpr uint32_t kStatusOk = 0, kStatusEof = 1;

void PutU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}
void PutU64(std::string& out, uint64_t v) {
  PutU32(out, static_cast<uint32_t>(v >> 32));
  PutU32(out, static_cast<uint32_t>(v));
}
void PutString(std::string& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint8_t U8() {
    if (in.empty()) {
      ok = false;
      return 0;
    }
    uint8_t v = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    return v;
  }
  uint32_t U32() {
    if (in.size() < 4) {
      ok = false;
      return 0;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
    in.remove_prefix(4);
    return v;
  }
  std::string String() {
    uint32_t n = U32();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

Error ProtocolError(std::string what) { return Error{errc::kProtocol, std::move(what)}; }

}  // namespace

asio::awaitable<Status> SftpWire::Send(std::string body) {
  std::string packet;
  PutU32(packet, static_cast<uint32_t>(body.size()));
  packet += body;
  std::span<const std::byte> rest = std::as_bytes(std::span(packet));
  while (!rest.empty()) {
    auto n = co_await channel_.Write(rest);
    if (!n.ok()) co_return n.error();
    rest = rest.subspan(*n);
  }
  co_return Status{};
}

asio::awaitable<Result<std::string>> SftpWire::Receive() {
  for (;;) {
    if (buffer_.size() >= 4) {
      Reader r{buffer_};
      uint32_t length = r.U32();
      if (buffer_.size() >= 4 + size_t{length}) {
        std::string body = buffer_.substr(4, length);
        buffer_.erase(0, 4 + size_t{length});
        co_return body;
      }
    }
    char chunk[65536];
    auto n = co_await channel_.Read(std::as_writable_bytes(std::span(chunk)));
    if (!n.ok()) co_return n.error();
    if (*n == 0) co_return ProtocolError("the server closed the SFTP channel");
    buffer_.append(chunk, *n);
  }
}

asio::awaitable<Result<uint32_t>> SftpWire::Init() {
  std::string body(1, static_cast<char>(kInit));
  PutU32(body, 3);
  if (Status s = co_await Send(body); !s.ok()) co_return s.error();
  auto reply = co_await Receive();
  if (!reply.ok()) co_return reply.error();
  Reader r{*reply};
  if (r.U8() != kVersion) co_return ProtocolError("expected SSH_FXP_VERSION");
  uint32_t version = r.U32();
  if (!r.ok) co_return ProtocolError("short SSH_FXP_VERSION");
  co_return version;
}

asio::awaitable<Status> SftpWire::ExpectOk(uint32_t id) {
  auto reply = co_await Receive();
  if (!reply.ok()) co_return reply.error();
  Reader r{*reply};
  uint8_t type = r.U8();
  uint32_t got_id = r.U32();
  uint32_t code = r.U32();
  if (!r.ok || type != kStatus || got_id != id) co_return ProtocolError("expected SSH_FXP_STATUS");
  if (code != kStatusOk)
    co_return ProtocolError("SFTP status " + std::to_string(code) + ": " + r.String());
  co_return Status{};
}

asio::awaitable<Result<std::string>> SftpWire::Open(const std::string& path, uint32_t pflags) {
  const uint32_t id = next_id_++;
  std::string body(1, static_cast<char>(kOpen));
  PutU32(body, id);
  PutString(body, path);
  PutU32(body, pflags);
  PutU32(body, 0);  // no attributes
  if (Status s = co_await Send(body); !s.ok()) co_return s.error();
  auto reply = co_await Receive();
  if (!reply.ok()) co_return reply.error();
  Reader r{*reply};
  uint8_t type = r.U8();
  if (r.U32() != id) co_return ProtocolError("reply to another request");
  if (type == kStatus)
    co_return ProtocolError("open " + path + " failed: status " + std::to_string(r.U32()));
  std::string handle = r.String();
  if (type != kHandle || !r.ok) co_return ProtocolError("expected SSH_FXP_HANDLE");
  co_return handle;
}

asio::awaitable<Status> SftpWire::Close(const std::string& handle) {
  const uint32_t id = next_id_++;
  std::string body(1, static_cast<char>(kClose));
  PutU32(body, id);
  PutString(body, handle);
  if (Status s = co_await Send(body); !s.ok()) co_return s;
  co_return co_await ExpectOk(id);
}

asio::awaitable<Status> SftpWire::PutFile(std::string path, std::string data, size_t chunk) {
  auto handle = co_await Open(path, kWriteFlag | kCreat | kTrunc);
  if (!handle.ok()) co_return handle.error();
  for (size_t offset = 0; offset < data.size(); offset += chunk) {
    const uint32_t id = next_id_++;
    std::string body(1, static_cast<char>(kWrite));
    PutU32(body, id);
    PutString(body, *handle);
    PutU64(body, offset);
    PutString(body, std::string_view(data).substr(offset, chunk));
    if (Status s = co_await Send(std::move(body)); !s.ok()) co_return s;
    if (Status s = co_await ExpectOk(id); !s.ok()) co_return s;
  }
  co_return co_await Close(*handle);
}

asio::awaitable<Result<std::string>> SftpWire::GetFile(std::string path) {
  auto handle = co_await Open(path, kRead_);
  if (!handle.ok()) co_return handle.error();
  std::string data;
  for (;;) {
    const uint32_t id = next_id_++;
    std::string body(1, static_cast<char>(kRead));
    PutU32(body, id);
    PutString(body, *handle);
    PutU64(body, data.size());
    PutU32(body, 32768);
    if (Status s = co_await Send(body); !s.ok()) co_return s.error();
    auto reply = co_await Receive();
    if (!reply.ok()) co_return reply.error();
    Reader r{*reply};
    uint8_t type = r.U8();
    if (r.U32() != id) co_return ProtocolError("reply to another request");
    if (type == kStatus) {
      uint32_t code = r.U32();
      if (code != kStatusEof)
        co_return ProtocolError("read failed: status " + std::to_string(code));
      break;
    }
    std::string chunk = r.String();
    if (type != kData || !r.ok) co_return ProtocolError("expected SSH_FXP_DATA");
    data += chunk;
  }
  if (Status s = co_await Close(*handle); !s.ok()) co_return s.error();
  co_return data;
}

}  // namespace ferry::testing
