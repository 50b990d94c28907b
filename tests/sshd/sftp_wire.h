// A few raw SFTP v3 packets (draft-ietf-secsh-filexfer-02) spoken over an
// ssh::Channel: just enough to prove the transport end to end before ferry's own
// SFTP client exists. Test-only; one request in flight at a time.
#ifndef FERRY_TESTS_SSHD_SFTP_WIRE_H_
#define FERRY_TESTS_SSHD_SFTP_WIRE_H_

#include <asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/result.h"
#include "lib/ssh/session.h"

namespace ferry::testing {

class SftpWire {
 public:
  explicit SftpWire(ssh::Channel& channel) : channel_(channel) {}

  // INIT / VERSION; returns the server's version.
  asio::awaitable<Result<uint32_t>> Init();
  // Writes `data` to a new (truncated) file at `path` in `chunk`-byte WRITEs.
  asio::awaitable<Status> PutFile(std::string path, std::string data, size_t chunk = 32000);
  // Reads the whole file at `path`.
  asio::awaitable<Result<std::string>> GetFile(std::string path);

 private:
  asio::awaitable<Status> Send(std::string body);
  asio::awaitable<Result<std::string>> Receive();
  asio::awaitable<Result<std::string>> Open(const std::string& path, uint32_t pflags);
  asio::awaitable<Status> ExpectOk(uint32_t id);
  asio::awaitable<Status> Close(const std::string& handle);

  ssh::Channel& channel_;
  std::string buffer_;  // bytes received and not yet consumed
  uint32_t next_id_ = 1;
};

}  // namespace ferry::testing

#endif  // FERRY_TESTS_SSHD_SFTP_WIRE_H_
