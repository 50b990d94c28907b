// The Client's typed requests: encode, send, wait, interpret.
#include <string>

#include "ferry/error.h"
#include "lib/sftp/client.h"

namespace ferry::sftp {

asio::awaitable<Result<std::string>> Client::Open(std::string path, uint32_t pflags, Attrs attrs) {
  const uint32_t id = NextId();
  std::string packet = EncodeOpen(id, path, pflags, attrs);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectHandle(*reply, "open " + path);
}

asio::awaitable<Status> Client::Close(std::string handle) {
  const uint32_t id = NextId();
  std::string packet = EncodeClose(id, handle);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOk(*reply, "close");
}

asio::awaitable<Result<std::string>> Client::Read(std::string handle, uint64_t offset,
                                                  uint32_t length) {
  const uint32_t id = NextId();
  std::string packet = EncodeRead(id, handle, offset, length);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectData(*reply, "read");
}

asio::awaitable<Status> Client::Write(std::string handle, uint64_t offset,
                                      std::span<const std::byte> data) {
  const uint32_t id = NextId();
  std::string packet = EncodeWrite(id, handle, offset, data);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOk(*reply, "write");
}

asio::awaitable<Result<Attrs>> Client::Lstat(std::string path) {
  const uint32_t id = NextId();
  std::string packet = EncodeLstat(id, path);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectAttrs(*reply, "lstat " + path);
}

asio::awaitable<Result<Attrs>> Client::Stat(std::string path) {
  const uint32_t id = NextId();
  std::string packet = EncodeStat(id, path);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectAttrs(*reply, "stat " + path);
}

asio::awaitable<Result<Attrs>> Client::Fstat(std::string handle) {
  const uint32_t id = NextId();
  std::string packet = EncodeFstat(id, handle);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectAttrs(*reply, "fstat");
}

asio::awaitable<Status> Client::Setstat(std::string path, Attrs attrs) {
  const uint32_t id = NextId();
  std::string packet = EncodeSetstat(id, path, attrs);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOk(*reply, "setstat " + path);
}

asio::awaitable<Status> Client::Fsetstat(std::string handle, Attrs attrs) {
  const uint32_t id = NextId();
  std::string packet = EncodeFsetstat(id, handle, attrs);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOk(*reply, "fsetstat");
}

asio::awaitable<Result<std::string>> Client::Opendir(std::string path) {
  const uint32_t id = NextId();
  std::string packet = EncodeOpendir(id, path);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectHandle(*reply, "opendir " + path);
}

asio::awaitable<Result<std::vector<NameEntry>>> Client::Readdir(std::string handle) {
  const uint32_t id = NextId();
  std::string packet = EncodeReaddir(id, handle);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectNames(*reply, "readdir");
}

asio::awaitable<Status> Client::Remove(std::string path) {
  const uint32_t id = NextId();
  std::string packet = EncodeRemove(id, path);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOk(*reply, "remove " + path);
}

asio::awaitable<Status> Client::Mkdir(std::string path, Attrs attrs) {
  const uint32_t id = NextId();
  std::string packet = EncodeMkdir(id, path, attrs);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOk(*reply, "mkdir " + path);
}

asio::awaitable<Status> Client::Rmdir(std::string path) {
  const uint32_t id = NextId();
  std::string packet = EncodeRmdir(id, path);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOk(*reply, "rmdir " + path);
}

asio::awaitable<Result<std::string>> Client::Realpath(std::string path) {
  const uint32_t id = NextId();
  std::string packet = EncodeRealpath(id, path);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOneName(*reply, "realpath " + path);
}

asio::awaitable<Status> Client::Rename(std::string old_path, std::string new_path) {
  const uint32_t id = NextId();
  std::string packet = EncodeRename(id, old_path, new_path);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOk(*reply, "rename " + old_path + " -> " + new_path);
}

asio::awaitable<Result<std::string>> Client::Readlink(std::string path) {
  const uint32_t id = NextId();
  std::string packet = EncodeReadlink(id, path);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOneName(*reply, "readlink " + path);
}

asio::awaitable<Status> Client::Symlink(std::string link_path, std::string target) {
  const uint32_t id = NextId();
  std::string packet = EncodeSymlink(id, link_path, target);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOk(*reply, "symlink " + link_path);
}

asio::awaitable<Status> Client::ExtendedStatus(std::string_view extension, uint32_t id,
                                               std::string packet, std::string what) {
  if (!HasExtension(extension)) {
    co_return Error{errc::kUnsupported, what + ": the server lacks " + std::string(extension)};
  }
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  co_return ExpectOk(*reply, what);
}

asio::awaitable<Status> Client::PosixRename(std::string old_path, std::string new_path) {
  const uint32_t id = NextId();
  std::string packet = EncodePosixRename(id, old_path, new_path);
  std::string what = "rename " + old_path + " -> " + new_path;
  co_return co_await ExtendedStatus(kPosixRename, id, std::move(packet), std::move(what));
}

asio::awaitable<Status> Client::Fsync(std::string handle) {
  const uint32_t id = NextId();
  std::string packet = EncodeFsync(id, handle);
  std::string what = "fsync";
  co_return co_await ExtendedStatus(kFsync, id, std::move(packet), std::move(what));
}

asio::awaitable<Status> Client::Hardlink(std::string old_path, std::string new_path) {
  const uint32_t id = NextId();
  std::string packet = EncodeHardlink(id, old_path, new_path);
  std::string what = "hardlink " + old_path + " -> " + new_path;
  co_return co_await ExtendedStatus(kHardlink, id, std::move(packet), std::move(what));
}

asio::awaitable<Result<StatVfs>> Client::QueryStatVfs(std::string path) {
  if (!HasExtension(kStatvfs)) {
    co_return Error{errc::kUnsupported,
                    "statvfs " + path + ": the server lacks " + std::string(kStatvfs)};
  }
  const uint32_t id = NextId();
  std::string packet = EncodeStatvfs(id, path);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  auto payload = ExpectExtendedReply(*reply, "statvfs " + path);
  if (!payload.ok()) co_return payload.error();
  co_return ParseStatVfs(*payload);
}

asio::awaitable<Result<Limits>> Client::QueryLimits() {
  if (!HasExtension(kLimits)) {
    co_return Error{errc::kUnsupported, "the server lacks " + std::string(kLimits)};
  }
  const uint32_t id = NextId();
  std::string packet = EncodeLimits(id);
  auto reply = co_await Call(id, std::move(packet));
  if (!reply.ok()) co_return reply.error();
  auto payload = ExpectExtendedReply(*reply, "limits");
  if (!payload.ok()) co_return payload.error();
  co_return ParseLimits(*payload);
}

}  // namespace ferry::sftp
