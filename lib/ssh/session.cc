#include "lib/ssh/session.h"

#include <fcntl.h>
#include <libssh2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>
#include <variant>

#include "ferry/error.h"
#include "lib/ssh/host_key.h"
#include "lib/ssh/known_hosts.h"

namespace ferry::ssh {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// Host key algorithms libssh2 1.10 can verify, in ferry's order of preference.
constexpr std::string_view kHostKeyAlgorithms[] = {
    "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"};

constexpr char kRsaHint[] =
    "libssh2 1.10 can only sign with ssh-rsa (SHA-1), which OpenSSH >= 8.8 refuses, so RSA "
    "keys cannot be used with current servers: use an ed25519 key (ssh-keygen -t ed25519)";

void InitLibssh2Once() {
  static std::once_flag once;
  std::call_once(once, [] { libssh2_init(0); });
}

bool IsTransportError(int64_t rc) {
  switch (rc) {
    case LIBSSH2_ERROR_SOCKET_NONE:
    case LIBSSH2_ERROR_BANNER_RECV:
    case LIBSSH2_ERROR_BANNER_SEND:
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
    case LIBSSH2_ERROR_TIMEOUT:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case Session::kCallAborted:
      return true;
    default:
      return false;
  }
}

// Host key preference: the types known_hosts holds for this host first (so that
// the server shows a key we can check), then the rest of kHostKeyAlgorithms.
std::string HostKeyPreference(const std::vector<std::string>& known) {
  std::vector<std::string_view> order;
  for (const auto& type : known) {
    for (auto alg : kHostKeyAlgorithms) {
      if (alg == type) order.push_back(alg);
    }
  }
  for (auto alg : kHostKeyAlgorithms) {
    if (std::find(order.begin(), order.end(), alg) == order.end()) order.push_back(alg);
  }
  std::string pref;
  for (auto alg : order) {
    if (!pref.empty()) pref += ',';
    pref += alg;
  }
  return pref;
}

// Reads a whole small file. ENOENT gives an empty string when `missing_ok`.
Result<std::string> ReadSmallFile(const std::string& path, bool missing_ok) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT && missing_ok) return std::string();
    return Error{LastSystemError(), "reading " + path};
  }
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return Error{std::make_error_code(std::errc::io_error), "reading " + path};
  return text;
}

uint32_t ReadU32(std::string_view& in, bool& ok) {
  if (in.size() < 4) {
    ok = false;
    return 0;
  }
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  in.remove_prefix(4);
  return v;
}

std::string_view ReadString(std::string_view& in, bool& ok) {
  uint32_t n = ReadU32(in, ok);
  if (!ok || n > in.size()) {
    ok = false;
    return {};
  }
  std::string_view s = in.substr(0, n);
  in.remove_prefix(n);
  return s;
}

// The key type of an identity, for error messages: from the .pub file if there is
// one, else from the private key file's header or OpenSSH key blob.
std::string IdentityKeyType(const std::string& private_key, const std::string& public_key) {
  if (!public_key.empty()) {
    auto text = ReadSmallFile(public_key, false);
    if (text.ok()) {
      std::istringstream in(*text);
      std::string type;
      if (in >> type) return type;
    }
  }
  auto text = ReadSmallFile(private_key, false);
  if (!text.ok()) return "unreadable key";
  if (text->find("BEGIN RSA PRIVATE KEY") != std::string::npos) return "ssh-rsa";
  if (text->find("BEGIN EC PRIVATE KEY") != std::string::npos) return "ecdsa";
  if (text->find("BEGIN DSA PRIVATE KEY") != std::string::npos) return "ssh-dss";
  constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  constexpr std::string_view kEnd = "-----END OPENSSH PRIVATE KEY-----";
  size_t begin = text->find(kBegin);
  size_t end = text->find(kEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin) {
    return "unknown key type";
  }
  std::string body;
  for (size_t i = begin + kBegin.size(); i < end; ++i) {
    char c = (*text)[i];
    if (c != '\n' && c != '\r' && c != ' ') body += c;
  }
  auto blob = Base64Decode(body);
  constexpr std::string_view kMagic("openssh-key-v1\0", 15);
  if (!blob || !std::string_view(*blob).starts_with(kMagic)) return "unknown key type";
  std::string_view in(*blob);
  in.remove_prefix(kMagic.size());
  bool ok = true;
  ReadString(in, ok);  // cipher
  ReadString(in, ok);  // kdf
  ReadString(in, ok);  // kdf options
  ReadU32(in, ok);     // number of keys
  std::string_view pub = ReadString(in, ok);
  std::string type = ok ? KeyTypeOfBlob(pub) : std::string();
  return type.empty() ? "unknown key type" : type;
}

bool Offers(std::string_view methods, std::string_view method) {
  while (!methods.empty()) {
    size_t comma = methods.find(',');
    if (methods.substr(0, comma) == method) return true;
    methods.remove_prefix(comma == std::string_view::npos ? methods.size() : comma + 1);
  }
  return false;
}

// Asio's own system category does not compare equal to std::errc values; callers
// should be able to test `code == std::errc::connection_refused`.
std::error_code PortableError(const asio::error_code& ec) {
  if (ec.category() == asio::system_category()) return {ec.value(), std::system_category()};
  return ec;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Session::Impl

struct Session::Impl {
  explicit Impl(asio::any_io_executor ex) : executor(ex), socket(ex), gate(ex, 1) {}
  ~Impl() { FreeSession(); }

  // Frees the libssh2 session without a goodbye: shutting the socket down first makes
  // every pending send/receive fail at once, so libssh2 cannot wait for the peer.
  void FreeSession() {
    if (watchdog_timer != nullptr) {
      try {
        watchdog_timer->cancel();
      } catch (const std::exception&) {  // cannot fail for a steady_timer; ~Impl must not throw
      }
    }
    watchdog_timer = nullptr;
    if (session == nullptr) return;
    if (socket.is_open()) ::shutdown(socket.native_handle(), SHUT_RDWR);
    for (int i = 0; i < 100 && libssh2_session_free(session) == LIBSSH2_ERROR_EAGAIN; ++i) {
    }
    session = nullptr;
  }

  // The gate: a capacity-1 channel used as an async mutex. Holding it = having sent
  // the one token; releasing = taking the token back.
  asio::awaitable<bool> Acquire() {
    if (gate.try_send()) co_return true;
    auto [ec] = co_await gate.async_send(kNoThrow);
    co_return !ec;
  }
  void Release() {
    gate.try_receive([](auto&&...) {});
  }

  // Waits until the socket is ready in `directions` (libssh2 block directions).
  // operation_aborted also means "woken because another call read bytes": retry.
  // `counted`: the caller awaits something from the server (the io timeout runs).
  asio::awaitable<asio::error_code> WaitSocket(int directions, bool counted) {
    using asio::ip::tcp;
    using namespace asio::experimental::awaitable_operators;
    ++socket_waiters;
    if (counted) ++counted_waiters;
    asio::error_code ec;
    bool in = (directions & LIBSSH2_SESSION_BLOCK_INBOUND) != 0;
    bool out = (directions & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
    if (in && out) {
      auto either = co_await (socket.async_wait(tcp::socket::wait_read, kNoThrow) ||
                              socket.async_wait(tcp::socket::wait_write, kNoThrow));
      ec = std::visit([](auto& t) { return std::get<0>(t); }, either);
    } else {
      auto [e] = co_await socket.async_wait(out ? tcp::socket::wait_write : tcp::socket::wait_read,
                                            kNoThrow);
      ec = e;
    }
    --socket_waiters;
    if (counted) --counted_waiters;
    co_return ec;
  }

  // The io timeout fired: every call on the session fails from now on.
  void DeclareDead(std::string reason) {
    broken = true;
    dead_reason = std::move(reason);
    asio::error_code ignored;
    socket.cancel(ignored);  // waiters wake, see `broken` and give up
    if (socket.is_open()) ::shutdown(socket.native_handle(), SHUT_RDWR);
  }

  // Wakes every coroutine waiting on the socket (they retry their call). Called
  // when a call consumed bytes that may have been another coroutine's reply.
  void WakeWaiters() {
    asio::error_code ignored;
    if (socket_waiters > 0) socket.cancel(ignored);
  }

  static LIBSSH2_RECV_FUNC(Recv) {
    ssize_t n = ::recv(socket, buffer, length, flags);
    if (n < 0) return -errno;
    if (n > 0) static_cast<Impl*>(*abstract)->receives++;
    return n;
  }

  static LIBSSH2_SEND_FUNC(Send) {
    ssize_t n = ::send(socket, buffer, length, flags | MSG_NOSIGNAL);
    if (n < 0) return -errno;
    if (n > 0) static_cast<Impl*>(*abstract)->sends++;
    return n;
  }

  static LIBSSH2_USERAUTH_KBDINT_RESPONSE_FUNC(KeyboardInteractive) {
    auto* self = static_cast<Impl*>(*abstract);
    // Only the usual single "Password:" prompt is answered; anything else (OTP...) fails.
    if (self->password == nullptr || num_prompts != 1) return;
    responses[0].text = strdup(self->password->c_str());
    responses[0].length = responses[0].text ? static_cast<unsigned>(self->password->size()) : 0;
  }

  asio::any_io_executor executor;
  asio::ip::tcp::socket socket;
  LIBSSH2_SESSION* session = nullptr;
  asio::experimental::channel<void()> gate;
  uint64_t receives = 0;     // recv() calls that returned data
  uint64_t sends = 0;        // send() calls that wrote data
  int socket_waiters = 0;    // coroutines inside WaitSocket
  int counted_waiters = 0;   // ... of which await something from the server
  int expected_replies = 0;  // Session::ExpectReplies
  std::string dead_reason;   // set when the io timeout declared the session dead
  asio::steady_timer* watchdog_timer = nullptr;  // the watchdog's, while it runs
  bool broken = false;                    // a call was abandoned mid-way: the session is unusable
  const std::string* password = nullptr;  // set only during keyboard-interactive
  std::string host_key_type;
  std::string host_key_fingerprint;
  std::chrono::milliseconds keepalive_interval{0};  // for the watchdog
  std::chrono::milliseconds io_timeout{0};
  bool watchdog_started = false;
};

// ---------------------------------------------------------------------------
// The EAGAIN helper

asio::awaitable<int64_t> Session::Call(std::function<int64_t()> call, CallKind kind) {
  Impl& s = *impl_;
  if (s.session == nullptr || s.broken) co_return kCallAborted;
  if (!co_await s.Acquire()) co_return kCallAborted;
  for (;;) {
    if (s.session == nullptr || s.broken) {
      s.Release();
      co_return kCallAborted;
    }
    const uint64_t receives_before = s.receives;
    const int64_t rc = call();
    if (s.receives != receives_before) s.WakeWaiters();
    if (rc != LIBSSH2_ERROR_EAGAIN) {
      s.Release();
      co_return rc;
    }
    const int directions = libssh2_session_block_directions(s.session);
    // A half-sent packet: only this same call may touch the session until it is out.
    const bool hold =
        kind == CallKind::kExclusive || (directions & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
    if (!hold) s.Release();
    asio::error_code ec = co_await s.WaitSocket(directions, kind != CallKind::kIdleRead);
    if (ec) {
      asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
      const bool cancelled = cs.cancelled() != asio::cancellation_type::none;
      if (cancelled || ec != asio::error::operation_aborted) {
        // Abandoning a call that holds the gate leaves libssh2 mid-packet.
        if (hold) {
          s.broken = true;
          s.Release();
        }
        co_return cancelled ? kCallAborted : LIBSSH2_ERROR_SOCKET_DISCONNECT;
      }
      // Otherwise: woken by WakeWaiters(); just retry.
    }
    if (!hold && !co_await s.Acquire()) co_return kCallAborted;
  }
}

asio::awaitable<void*> Session::CallForPointer(std::function<void*()> call, CallKind kind) {
  LIBSSH2_SESSION* s = impl_->session;
  void* result = nullptr;
  int64_t rc = co_await Call(
      [&]() -> int64_t {
        result = call();
        if (result != nullptr) return 0;
        int e = libssh2_session_last_errno(s);
        return e == 0 ? LIBSSH2_ERROR_PROTO : e;
      },
      kind);
  co_return rc == 0 ? result : nullptr;
}

Error Session::MakeError(int64_t rc, std::string_view what) const {
  std::string detail(what);
  if (rc == kCallAborted) {
    if (!impl_->dead_reason.empty()) {
      return Error{errc::kConnectionLost, detail + ": " + impl_->dead_reason};
    }
    return Error{errc::kCancelled, detail + ": the session was cancelled or is unusable"};
  }
  if (impl_->session != nullptr) {
    char* msg = nullptr;
    libssh2_session_last_error(impl_->session, &msg, nullptr, 0);
    if (msg != nullptr && *msg != '\0') detail += std::string(": ") + msg;
  }
  detail += " (libssh2 error " + std::to_string(rc) + ")";
  switch (rc) {
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
    case LIBSSH2_ERROR_TIMEOUT:
      return Error{errc::kTimeout, detail};
    case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
    case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
      return Error{errc::kAuthFailed, detail};
    default:
      return Error{IsTransportError(rc) ? errc::kConnectionLost : errc::kProtocol, detail};
  }
}

// ---------------------------------------------------------------------------
// Connect

namespace {

asio::awaitable<Status> CheckHostKeyOf(Session::Impl& impl, const ConnectOptions& opts,
                                       const std::string& known_hosts_text,
                                       const std::vector<KnownHostsEntry>& entries) {
  size_t length = 0;
  int type = 0;
  const char* key = libssh2_session_hostkey(impl.session, &length, &type);
  if (key == nullptr) co_return Error{errc::kProtocol, "the server sent no host key"};
  const std::string blob(key, length);
  impl.host_key_type = KeyTypeOfBlob(blob);
  impl.host_key_fingerprint = Sha256Fingerprint(blob);
  const std::string name = KnownHostsName(opts.host, opts.port);
  const std::string offered = impl.host_key_type + " " + impl.host_key_fingerprint;
  const HostKeyCheck check = CheckHostKey(entries, opts.host, opts.port, impl.host_key_type, blob);
  // The embedder's decision about an unknown or changed key (never about a known
  // or revoked one). It may block: nothing else of this connection runs meanwhile.
  std::optional<HostKeyDecision> decision;
  if (opts.host_key_callback &&
      (check.status == HostKeyStatus::kUnknown || check.status == HostKeyStatus::kMismatch)) {
    HostKeyQuestion question;
    question.host = opts.host;
    question.port = opts.port;
    question.key_type = impl.host_key_type;
    question.fingerprint = impl.host_key_fingerprint;
    question.changed = check.status == HostKeyStatus::kMismatch;
    if (question.changed) question.known_fingerprint = Sha256Fingerprint(check.known_key_blob);
    try {
      decision = opts.host_key_callback(question);
    } catch (...) {
      decision = HostKeyDecision::kReject;  // the contract says it must not throw
    }
  }
  switch (check.status) {
    case HostKeyStatus::kKnown:
      co_return Status{};
    case HostKeyStatus::kRevoked:
      co_return Error{errc::kHostKeyRevoked, "host key " + offered + " of " + name +
                                                 " is marked @revoked in " + opts.known_hosts_path +
                                                 ":" + std::to_string(check.line)};
    case HostKeyStatus::kMismatch:
      if (decision && *decision != HostKeyDecision::kReject) break;  // explicitly accepted
      co_return Error{errc::kHostKeyMismatch,
                      "host key of " + name + " has changed: the server offers " + offered +
                          ", but " + opts.known_hosts_path + ":" + std::to_string(check.line) +
                          " holds " + check.known_key_type + " " +
                          Sha256Fingerprint(check.known_key_blob) +
                          " (if the change is expected, remove that line)"};
    case HostKeyStatus::kUnknown:
      break;
  }
  if (decision ? *decision == HostKeyDecision::kReject
               : opts.host_key_policy == HostKeyPolicy::kStrict) {
    co_return Error{errc::kHostKeyUnknown, "no host key for " + name + " in " +
                                               opts.known_hosts_path + "; the server offers " +
                                               offered};
  }
  if (decision == HostKeyDecision::kAcceptOnce) co_return Status{};
  // kAcceptNew or kAcceptAndSave: record the key (small synchronous append, as
  // OpenSSH does). A changed key's old line stays; the new one matches first.
  std::string line = FormatKnownHostsLine(opts.host, opts.port, impl.host_key_type, blob);
  if (!known_hosts_text.empty() && known_hosts_text.back() != '\n') line.insert(0, "\n");
  int fd = ::open(opts.known_hosts_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) co_return Error{LastSystemError(), "adding the host key to " + opts.known_hosts_path};
  ssize_t written = ::write(fd, line.data(), line.size());
  std::error_code write_error = written < 0 ? LastSystemError() : std::error_code{};
  ::close(fd);
  if (written != static_cast<ssize_t>(line.size())) {
    if (!write_error) write_error = std::make_error_code(std::errc::io_error);
    co_return Error{write_error, "adding the host key to " + opts.known_hosts_path};
  }
  co_return Status{};
}

asio::awaitable<Status> Authenticate(Session& session, Session::Impl& impl,
                                     const ConnectOptions& opts) {
  using Kind = Session::CallKind;
  LIBSSH2_SESSION* s = impl.session;
  const std::string& user = opts.user;
  const auto user_len = static_cast<unsigned>(user.size());
  char* list = nullptr;
  int64_t rc = co_await session.Call(
      [&]() -> int64_t {
        list = libssh2_userauth_list(s, user.data(), user_len);
        if (list != nullptr || libssh2_userauth_authenticated(s)) return 0;
        int e = libssh2_session_last_errno(s);
        return e == 0 ? LIBSSH2_ERROR_PROTO : e;
      },
      Kind::kExclusive);
  if (rc != 0) co_return session.MakeError(rc, "asking for authentication methods");
  if (libssh2_userauth_authenticated(s)) co_return Status{};  // "none" was accepted
  const std::string methods = list;
  std::vector<std::string> tried;
  bool rsa = false;

  if (Offers(methods, "publickey")) {
    if (!opts.identities.empty()) {
      const char* passphrase = opts.passphrase ? opts.passphrase->c_str() : nullptr;
      for (const Identity& id : opts.identities) {
        std::string pub = id.public_key;
        if (pub.empty() && ::access((id.private_key + ".pub").c_str(), R_OK) == 0) {
          pub = id.private_key + ".pub";
        }
        const std::string type = IdentityKeyType(id.private_key, pub);
        if (type == "ssh-rsa") rsa = true;
        rc = co_await session.Call(
            [&]() -> int64_t {
              return libssh2_userauth_publickey_fromfile_ex(s, user.data(), user_len,
                                                            pub.empty() ? nullptr : pub.c_str(),
                                                            id.private_key.c_str(), passphrase);
            },
            Kind::kExclusive);
        if (rc == 0) co_return Status{};
        if (IsTransportError(rc)) co_return session.MakeError(rc, "authenticating");
        tried.push_back("publickey " + id.private_key + " (" + type + "): " +
                        (rc == LIBSSH2_ERROR_FILE ? "could not read or decrypt the key"
                                                  : "refused by the server"));
      }
    } else if (const char* sock = std::getenv("SSH_AUTH_SOCK"); sock != nullptr && *sock) {
      struct AgentDeleter {
        void operator()(LIBSSH2_AGENT* a) const {
          libssh2_agent_disconnect(a);
          libssh2_agent_free(a);
        }
      };
      std::unique_ptr<LIBSSH2_AGENT, AgentDeleter> agent(libssh2_agent_init(s));
      // The agent is a local Unix socket: libssh2 talks to it with blocking I/O.
      if (!agent || libssh2_agent_connect(agent.get()) != 0 ||
          libssh2_agent_list_identities(agent.get()) != 0) {
        tried.push_back("publickey via ssh-agent: could not reach the agent");
      } else {
        libssh2_agent_publickey* prev = nullptr;
        libssh2_agent_publickey* identity = nullptr;
        int count = 0;
        while (libssh2_agent_get_identity(agent.get(), &identity, prev) == 0) {
          ++count;
          const std::string type = KeyTypeOfBlob(
              std::string_view(reinterpret_cast<const char*>(identity->blob), identity->blob_len));
          if (type == "ssh-rsa") rsa = true;
          rc = co_await session.Call(
              [&]() -> int64_t {
                return libssh2_agent_userauth(agent.get(), user.c_str(), identity);
              },
              Kind::kExclusive);
          if (rc == 0) co_return Status{};
          if (IsTransportError(rc)) co_return session.MakeError(rc, "authenticating");
          tried.push_back("publickey via ssh-agent " + type + " " +
                          (identity->comment ? identity->comment : "") + ": refused");
          prev = identity;
        }
        if (count == 0) tried.push_back("publickey via ssh-agent: the agent holds no keys");
      }
    } else {
      tried.push_back("publickey: no identity file given and no ssh-agent (SSH_AUTH_SOCK)");
    }
  }

  // The embedder's password callback, asked only now that keys did not do.
  std::optional<std::string> asked_password;
  if (!opts.password && opts.password_callback &&
      (Offers(methods, "password") || Offers(methods, "keyboard-interactive"))) {
    const std::string prompt = user + "@" + opts.host + "'s password: ";
    try {
      asked_password = opts.password_callback(prompt);
    } catch (...) {
      asked_password.reset();  // the contract says it must not throw
    }
    if (!asked_password) tried.push_back("password: none given by the password callback");
  }
  if (const std::optional<std::string>& given = opts.password ? opts.password : asked_password) {
    const std::string& password = *given;
    if (Offers(methods, "password")) {
      rc = co_await session.Call(
          [&]() -> int64_t {
            return libssh2_userauth_password_ex(s, user.data(), user_len, password.data(),
                                                static_cast<unsigned>(password.size()), nullptr);
          },
          Kind::kExclusive);
      if (rc == 0) co_return Status{};
      if (IsTransportError(rc)) co_return session.MakeError(rc, "authenticating");
      tried.push_back("password: refused");
    }
    if (Offers(methods, "keyboard-interactive")) {
      impl.password = &password;
      rc = co_await session.Call(
          [&]() -> int64_t {
            return libssh2_userauth_keyboard_interactive_ex(s, user.data(), user_len,
                                                            &Session::Impl::KeyboardInteractive);
          },
          Kind::kExclusive);
      impl.password = nullptr;
      if (rc == 0) co_return Status{};
      if (IsTransportError(rc)) co_return session.MakeError(rc, "authenticating");
      tried.push_back("keyboard-interactive: refused");
    }
  }

  std::string detail = "authentication as " + user + " failed (server offers: " + methods +
                       "; tried: " + (tried.empty() ? "nothing usable" : Join(tried, "; ")) + ")";
  if (rsa) detail += std::string(". The key is RSA: ") + kRsaHint;
  co_return Error{errc::kAuthFailed, detail};
}

asio::awaitable<Status> Establish(Session& session, Session::Impl& impl,
                                  const ConnectOptions& opts) {
  using asio::ip::tcp;
  const std::string where = opts.host + ":" + std::to_string(opts.port);
  tcp::resolver resolver(impl.executor);
  auto [resolve_error, endpoints] =
      co_await resolver.async_resolve(opts.host, std::to_string(opts.port), kNoThrow);
  if (resolve_error) co_return Error{resolve_error, "resolving " + opts.host};
  auto [connect_error, endpoint] = co_await asio::async_connect(impl.socket, endpoints, kNoThrow);
  if (connect_error) co_return Error{PortableError(connect_error), "connecting to " + where};
  asio::error_code ignored;
  impl.socket.set_option(tcp::no_delay(true), ignored);

  auto known_hosts_text = ReadSmallFile(opts.known_hosts_path, /*missing_ok=*/true);
  if (!known_hosts_text.ok()) co_return known_hosts_text.error();
  const auto entries = ParseKnownHosts(*known_hosts_text);

  impl.session = libssh2_session_init_ex(nullptr, nullptr, nullptr, &impl);
  if (impl.session == nullptr) {
    co_return Error{std::make_error_code(std::errc::not_enough_memory), "libssh2_session_init"};
  }
  libssh2_session_set_blocking(impl.session, 0);
  libssh2_session_callback_set(impl.session, LIBSSH2_CALLBACK_RECV,
                               reinterpret_cast<void*>(&Session::Impl::Recv));
  libssh2_session_callback_set(impl.session, LIBSSH2_CALLBACK_SEND,
                               reinterpret_cast<void*>(&Session::Impl::Send));
  const std::string preference = HostKeyPreference(KnownKeyTypes(entries, opts.host, opts.port));
  if (libssh2_session_method_pref(impl.session, LIBSSH2_METHOD_HOSTKEY, preference.c_str()) != 0) {
    co_return session.MakeError(libssh2_session_last_errno(impl.session),
                                "setting host key preferences");
  }
  const auto fd = impl.socket.native_handle();
  int64_t rc = co_await session.Call(
      [&]() -> int64_t { return libssh2_session_handshake(impl.session, fd); },
      Session::CallKind::kExclusive);
  if (rc != 0) {
    Error error = session.MakeError(rc, "SSH handshake with " + where);
    if (rc == LIBSSH2_ERROR_KEX_FAILURE) {
      error.detail +=
          ". libssh2 1.10 verifies only ssh-ed25519, ecdsa-sha2-* and ssh-rsa (SHA-1) host "
          "keys; a server with only an RSA host key (OpenSSH >= 8.8) needs an ed25519 key";
    }
    co_return error;
  }
  Status host_key = co_await CheckHostKeyOf(impl, opts, *known_hosts_text, entries);
  if (!host_key.ok()) co_return host_key;
  co_return co_await Authenticate(session, impl, opts);
}

}  // namespace

namespace {

std::string FormatSeconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

// Keepalives and the io timeout. Runs on the session's executor; holds the Impl
// only between waits (weak otherwise), and ends when the session is freed.
asio::awaitable<void> Watchdog(std::weak_ptr<Session::Impl> weak,
                               std::chrono::milliseconds keepalive,
                               std::chrono::milliseconds io_timeout) {
  using Clock = std::chrono::steady_clock;
  using std::chrono::milliseconds;
  milliseconds shortest = milliseconds::max();
  if (keepalive.count() > 0) shortest = std::min(shortest, keepalive);
  if (io_timeout.count() > 0) shortest = std::min(shortest, io_timeout);
  if (shortest == milliseconds::max()) co_return;
  // Checks four times per period: a verdict is at most a quarter period late.
  const milliseconds tick = std::clamp(shortest / 4, milliseconds(50), milliseconds(1000));
  std::optional<asio::steady_timer> timer;
  uint64_t seen_receives = 0;
  uint64_t seen_sends = 0;
  {
    auto impl = weak.lock();
    if (!impl || impl->session == nullptr) co_return;
    timer.emplace(impl->executor);
    impl->watchdog_timer = &*timer;
    seen_receives = impl->receives;
    seen_sends = impl->sends;
  }
  Clock::time_point last_receive = Clock::now();  // or the start of the current wait
  Clock::time_point last_traffic = last_receive;  // either direction
  for (;;) {
    timer->expires_after(tick);
    auto [ec] = co_await timer->async_wait(kNoThrow);
    auto impl = weak.lock();  // not held across the next wait
    if (!impl || impl->session == nullptr || impl->broken) co_return;
    if (ec) {
      impl->watchdog_timer = nullptr;  // cancelled for another reason: stop
      co_return;
    }
    const auto now = Clock::now();
    if (impl->receives != seen_receives) {
      seen_receives = impl->receives;
      last_receive = now;
      last_traffic = now;
    }
    if (impl->sends != seen_sends) {
      seen_sends = impl->sends;
      last_traffic = now;
    }
    const bool awaiting = impl->expected_replies > 0 || impl->counted_waiters > 0;
    if (!awaiting) {
      last_receive = now;  // the silence that counts starts with the next request
    } else if (io_timeout.count() > 0 && now - last_receive >= io_timeout) {
      impl->watchdog_timer = nullptr;
      impl->DeclareDead("no data from the server for " + FormatSeconds(io_timeout) +
                        " while replies were due (io timeout): the connection is declared dead");
      co_return;
    }
    // A keepalive only when the gate is free (nobody has a packet half-sent:
    // libssh2 1.10 would answer BAD_USE) and the socket has room, so that it
    // goes out whole and at once.
    if (keepalive.count() > 0 && now - last_traffic >= keepalive && impl->gate.try_send()) {
      pollfd pfd{impl->socket.native_handle(), POLLOUT, 0};
      if (::poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT) != 0) {
        int next = 0;
        const int rc = libssh2_keepalive_send(impl->session, &next);
        const bool half_sent =
            (libssh2_session_block_directions(impl->session) & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
        if (rc != 0 || half_sent) {
          // A keepalive left half-sent would make the next call fail with
          // BAD_USE: give the connection up instead (the pool reconnects).
          impl->Release();
          impl->watchdog_timer = nullptr;
          impl->DeclareDead("sending a keepalive failed (libssh2 error " + std::to_string(rc) +
                            ")");
          co_return;
        }
        last_traffic = now;
      }
      impl->Release();
    }
  }
}

}  // namespace

Session::Session(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

asio::awaitable<Result<std::unique_ptr<Session>>> Session::Connect(asio::any_io_executor ex,
                                                                   ConnectOptions opts) {
  using namespace asio::experimental::awaitable_operators;
  InitLibssh2Once();
  std::unique_ptr<Session> session(new Session(std::make_shared<Impl>(ex)));
  asio::steady_timer timer(ex);
  timer.expires_after(opts.connect_timeout);
  auto outcome =
      co_await (Establish(*session, *session->impl_, opts) || timer.async_wait(kNoThrow));
  if (outcome.index() == 1) {
    co_return Error{errc::kTimeout, "connecting to " + opts.host + ":" + std::to_string(opts.port) +
                                        ": no success within " +
                                        std::to_string(opts.connect_timeout.count()) + " ms"};
  }
  Status status = std::get<0>(std::move(outcome));
  if (!status.ok()) co_return status.error();
  session->impl_->keepalive_interval = opts.keepalive_interval;
  session->impl_->io_timeout = opts.io_timeout;
  co_return std::move(session);
}

void Session::StartWatchdog() {
  Impl& s = *impl_;
  if (s.session == nullptr || s.watchdog_timer != nullptr || s.watchdog_started) return;
  s.watchdog_started = true;
  const auto seconds = static_cast<unsigned>(
      std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(s.keepalive_interval).count()));
  // want_reply 0: OpenSSH answers a wanted reply with REQUEST_FAILURE, which
  // libssh2 1.10 queues and never frees; the io timeout needs no reply anyway.
  libssh2_keepalive_config(s.session, 0, seconds);
  auto done = [](std::exception_ptr) {};  // Watchdog throws nothing (as_tuple waits)
  asio::co_spawn(s.executor, Watchdog(impl_, s.keepalive_interval, s.io_timeout), done);
}

void Session::ExpectReplies(int delta) { impl_->expected_replies += delta; }

bool Session::timed_out() const { return !impl_->dead_reason.empty(); }

asio::awaitable<Result<Channel>> Session::OpenSubsystemChannel(std::string subsystem) {
  LIBSSH2_SESSION* s = impl_->session;
  if (s == nullptr) co_return Error{errc::kConnectionLost, "the session is disconnected"};
  static constexpr char kType[] = "session";
  LIBSSH2_CHANNEL* raw = nullptr;
  int64_t rc = co_await Call(
      [&]() -> int64_t {
        raw = libssh2_channel_open_ex(s, kType, sizeof(kType) - 1, LIBSSH2_CHANNEL_WINDOW_DEFAULT,
                                      LIBSSH2_CHANNEL_PACKET_DEFAULT, nullptr, 0);
        if (raw != nullptr) return 0;
        int e = libssh2_session_last_errno(s);
        return e == 0 ? LIBSSH2_ERROR_PROTO : e;
      },
      CallKind::kExclusive);
  if (rc != 0) co_return MakeError(rc, "opening a channel");
  Channel channel(this, raw);
  static constexpr char kRequest[] = "subsystem";
  rc = co_await Call(
      [&]() -> int64_t {
        return libssh2_channel_process_startup(raw, kRequest, sizeof(kRequest) - 1,
                                               subsystem.data(),
                                               static_cast<unsigned>(subsystem.size()));
      },
      CallKind::kExclusive);
  if (rc != 0) {
    Error error = MakeError(rc, "starting the " + subsystem + " subsystem");
    Status ignored = co_await channel.Close();
    co_return error;
  }
  co_return std::move(channel);
}

asio::awaitable<Status> Session::Disconnect() {
  LIBSSH2_SESSION* s = impl_->session;
  if (s == nullptr) co_return Status{};
  int64_t rc = co_await Call(
      [&]() -> int64_t {
        return libssh2_session_disconnect_ex(s, SSH_DISCONNECT_BY_APPLICATION, "closed by ferry",
                                             "");
      },
      CallKind::kExclusive);
  Status status;
  if (rc != 0) status = MakeError(rc, "disconnecting");
  impl_->FreeSession();
  asio::error_code ignored;
  impl_->socket.close(ignored);
  co_return status;
}

_LIBSSH2_SESSION* Session::native_handle() const { return impl_->session; }
asio::any_io_executor Session::get_executor() const { return impl_->executor; }
const std::string& Session::host_key_type() const { return impl_->host_key_type; }
const std::string& Session::host_key_fingerprint() const { return impl_->host_key_fingerprint; }

// ---------------------------------------------------------------------------
// Channel

Channel::Channel(Session* session, _LIBSSH2_CHANNEL* channel)
    : session_(session), channel_(channel) {}

Channel::Channel(Channel&& other) noexcept
    : session_(std::exchange(other.session_, nullptr)),
      channel_(std::exchange(other.channel_, nullptr)) {}

Channel& Channel::operator=(Channel&& other) noexcept {
  session_ = std::exchange(other.session_, nullptr);
  channel_ = std::exchange(other.channel_, nullptr);
  return *this;
}

asio::awaitable<Result<size_t>> Channel::Write(std::span<const std::byte> data) {
  if (channel_ == nullptr) co_return Error{errc::kInvalidArgument, "write on a closed channel"};
  if (data.empty()) co_return size_t{0};
  LIBSSH2_CHANNEL* ch = channel_;
  int64_t rc = co_await session_->Call([&]() -> int64_t {
    return libssh2_channel_write_ex(ch, 0, reinterpret_cast<const char*>(data.data()), data.size());
  });
  if (rc < 0) co_return session_->MakeError(rc, "writing to a channel");
  co_return static_cast<size_t>(rc);
}

asio::awaitable<Result<size_t>> Channel::Read(std::span<std::byte> buffer) {
  if (channel_ == nullptr) co_return Error{errc::kInvalidArgument, "read on a closed channel"};
  if (buffer.empty()) co_return size_t{0};
  LIBSSH2_CHANNEL* ch = channel_;
  int64_t rc = co_await session_->Call(
      [&]() -> int64_t {
        ssize_t n =
            libssh2_channel_read_ex(ch, 0, reinterpret_cast<char*>(buffer.data()), buffer.size());
        if (n == 0 && !libssh2_channel_eof(ch)) return LIBSSH2_ERROR_EAGAIN;
        return n;
      },
      Session::CallKind::kIdleRead);
  if (rc < 0) co_return session_->MakeError(rc, "reading from a channel");
  co_return static_cast<size_t>(rc);
}

asio::awaitable<Status> Channel::Close() {
  LIBSSH2_CHANNEL* ch = std::exchange(channel_, nullptr);
  if (ch == nullptr) co_return Status{};
  int64_t rc = co_await session_->Call([&]() -> int64_t { return libssh2_channel_close(ch); });
  if (rc == Session::kCallAborted) co_return Status{};  // the session frees it
  Status status;
  if (rc != 0 && rc != LIBSSH2_ERROR_CHANNEL_CLOSED)
    status = session_->MakeError(rc, "closing a channel");
  // libssh2_channel_free also waits for the server's CLOSE; if it fails, the channel
  // stays with the session, which frees it.
  int64_t freed = co_await session_->Call([&]() -> int64_t { return libssh2_channel_free(ch); });
  if (status.ok() && freed != 0 && freed != Session::kCallAborted) {
    status = session_->MakeError(freed, "freeing a channel");
  }
  co_return status;
}

}  // namespace ferry::ssh
