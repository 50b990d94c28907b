// A destination that is a directory on this machine: the embedded default.
// Every path is resolved under the root with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), so neither ".." nor a symlink planted on the
// destination can lead a write outside it. Blocking syscalls run on `pool`.
#ifndef FERRY_TRANSPORT_LOCAL_LOCAL_DESTINATION_H_
#define FERRY_TRANSPORT_LOCAL_LOCAL_DESTINATION_H_

#include <memory>
#include <string>

#include "lib/transport/destination.h"

namespace asio {
class thread_pool;
}

namespace ferry::transport {

std::unique_ptr<Destination> MakeLocalDestination(std::string root, asio::thread_pool& pool);

}  // namespace ferry::transport

#endif  // FERRY_TRANSPORT_LOCAL_LOCAL_DESTINATION_H_
