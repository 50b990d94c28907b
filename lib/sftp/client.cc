// The Client's machinery: start-up handshake, request bookkeeping, the writer
// and reader coroutines, and shutdown. The typed requests are in client_ops.cc.
#include "lib/sftp/client.h"

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <exception>

#include "ferry/error.h"

namespace ferry::sftp {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// Small packets queued together are written with one Channel::Write (libssh2
// sends at most 32 KiB per SSH packet anyway); larger ones are written as they are.
constexpr size_t kCoalesceBytes = size_t{64} * 1024;
constexpr size_t kReadBufferBytes = size_t{64} * 1024;
// Written packets at least this large are kept for reuse, at most kSpareBuffers
// of them (4 x 255 KiB per channel at most).
constexpr size_t kSpareMinBytes = size_t{128} * 1024;
constexpr size_t kSpareBuffers = 4;

}  // namespace

// Tells the session that a reply is due for as long as it lives (the io
// timeout then runs even though the reader waits in a kIdleRead).
class ExpectingReply {
 public:
  explicit ExpectingReply(ssh::Session* session) : session_(session) {
    if (session_ != nullptr) session_->ExpectReplies(1);
  }
  ~ExpectingReply() {
    if (session_ != nullptr) session_->ExpectReplies(-1);
  }
  ExpectingReply(const ExpectingReply&) = delete;
  ExpectingReply& operator=(const ExpectingReply&) = delete;

 private:
  ssh::Session* session_;
};

Client::Client(ssh::Channel channel, asio::any_io_executor ex, ClientOptions options)
    : session_(channel.session()),
      channel_(std::move(channel)),
      ex_(ex),
      options_(options),
      budget_signal_(std::make_unique<Timer>(ex, Timer::time_point::max())),
      outbox_signal_(std::make_unique<Timer>(ex, Timer::time_point::max())),
      tasks_signal_(std::make_unique<Timer>(ex, Timer::time_point::max())) {}

Client::~Client() = default;

asio::awaitable<Result<std::shared_ptr<Client>>> Client::Start(ssh::Session& session,
                                                               ClientOptions options) {
  std::string subsystem = options.subsystem;
  auto channel = co_await session.OpenSubsystemChannel(std::move(subsystem));
  if (!channel.ok()) co_return channel.error();
  std::shared_ptr<Client> client(new Client(std::move(*channel), session.get_executor(), options));
  Status handshake = co_await client->Handshake();
  if (!handshake.ok()) {
    client->closed_ = true;
    Status ignored = co_await client->channel_.Close();
    co_return handshake.error();
  }
  client->StartTasks();
  if (options.query_limits && client->HasExtension(kLimits)) {
    const auto asked = std::chrono::steady_clock::now();
    auto limits = co_await client->QueryLimits();
    // The INIT round trip also waited for the server process to start (tens of
    // ms on a loaded machine): the smaller of the two is the link's.
    client->handshake_rtt_ = std::min<std::chrono::nanoseconds>(
        client->handshake_rtt_, std::chrono::steady_clock::now() - asked);
    if (limits.ok()) {
      client->limits_ = *limits;
    } else if (client->failed()) {
      Status ignored = co_await client->Close();
      co_return limits.error();
    }
    // A server that offers limits but refuses them: keep the defaults.
  }
  co_return client;
}

uint32_t Client::max_read_length() const {
  uint64_t n = limits_.max_read_length;
  if (n == 0) return kDefaultMaxDataLength;
  // Leave room for the DATA header inside our own packet limit.
  return static_cast<uint32_t>(std::min<uint64_t>(n, kMaxPacketLength - 1024));
}

uint32_t Client::max_write_length() const {
  uint64_t n = limits_.max_write_length;
  if (n == 0) return kDefaultMaxDataLength;
  return static_cast<uint32_t>(std::min<uint64_t>(n, kMaxPacketLength - 1024));
}

asio::awaitable<Status> Client::WriteAll(std::string_view bytes) {
  std::span<const std::byte> rest = std::as_bytes(std::span(bytes.data(), bytes.size()));
  while (!rest.empty()) {
    if (channel_released_) co_return Error{errc::kConnectionLost, "the SFTP client was aborted"};
    auto n = co_await channel_.Write(rest);
    if (!n.ok()) co_return n.error();
    if (*n == 0) {
      // libssh2 1.10 can return 0 when the window is closed and its read of
      // pending packets did not end in EAGAIN: let the reader run before retrying.
      co_await asio::post(ex_, asio::use_awaitable);
      continue;
    }
    rest = rest.subspan(*n);
  }
  co_return Status{};
}

asio::awaitable<Status> Client::Handshake() {
  const auto started = std::chrono::steady_clock::now();
  ExpectingReply expecting(session_);
  std::string init = EncodeInit();
  Status sent = co_await WriteAll(init);
  if (!sent.ok()) co_return sent;
  std::vector<std::byte> buffer(kReadBufferBytes);
  for (;;) {
    auto packet = framer_.Next();
    if (!packet.ok()) co_return packet.error();
    if (*packet) {
      auto version = ParseVersion(**packet);
      if (!version.ok()) co_return version.error();
      if (version->version < kProtocolVersion) {
        co_return Error{errc::kProtocol,
                        "the server speaks SFTP version " + std::to_string(version->version)};
      }
      version_ = std::move(*version);
      handshake_rtt_ = std::chrono::steady_clock::now() - started;
      co_return Status{};
    }
    auto n = co_await channel_.Read(buffer);
    if (!n.ok()) co_return n.error();
    if (*n == 0) co_return Error{errc::kConnectionLost, "the server closed the SFTP channel"};
    framer_.Append(std::span<const std::byte>(buffer.data(), *n));
  }
}

void Client::StartTasks() {
  auto self = shared_from_this();
  auto ended = [self](std::exception_ptr e) {
    if (e) self->Fail(Error{errc::kProtocol, "internal error in the SFTP client"}, false);
    --self->tasks_running_;
    self->Wake(self->tasks_signal_);
  };
  tasks_running_ = 2;
  asio::co_spawn(ex_, ReaderLoop(), ended);
  asio::co_spawn(ex_, WriterLoop(), ended);
}

void Client::Wake(std::unique_ptr<Timer>& timer) { timer->cancel(); }

asio::awaitable<void> Client::WaitOn(std::unique_ptr<Timer>& timer) {
  auto [ec] = co_await timer->async_wait(kNoThrow);
  (void)ec;  // cancelled: that is the wake-up
}

std::string Client::TakeSpareBuffer() {
  if (spare_buffers_.empty()) return {};
  std::string buffer = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return buffer;
}

Result<Ticket> Client::Enqueue(uint32_t id, std::string packet) {
  if (failure_) return *failure_;
  if (closing_) return Error{errc::kCancelled, "the SFTP client is closing"};
  auto ticket = std::make_shared<PendingRequest>();
  ticket->id_ = id;
  ticket->charge_ = packet.size();
  auto [it, inserted] = pending_.emplace(id, ticket);
  if (!inserted) return Error{errc::kInvalidArgument, "SFTP request id reused"};
  outstanding_bytes_ += packet.size();
  session_->ExpectReplies(1);
  outbox_.push_back(std::move(packet));
  Wake(outbox_signal_);
  return ticket;
}

asio::awaitable<Result<Ticket>> Client::Submit(uint32_t id, std::string packet) {
  // Byte 4 is the packet type (after the uint32 length).
  if (options_.rate_limiter && packet.size() > 4 &&
      static_cast<uint8_t>(packet[4]) == static_cast<uint8_t>(PacketType::kWrite)) {
    co_await options_.rate_limiter->Take(packet.size());
  }
  while (!failure_ && !closing_ && outstanding_bytes_ > 0 &&
         outstanding_bytes_ + packet.size() > options_.max_outstanding_bytes) {
    co_await WaitOn(budget_signal_);
  }
  co_return Enqueue(id, std::move(packet));
}

Result<Ticket> Client::SubmitNow(uint32_t id, std::string packet) {
  return Enqueue(id, std::move(packet));
}

asio::awaitable<Result<Reply>> Client::Await(Ticket ticket) {
  while (!ticket->result_) {
    if (!ticket->signal_) ticket->signal_ = std::make_unique<Timer>(ex_, Timer::time_point::max());
    auto [ec] = co_await ticket->signal_->async_wait(kNoThrow);
    (void)ec;
  }
  co_return std::move(*ticket->result_);
}

asio::awaitable<Result<Reply>> Client::Call(uint32_t id, std::string packet) {
  auto ticket = co_await Submit(id, std::move(packet));
  if (!ticket.ok()) co_return ticket.error();
  co_return co_await Await(std::move(*ticket));
}

void Client::Deliver(uint32_t id, Result<Reply> result) {
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    Fail(Error{errc::kProtocol, "the SFTP server answered request id " + std::to_string(id) +
                                    ", which is not pending"},
         false);
    return;
  }
  Ticket ticket = std::move(it->second);
  pending_.erase(it);
  session_->ExpectReplies(-1);
  outstanding_bytes_ -= ticket->charge_;
  Wake(budget_signal_);
  ticket->result_.emplace(std::move(result));
  if (ticket->signal_) ticket->signal_->cancel();
}

void Client::Fail(Error error, bool transport) {
  if (failure_) return;
  failure_ = error;
  transport_failed_ = transport;
  auto pending = std::move(pending_);
  pending_.clear();
  // Only with replies due: Abort() may come after the session is gone.
  if (!pending.empty()) session_->ExpectReplies(-static_cast<int>(pending.size()));
  outstanding_bytes_ = 0;
  outbox_.clear();
  for (auto& [id, ticket] : pending) {
    ticket->result_.emplace(error);
    if (ticket->signal_) ticket->signal_->cancel();
  }
  Wake(outbox_signal_);
  Wake(budget_signal_);
}

asio::awaitable<void> Client::WriterLoop() {
  std::string batch;
  while (!failure_ && !channel_released_) {
    if (outbox_.empty()) {
      if (closing_) break;
      co_await WaitOn(outbox_signal_);
      continue;
    }
    std::string packet = std::move(outbox_.front());
    outbox_.pop_front();
    if (packet.size() < kCoalesceBytes && !outbox_.empty() &&
        packet.size() + outbox_.front().size() <= kCoalesceBytes) {
      batch.clear();
      batch += packet;
      while (!outbox_.empty() && batch.size() + outbox_.front().size() <= kCoalesceBytes) {
        batch += outbox_.front();
        outbox_.pop_front();
      }
      packet.swap(batch);
    }
    Status written = co_await WriteAll(packet);
    if (packet.capacity() >= kSpareMinBytes && spare_buffers_.size() < kSpareBuffers) {
      spare_buffers_.push_back(std::move(packet));
    }
    if (!written.ok()) {
      if (!channel_released_) {
        Fail(Error{errc::kConnectionLost,
                   "writing to the SFTP channel: " + written.error().Message()},
             true);
      }
      break;
    }
  }
}

asio::awaitable<void> Client::ReaderLoop() {
  std::vector<std::byte> buffer(kReadBufferBytes);
  while (!failure_ && !channel_released_) {
    if (closing_ && pending_.empty()) break;
    auto n = co_await channel_.Read(buffer);
    if (failure_ || channel_released_) break;
    if (!n.ok()) {
      Fail(Error{errc::kConnectionLost, "reading from the SFTP channel: " + n.error().Message()},
           true);
      break;
    }
    if (*n == 0) {
      Fail(Error{errc::kConnectionLost, "the server closed the SFTP channel"}, false);
      break;
    }
    framer_.Append(std::span<const std::byte>(buffer.data(), *n));
    for (;;) {
      auto packet = framer_.Next();
      if (!packet.ok()) {
        Fail(packet.error(), false);
        co_return;
      }
      if (!*packet) break;
      auto reply = ParseReply(**packet);
      if (!reply.ok()) {
        Fail(reply.error(), false);
        co_return;
      }
      const uint32_t id = reply->id;
      Deliver(id, std::move(*reply));
      if (failure_) co_return;
    }
  }
}

asio::awaitable<Status> Client::Close() {
  if (closed_) {
    co_await Join();
    co_return Status{};
  }
  closed_ = true;
  if (!failure_ && !channel_released_) {
    // A last request whose reply proves that everything before it was answered
    // and lets the reader stop between packets rather than inside a read.
    const uint32_t id = NextId();
    std::string barrier = EncodeRealpath(id, ".");
    auto ticket = Enqueue(id, std::move(barrier));
    closing_ = true;
    Wake(outbox_signal_);
    Wake(budget_signal_);
    if (ticket.ok()) {
      auto reply = co_await Await(std::move(*ticket));
      (void)reply;
    }
  } else {
    closing_ = true;
    Wake(outbox_signal_);
    Wake(budget_signal_);
  }
  co_await Join();
  if (channel_released_) co_return Status{};
  // The reader and writer have ended: the channel is ours alone now.
  Status status = co_await channel_.Close();
  channel_released_ = true;
  Fail(Error{errc::kCancelled, "the SFTP client is closed"}, false);
  co_return status;
}

void Client::Abort(Error error) {
  Fail(std::move(error), false);
  channel_released_ = true;
  closing_ = true;
  closed_ = true;
  Wake(outbox_signal_);
  Wake(budget_signal_);
}

asio::awaitable<void> Client::Join() {
  while (tasks_running_ > 0) co_await WaitOn(tasks_signal_);
}

}  // namespace ferry::sftp
