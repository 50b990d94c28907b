// An SFTP v3 client over one ssh::Channel running the "sftp" subsystem, with
// many requests in flight at once (pipelining): any number of coroutines may
// issue requests concurrently, and their packets interleave on the channel.
//
// Inside: a request-id allocator; one writer coroutine that owns Channel::Write
// (packets are queued and written in order, small ones coalesced); one reader
// coroutine that owns Channel::Read, cuts the stream into packets and hands
// each reply to the request waiting on its id. A reply with an id nobody waits
// for, or a malformed packet, is a protocol error that fails the client.
//
// Two ways to issue a request:
// - the typed methods (Open, Write, Lstat, ...) send and wait for the reply;
// - Submit() queues an encoded request and returns a Ticket at once (after
//   waiting for room in the memory budget); Await(ticket) gets the reply later.
//   This is how one coroutine keeps many requests of one file in flight.
//   A ticket may be dropped unawaited: its reply is then discarded.
//
// Rate: with ClientOptions::rate_limiter, Submit() of a WRITE request first
// waits for that many bytes of the shared limit (SubmitNow() never waits).
//
// Memory: bytes of requests queued or awaiting their reply are capped by
// ClientOptions::max_outstanding_bytes (WRITE data, mostly); Submit waits while
// the cap would be exceeded (one request always goes through, whatever its size).
//
// Failure: when the channel breaks (read/write error, server closed it), every
// pending and later request fails with errc::kConnectionLost; a malformed
// packet fails them with errc::kProtocol. SFTP status errors come back in the
// "sftp" category (see codec.h). Nothing throws.
//
// Threading and lifetime: like ssh::Session, everything runs on the session's
// single-threaded executor. The reader and writer keep the Client alive (it is
// shared_ptr-owned). Before the ssh::Session is destroyed, every Client on it
// must be finished: either Close() (graceful: waits for the replies, closes the
// channel), or Abort() + Session::Disconnect() + Join() (teardown of a session).
#ifndef FERRY_SFTP_CLIENT_H_
#define FERRY_SFTP_CLIENT_H_

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/base/result.h"
#include "lib/sftp/codec.h"
#include "lib/sftp/rate_limiter.h"
#include "lib/ssh/session.h"

namespace ferry::sftp {

struct ClientOptions {
  // Cap on bytes of requests queued or awaiting their reply.
  size_t max_outstanding_bytes = 4 << 20;
  // Ask the server for limits@openssh.com at start (when offered).
  bool query_limits = true;
  // The SSH subsystem to start (tests point it at fake servers).
  std::string subsystem = "sftp";
  // When set, every WRITE request waits in Submit() for its bytes (--bwlimit).
  // Shared by all clients of a destination; use on their common executor.
  std::shared_ptr<RateLimiter> rate_limiter;
};

class Client;

// The state of one submitted request. Opaque to callers.
class PendingRequest {
 public:
  bool done() const { return result_.has_value(); }
  // The reply or the error; only once done().
  const Result<Reply>& result() const { return *result_; }

 private:
  friend class Client;
  uint32_t id_ = 0;
  size_t charge_ = 0;  // bytes counted against the budget until the reply
  std::optional<Result<Reply>> result_;
  std::unique_ptr<asio::steady_timer> signal_;  // created when someone waits
};
using Ticket = std::shared_ptr<PendingRequest>;

class Client : public std::enable_shared_from_this<Client> {
 public:
  // Opens an options.subsystem ("sftp") channel on `session`, exchanges
  // INIT/VERSION and, when the server offers limits@openssh.com (and
  // options.query_limits), reads its limits.
  // Errors: the channel's (kConnectionLost, ...), kProtocol for a bad VERSION.
  static asio::awaitable<Result<std::shared_ptr<Client>>> Start(ssh::Session& session,
                                                                ClientOptions options);
  // With default options. (No default arguments of class type on coroutines
  // here: g++ 12 destroys such a temporary twice when it sits in a co_await
  // expression. These overloads are plain functions that build it outside.)
  static asio::awaitable<Result<std::shared_ptr<Client>>> Start(ssh::Session& session) {
    return Start(session, ClientOptions());
  }

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- what the server said ------------------------------------------------
  uint32_t server_version() const { return version_.version; }
  const Version& version() const { return version_; }
  bool HasExtension(std::string_view name) const { return version_.Has(name); }
  // Zeros unless the server answered limits@openssh.com.
  const Limits& limits() const { return limits_; }
  // Largest READ/WRITE payload to use: the server's limit, else 32768.
  uint32_t max_read_length() const;
  uint32_t max_write_length() const;
  // About one network round trip: the faster of INIT and the limits query
  // (INIT also waits for the server process to start).
  std::chrono::nanoseconds handshake_rtt() const { return handshake_rtt_; }

  // ---- state ---------------------------------------------------------------------
  bool failed() const { return failure_.has_value(); }
  // Why the client failed (only when failed()).
  const Error& failure() const { return *failure_; }
  // True when the failure came from the channel's transport (the whole SSH
  // session is likely gone), not from this channel alone.
  bool transport_failed() const { return transport_failed_; }
  size_t outstanding_requests() const { return pending_.size(); }
  size_t outstanding_bytes() const { return outstanding_bytes_; }

  // ---- pipelining ------------------------------------------------------------------
  // A fresh request id, to encode a request with (codec.h's Encode* functions).
  uint32_t NextId() { return next_id_++; }
  // A spent large packet to encode the next WRITE into (EncodeWrite's `reuse`),
  // or an empty string. The writer keeps a few (kSpareBuffers) once written.
  std::string TakeSpareBuffer();
  // Queues `packet` (whose id is `id`) once the budget has room.
  asio::awaitable<Result<Ticket>> Submit(uint32_t id, std::string packet);
  // Queues at once, ignoring the budget: for small clean-up requests from
  // places that cannot wait (destructors).
  Result<Ticket> SubmitNow(uint32_t id, std::string packet);
  // The reply to a submitted request (awaited at most once per ticket).
  asio::awaitable<Result<Reply>> Await(Ticket ticket);
  // Submit + Await.
  asio::awaitable<Result<Reply>> Call(uint32_t id, std::string packet);

  // ---- typed requests (send and wait) ------------------------------------------------
  asio::awaitable<Result<std::string>> Open(std::string path, uint32_t pflags, Attrs attrs);
  asio::awaitable<Result<std::string>> Open(std::string path, uint32_t pflags) {
    return Open(std::move(path), pflags, Attrs());
  }
  asio::awaitable<Status> Close(std::string handle);
  // At most `length` bytes at `offset`; an empty string at end of file.
  asio::awaitable<Result<std::string>> Read(std::string handle, uint64_t offset, uint32_t length);
  // `data` must stay alive until the packet is queued (this copies it).
  asio::awaitable<Status> Write(std::string handle, uint64_t offset,
                                std::span<const std::byte> data);
  asio::awaitable<Result<Attrs>> Lstat(std::string path);
  asio::awaitable<Result<Attrs>> Stat(std::string path);
  asio::awaitable<Result<Attrs>> Fstat(std::string handle);
  asio::awaitable<Status> Setstat(std::string path, Attrs attrs);
  asio::awaitable<Status> Fsetstat(std::string handle, Attrs attrs);
  asio::awaitable<Result<std::string>> Opendir(std::string path);
  // The next batch of entries; an empty vector at the end of the directory.
  asio::awaitable<Result<std::vector<NameEntry>>> Readdir(std::string handle);
  asio::awaitable<Status> Remove(std::string path);
  asio::awaitable<Status> Mkdir(std::string path, Attrs attrs);
  asio::awaitable<Status> Mkdir(std::string path) { return Mkdir(std::move(path), Attrs()); }
  asio::awaitable<Status> Rmdir(std::string path);
  asio::awaitable<Result<std::string>> Realpath(std::string path);
  asio::awaitable<Status> Rename(std::string old_path, std::string new_path);
  asio::awaitable<Result<std::string>> Readlink(std::string path);
  asio::awaitable<Status> Symlink(std::string link_path, std::string target);
  // OpenSSH extensions; kUnsupported when the server did not offer them.
  asio::awaitable<Status> PosixRename(std::string old_path, std::string new_path);
  asio::awaitable<Status> Fsync(std::string handle);
  asio::awaitable<Status> Hardlink(std::string old_path, std::string new_path);
  asio::awaitable<Result<StatVfs>> QueryStatVfs(std::string path);
  asio::awaitable<Result<Limits>> QueryLimits();

  // ---- ending ----------------------------------------------------------------------------
  // Graceful: refuses new requests, waits for the replies already due, stops
  // the reader and writer and closes the channel. Idempotent.
  asio::awaitable<Status> Close();
  // Fails every pending and future request with `error` at once and never
  // touches the channel again (the caller is tearing the session down: the
  // reader stops when Session::Disconnect() makes its read fail).
  void Abort(Error error);
  // Waits until the reader and writer coroutines have ended.
  asio::awaitable<void> Join();

 private:
  using Timer = asio::steady_timer;
  Client(ssh::Channel channel, asio::any_io_executor ex, ClientOptions options);

  asio::awaitable<Status> Handshake();
  void StartTasks();
  asio::awaitable<void> ReaderLoop();
  asio::awaitable<void> WriterLoop();
  asio::awaitable<Status> WriteAll(std::string_view bytes);
  Result<Ticket> Enqueue(uint32_t id, std::string packet);
  void Deliver(uint32_t id, Result<Reply> result);
  void Fail(Error error, bool transport);
  void Wake(std::unique_ptr<Timer>& timer);
  asio::awaitable<void> WaitOn(std::unique_ptr<Timer>& timer);
  asio::awaitable<Status> ExtendedStatus(std::string_view extension, uint32_t id,
                                         std::string packet, std::string what);

  // Told how many replies are due (for its io timeout). Valid while requests
  // are pending: the session outlives every Client that still has some.
  ssh::Session* session_;
  ssh::Channel channel_;
  asio::any_io_executor ex_;
  ClientOptions options_;
  PacketFramer framer_;  // bytes read and not yet cut into packets
  Version version_;
  Limits limits_;
  std::chrono::nanoseconds handshake_rtt_{0};

  uint32_t next_id_ = 1;
  std::unordered_map<uint32_t, Ticket> pending_;
  size_t outstanding_bytes_ = 0;
  std::unique_ptr<Timer> budget_signal_;  // cancelled when budget frees up

  std::deque<std::string> outbox_;          // packets not yet written, in order
  std::vector<std::string> spare_buffers_;  // written large packets, for reuse
  std::unique_ptr<Timer> outbox_signal_;    // cancelled when the outbox gets work

  std::optional<Error> failure_;
  bool transport_failed_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool channel_released_ = false;  // Abort(): never touch channel_ again
  int tasks_running_ = 0;
  std::unique_ptr<Timer> tasks_signal_;  // cancelled when a task ends
};

}  // namespace ferry::sftp

#endif  // FERRY_SFTP_CLIENT_H_
