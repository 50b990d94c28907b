// The SFTP destination: opening the root, listing, directories, symlinks,
// removal and renames. Files are in file_sink.cc, reads in read_ops.cc.
#include <sys/stat.h>

#include <asio/thread_pool.hpp>
#include <deque>
#include <random>
#include <utility>

#include "ferry/error.h"
#include "lib/base/path.h"
#include "lib/sftp/codec.h"
#include "lib/transport/sftp/destination_impl.h"
#include "lib/transport/sftp/listing.h"

namespace ferry::transport {
namespace sftp_internal {
namespace {

using sftp::Client;
using sftp::Ticket;

// READDIRs kept in flight per directory: two cover a small directory (entries,
// then EOF) in one round trip; big ones (OpenSSH sends 100 names per batch) get more.
constexpr size_t kReaddirWindowSmall = 2;
constexpr size_t kReaddirWindowLarge = 4;
constexpr size_t kLargeBatch = 50;
// Deeper than this, Remove() gives up (a loop of bind mounts, or a hostile server).
constexpr int kMaxRemoveDepth = 256;
// Temps kept for removal once an unreachable server is back; beyond these, the
// next run that lists their directory removes them.
constexpr size_t kMaxOrphans = 4096;

constexpr char kNoPosixRenameNote[] =
    "server lacks posix-rename@openssh.com: replaced files were briefly absent";

bool IsNoSuchFile(const std::error_code& code) {
  return code == std::errc::no_such_file_or_directory;
}

bool IsDir(const sftp::Attrs& a) {
  return a.Has(sftp::kAttrPermissions) && (a.permissions & S_IFMT) == S_IFDIR;
}

bool IsLink(const sftp::Attrs& a) {
  return a.Has(sftp::kAttrPermissions) && (a.permissions & S_IFMT) == S_IFLNK;
}

Error Unsafe(std::string_view path) {
  return Error{errc::kUnsafePath, "'" + Printable(path) + "'"};
}

}  // namespace

std::string TempName() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  uint64_t v = rng();
  std::string s(kTempPrefix);
  for (int i = 0; i < 16; ++i) s.push_back(kHex[(v >> (i * 4)) & 15]);
  return s;
}

Error WithPath(const Error& error, std::string_view display) {
  Error out = error;
  out.detail =
      error.detail.empty() ? std::string(display) : std::string(display) + ": " + error.detail;
  return out;
}

SftpDestination::SftpDestination(SftpConfig config, asio::any_io_executor ex,
                                 asio::thread_pool& pool)
    : config_(std::move(config)),
      ex_(ex),
      thread_pool_(pool),
      pool_(ex,
            PoolOptions{config_.connect, config_.connections, config_.channels_per_connection,
                        sftp::ClientOptions{
                            config_.outstanding_bytes_per_channel, true, config_.subsystem,
                            config_.bwlimit_bytes_per_s == 0
                                ? nullptr
                                : std::make_shared<sftp::RateLimiter>(config_.bwlimit_bytes_per_s)},
                        config_.split_min_rtt}) {
  display_ = config_.display;
  if (display_.empty()) {
    display_ = "sftp://";
    if (!config_.connect.user.empty()) display_ += config_.connect.user + "@";
    display_ += config_.connect.host + ":" + std::to_string(config_.connect.port);
    display_ += config_.root.starts_with('/') ? config_.root : "/~/" + config_.root;
  }
}

SftpDestination::~SftpDestination() = default;

std::string SftpDestination::Abs(std::string_view rel) const {
  if (rel.empty()) return root_abs_;
  if (root_abs_ == "/") return "/" + std::string(rel);
  return root_abs_ + "/" + std::string(rel);
}

std::string SftpDestination::Display(std::string_view rel) const {
  if (rel.empty()) return display_;
  std::string out = display_;
  if (!out.ends_with('/')) out.push_back('/');
  out += Printable(rel);
  return out;
}

uint32_t SftpDestination::WriteLength(const sftp::Client& client) const {
  uint32_t n = client.max_write_length();
  if (config_.write_request_bytes > 0 && config_.write_request_bytes < n) {
    n = static_cast<uint32_t>(config_.write_request_bytes);
  }
  return std::max<uint32_t>(n, 1024);
}

int SftpDestination::SuggestedJobs() const {
  // A file costs three round trips (OPEN; WRITEs, FSETSTAT, CLOSE; RENAME):
  // at 50 ms RTT and 64 in flight, 20k small files took 51 s (rsync 4.8 s).
  // Small files in flight are cheap (a few KiB of buffer each; large files
  // stay bounded by EngineConfig::large_jobs), so a slow link gets more.
  return pool_.start_rtt() >= config_.split_min_rtt ? kSlowLinkJobs : 0;
}

uint64_t SftpDestination::ResumeSlack() const {
  const uint64_t lanes = config_.split_threshold_bytes == 0
                             ? 1
                             : static_cast<uint64_t>(std::max(1, config_.max_channels_per_file));
  return lanes * (config_.outstanding_bytes_per_channel + kLaneUnitBytes);
}

void SftpDestination::AddNoteOnce(const std::string& note) {
  for (const std::string& n : notes_) {
    if (n == note) return;
  }
  notes_.push_back(note);
}

std::vector<std::string> SftpDestination::TakeNotes() { return std::exchange(notes_, {}); }

asio::awaitable<void> SftpDestination::RemoveQuietly(std::string abs, Client* client) {
  for (int attempt = 1; attempt <= kAttemptsOnConnectionLoss; ++attempt) {
    Lease lease;
    Client* c = client;
    if (c == nullptr || c->failed()) {
      auto acquired = co_await pool_.Acquire();
      if (!acquired.ok()) break;
      lease = std::move(*acquired);
      c = lease.get();
    }
    client = nullptr;  // next attempts take whatever channel is alive
    std::string path = abs;
    Status st = co_await c->Remove(std::move(path));
    if (st.code() != errc::kConnectionLost) co_return;
  }
  // The server is out of reach: remove it once it answers again.
  if (orphans_.size() < kMaxOrphans) orphans_.push_back(std::move(abs));
}

asio::awaitable<void> SftpDestination::RemoveOrphans(Client& client) {
  std::vector<std::string> orphans = std::exchange(orphans_, {});
  std::vector<std::pair<std::string, Ticket>> sent;
  for (std::string& abs : orphans) {
    const uint32_t id = client.NextId();
    std::string packet = sftp::EncodeRemove(id, abs);
    auto ticket = co_await client.Submit(id, std::move(packet));
    if (!ticket.ok()) {
      orphans_.push_back(std::move(abs));  // lost again: next time
      continue;
    }
    sent.emplace_back(std::move(abs), std::move(*ticket));
  }
  for (auto& [abs, ticket] : sent) {
    auto reply = co_await client.Await(ticket);
    if (!reply.ok() && reply.code() == errc::kConnectionLost) orphans_.push_back(std::move(abs));
  }
}

// ---- open ---------------------------------------------------------------------

asio::awaitable<Status> SftpDestination::Open(bool dry_run) {
  // Opened again: a watch retrying after a lost connection, past its own
  // backoff. Connect now; the pool's backoff would make this attempt fail
  // unseen and the watch wait a whole backoff more (10 s after sshd was back).
  if (opened_) pool_.RetryNow();
  Status started = co_await pool_.Start();
  if (!started.ok()) co_return started;
  for (int attempt = 1;; ++attempt) {
    Status st = co_await OpenOnce(dry_run);
    if (st.code() != errc::kConnectionLost || attempt >= kAttemptsOnConnectionLoss) co_return st;
  }
}

asio::awaitable<Status> SftpDestination::OpenOnce(bool dry_run) {
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return lease.error();
  Client& c = **lease;
  std::string root = config_.root;
  while (root.size() > 1 && root.ends_with('/')) root.pop_back();
  if (root.empty()) root = ".";

  // mkdir -p, pipelined: MKDIR of every prefix, then STAT and REALPATH of the
  // root, all in one round trip. MKDIRs of existing directories fail harmlessly;
  // the STAT says whether the root is there in the end.
  std::vector<Ticket> mkdirs;
  if (!dry_run && root != "." && root != "/") {
    size_t pos = root.starts_with('/') ? 1 : 0;
    while (pos <= root.size()) {
      size_t slash = root.find('/', pos);
      if (slash == std::string::npos) slash = root.size();
      std::string prefix = root.substr(0, slash);
      pos = slash + 1;
      if (prefix.empty() || prefix.ends_with('/')) continue;
      sftp::Attrs mode;
      mode.flags = sftp::kAttrPermissions;
      mode.permissions = 0755;
      const uint32_t id = c.NextId();
      std::string t_packet = sftp::EncodeMkdir(id, prefix, mode);
      auto t = co_await c.Submit(id, std::move(t_packet));
      if (!t.ok()) co_return t.error();
      mkdirs.push_back(std::move(*t));
    }
  }
  const uint32_t stat_id = c.NextId();
  std::string stat_ticket_packet = sftp::EncodeStat(stat_id, root);
  auto stat_ticket = co_await c.Submit(stat_id, std::move(stat_ticket_packet));
  if (!stat_ticket.ok()) co_return stat_ticket.error();
  const uint32_t real_id = c.NextId();
  std::string real_ticket_packet = sftp::EncodeRealpath(real_id, root);
  auto real_ticket = co_await c.Submit(real_id, std::move(real_ticket_packet));
  if (!real_ticket.ok()) co_return real_ticket.error();

  Status mkdir_error;
  for (Ticket& t : mkdirs) {
    auto reply = co_await c.Await(t);
    if (!reply.ok()) co_return reply.error();
    Status st = sftp::ExpectOk(*reply, "creating " + root);
    if (!st.ok() && mkdir_error.ok()) mkdir_error = st;
  }
  auto stat_reply = co_await c.Await(*stat_ticket);
  if (!stat_reply.ok()) co_return stat_reply.error();
  auto real_reply = co_await c.Await(*real_ticket);
  if (!real_reply.ok()) co_return real_reply.error();

  auto attrs = sftp::ExpectAttrs(*stat_reply, "remote root " + root);
  if (!attrs.ok()) {
    if (dry_run && IsNoSuchFile(attrs.code())) {
      root_abs_ = root;
      root_exists_ = false;
      opened_ = true;
      co_return Status{};
    }
    if (!mkdir_error.ok() && IsNoSuchFile(attrs.code()))
      co_return WithPath(mkdir_error.error(), display_);
    co_return WithPath(attrs.error(), display_);
  }
  if (!IsDir(*attrs)) {
    co_return Error{std::make_error_code(std::errc::not_a_directory), display_};
  }
  auto real = sftp::ExpectOneName(*real_reply, "realpath " + root);
  if (!real.ok()) co_return WithPath(real.error(), display_);
  if (real->empty() || !real->starts_with('/')) {
    co_return Error{errc::kProtocol,
                    display_ + ": the server resolved the root to '" + Printable(*real) + "'"};
  }
  root_abs_ = std::move(*real);
  root_exists_ = true;
  opened_ = true;
  co_return Status{};
}

asio::awaitable<Status> SftpDestination::Close() {
  if (!orphans_.empty()) {
    auto lease = co_await pool_.Acquire();
    if (lease.ok()) co_await RemoveOrphans(**lease);
  }
  co_await pool_.Close();
  co_return Status{};
}

// ---- listing --------------------------------------------------------------------

asio::awaitable<Result<Listing>> SftpDestination::List(std::string dir) {
  if (!IsSafeRelPath(dir)) co_return Unsafe(dir);
  if (!opened_) co_return Error{errc::kInvalidArgument, "List before Open"};
  if (!root_exists_) co_return Listing{};
  for (int attempt = 1;; ++attempt) {
    auto listing = co_await ListOnce(dir);
    if (listing.ok() || listing.code() != errc::kConnectionLost ||
        attempt >= kAttemptsOnConnectionLoss) {
      co_return listing;
    }
  }
}

asio::awaitable<Result<Listing>> SftpDestination::ListOnce(const std::string& dir) {
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return lease.error();
  Client& c = **lease;
  const std::string abs = Abs(dir);
  // The lstat rides along with the OPENDIR: a directory replaced by a symlink
  // on the server is refused rather than followed, and the directory's mtime
  // (read before its entries) comes with the listing for the listing cache.
  const uint32_t lstat_id = c.NextId();
  std::string lstat_packet = sftp::EncodeLstat(lstat_id, abs);
  auto lstat_ticket = co_await c.Submit(lstat_id, std::move(lstat_packet));
  if (!lstat_ticket.ok()) co_return lstat_ticket.error();
  auto listing = co_await ListAbs(c, abs, /*read_links=*/true);
  auto reply = co_await c.Await(*lstat_ticket);
  if (!reply.ok()) co_return reply.error();
  auto attrs = sftp::ExpectAttrs(*reply, "lstat");
  // The root may be a symlink the user named on purpose; below it, never.
  if (!dir.empty() && attrs.ok() && IsLink(*attrs)) co_return Unsafe(dir);
  if (!listing.ok()) co_return WithPath(listing.error(), Display(dir));
  if (attrs.ok() && attrs->Has(sftp::kAttrAcModTime) && !IsLink(*attrs)) {
    listing->dir_mtime_ns = static_cast<int64_t>(attrs->mtime) * 1'000'000'000;
  }
  co_return listing;
}

asio::awaitable<Result<std::optional<int64_t>>> SftpDestination::DirMtime(std::string dir) {
  if (!IsSafeRelPath(dir)) co_return Unsafe(dir);
  if (!opened_) co_return Error{errc::kInvalidArgument, "DirMtime before Open"};
  if (!root_exists_) co_return std::optional<int64_t>();
  for (int attempt = 1;; ++attempt) {
    auto lease = co_await pool_.Acquire();
    if (!lease.ok()) co_return lease.error();
    std::string abs = Abs(dir);
    auto attrs = co_await (*lease)->Lstat(std::move(abs));
    if (attrs.ok()) {
      if (!dir.empty() && IsLink(*attrs)) co_return Unsafe(dir);
      if (!attrs->Has(sftp::kAttrAcModTime)) {
        co_return Error{errc::kUnsupported, "no mtime for " + Display(dir)};
      }
      co_return std::optional<int64_t>(static_cast<int64_t>(attrs->mtime) * 1'000'000'000);
    }
    if (IsNoSuchFile(attrs.code())) co_return std::optional<int64_t>();
    if (attrs.code() != errc::kConnectionLost || attempt >= kAttemptsOnConnectionLoss) {
      co_return WithPath(attrs.error(), Display(dir));
    }
  }
}

asio::awaitable<Result<Listing>> SftpDestination::ListAbs(Client& c, const std::string& abs,
                                                          bool read_links) {
  auto handle = co_await c.Opendir(abs);
  if (!handle.ok()) {
    if (IsNoSuchFile(handle.code())) co_return Listing{};
    co_return handle.error();
  }
  ListingBuilder builder;
  std::deque<Ticket> inflight;
  bool eof = false;
  size_t window = kReaddirWindowSmall;
  Error failure;
  while (true) {
    while (!eof && !failure.code && inflight.size() < window) {
      const uint32_t id = c.NextId();
      std::string t_packet = sftp::EncodeReaddir(id, *handle);
      auto t = co_await c.Submit(id, std::move(t_packet));
      if (!t.ok()) co_return t.error();
      inflight.push_back(std::move(*t));
    }
    if (inflight.empty()) break;
    Ticket t = std::move(inflight.front());
    inflight.pop_front();
    auto reply = co_await c.Await(t);
    if (!reply.ok()) co_return reply.error();  // the channel failed: the handle went with it
    auto names = sftp::ExpectNames(*reply, "readdir");
    if (!names.ok()) {
      if (!failure.code) failure = names.error();
      continue;
    }
    if (names->empty()) {
      eof = true;
      continue;
    }
    if (names->size() >= kLargeBatch) window = kReaddirWindowLarge;
    builder.Add(std::move(*names));
  }
  // Nobody needs to wait for the CLOSE: it goes out with the READLINKs.
  const uint32_t close_id = c.NextId();
  std::string closed_packet = sftp::EncodeClose(close_id, *handle);
  auto closed = co_await c.Submit(close_id, std::move(closed_packet));
  if (!closed.ok()) co_return closed.error();
  if (failure.code) co_return failure;

  if (read_links && !builder.symlinks().empty()) {
    std::vector<Ticket> links;
    links.reserve(builder.symlinks().size());
    for (size_t index : builder.symlinks()) {
      const std::string path = abs + "/" + builder.listing().entries[index].name;
      const uint32_t id = c.NextId();
      std::string t_packet = sftp::EncodeReadlink(id, path);
      auto t = co_await c.Submit(id, std::move(t_packet));
      if (!t.ok()) co_return t.error();
      links.push_back(std::move(*t));
    }
    for (size_t i = 0; i < links.size(); ++i) {
      auto reply = co_await c.Await(links[i]);
      if (!reply.ok()) co_return reply.error();
      auto target = sftp::ExpectOneName(*reply, "readlink");
      // Unreadable: an empty target, which never matches a source link, so the
      // link is simply made again.
      if (target.ok()) builder.listing().entries[builder.symlinks()[i]].link_target = *target;
    }
  }
  co_return std::move(builder.listing());
}

// ---- directories ------------------------------------------------------------------

asio::awaitable<Status> SftpDestination::MakeDir(std::string path, uint32_t mode) {
  if (path.empty() || !IsSafeRelPath(path)) co_return Unsafe(path);
  for (int attempt = 1;; ++attempt) {
    Status st = co_await MakeDirOnce(path, mode);
    if (st.code() != errc::kConnectionLost || attempt >= kAttemptsOnConnectionLoss) co_return st;
  }
}

asio::awaitable<Status> SftpDestination::MakeDirOnce(const std::string& path, uint32_t mode) {
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return lease.error();
  Client& c = **lease;
  const std::string abs = Abs(path);
  // Owner rwx while ferry fills it, as the local destination does.
  sftp::Attrs attrs;
  attrs.flags = sftp::kAttrPermissions;
  attrs.permissions = (mode & 07777) | S_IRWXU;
  const uint32_t mkdir_id = c.NextId();
  std::string mkdir_packet = sftp::EncodeMkdir(mkdir_id, abs, attrs);
  auto mkdir = co_await c.Submit(mkdir_id, std::move(mkdir_packet));
  if (!mkdir.ok()) co_return mkdir.error();
  // If it fails, it may be because the directory is there already: ask at once.
  const uint32_t lstat_id = c.NextId();
  std::string lstat_packet = sftp::EncodeLstat(lstat_id, abs);
  auto lstat = co_await c.Submit(lstat_id, std::move(lstat_packet));
  if (!lstat.ok()) co_return lstat.error();
  auto mkdir_reply = co_await c.Await(*mkdir);
  if (!mkdir_reply.ok()) co_return mkdir_reply.error();
  auto lstat_reply = co_await c.Await(*lstat);
  if (!lstat_reply.ok()) co_return lstat_reply.error();
  Status made = sftp::ExpectOk(*mkdir_reply, "mkdir");
  if (made.ok()) co_return made;
  auto attrs_now = sftp::ExpectAttrs(*lstat_reply, "lstat");
  if (attrs_now.ok() && IsDir(*attrs_now)) co_return Status{};
  // Something else stands there: say so as the local destination does (EEXIST),
  // not with SFTP's catch-all FX_FAILURE.
  if (attrs_now.ok()) {
    co_return Error{std::make_error_code(std::errc::file_exists),
                    Display(path) + ": exists and is not a directory"};
  }
  co_return WithPath(made.error(), Display(path));
}

asio::awaitable<Status> SftpDestination::SetDirMode(std::string path, uint32_t mode) {
  if (path.empty() || !IsSafeRelPath(path)) co_return Unsafe(path);
  for (int attempt = 1;; ++attempt) {
    Status st = co_await SetDirModeOnce(path, mode);
    if (st.code() != errc::kConnectionLost || attempt >= kAttemptsOnConnectionLoss) co_return st;
  }
}

asio::awaitable<Status> SftpDestination::SetDirModeOnce(const std::string& path, uint32_t mode) {
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return lease.error();
  Client& c = **lease;
  const std::string abs = Abs(path);
  // SETSTAT follows a symlink (the server calls chmod(2)): lstat first and
  // refuse anything but a directory. SFTP v3 has no race-free form of this
  // (a directory handle cannot be FSETSTAT'ed on OpenSSH).
  auto now = co_await c.Lstat(abs);
  if (!now.ok()) co_return WithPath(now.error(), Display(path));
  if (!IsDir(*now)) co_return Error{errc::kUnsafePath, Display(path) + ": not a directory"};
  sftp::Attrs attrs;
  attrs.flags = sftp::kAttrPermissions;
  attrs.permissions = mode & 07777;
  Status set = co_await c.Setstat(abs, attrs);
  if (!set.ok()) co_return WithPath(set.error(), Display(path));
  co_return Status{};
}

// ---- symlinks ------------------------------------------------------------------------

asio::awaitable<Status> SftpDestination::Symlink(std::string path, std::string target) {
  if (path.empty() || !IsSafeRelPath(path)) co_return Unsafe(path);
  if (target.empty() || target.find('\0') != std::string::npos) {
    co_return Error{errc::kInvalidArgument, Display(path) + ": unusable symlink target"};
  }
  for (int attempt = 1;; ++attempt) {
    Status st = co_await SymlinkOnce(path, target);
    if (st.code() != errc::kConnectionLost || attempt >= kAttemptsOnConnectionLoss) co_return st;
  }
}

asio::awaitable<Status> SftpDestination::SymlinkOnce(const std::string& path,
                                                     const std::string& target) {
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return lease.error();
  Client& c = **lease;
  const std::string parent = Abs(ParentOf(path));
  const std::string temp = (parent == "/" ? "" : parent) + "/" + TempName();
  const std::string final_path = Abs(path);
  const uint32_t link_id = c.NextId();
  std::string link_packet = sftp::EncodeSymlink(link_id, temp, target);
  auto link = co_await c.Submit(link_id, std::move(link_packet));
  if (!link.ok()) co_return link.error();
  const bool posix = config_.use_posix_rename && c.HasExtension(sftp::kPosixRename);
  Ticket rename;
  if (posix) {
    // Pipelined: if the SYMLINK failed, this rename fails harmlessly (no temp).
    const uint32_t id = c.NextId();
    std::string t_packet = sftp::EncodePosixRename(id, temp, final_path);
    auto t = co_await c.Submit(id, std::move(t_packet));
    if (!t.ok()) co_return t.error();
    rename = std::move(*t);
  }
  auto link_reply = co_await c.Await(*link);
  if (!link_reply.ok()) {
    co_await RemoveQuietly(temp, nullptr);
    co_return link_reply.error();
  }
  Status made = sftp::ExpectOk(*link_reply, "symlink");
  if (!posix) {
    if (!made.ok()) co_return WithPath(made.error(), Display(path));
    std::string display = Display(path);
    Status replaced = co_await Replace(c, temp, final_path, std::move(display));
    if (!replaced.ok()) co_await RemoveQuietly(temp, &c);
    co_return replaced;
  }
  auto rename_reply = co_await c.Await(rename);
  if (!rename_reply.ok()) {
    // The connection dropped: the temp link may exist (it is no regular file,
    // so a later run's clean-up would not catch it).
    co_await RemoveQuietly(temp, nullptr);
    co_return rename_reply.error();
  }
  if (!made.ok()) co_return WithPath(made.error(), Display(path));
  Status renamed = sftp::ExpectOk(*rename_reply, "rename");
  if (!renamed.ok()) {
    co_await RemoveQuietly(temp, &c);
    co_return WithPath(renamed.error(), Display(path));
  }
  co_return Status{};
}

// ---- renames ------------------------------------------------------------------------------

asio::awaitable<Status> SftpDestination::Replace(Client& c, std::string from, std::string to,
                                                 std::string display) {
  if (config_.use_posix_rename && c.HasExtension(sftp::kPosixRename)) {
    Status st = co_await c.PosixRename(from, to);
    if (!st.ok()) co_return WithPath(st.error(), display);
    co_return st;
  }
  AddNoteOnce(kNoPosixRenameNote);
  // SFTP v3's RENAME refuses an existing target: remove it first (a moment
  // without the file). Both go out together; the server runs them in order.
  const uint32_t remove_id = c.NextId();
  std::string removed_packet = sftp::EncodeRemove(remove_id, to);
  auto removed = co_await c.Submit(remove_id, std::move(removed_packet));
  if (!removed.ok()) co_return removed.error();
  const uint32_t rename_id = c.NextId();
  std::string renamed_packet = sftp::EncodeRename(rename_id, from, to);
  auto renamed = co_await c.Submit(rename_id, std::move(renamed_packet));
  if (!renamed.ok()) co_return renamed.error();
  auto remove_reply = co_await c.Await(*removed);
  if (!remove_reply.ok()) co_return remove_reply.error();
  auto rename_reply = co_await c.Await(*renamed);
  if (!rename_reply.ok()) co_return rename_reply.error();
  Status st = sftp::ExpectOk(*rename_reply, "rename");
  if (!st.ok()) co_return WithPath(st.error(), display);
  co_return st;
}

asio::awaitable<Status> SftpDestination::Rename(std::string from, std::string to) {
  if (from.empty() || !IsSafeRelPath(from)) co_return Unsafe(from);
  if (to.empty() || !IsSafeRelPath(to)) co_return Unsafe(to);
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return lease.error();
  std::string display = Display(from) + " -> " + Printable(to);
  std::string from_abs = Abs(from);
  std::string to_abs = Abs(to);
  co_return co_await Replace(**lease, std::move(from_abs), std::move(to_abs), std::move(display));
}

// ---- removal ---------------------------------------------------------------------------------

asio::awaitable<Status> SftpDestination::Remove(std::string path, EntryType type) {
  if (path.empty() || !IsSafeRelPath(path)) co_return Unsafe(path);
  for (int attempt = 1;; ++attempt) {
    Status st = co_await RemoveOnce(path, type);
    if (st.code() != errc::kConnectionLost || attempt >= kAttemptsOnConnectionLoss) co_return st;
  }
}

asio::awaitable<Status> SftpDestination::RemoveOnce(const std::string& path, EntryType type) {
  auto lease = co_await pool_.Acquire();
  if (!lease.ok()) co_return lease.error();
  Client& c = **lease;
  const std::string abs = Abs(path);
  if (type != EntryType::kDirectory) {
    // The usual case in one round trip; a directory where a file was expected
    // makes REMOVE fail, and the lstat below sorts it out.
    Status st = co_await c.Remove(abs);
    if (st.ok() || IsNoSuchFile(st.code())) co_return Status{};
    if (st.code() == errc::kConnectionLost) co_return st;
  }
  auto attrs = co_await c.Lstat(abs);
  if (!attrs.ok()) {
    if (IsNoSuchFile(attrs.code())) co_return Status{};
    co_return WithPath(attrs.error(), Display(path));
  }
  if (IsDir(*attrs)) {
    const std::string display = Display(path);
    co_return co_await RemoveTree(c, abs, display, 0);
  }
  Status st = co_await c.Remove(abs);
  if (st.ok() || IsNoSuchFile(st.code())) co_return Status{};
  co_return WithPath(st.error(), Display(path));
}

asio::awaitable<Status> SftpDestination::RemoveTree(Client& c, const std::string& abs,
                                                    const std::string& display, int depth) {
  if (depth > kMaxRemoveDepth) {
    co_return Error{std::make_error_code(std::errc::too_many_symbolic_link_levels),
                    display + ": directories nested too deep to remove"};
  }
  auto listing = co_await ListAbs(c, abs, /*read_links=*/false);
  if (!listing.ok()) co_return WithPath(listing.error(), display);
  if (!listing->exists) co_return Status{};
  // Files and symlinks (never followed: READDIR's attributes are lstat's) go
  // in one pipelined batch; subdirectories one after the other.
  std::vector<Ticket> removals;
  for (const Entry& e : listing->entries) {
    if (e.type == EntryType::kDirectory) continue;
    const uint32_t id = c.NextId();
    std::string t_packet = sftp::EncodeRemove(id, abs + "/" + e.name);
    auto t = co_await c.Submit(id, std::move(t_packet));
    if (!t.ok()) co_return t.error();
    removals.push_back(std::move(*t));
  }
  Status first_error;
  for (const Entry& e : listing->entries) {
    if (e.type != EntryType::kDirectory) continue;
    const std::string child = abs + "/" + e.name;
    const std::string child_display = display + "/" + Printable(e.name);
    Status st = co_await RemoveTree(c, child, child_display, depth + 1);
    if (!st.ok() && first_error.ok()) first_error = st;
  }
  for (Ticket& t : removals) {
    auto reply = co_await c.Await(t);
    if (!reply.ok()) co_return reply.error();
    Status st = sftp::ExpectOk(*reply, "remove");
    if (!st.ok() && !IsNoSuchFile(st.code()) && first_error.ok()) {
      first_error = WithPath(st.error(), display);
    }
  }
  if (!first_error.ok()) co_return first_error;
  Status st = co_await c.Rmdir(abs);
  if (st.ok() || IsNoSuchFile(st.code())) co_return Status{};
  co_return WithPath(st.error(), display);
}

}  // namespace sftp_internal

Result<std::unique_ptr<Destination>> MakeSftpDestination(SftpConfig config,
                                                         asio::any_io_executor ex,
                                                         asio::thread_pool& pool) {
  if (config.connect.host.empty()) return Error{errc::kInvalidArgument, "SFTP: no host"};
  if (config.connections < 1 || config.connections > 16) {
    return Error{errc::kInvalidArgument, "SFTP: connections must be 1..16"};
  }
  if (config.channels_per_connection < 1 || config.channels_per_connection > 64) {
    return Error{errc::kInvalidArgument, "SFTP: channels per connection must be 1..64"};
  }
  if (config.max_channels_per_file < 1) config.max_channels_per_file = 1;
  if (config.outstanding_bytes_per_channel < size_t{64} * 1024) {
    return Error{errc::kInvalidArgument, "SFTP: outstanding bytes per channel must be >= 64 KiB"};
  }
  for (char ch : config.root) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      return Error{errc::kInvalidArgument, "SFTP: control character in the remote path"};
    }
  }
  return std::unique_ptr<Destination>(
      std::make_unique<sftp_internal::SftpDestination>(std::move(config), ex, pool));
}

}  // namespace ferry::transport
