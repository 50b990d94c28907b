// Files on the SFTP destination: a temp name next to the final one, WRITEs
// pipelined (over several channels for big files), then attributes, close and
// an atomic rename.
#include <sys/stat.h>

#include <ctime>
#include <deque>

#include "ferry/error.h"
#include "lib/base/path.h"
#include "lib/sftp/codec.h"
#include "lib/transport/sftp/destination_impl.h"
#include "lib/transport/sftp/listing.h"

namespace ferry::transport::sftp_internal {
namespace {

using sftp::Client;
using sftp::Ticket;

// How many random temp names to try when one exists already.
constexpr int kTempAttempts = 4;

// The status of a finished request: the transport error, or the server's answer.
Status StatusOf(const Result<sftp::Reply>& reply, std::string_view what) {
  if (!reply.ok()) return reply.error();
  return sftp::ExpectOk(*reply, what);
}

class SftpFileSink final : public FileSink {
 public:
  // One channel writing into the temp file through its own handle.
  struct Lane {
    Lane(Lease l, std::string h) : lease(std::move(l)), handle(std::move(h)) {}
    Lease lease;
    std::string handle;
    bool open = true;
    struct Pending {
      Ticket ticket;
      uint64_t bytes = 0;
    };
    std::deque<Pending> writes;  // unacknowledged WRITEs, oldest first
  };

  SftpFileSink(SftpDestination& dest, Lease lease, std::string handle, std::string temp_abs,
               std::string final_abs, std::string display)
      : dest_(dest),
        temp_abs_(std::move(temp_abs)),
        final_abs_(std::move(final_abs)),
        display_(std::move(display)) {
    lanes_.emplace_back(std::move(lease), std::move(handle));
  }

  // A part file of a resumable upload: written from `existing` on, kept on
  // Abort. It may be split over channels like any big file: each channel
  // processes its WRITEs in order, so after an interruption the holes lie
  // only in the last SftpDestination::ResumeSlack() bytes, which OpenPart
  // does not count as existing.
  struct PartTag {};
  SftpFileSink(PartTag, SftpDestination& dest, Lease lease, std::string handle,
               std::string part_abs, std::string final_abs, std::string display, uint64_t existing)
      : SftpFileSink(dest, std::move(lease), std::move(handle), std::move(part_abs),
                     std::move(final_abs), std::move(display)) {
    keep_on_abort_ = true;
    offset_ = existing;
  }

  ~SftpFileSink() override {
    // Neither committed nor aborted: ask for the clean-up without waiting.
    if (finished_) return;
    for (Lane& lane : lanes_) {
      if (!lane.open) continue;
      const uint32_t id = lane.lease->NextId();
      std::string close = sftp::EncodeClose(id, lane.handle);
      (void)lane.lease->SubmitNow(id, std::move(close));
    }
    if (keep_on_abort_) return;
    Client& main = *lanes_[0].lease;
    const uint32_t id = main.NextId();
    std::string remove = sftp::EncodeRemove(id, temp_abs_);
    (void)main.SubmitNow(id, std::move(remove));
  }

  asio::awaitable<Status> ResumeAt(uint64_t offset) override {
    if (!keep_on_abort_ || written_ || finished_) {
      co_return Error{errc::kUnsupported, display_ + ": cannot resume this upload"};
    }
    sftp::Attrs a;
    a.flags = sftp::kAttrSize;
    a.size = offset;
    Lane& lane = lanes_[0];
    std::string handle = lane.handle;
    Status st = co_await lane.lease->Fsetstat(std::move(handle), a);
    if (!st.ok()) co_return WithPath(st.error(), display_);
    offset_ = offset;
    co_return st;
  }

  asio::awaitable<Status> Write(std::span<const std::byte> data) override {
    written_ = true;
    if (finished_) co_return Error{errc::kInvalidArgument, display_ + ": write after the end"};
    Reap();
    if (!error_.ok()) {
      Error failed = error_.error();
      error_ = co_await ExplainFailure(std::move(failed), failed_bytes_);
      co_return error_;
    }
    co_await MaybeAddLane();
    // Units of kLaneUnitBytes go round-robin over the lanes: disjoint ranges per
    // channel, none more than a unit ahead of another (ResumeSlack needs that).
    while (!data.empty()) {
      const size_t unit = std::min(kLaneUnitBytes, data.size());
      Lane& lane = lanes_[next_lane_++ % lanes_.size()];
      if (Status st = co_await WriteOnLane(lane, data.first(unit)); !st.ok()) co_return st;
      data = data.subspan(unit);
    }
    co_return error_;
  }

  asio::awaitable<Status> WriteOnLane(Lane& lane, std::span<const std::byte> data) {
    Client& c = *lane.lease;
    const size_t max = dest_.WriteLength(c);
    while (!data.empty()) {
      const size_t n = std::min(max, data.size());
      const uint32_t id = c.NextId();
      std::string packet =
          sftp::EncodeWrite(id, lane.handle, offset_, data.first(n), c.TakeSpareBuffer());
      auto ticket = co_await c.Submit(id, std::move(packet));
      if (!ticket.ok()) {
        error_ = WithPath(ticket.error(), display_);
        co_return error_;
      }
      lane.writes.push_back({std::move(*ticket), n});
      offset_ += n;
      data = data.subspan(n);
    }
    co_return error_;
  }

  asio::awaitable<Status> Commit(CommitAttrs attrs) override {
    if (finished_) co_return Error{errc::kInvalidArgument, display_ + ": already finished"};
    Status st = error_;
    // Extra lanes first: their data must be acknowledged before the fsync and
    // rename that go out on the main lane.
    for (size_t i = 1; i < lanes_.size() && st.ok(); ++i) st = co_await CloseLane(lanes_[i]);
    if (st.ok()) st = co_await FinishMainLane(attrs);
    if (!st.ok()) {
      // Storing the data failed (WRITE, FSETSTAT, fsync, CLOSE); a failed
      // rename below has other causes than a full disk.
      Error failed = st.error();
      st = co_await ExplainFailure(std::move(failed), failed_bytes_);
    }
    if (st.ok()) {
      st = co_await dest_.Replace(*lanes_[0].lease, temp_abs_, final_abs_, display_);
    }
    if (!st.ok()) {
      co_await Abort();
      co_return st;
    }
    finished_ = true;
    co_return st;
  }

  asio::awaitable<void> Abort() override {
    if (finished_) co_return;
    finished_ = true;
    std::vector<std::pair<Client*, Ticket>> tickets;
    for (Lane& lane : lanes_) {
      if (!lane.open) continue;
      lane.open = false;
      const uint32_t id = lane.lease->NextId();
      std::string close = sftp::EncodeClose(id, lane.handle);
      auto t = lane.lease->SubmitNow(id, std::move(close));
      if (t.ok()) tickets.emplace_back(lane.lease.get(), std::move(*t));
    }
    for (auto& [client, ticket] : tickets) {
      auto ignored = co_await client->Await(ticket);
    }
    // Unlinking needs no handle: any channel will do if the main one is gone
    // (e.g. the connection dropped and came back).
    if (keep_on_abort_) co_return;  // the next run may resume from it
    Lease main = std::move(lanes_[0].lease);
    co_await dest_.RemoveQuietly(temp_abs_, main.get());
  }

 private:
  // Collects acknowledged WRITEs; the first failure sticks.
  void Reap() {
    for (Lane& lane : lanes_) {
      while (!lane.writes.empty() && lane.writes.front().ticket->done()) {
        Status st = StatusOf(lane.writes.front().ticket->result(), "write");
        const uint64_t bytes = lane.writes.front().bytes;
        lane.writes.pop_front();
        if (!st.ok() && error_.ok()) {
          error_ = WithPath(st.error(), display_);
          failed_bytes_ = bytes;
        }
      }
    }
  }

  // Past the split threshold, borrows an idle channel of the same connection
  // (if any) and opens the temp file there too. Costs one round trip, once per
  // extra lane.
  asio::awaitable<void> MaybeAddLane() {
    const SftpConfig& config = dest_.config();
    if (config.split_threshold_bytes == 0 || offset_ < config.split_threshold_bytes) co_return;
    if (lanes_[0].lease->handshake_rtt() < config.split_min_rtt) co_return;
    if (static_cast<int>(lanes_.size()) >= config.max_channels_per_file || no_more_lanes_) {
      co_return;
    }
    // Try again only after another threshold's worth of data.
    if (offset_ < next_lane_attempt_) co_return;
    next_lane_attempt_ = offset_ + config.split_threshold_bytes / 2;
    std::vector<Client*> used;
    for (const Lane& lane : lanes_) used.push_back(lane.lease.get());
    Lease lease = dest_.pool().TryAcquireSibling(used);
    if (!lease) co_return;
    std::string temp = temp_abs_;
    auto handle = co_await lease->Open(std::move(temp), sftp::kOpenWrite);
    if (!handle.ok()) {
      no_more_lanes_ = true;  // not worth a second try for this file
      co_return;
    }
    lanes_.emplace_back(std::move(lease), std::move(*handle));
  }

  // OpenSSH answers ENOSPC with FX_FAILURE (SFTP v3 has no better status):
  // when the server can say how much room is left (statvfs@openssh.com) and
  // that is less than the failed WRITE needed (or nothing, for FSETSTAT, fsync
  // or CLOSE), the upload failed for lack of space. Anything else stays as it
  // was. Asked once per file, on any channel still held; must run before
  // Abort, which lets the leases go.
  asio::awaitable<Error> ExplainFailure(Error error, uint64_t needed) {
    if (explained_ || error.code != sftp::make_error_code(sftp::StatusCode::kFailure)) {
      co_return error;
    }
    explained_ = true;
    Client* c = nullptr;
    for (Lane& lane : lanes_) {
      if (lane.lease && lane.lease->HasExtension(sftp::kStatvfs)) c = lane.lease.get();
    }
    if (c == nullptr) co_return error;
    std::string dir(ParentOf(final_abs_));
    if (dir.empty()) dir = "/";
    std::string dir_arg = dir;
    auto vfs = co_await c->QueryStatVfs(std::move(dir_arg));
    if (!vfs.ok() || !sftp::LooksOutOfSpace(*vfs, needed)) co_return error;
    co_return Error{std::make_error_code(std::errc::no_space_on_device),
                    display_ + ": the server's file system is full (" +
                        std::to_string(sftp::AvailableBytes(*vfs)) +
                        " bytes free for this user; the server answered " + error.code.message() +
                        ")"};
  }

  // Awaits a lane's WRITEs and closes its handle.
  asio::awaitable<Status> CloseLane(Lane& lane) {
    Client& c = *lane.lease;
    const uint32_t id = c.NextId();
    std::string packet = sftp::EncodeClose(id, lane.handle);
    auto close = co_await c.Submit(id, std::move(packet));
    if (!close.ok()) co_return WithPath(close.error(), display_);
    lane.open = false;
    Status st = co_await AwaitWrites(lane);
    auto reply = co_await c.Await(*close);
    Status closed = StatusOf(reply, "close");
    if (st.ok() && !closed.ok()) st = WithPath(closed.error(), display_);
    co_return st;
  }

  asio::awaitable<Status> AwaitWrites(Lane& lane) {
    Status st = error_;
    while (!lane.writes.empty()) {
      Ticket t = std::move(lane.writes.front().ticket);
      const uint64_t bytes = lane.writes.front().bytes;
      lane.writes.pop_front();
      auto reply = co_await lane.lease->Await(t);
      Status written = StatusOf(reply, "write");
      if (!written.ok() && st.ok()) {
        st = WithPath(written.error(), display_);
        failed_bytes_ = bytes;
      }
    }
    co_return st;
  }

  // FSETSTAT (mode, times), fsync if asked, CLOSE: sent right behind the
  // WRITEs, then everything awaited at once.
  asio::awaitable<Status> FinishMainLane(const CommitAttrs& attrs) {
    Lane& lane = lanes_[0];
    Client& c = *lane.lease;
    sftp::Attrs a;
    a.flags = sftp::kAttrPermissions | sftp::kAttrAcModTime;
    a.permissions = attrs.mode & 07777;
    a.mtime = SecondsForSftp(attrs.mtime_ns);
    a.atime = SecondsForSftp(int64_t{std::time(nullptr)} * 1'000'000'000);
    const uint32_t setstat_id = c.NextId();
    std::string setstat_packet = sftp::EncodeFsetstat(setstat_id, lane.handle, a);
    auto setstat = co_await c.Submit(setstat_id, std::move(setstat_packet));
    if (!setstat.ok()) co_return WithPath(setstat.error(), display_);
    Ticket fsync;
    if (attrs.fsync) {
      if (c.HasExtension(sftp::kFsync)) {
        const uint32_t id = c.NextId();
        std::string packet = sftp::EncodeFsync(id, lane.handle);
        auto t = co_await c.Submit(id, std::move(packet));
        if (!t.ok()) co_return WithPath(t.error(), display_);
        fsync = std::move(*t);
      } else {
        dest_.AddNoteOnce("server lacks fsync@openssh.com: --fsync could not make uploads durable");
      }
    }
    const uint32_t close_id = c.NextId();
    std::string close_packet = sftp::EncodeClose(close_id, lane.handle);
    auto close = co_await c.Submit(close_id, std::move(close_packet));
    if (!close.ok()) co_return WithPath(close.error(), display_);
    lane.open = false;

    Status st = co_await AwaitWrites(lane);
    auto setstat_reply = co_await c.Await(*setstat);
    Status set = StatusOf(setstat_reply, "setting mode and times");
    if (st.ok() && !set.ok()) st = WithPath(set.error(), display_);
    if (fsync) {
      auto fsync_reply = co_await c.Await(fsync);
      Status synced = StatusOf(fsync_reply, "fsync");
      if (st.ok() && !synced.ok()) st = WithPath(synced.error(), display_);
    }
    // CLOSE can report a delayed write error (quota, NFS): it counts.
    auto close_reply = co_await c.Await(*close);
    Status closed = StatusOf(close_reply, "close");
    if (st.ok() && !closed.ok()) st = WithPath(closed.error(), display_);
    co_return st;
  }

  SftpDestination& dest_;
  std::vector<Lane> lanes_;  // lanes_[0]: the channel that created the file
  size_t next_lane_ = 0;
  std::string temp_abs_;
  std::string final_abs_;
  std::string display_;
  uint64_t offset_ = 0;
  uint64_t next_lane_attempt_ = 0;
  bool no_more_lanes_ = false;
  bool keep_on_abort_ = false;
  bool written_ = false;
  bool finished_ = false;
  Status error_;               // the first failed WRITE
  uint64_t failed_bytes_ = 0;  // its length (0: the failure was not a WRITE)
  bool explained_ = false;     // ExplainFailure asked the server already
};

}  // namespace

asio::awaitable<Result<std::unique_ptr<FileSink>>> SftpDestination::CreateFile(std::string path) {
  if (path.empty() || !IsSafeRelPath(path)) {
    co_return Error{errc::kUnsafePath, "'" + Printable(path) + "'"};
  }
  if (!opened_ || !root_exists_) co_return Error{errc::kInvalidArgument, "CreateFile before Open"};
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return WithPath(lease.error(), Display(path));
  Client& c = **lease;
  if (!orphans_.empty()) co_await RemoveOrphans(c);
  const std::string parent = Abs(ParentOf(path));
  sftp::Attrs create;
  create.flags = sftp::kAttrPermissions;
  create.permissions = 0600;
  for (int attempt = 0; attempt < kTempAttempts; ++attempt) {
    std::string temp = (parent == "/" ? "" : parent) + "/" + TempName();
    std::string temp_arg = temp;
    auto handle = co_await c.Open(
        std::move(temp_arg), sftp::kOpenWrite | sftp::kOpenCreate | sftp::kOpenExclusive, create);
    if (handle.ok()) {
      co_return std::unique_ptr<FileSink>(std::make_unique<SftpFileSink>(
          *this, std::move(*lease), std::move(*handle), std::move(temp), Abs(path), Display(path)));
    }
    if (handle.code() == errc::kConnectionLost) {
      // The server may have created the file before the connection went: this
      // run knows its name, so clean it up rather than leave it to the next.
      co_await RemoveQuietly(std::move(temp), nullptr);
      co_return WithPath(handle.error(), Display(path));
    }
    if (handle.code() == std::errc::permission_denied) {
      // Say what was refused in the user's terms: the server's detail names
      // our temp file, which the user never asked for.
      co_return Error{handle.code(), Display(path) + ": the server refused to create files in " +
                                         Display(ParentOf(path))};
    }
    // OpenSSH reports an existing name (O_EXCL) as FX_FAILURE: try another name.
    if (handle.code() != sftp::make_error_code(sftp::StatusCode::kFailure)) {
      co_return WithPath(handle.error(), Display(path));
    }
  }
  co_return Error{std::make_error_code(std::errc::file_exists),
                  Display(path) + ": no free temporary name"};
}

asio::awaitable<Result<PartSink>> SftpDestination::OpenPart(std::string path,
                                                            std::string part_name) {
  if (path.empty() || !IsSafeRelPath(path)) {
    co_return Error{errc::kUnsafePath, "'" + Printable(path) + "'"};
  }
  if (!IsSafeName(part_name) || !IsTempName(part_name)) {
    co_return Error{errc::kInvalidArgument, "not a part file name: " + Printable(part_name)};
  }
  if (!opened_ || !root_exists_) co_return Error{errc::kInvalidArgument, "OpenPart before Open"};
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return WithPath(lease.error(), Display(path));
  Client& c = **lease;
  const std::string parent = Abs(ParentOf(path));
  const std::string part = (parent == "/" ? "" : parent) + "/" + part_name;
  // OPEN follows symlinks, so look first: a missing part is created with
  // O_EXCL (which never follows one), an existing one must be a regular file.
  std::string lstat_path = part;
  auto existing = co_await c.Lstat(std::move(lstat_path));
  std::string open_path = part;
  Result<std::string> handle{std::string()};
  if (!existing.ok() && existing.code() == sftp::make_error_code(sftp::StatusCode::kNoSuchFile)) {
    sftp::Attrs create;
    create.flags = sftp::kAttrPermissions;
    create.permissions = 0600;
    handle = co_await c.Open(std::move(open_path),
                             sftp::kOpenWrite | sftp::kOpenCreate | sftp::kOpenExclusive, create);
  } else if (!existing.ok()) {
    co_return WithPath(existing.error(), Display(path));
  } else if (!existing->Has(sftp::kAttrPermissions) ||
             (existing->permissions & S_IFMT) != S_IFREG) {
    co_return Error{std::make_error_code(std::errc::invalid_argument),
                    Display(path) + ": part file is not a regular file"};
  } else {
    handle = co_await c.Open(std::move(open_path), sftp::kOpenWrite);
  }
  if (!handle.ok()) co_return WithPath(handle.error(), Display(path));
  std::string fstat_handle = *handle;
  auto attrs = co_await c.Fstat(std::move(fstat_handle));
  const uint64_t size = attrs.ok() && attrs->Has(sftp::kAttrSize) ? attrs->size : 0;
  PartSink out;
  const uint64_t slack = ResumeSlack();
  out.existing_bytes = size > slack ? size - slack : 0;
  out.sink =
      std::make_unique<SftpFileSink>(SftpFileSink::PartTag{}, *this, std::move(*lease),
                                     std::move(*handle), part, Abs(path), Display(path), size);
  co_return out;
}

}  // namespace ferry::transport::sftp_internal
