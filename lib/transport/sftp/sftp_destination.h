// A destination on an SSH server, written through ferry's own SFTP v3 client
// (//lib/sftp): `ferry push SRC sftp://user@host:port/path`.
//
// Connections: `connections` SSH sessions with up to `channels_per_connection`
// SFTP channels each (OpenSSH allows 10 per session: MaxSessions). Open()
// connects the first session before returning, so host key and authentication
// errors come out of Open() with their own codes (kHostKeyUnknown, kAuthFailed,
// ...); the rest are opened as load grows. Operations go to the least loaded
// channel, and every request of an operation is pipelined: a file is OPEN (temp
// name) -> WRITEs (many in flight) -> FSETSTAT (mode, mtime) [-> fsync] -> CLOSE,
// then posix-rename@openssh.com over the final name once those succeeded. A file
// that grows past `split_threshold_bytes` is written over several channels of
// its connection (SFTP handles belong to one channel, so each opens the same
// temp file; writes go to disjoint ranges): one channel's flow-control window
// (2 MiB with OpenSSH) caps it at window/RTT.
//
// Atomicity: with posix-rename@openssh.com (every OpenSSH), readers see the old
// or the new file. Without it, the final name is removed and then renamed, which
// leaves a moment with no file, and TakeNotes() says so once.
//
// Paths: every relative path must pass IsSafeRelPath (kUnsafePath otherwise).
// Unlike the local destination, SFTP cannot resolve a path without following
// symlinks on the server: List() refuses a directory that is a symlink (an lstat
// goes with the OPENDIR, no extra round trip) and Remove() never follows one, but a
// symlink swapped in for a directory between two operations is followed by the server.
//
// Errors: SFTP status codes in the "sftp" category (FX_NO_SUCH_FILE ==
// std::errc::no_such_file_or_directory ...); a dropped connection fails the
// operations in flight with errc::kConnectionLost and the next operation
// reconnects. Idempotent operations (List, MakeDir, Remove, Symlink, ReadHead,
// ReadAll) are retried twice on a lost connection; files are retried by the
// engine. Times: whole seconds (MtimeGranularityNs() is 1e9).
#ifndef FERRY_TRANSPORT_SFTP_SFTP_DESTINATION_H_
#define FERRY_TRANSPORT_SFTP_SFTP_DESTINATION_H_

#include <asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "lib/base/result.h"
#include "lib/ssh/session.h"
#include "lib/transport/destination.h"

namespace asio {
class thread_pool;
}

namespace ferry::transport {

struct SftpConfig {
  ssh::ConnectOptions connect;
  // The remote root: "" or relative = from the login directory; else absolute.
  std::string root;
  int connections = 2;
  int channels_per_connection = 4;
  // Cap on file bytes written per second, over all connections (0: none).
  uint64_t bwlimit_bytes_per_s = 0;
  // Payload of one WRITE request; 0 = the server's limit (limits@openssh.com,
  // 255 KiB for OpenSSH), else 32 KiB. Larger values are capped to the server's.
  size_t write_request_bytes = 0;
  // Bytes of requests in flight per channel (WRITE data, mostly).
  size_t outstanding_bytes_per_channel = 4 << 20;
  // A file that grows past this is written over more channels (0: never)...
  size_t split_threshold_bytes = 8 << 20;
  int max_channels_per_file = 4;
  // ... when the round trip (measured at channel start) is at least this long.
  // Below it one channel is not window-bound and extra ones only cost CPU
  // (measured on loopback: 72 MB/s split vs 95 MB/s not).
  std::chrono::milliseconds split_min_rtt{10};
  // Tests turn this off to exercise the path for servers without the extension.
  bool use_posix_rename = true;
  // The SSH subsystem that runs the SFTP server (tests use fake servers).
  std::string subsystem = "sftp";
  // For Describe(); empty: built from `connect` and `root`.
  std::string display;
};

// Checks the config (kInvalidArgument) and builds the destination; nothing is
// contacted before Open(). `pool` runs the ReadAll callbacks. Await Close()
// before destroying the destination.
Result<std::unique_ptr<Destination>> MakeSftpDestination(SftpConfig config,
                                                         asio::any_io_executor ex,
                                                         asio::thread_pool& pool);

}  // namespace ferry::transport

#endif  // FERRY_TRANSPORT_SFTP_SFTP_DESTINATION_H_
