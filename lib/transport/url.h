// Parsing a destination argument: a local path, sftp://[user@]host[:port]/path,
// or scp-style [user@]host:path. Pure.
#ifndef FERRY_TRANSPORT_URL_H_
#define FERRY_TRANSPORT_URL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/result.h"

namespace ferry::transport {

struct DestinationSpec {
  enum class Kind { kLocal, kSftp };
  Kind kind = Kind::kLocal;
  std::string path;  // local path; remote path ("" or relative = from the login directory)
  std::string user;  // empty: the current user (or ~/.ssh/config)
  std::string host;
  uint16_t port = 0;  // 0: default (22, or ~/.ssh/config)

  std::string ToString() const;
};

// sftp URLs: the path after the host is absolute ("sftp://h/srv/x" is /srv/x);
// "sftp://h/~/x" and scp-style "h:x" are relative to the login directory.
// "file://" URLs and anything without a host part are local. A colon after the
// first '/' (./a:b) does not make a path remote, as with scp.
Result<DestinationSpec> ParseDestination(std::string_view text);

}  // namespace ferry::transport

#endif  // FERRY_TRANSPORT_URL_H_
