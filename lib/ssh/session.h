// A non-blocking libssh2 SSH session driven from Asio coroutines.
//
// Threading contract: a Session, and every Channel opened on it, belongs to ONE
// executor that runs one handler at a time (a single-threaded io_context, or a
// strand). Connect() and every member must be awaited from coroutines running on
// the executor passed to Connect(). Several coroutines may use one session at once
// (e.g. one per channel): the session serialises them itself (see Call()).
// Nothing here is safe to call from another thread.
//
// The EAGAIN discipline (see docs in the libssh2 notes): libssh2 runs in non-blocking
// mode; every libssh2 call on the session goes through Call(), which turns
// LIBSSH2_ERROR_EAGAIN into socket.async_wait() in the direction(s) that
// libssh2_session_block_directions() reports and then retries THE SAME call. While a
// call has a packet half-sent (or is a stateful session-level step: handshake,
// authentication, channel open, disconnect), a capacity-1 gate keeps every other
// coroutine out of the session until it completes; libssh2 1.10 otherwise fails
// with LIBSSH2_ERROR_BAD_USE. Any call may pull another coroutine's data off the
// socket, so waiters are woken whenever bytes arrive and simply retry.
//
// Liveness: StartWatchdog() adds keepalives and an io timeout (see
// ConnectOptions): a server that stops answering while replies are awaited gets
// the connection declared dead instead of hanging its callers forever.
//
// Lifetime: Channels must be Close()d and destroyed before their Session. Destroying
// a Session closes the socket without an SSH goodbye; await Disconnect() first for a
// clean close. Secrets (passphrase, password) are never logged nor put in errors.
#ifndef FERRY_SSH_SESSION_H_
#define FERRY_SSH_SESSION_H_

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ferry/options.h"  // HostKeyQuestion, HostKeyDecision
#include "lib/base/result.h"

struct _LIBSSH2_SESSION;  // NOLINT(bugprone-reserved-identifier): libssh2's own name
struct _LIBSSH2_CHANNEL;  // NOLINT(bugprone-reserved-identifier)

namespace ferry::ssh {

enum class HostKeyPolicy {
  kStrict,     // a host missing from known_hosts is refused (kHostKeyUnknown)
  kAcceptNew,  // a missing host is accepted and appended; a changed key is still refused
};

struct Identity {
  std::string private_key;  // path
  std::string public_key;   // path; empty: private_key + ".pub" if that file exists
};

struct ConnectOptions {
  std::string host;
  uint16_t port = 22;
  std::string user;
  std::string known_hosts_path;
  HostKeyPolicy host_key_policy = HostKeyPolicy::kStrict;
  // Tried in order. If empty, the keys of a running ssh-agent (SSH_AUTH_SOCK) are tried.
  std::vector<Identity> identities;
  std::optional<std::string> passphrase;  // for encrypted private keys
  std::optional<std::string> password;    // enables password and keyboard-interactive
  // When `password` is unset: asked (once per Connect) when key authentication did
  // not succeed and the server offers password or keyboard-interactive; nullopt
  // gives up. Called on the executor's thread; may block (see ferry::SshOptions).
  std::function<std::optional<std::string>(const std::string& prompt)> password_callback;
  // Asked about an unknown or changed host key (never a known or @revoked one);
  // when set it replaces host_key_policy. kReject gives kHostKeyUnknown /
  // kHostKeyMismatch; kAcceptAndSave appends the key to known_hosts_path.
  std::function<HostKeyDecision(const HostKeyQuestion&)> host_key_callback;
  // Covers resolving, TCP connect, handshake, host key check and authentication.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(30);
  // Used once Session::StartWatchdog() runs (the SFTP pool starts it):
  // After this long with nothing sent nor received, a keepalive message
  // (keepalive@libssh2.org, no reply asked) is sent, so that NAT and firewall
  // state and server idle limits do not drop an idle connection. 0: never.
  // libssh2 counts in whole seconds: anything below 1 s acts as 1 s.
  std::chrono::milliseconds keepalive_interval = std::chrono::seconds(15);
  // While a reply is awaited (SFTP requests in flight, a channel being opened
  // or closed, a write waiting for window space) and nothing at all arrives
  // from the server for this long, the connection is declared dead: every
  // call on it fails (Session::MakeError gives kConnectionLost, naming the
  // timeout) and the socket is shut down. 0: wait forever. 60 s: several times
  // the longest legitimate silence seen (an fsync of a large file on a slow
  // disk), yet a stalled server is noticed within a minute.
  std::chrono::milliseconds io_timeout = std::chrono::seconds(60);
};

class Session;

// A channel running a subsystem (e.g. "sftp"): a byte stream in each direction.
// Move-only. Use from the session's executor; at most one Read and one Write in
// flight at a time per channel (different channels may run concurrently).
class Channel {
 public:
  Channel(Channel&& other) noexcept;
  Channel& operator=(Channel&& other) noexcept;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  // Does not talk to the server: an unclosed channel stays allocated (and counts
  // against the server's MaxSessions) until the session is freed. Close() it.
  ~Channel() = default;

  // The session this channel belongs to (null once moved from).
  Session* session() const { return session_; }

  // Writes a prefix of `data` and returns its size (>= 1 unless data is empty).
  // Errors: kConnectionLost, kProtocol (with libssh2's message in the detail).
  asio::awaitable<Result<size_t>> Write(std::span<const std::byte> data);
  // Waits until at least one byte is available, reads up to buffer.size() bytes.
  // Returns 0 at end of stream (the server closed or sent EOF).
  asio::awaitable<Result<size_t>> Read(std::span<std::byte> buffer);
  // Sends EOF + CLOSE, waits for the server's CLOSE, frees the channel.
  asio::awaitable<Status> Close();

  bool is_open() const { return channel_ != nullptr; }

 private:
  friend class Session;
  Channel(Session* session, _LIBSSH2_CHANNEL* channel);

  Session* session_ = nullptr;
  _LIBSSH2_CHANNEL* channel_ = nullptr;
};

class Session {
 public:
  // How Call() treats the gate while the call waits for the socket.
  enum class CallKind {
    // Others may use the session while this call waits, unless it has a packet
    // half-sent (channel reads/writes, SFTP requests on their own handle).
    kShared,
    // Nobody else enters the session until this call completes (handshake, auth,
    // channel open, subsystem start, sftp_init, disconnect).
    kExclusive,
    // Like kShared, for a read that may wait for a long time without the server
    // owing anything (a reader idling between replies): waiting in it does not
    // count as awaiting a reply for the io timeout.
    kIdleRead,
  };

  // Returned by Call() when the wait was cancelled (e.g. a timeout) or the session
  // is no longer usable because an earlier call was abandoned mid-way.
  static constexpr int64_t kCallAborted = -1000;

  // Resolves, connects (TCP_NODELAY), handshakes, verifies the host key against
  // opts.known_hosts_path and authenticates. Errors (Error::code):
  //   ferry::errc::kHostKeyUnknown / kHostKeyMismatch (detail: both "SHA256:..."
  //   fingerprints) / kHostKeyRevoked, kAuthFailed (detail: methods tried), kTimeout,
  //   kConnectionLost, kProtocol (handshake failure), or a system error such as
  //   ECONNREFUSED or a resolver error.
  static asio::awaitable<Result<std::unique_ptr<Session>>> Connect(asio::any_io_executor ex,
                                                                   ConnectOptions opts);

  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Opens a session channel and starts `subsystem` on it (e.g. "sftp").
  asio::awaitable<Result<Channel>> OpenSubsystemChannel(std::string subsystem);

  // Sends SSH_MSG_DISCONNECT and frees the libssh2 session. Idempotent. Channels
  // still open are freed with it (and must not be used afterwards).
  asio::awaitable<Status> Disconnect();

  // Runs a libssh2 call returning an int/ssize_t under the EAGAIN discipline above and
  // returns its final result (never LIBSSH2_ERROR_EAGAIN; kCallAborted if cancelled).
  // `call` must make exactly one libssh2 call on this session with the same arguments
  // every time it is invoked (it is re-invoked after each EAGAIN).
  asio::awaitable<int64_t> Call(std::function<int64_t()> call, CallKind kind = CallKind::kShared);
  // The same for calls returning a pointer (NULL + last_errno EAGAIN means retry).
  // Returns nullptr on failure; libssh2_session_last_errno() says why.
  asio::awaitable<void*> CallForPointer(std::function<void*()> call,
                                        CallKind kind = CallKind::kShared);

  // Starts the watchdog: keepalives and the io timeout of ConnectOptions. It
  // keeps a timer pending on the executor until Disconnect() or destruction, so
  // io_context::run() does not return while a watched session lives.
  void StartWatchdog();
  // Replies awaited on top of the session's own calls, e.g. SFTP requests in
  // flight whose answers a kIdleRead reader will pick up: while the count is
  // above 0, the io timeout runs. Pair every +n with a -n.
  void ExpectReplies(int delta);
  // True once the io timeout declared the connection dead.
  bool timed_out() const;

  // Maps a libssh2 error code to an Error (kConnectionLost, kTimeout, kProtocol...),
  // adding libssh2's last error message. `what` says what was being done.
  Error MakeError(int64_t rc, std::string_view what) const;

  _LIBSSH2_SESSION* native_handle() const;
  asio::any_io_executor get_executor() const;
  const std::string& host_key_type() const;         // e.g. "ssh-ed25519"
  const std::string& host_key_fingerprint() const;  // "SHA256:..."

  struct Impl;  // public so that the .cc's free functions can name it

 private:
  explicit Session(std::shared_ptr<Impl> impl);
  // Shared only with the watchdog, which holds a weak_ptr.
  std::shared_ptr<Impl> impl_;
};

}  // namespace ferry::ssh

#endif  // FERRY_SSH_SESSION_H_
