#include "lib/engine/push_engine.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <deque>
#include <exception>
#include <memory>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ferry/error.h"
#include "lib/base/offload.h"
#include "lib/base/path.h"
#include "lib/base/task_group.h"
#include "lib/compress/compress.h"
#include "lib/hash/hash.h"
#include "lib/hash/hash_cache.h"
#include "lib/scan/scan.h"

namespace ferry::engine {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::experimental::as_tuple(use_awaitable);

int64_t ToNs(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// An owned source file descriptor (closed on whatever thread drops it; close of
// a file opened read-only does not block on I/O).
struct SourceFd {
  int fd = -1;
  SourceFd() = default;
  explicit SourceFd(int f) : fd(f) {}
  SourceFd(SourceFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  SourceFd& operator=(SourceFd&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  ~SourceFd() {
    if (fd >= 0) ::close(fd);
  }
};

// Source entries held at most by the read-ahead during Open() (~100 bytes each).
constexpr size_t kReadAheadEntries = 100'000;

// Codes by which a destination refuses a connection (on a reconnect: the first
// connect is Open(), already fatal). No retry or later file can succeed.
bool IsRefusedConnection(std::error_code code) {
  return code == errc::kAuthFailed || code == errc::kHostKeyMismatch ||
         code == errc::kHostKeyUnknown || code == errc::kHostKeyRevoked;
}

// What one blocking read step returns: bytes in the buffer, and at EOF the
// file's state then (to detect a change during the read).
struct ReadStep {
  size_t bytes = 0;
  bool eof = false;
  struct stat after {};
};

// Fills `buf` from `offset` until it is full or EOF is reached.
Result<ReadStep> ReadChunk(int fd, std::span<std::byte> buf, uint64_t offset) {
  ReadStep step;
  while (step.bytes < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + step.bytes, buf.size() - step.bytes,
                        static_cast<off_t>(offset + step.bytes));
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastSystemError();
    }
    if (n == 0) {
      step.eof = true;
      break;
    }
    step.bytes += static_cast<size_t>(n);
  }
  if (!step.eof && step.bytes == buf.size()) {
    // The buffer is full; a file that ends exactly here is found at the next step.
    return step;
  }
  if (::fstat(fd, &step.after) != 0) return LastSystemError();
  return step;
}

// True when the file read is not the file that was opened: its size, mtime or
// inode moved between the open and the end of the read, or the bytes read
// differ from the size seen at open.
bool Changed(const struct stat& before, const struct stat& after, uint64_t bytes_read) {
  const uint64_t expected = static_cast<uint64_t>(before.st_size);
  return bytes_read != expected || static_cast<uint64_t>(after.st_size) != expected ||
         ToNs(after.st_mtim) != ToNs(before.st_mtim) || after.st_ino != before.st_ino;
}

struct OpenedSource {
  SourceFd fd;
  struct stat before {};
  ReadStep first;
};

struct WorkItem {
  std::string rel_dir;
  plan::Action action;
};

// Verification of a part file before resuming: the last kVerifyTail bytes
// before the resume point, and kVerifySamples blocks of kVerifySample bytes
// spread over the rest (SFTP has no remote hash; reading back everything would
// cost as much as sending it).
constexpr uint64_t kVerifyTail = 1 << 20;
constexpr uint64_t kVerifySample = 64 << 10;
constexpr int kVerifySamples = 4;

struct PendingDelete {
  std::string path;  // destination path
  EntryType type;
};

// A source directory's identity: the walk refuses to enter a directory that is
// one of its own ancestors (a cycle through a followed symlink, or a bind mount).
struct DevIno {
  uint64_t dev = 0;
  uint64_t ino = 0;
  bool operator==(const DevIno&) const = default;
};
using Ancestry = std::vector<DevIno>;  // the root first, the directory itself last

struct DirTask {
  std::string rel;
  bool dest_missing = false;  // created (or to be created) by this run: nothing to list
  Ancestry ancestry;          // empty for the root until it is listed
};

// The problem for a symlink that -L cannot follow, with stat(2)'s reason.
Error UnfollowableLink(int err, const std::string& shown) {
  if (err == 0) err = ENOENT;
  std::string what = err == ENOENT  ? "symlink has no referent: "
                     : err == ELOOP ? "symlink loop (too many levels of symbolic links): "
                                    : "cannot follow symlink: ";
  return Error{std::error_code(err, std::system_category()), what + shown};
}

class PushRun {
 public:
  PushRun(EngineConfig config, transport::Destination& dest, asio::thread_pool& pool,
          asio::any_io_executor ex)
      : config_(std::move(config)),
        dest_(dest),
        pool_(pool),
        ex_(ex),
        items_(ex, static_cast<size_t>(std::max(1, config_.jobs)) * 2),
        large_slots_(ex, LargeJobs()),
        dir_signal_(ex, Clock::time_point::max()),
        ticker_timer_(ex),
        start_(Clock::now()) {
    report_.dry_run = config_.dry_run;
    // Buffers are allocated on first use: a run of small files never makes one.
    for (size_t i = 0; i < LargeJobs(); ++i) large_slots_.try_send(std::error_code(), LargeSlot{});
  }

  awaitable<Report> Run() {
    // The source is read ahead while the destination connects (an SSH handshake
    // is ~0.2 s on loopback, about what scanning 20k files takes), so a no-op
    // push costs the larger of the two rather than their sum.
    TaskGroup read_ahead(ex_);
    if (config_.recursive && !config_.single_file && !config_.copy_links) {
      read_ahead.Spawn(ReadAheadSource());
    }
    Status opened = co_await dest_.Open(config_.dry_run);
    destination_opened_ = true;
    if (opened.ok() && config_.jobs_from_destination) {
      config_.jobs = std::max(config_.jobs, dest_.SuggestedJobs());
    }
    co_await read_ahead.Wait();  // at most the one directory being listed
    if (!opened.ok()) {
      Fatal(opened.error(), "cannot open destination " + dest_.Describe());
      co_return Finish();
    }
    TaskGroup ticker(ex_);
    if (config_.observer != nullptr) ticker.Spawn(Ticker());
    TaskGroup pipeline(ex_);
    pipeline.Spawn(Walk());
    pipeline.Spawn(Workers());
    co_await pipeline.Wait();
    if (!report_.fatal) co_await ApplyDeletes();
    for (std::string& note : dest_.TakeNotes()) report_.notes.push_back(std::move(note));
    finished_ = true;
    ticker_timer_.cancel();
    co_await ticker.Wait();
    co_return Finish();
  }

 private:
  // ---- reporting -------------------------------------------------------

  Report Finish() {
    report_.totals.elapsed = Clock::now() - start_;
    if (config_.stop.stop_requested()) report_.cancelled = true;
    if (config_.observer != nullptr) {
      scanning_ = false;
      config_.observer->OnProgress(Snapshot());
    }
    return std::move(report_);
  }

  void Fatal(const Error& error, std::string what) {
    report_.fatal = error.code;
    report_.fatal_message = what + ": " + error.Message();
  }

  // True once the run must not start new work: the embedder asked to stop, or
  // the run turned fatal.
  bool Stopping() const { return config_.stop.stop_requested() || report_.fatal; }

  void AddProblem(std::string path, std::string stage, const Error& error) {
    had_errors_ = true;
    if (IsRefusedConnection(error.code)) {
      // The destination refused to let us back in (a reconnect after a drop):
      // every later file would fail the same way, so the run ends here.
      if (!report_.fatal) Fatal(error, "reconnecting to " + dest_.Describe());
      return;
    }
    if (report_.problems.size() >= Report::kMaxProblems) {
      ++report_.problems_dropped;
      return;
    }
    report_.problems.push_back({std::move(path), std::move(stage), error.code, error.Message()});
  }

  void Emit(FileEvent event) {
    if (config_.observer != nullptr) config_.observer->OnFile(event);
  }

  void Warn(const std::string& message) {
    if (config_.observer != nullptr) config_.observer->OnWarning(message);
  }

  ProgressSnapshot Snapshot() const {
    ProgressSnapshot s;
    s.files_found = files_found_;
    s.files_to_send = files_to_send_;
    s.files_sent = report_.totals.files_sent;
    s.bytes_to_send = bytes_to_send_;
    s.bytes_sent = bytes_sent_;
    s.scanning = scanning_;
    s.elapsed = Clock::now() - start_;
    return s;
  }

  awaitable<void> Ticker() {
    while (!finished_) {
      ticker_timer_.expires_after(config_.progress_interval);
      co_await ticker_timer_.async_wait(kTuple);
      if (!finished_) config_.observer->OnProgress(Snapshot());
    }
  }

  // ---- walking ---------------------------------------------------------

  void WakeListers() { dir_signal_.cancel(); }

  awaitable<void> Walk() {
    dirs_.push_back({"", false, {}});
    TaskGroup listers(ex_);
    for (int i = 0; i < std::max(1, config_.list_concurrency); ++i) listers.Spawn(Lister());
    std::exception_ptr failure;
    try {
      co_await listers.Wait();
    } catch (...) {
      failure = std::current_exception();
    }
    scanning_ = false;
    // One end marker per worker, queued behind the work (closing the channel
    // would drop what is still buffered).
    for (int i = 0; i < std::max(1, config_.jobs); ++i) {
      WorkItem end;
      co_await items_.async_send(asio::error::eof, std::move(end), kTuple);
    }
    if (failure) std::rethrow_exception(failure);
  }

  awaitable<void> Lister() {
    while (true) {
      if (Stopping()) {
        dirs_.clear();
      }
      if (dirs_.empty()) {
        if (active_listers_ == 0) {
          WakeListers();
          co_return;
        }
        co_await dir_signal_.async_wait(kTuple);
        continue;
      }
      DirTask task = std::move(dirs_.back());
      dirs_.pop_back();
      ++active_listers_;
      co_await ProcessDirectory(std::move(task));
      --active_listers_;
      WakeListers();
    }
  }

  std::string SourcePath(std::string_view rel) const {
    return rel.empty() ? config_.source_root : config_.source_root + "/" + std::string(rel);
  }

  bool Excluded(std::string_view rel, bool is_dir) const {
    return config_.excluded && config_.excluded(rel, is_dir);
  }

  awaitable<Result<std::vector<Entry>>> ListSource(std::string rel) {
    // single_file names what the root holds; a directory entered below it
    // (with -L the file may be a link to one) is listed as usual.
    if (config_.single_file && rel.empty()) {
      std::string path = SourcePath(*config_.single_file);
      std::string name = *config_.single_file;
      bool follow = config_.copy_links;
      auto job = [path, name, follow]() -> Result<std::vector<Entry>> {
        auto entry = scan::StatPath(path, name, follow);
        if (!entry.ok()) return entry.error();
        return std::vector<Entry>{std::move(*entry)};
      };
      co_return co_await Offload(pool_, std::move(job));
    }
    std::string path = SourcePath(rel);
    bool follow = config_.copy_links;
    auto job = [path, follow] { return scan::ListDirectory(path, follow); };
    co_return co_await Offload(pool_, std::move(job));
  }

  // Lists source directories depth first, as the listers will, into
  // `read_ahead_` until the destination is open or kReadAheadEntries entries
  // are held (memory stays bounded whatever the tree). -L trees are not read
  // ahead: a directory cycle is only recognized by the listers.
  awaitable<void> ReadAheadSource() {
    std::vector<std::string> stack{""};
    size_t held = 0;
    while (!stack.empty() && !destination_opened_ && held < kReadAheadEntries && !Stopping()) {
      std::string rel = std::move(stack.back());
      stack.pop_back();
      auto listing = co_await ListSource(rel);
      if (listing.ok()) {
        held += listing->size();
        for (const Entry& e : *listing) {
          if (e.type != EntryType::kDirectory) continue;
          std::string child = JoinRel(rel, e.name);
          if (!Excluded(child, true)) stack.push_back(std::move(child));
        }
      }
      read_ahead_.emplace(std::move(rel), std::move(listing));
    }
  }

  // The listing read ahead for `rel`, else a fresh one.
  awaitable<Result<std::vector<Entry>>> SourceListing(const std::string& rel) {
    if (auto it = read_ahead_.find(rel); it != read_ahead_.end()) {
      Result<std::vector<Entry>> listing = std::move(it->second);
      read_ahead_.erase(it);
      co_return listing;
    }
    co_return co_await ListSource(rel);
  }

  awaitable<Result<transport::Listing>> ListDestination(std::string rel, bool missing) {
    if (missing) co_return transport::Listing{};
    co_return co_await dest_.List(rel);
  }

  // The identities of the source root and of the directories above it up to
  // `ancestry_top`, top first: the first ancestors of every directory.
  awaitable<Ancestry> RootAncestry() {
    std::vector<std::string> paths;
    const std::string& top = config_.ancestry_top;
    const std::string& root = config_.source_root;
    if (!top.empty() && root.size() > top.size() && root.starts_with(top) &&
        root[top.size()] == '/') {
      paths.push_back(top);
      for (size_t slash = root.find('/', top.size() + 1); slash != std::string::npos;
           slash = root.find('/', slash + 1)) {
        paths.push_back(root.substr(0, slash));
      }
    }
    paths.push_back(root);
    auto job = [paths]() -> Ancestry {
      Ancestry out;
      for (const std::string& path : paths) {
        struct stat st;
        if (::stat(path.c_str(), &st) != 0) continue;
        out.push_back({static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)});
      }
      return out;
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  static Ancestry Child(const Ancestry& parent, const Entry& dir) {
    Ancestry a = parent;
    a.push_back({dir.dev, dir.ino});
    return a;
  }

  awaitable<void> ProcessDirectory(DirTask task) {
    // Also for one file: with -L it may be a link to a directory, entered
    // below source_root when new on the destination (watch mode).
    if (task.rel.empty()) task.ancestry = co_await RootAncestry();
    // One after the other: the other listers keep both sides busy meanwhile.
    auto local = co_await SourceListing(task.rel);
    auto remote = co_await ListDestination(task.rel, task.dest_missing);
    if (!local.ok()) {
      AddProblem(task.rel, "scan", local.error());
      co_return;
    }
    if (!remote.ok()) {
      AddProblem(task.rel, "list", remote.error());
      co_return;
    }
    if (remote->unsafe_names > 0) {
      Warn("ignored " + std::to_string(remote->unsafe_names) +
           " unsafe name(s) in the destination listing of '" + Printable(task.rel) + "'");
    }

    std::vector<Entry> kept;
    kept.reserve(local->size());
    for (Entry& e : *local) {
      std::string rel = JoinRel(task.rel, e.name);
      if (Excluded(rel, e.type == EntryType::kDirectory)) continue;
      if (config_.copy_links && e.type == EntryType::kSymlink) {
        AddProblem(rel, "scan", UnfollowableLink(e.follow_errno, Printable(rel)));
        ++report_.totals.files_failed;
        continue;
      }
      if (e.type == EntryType::kDirectory && e.ino != 0 &&
          std::find(task.ancestry.begin(), task.ancestry.end(), DevIno{e.dev, e.ino}) !=
              task.ancestry.end()) {
        // As cp -L and find -L do: one problem, the cycle is not entered.
        AddProblem(rel, "scan",
                   Error{std::make_error_code(std::errc::too_many_symbolic_link_levels),
                         "directory cycle: not followed: " + Printable(rel) +
                             " is one of its own parent directories"});
        ++report_.totals.files_failed;
        continue;
      }
      kept.push_back(std::move(e));
    }
    const bool compress = config_.plan.compress;
    plan::ExcludedFn dest_excluded = [&](const Entry& d) {
      std::string_view name = d.name;
      if (compress && d.type == EntryType::kFile && name.ends_with(plan::kCompressedSuffix)) {
        name.remove_suffix(plan::kCompressedSuffix.size());
      }
      return Excluded(JoinRel(task.rel, name), d.type == EntryType::kDirectory);
    };
    plan::PlanOptions options = config_.plan;
    if (config_.single_file) {
      options.delete_extraneous = options.delete_excluded = false;
    }
    std::vector<plan::Action> actions =
        plan::PlanDirectory(std::move(kept), std::move(remote->entries), options, dest_excluded);
    if (config_.sent_mtimes != nullptr) {
      // Sizes and (coarse) times agree, but the version sent had another mtime.
      for (plan::Action& a : actions) {
        const bool by_times = a.kind == plan::ActionKind::kSkip ||
                              (a.kind == plan::ActionKind::kVerify && !config_.plan.checksum);
        if (!by_times || a.local.type != EntryType::kFile) continue;
        auto sent = config_.sent_mtimes->Find(JoinRel(task.rel, a.name));
        if (sent && *sent != a.local.mtime_ns) {
          a.kind = plan::ActionKind::kUpload;
          a.reason = "mtime";
        }
      }
    }

    // Leftover temps are removed, except the part files of files about to be
    // uploaded again with the same source identity: those are resumed.
    std::unordered_set<std::string> parts;
    for (const plan::Action& a : actions) {
      if (a.kind != plan::ActionKind::kUpload && a.kind != plan::ActionKind::kVerify) continue;
      if (Resumable(a.local.size)) parts.insert(PlannedPart(a));
    }
    if (!parts.empty()) {
      std::erase_if(actions, [&](const plan::Action& a) {
        return a.kind == plan::ActionKind::kRemoveTemp && parts.count(a.dest_name) > 0;
      });
    }

    for (plan::Action& action : actions) {
      co_await Dispatch(task, std::move(action));
    }
  }

  awaitable<void> Dispatch(const DirTask& task, plan::Action action) {
    const std::string& dir = task.rel;
    std::string rel = JoinRel(dir, action.name);
    std::string dest_rel = JoinRel(dir, action.dest_name);
    using plan::ActionKind;
    switch (action.kind) {
      case ActionKind::kSkip: {
        ++files_found_;
        ++report_.totals.files_skipped;
        report_.totals.bytes_skipped += action.local.size;
        FileEvent ev;
        ev.path = rel;
        ev.action = FileAction::kSkip;
        ev.size = action.local.size;
        Emit(std::move(ev));
        break;
      }
      case ActionKind::kUpload:
      case ActionKind::kVerify:
      case ActionKind::kSymlink: {
        ++files_found_;
        if (action.kind == ActionKind::kUpload) {
          ++files_to_send_;
          bytes_to_send_ += action.local.size;
        }
        WorkItem item{dir, std::move(action)};  // named: see Offload's note on g++ 12
        co_await items_.async_send(std::error_code(), std::move(item), kTuple);
        break;
      }
      case ActionKind::kMkdir:
      case ActionKind::kReplace:
        co_await MakeDirectory(task, rel, dest_rel, action);
        break;
      case ActionKind::kRecurse:
        if (action.set_dir_mode) co_await SetDirMode(rel, dest_rel, action);
        if (config_.recursive) {
          dirs_.push_back({rel, false, Child(task.ancestry, action.local)});
          WakeListers();
        }
        break;
      case ActionKind::kSpecialSkipped: {
        ++report_.totals.ignored;
        FileEvent ev;
        ev.path = rel;
        ev.action = FileAction::kIgnore;
        ev.reason = "special";
        Emit(std::move(ev));
        Warn("skipped special file (device, fifo or socket): " + Printable(rel));
        break;
      }
      case ActionKind::kConflict: {
        ++report_.totals.files_failed;
        Error err{errc::kTypeConflict, Printable(rel) +
                                           " is a directory on the destination; "
                                           "--delete allows replacing it"};
        AddProblem(rel, "plan", err);
        FileEvent ev;
        ev.path = rel;
        ev.action = FileAction::kIgnore;
        ev.outcome = Outcome::kFailed;
        ev.error = err.code;
        ev.message = err.Message();
        Emit(std::move(ev));
        break;
      }
      case ActionKind::kDelete:
        deletes_.push_back({dest_rel, action.dest.type});
        break;
      case ActionKind::kRemoveTemp:
        if (!config_.dry_run) (void)co_await dest_.Remove(dest_rel, EntryType::kFile);
        break;
    }
  }

  // A source directory's chmod, carried to its existing destination copy. A
  // failure is a problem for that directory; its contents are still synced.
  awaitable<void> SetDirMode(const std::string& rel, const std::string& dest_rel,
                             const plan::Action& action) {
    if (config_.dry_run) co_return;
    Status st = co_await dest_.SetDirMode(dest_rel, plan::DestDirMode(action.local.mode));
    if (st.code() == errc::kUnsupported) co_return;  // modes stay as created
    if (!st.ok()) AddProblem(rel, "chmod", st.error());
  }

  awaitable<void> MakeDirectory(const DirTask& parent, const std::string& rel,
                                const std::string& dest_rel, const plan::Action& action) {
    FileEvent ev;
    ev.path = rel;
    ev.action = FileAction::kMkdir;
    ev.reason = action.reason;
    if (config_.dry_run) {
      ev.outcome = Outcome::kDryRun;
    } else {
      Status st;
      if (action.kind == plan::ActionKind::kReplace) {
        st = co_await dest_.Remove(dest_rel, action.dest.type);
      }
      if (st.ok()) st = co_await dest_.MakeDir(dest_rel, action.local.mode);
      if (!st.ok()) {
        AddProblem(rel, "mkdir", st.error());
        ev.outcome = Outcome::kFailed;
        ev.error = st.code();
        ev.message = st.error().Message();
        Emit(std::move(ev));
        co_return;  // its contents cannot go anywhere
      }
    }
    ++report_.totals.dirs_created;
    Emit(std::move(ev));
    dirs_.push_back({rel, true, Child(parent.ancestry, action.local)});
    WakeListers();
  }

  // ---- transferring ----------------------------------------------------

  awaitable<void> Workers() {
    TaskGroup workers(ex_);
    for (int i = 0; i < std::max(1, config_.jobs); ++i) workers.Spawn(Worker());
    co_await workers.Wait();
  }

  awaitable<void> Worker() {
    // The worker's small buffer lives as long as it does. Left uninitialized:
    // only the pages a read fills count, so a worker on tiny files costs a few
    // KiB.
    const size_t small = SmallBufferBytes();
    auto storage = std::make_unique_for_overwrite<std::byte[]>(small);
    std::span<std::byte> buffer(storage.get(), small);
    std::vector<std::byte> packed;
    std::optional<compress::FrameCompressor> compressor;
    while (true) {
      auto [ec, item] = co_await items_.async_receive(kTuple);
      if (ec) co_return;  // end marker: the walk is over
      if (Stopping()) continue;
      if (item.action.kind == plan::ActionKind::kSymlink) {
        co_await DoSymlink(item);
      } else if (item.action.local.size < small) {
        co_await DoFile(item, buffer, packed, compressor);
      } else {
        auto [ec2, slot] = co_await large_slots_.async_receive(kTuple);
        if (ec2) co_return;
        if (!slot.data) slot.data = std::make_unique_for_overwrite<std::byte[]>(ChunkBytes());
        co_await DoFile(item, std::span<std::byte>(slot.data.get(), ChunkBytes()), slot.packed,
                        compressor);
        large_slots_.try_send(std::error_code(), std::move(slot));  // never full
      }
    }
  }

  size_t ChunkBytes() const { return std::max<size_t>(1, config_.chunk_bytes); }
  size_t SmallBufferBytes() const { return std::min(ChunkBytes(), kSmallFileBuffer); }
  // Fixed at construction: `jobs` may still grow once the destination is open.
  size_t LargeJobs() const {
    return static_cast<size_t>(std::clamp(config_.large_jobs, 1, std::max(1, config_.jobs)));
  }

  awaitable<void> DoSymlink(const WorkItem& item) {
    const plan::Action& a = item.action;
    std::string rel = JoinRel(item.rel_dir, a.name);
    FileEvent ev;
    ev.path = rel;
    ev.action = FileAction::kSymlink;
    ev.reason = a.reason;
    if (config_.dry_run) {
      ev.outcome = Outcome::kDryRun;
    } else {
      Status st;
      if (a.delete_dest_dir_first) st = co_await dest_.Remove(rel, EntryType::kDirectory);
      if (st.ok()) st = co_await dest_.Symlink(rel, a.local.link_target);
      if (!st.ok()) {
        ++report_.totals.files_failed;
        AddProblem(rel, "symlink", st.error());
        ev.outcome = Outcome::kFailed;
        ev.error = st.code();
        ev.message = st.error().Message();
        Emit(std::move(ev));
        co_return;
      }
    }
    ++report_.totals.symlinks;
    Emit(std::move(ev));
  }

  // Settles a kVerify: true when the destination already holds the content.
  awaitable<Result<bool>> SameContent(const WorkItem& item, const std::string& dest_rel) {
    const plan::Action& a = item.action;
    std::string src = SourcePath(JoinRel(item.rel_dir, a.name));
    if (config_.plan.compress) {
      auto head = co_await dest_.ReadHead(dest_rel, compress::kFrameHeaderMaxBytes);
      if (!head.ok()) co_return head.error();
      auto size = compress::FrameContentSize(*head);
      if (!size.ok() || !size->has_value() || **size != a.local.size) co_return false;
      if (!config_.plan.checksum) co_return true;  // mtime matched in the plan
    }
    // Content hashes: the local one from the cache when the file is unchanged.
    hash::HashCache* cache = config_.hash_cache;
    auto job = [src, cache]() -> Result<hash::Hash128> {
      int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) return Error{LastSystemError(), src};
      SourceFd owned(fd);
      struct stat st;
      if (::fstat(fd, &st) != 0) return Error{LastSystemError(), src};
      auto id = hash::FileIdentity::FromStat(st);
      if (cache != nullptr) {
        if (auto hit = cache->Lookup(id)) return *hit;
      }
      auto h = hash::HashFile(fd);
      if (!h.ok()) return Error{h.code(), src};
      if (cache != nullptr) cache->Store(id, *h);
      return *h;
    };
    auto local = co_await Offload(pool_, std::move(job));
    if (!local.ok()) co_return local.error();
    auto hasher = std::make_shared<hash::StreamingHasher>();
    Status read;
    if (config_.plan.compress) {
      auto decoder = std::make_shared<compress::FrameDecompressor>();
      auto failed = std::make_shared<Status>();
      transport::Destination::ChunkFn on_chunk = [hasher, decoder,
                                                  failed](std::span<const std::byte> c) {
        if (!failed->ok()) return;
        *failed = decoder->Decompress(
            c, [&](std::span<const std::byte> plain) { hasher->Update(plain); });
      };
      read = co_await dest_.ReadAll(dest_rel, std::move(on_chunk));
      if (read.ok()) read = *failed;
      if (read.ok()) read = decoder->Finish();
    } else {
      transport::Destination::ChunkFn on_chunk = [hasher](std::span<const std::byte> c) {
        hasher->Update(c);
      };
      read = co_await dest_.ReadAll(dest_rel, std::move(on_chunk));
    }
    if (!read.ok()) co_return read.error();
    co_return hasher->Final() == *local;
  }

  awaitable<void> DoFile(WorkItem& item, std::span<std::byte> buffer,
                         std::vector<std::byte>& packed,
                         std::optional<compress::FrameCompressor>& compressor) {
    plan::Action& a = item.action;
    const std::string rel = JoinRel(item.rel_dir, a.name);
    const std::string dest_rel = JoinRel(item.rel_dir, a.dest_name);
    const auto started = Clock::now();
    FileEvent ev;
    ev.path = rel;
    ev.action = FileAction::kUpload;
    ev.reason = a.reason;
    ev.size = a.local.size;

    if (a.kind == plan::ActionKind::kVerify) {
      auto same = co_await SameContent(item, dest_rel);
      if (same.ok() && *same) {
        ++report_.totals.files_skipped;
        report_.totals.bytes_skipped += a.local.size;
        ev.action = FileAction::kSkip;
        ev.reason.clear();
        Emit(std::move(ev));
        co_return;
      }
      // Unreadable destination copy or different content: send it again.
      ev.reason = config_.plan.checksum ? "checksum" : "size";
      ++files_to_send_;
      bytes_to_send_ += a.local.size;
    }

    if (config_.dry_run) {
      ++report_.totals.files_sent;
      ev.outcome = Outcome::kDryRun;
      Emit(std::move(ev));
      co_return;
    }

    if (a.delete_dest_dir_first) {
      Status removed = co_await dest_.Remove(dest_rel, EntryType::kDirectory);
      if (!removed.ok()) {
        Fail(ev, "delete", removed.error());
        co_return;
      }
      ++report_.totals.files_deleted;
    }

    Error last;
    const char* stage = "read";
    // The part file this run's plan kept for this file (if any).
    std::string planned_part;
    if (Resumable(a.local.size)) planned_part = JoinRel(item.rel_dir, PlannedPart(a));
    for (int attempt = 0;; ++attempt) {
      ev.bytes_read = ev.bytes_written = ev.resumed_from = 0;
      Status st = co_await UploadOnce(SourcePath(rel), dest_rel, planned_part, buffer, packed,
                                      compressor, ev, stage);
      if (st.ok()) {
        if (ev.resumed_from > 0) {
          ++report_.totals.files_resumed;
          report_.totals.bytes_resumed += ev.resumed_from;
        }
        ++report_.totals.files_sent;
        report_.totals.bytes_read += ev.bytes_read;
        report_.totals.bytes_written += ev.bytes_written;
        ev.duration = Clock::now() - started;
        Emit(std::move(ev));
        co_return;
      }
      last = st.error();
      // A file that changed while read is read again; a dropped connection is
      // retried once the destination has reconnected. Anything else is final.
      const bool retryable =
          st.code() == errc::kSourceChanged || st.code() == errc::kConnectionLost;
      if (!retryable || attempt >= config_.retries || Stopping()) break;
      // Give a writer a moment to finish before reading again.
      asio::steady_timer pause(ex_, std::chrono::milliseconds(50 << attempt));
      co_await pause.async_wait(kTuple);
    }
    ev.duration = Clock::now() - started;
    Fail(ev, stage, last);
  }

  void Fail(FileEvent& ev, std::string stage, const Error& error) {
    ++report_.totals.files_failed;
    AddProblem(ev.path, stage, error);
    ev.outcome = Outcome::kFailed;
    ev.error = error.code;
    ev.message = error.Message();
    Emit(std::move(ev));
  }

  // Whether a file of `size` bytes goes through a part file.
  bool Resumable(uint64_t size) const {
    return config_.resume_threshold_bytes > 0 && size >= config_.resume_threshold_bytes &&
           !config_.compress_level && !config_.plan.compress && !config_.dry_run &&
           dest_.SupportsResume();
  }

  static std::string PlannedPart(const plan::Action& a) {
    return PartFileName(a.dest_name, a.local.size, a.local.mtime_ns, a.local.ino);
  }

  // Where an upload can continue from a part file holding `existing` bytes:
  // rounded down to a chunk, at least one byte short of the end, and 0 unless
  // the verified ranges match the source byte for byte (`why` says otherwise).
  awaitable<uint64_t> VerifiedResumePoint(int fd, const std::string& part_rel, uint64_t existing,
                                          uint64_t size, std::string& why) {
    const uint64_t chunk = std::max<uint64_t>(1, config_.chunk_bytes);
    const uint64_t point = std::min(existing, size - 1) / chunk * chunk;
    if (point == 0) co_return 0;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    const uint64_t tail = point > kVerifyTail ? point - kVerifyTail : 0;
    ranges.emplace_back(tail, point - tail);
    for (int i = 0; i < kVerifySamples && tail > 0; ++i) {
      const uint64_t off = tail / kVerifySamples * i;
      ranges.emplace_back(off, std::min(kVerifySample, tail - off));
    }
    for (const auto& range : ranges) {
      // Named copies: a lambda cannot capture structured bindings portably.
      const uint64_t off = range.first;
      const uint64_t len = range.second;
      auto remote = co_await dest_.ReadRange(part_rel, off, len);
      if (!remote.ok()) {
        why = "the part file could not be read back (" + remote.error().Message() + ")";
        co_return 0;
      }
      if (remote->size() != len) {
        why = "the part file changed while verified";
        co_return 0;
      }
      auto* want = &*remote;
      auto job = [fd, off, len, want]() -> bool {
        std::vector<std::byte> local(len);
        auto step = ReadChunk(fd, local, off);
        return step.ok() && step->bytes == len && local == *want;
      };
      if (!co_await Offload(pool_, std::move(job))) {
        why = "the part file left by an earlier run does not match the source";
        co_return 0;
      }
    }
    co_return point;
  }

  // One attempt at one file. `stage` tells where a failure happened.
  // `planned_part`: the part file the plan kept for it (updated when the
  // source's identity moved since).
  awaitable<Status> UploadOnce(std::string src, const std::string& dest_rel,
                               std::string& planned_part, std::span<std::byte> buffer,
                               std::vector<std::byte>& packed,
                               std::optional<compress::FrameCompressor>& compressor, FileEvent& ev,
                               const char*& stage) {
    stage = "read";
    const bool follow = config_.copy_links;
    std::span<std::byte> buf = buffer;
    auto job = [src, follow, buf]() -> Result<OpenedSource> {
      int flags = O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
      int fd = ::open(src.c_str(), flags);
      if (fd < 0) {
        if (errno == ENOENT) return Error{errc::kSourceVanished, src};
        if (errno == ELOOP) return Error{errc::kSourceChanged, src};  // became a symlink
        return Error{LastSystemError(), src};
      }
      OpenedSource out;
      out.fd = SourceFd(fd);
      if (::fstat(fd, &out.before) != 0) return Error{LastSystemError(), src};
      if (!S_ISREG(out.before.st_mode)) return Error{errc::kSourceChanged, src};
      auto first = ReadChunk(fd, buf, 0);
      if (!first.ok()) return Error{first.code(), src};
      out.first = *first;
      return out;
    };
    auto opened = co_await Offload(pool_, std::move(job));
    if (!opened.ok()) co_return opened.error();
    OpenedSource source = std::move(*opened);
    const uint64_t expected = static_cast<uint64_t>(source.before.st_size);
    transport::CommitAttrs attrs;
    attrs.mtime_ns = ToNs(source.before.st_mtim);
    attrs.mode = source.before.st_mode & 07777;
    attrs.fsync = config_.fsync;

    if (source.first.eof) {
      // The whole file is in the buffer already (most files): verify it did not
      // change, then hand it over in one piece.
      if (Changed(source.before, source.first.after, source.first.bytes)) {
        co_return Status(errc::kSourceChanged, src);
      }
      std::span<const std::byte> data(buffer.data(), source.first.bytes);
      if (config_.compress_level) {
        if (Status st = co_await CompressWhole(data, expected, compressor, packed); !st.ok()) {
          co_return st;
        }
        data = packed;
      }
      stage = "write";
      Status put = co_await dest_.PutFile(dest_rel, data, attrs);
      if (!put.ok()) co_return put;
      ev.bytes_read = source.first.bytes;
      ev.bytes_written = data.size();
      bytes_sent_ += source.first.bytes;
      if (config_.sent_mtimes != nullptr) config_.sent_mtimes->Sent(ev.path, attrs.mtime_ns);
      co_return Status();
    }

    stage = "write";
    std::unique_ptr<transport::FileSink> sink;
    ReadStep step = source.first;
    uint64_t offset = 0;
    std::string part_rel;  // non-empty: a resumable upload through this part file
    if (Resumable(expected)) {
      const std::string part = PartFileName(BaseName(dest_rel), expected,
                                            ToNs(source.before.st_mtim), source.before.st_ino);
      part_rel = JoinRel(ParentOf(dest_rel), part);
      if (!planned_part.empty() && planned_part != part_rel) {
        // The source changed since the plan: its part file is of no use now.
        (void)co_await dest_.Remove(planned_part, EntryType::kFile);
      }
      planned_part = part_rel;
      auto opened = co_await dest_.OpenPart(dest_rel, part);
      if (!opened.ok()) co_return opened.error();
      sink = std::move(opened->sink);
      const uint64_t existing = opened->existing_bytes;
      std::string why;
      const uint64_t resume =
          co_await VerifiedResumePoint(source.fd.fd, part_rel, existing, expected, why);
      if (!why.empty()) {
        Warn("cannot resume " + Printable(dest_rel) + ": " + why + "; starting over");
      }
      if (Status st = co_await sink->ResumeAt(resume); !st.ok()) {
        co_await sink->Abort();
        co_return st;
      }
      if (resume > 0) {
        int fd = source.fd.fd;
        auto job = [fd, buf, resume] { return ReadChunk(fd, buf, resume); };
        auto next = co_await Offload(pool_, std::move(job));
        if (!next.ok()) {
          co_await sink->Abort();
          co_return Error{next.code(), src};
        }
        step = *next;
        offset = resume;
        ev.resumed_from = resume;
        bytes_sent_ += resume;  // progress: those bytes are there already
      }
    } else {
      auto created = co_await dest_.CreateFile(dest_rel);
      if (!created.ok()) co_return created.error();
      sink = std::move(*created);
    }

    if (config_.compress_level) {
      if (!compressor) {
        compressor.emplace(*config_.compress_level, expected);
      } else if (Status st = compressor->Reset(*config_.compress_level, expected); !st.ok()) {
        co_await sink->Abort();
        co_return st;
      }
    }

    Status failure;
    while (true) {
      if (Stopping()) {
        failure = Status(errc::kCancelled, src);
        break;
      }
      std::span<const std::byte> data(buffer.data(), step.bytes);
      if (compressor && config_.compress_level) {
        packed.clear();
        auto* c = &*compressor;
        auto* out = &packed;
        bool last = step.eof;
        auto job = [c, data, last, out] { return c->Compress(data, last, *out); };
        Status st = co_await Offload(pool_, std::move(job));
        if (!st.ok()) {
          // zstd refuses when the pledged size is not what was read: the file changed.
          failure = Status(errc::kSourceChanged, src);
          break;
        }
        data = packed;
      }
      if (!data.empty()) {
        Status st = co_await sink->Write(data);
        if (!st.ok()) {
          failure = st;
          break;
        }
      }
      offset += step.bytes;
      ev.bytes_read += step.bytes;
      ev.bytes_written += data.size();
      bytes_sent_ += step.bytes;
      if (step.eof) break;
      int fd = source.fd.fd;
      auto job = [fd, buf, offset] { return ReadChunk(fd, buf, offset); };
      auto next = co_await Offload(pool_, std::move(job));
      if (!next.ok()) {
        failure = Error{next.code(), src};
        break;
      }
      step = *next;
    }
    if (failure.ok()) {
      if (Changed(source.before, step.after, offset)) failure = Status(errc::kSourceChanged, src);
    }
    if (!failure.ok()) {
      bytes_sent_ -= std::min(bytes_sent_, ev.bytes_read + ev.resumed_from);
      co_await sink->Abort();  // a part file stays for the next attempt or run...
      if (!part_rel.empty() && failure.code() == errc::kSourceChanged) {
        // ...unless it holds a version of the source that is gone.
        (void)co_await dest_.Remove(part_rel, EntryType::kFile);
      }
      co_return failure;
    }
    stage = "commit";
    Status committed = co_await sink->Commit(attrs);
    if (committed.ok() && config_.sent_mtimes != nullptr) {
      config_.sent_mtimes->Sent(ev.path, attrs.mtime_ns);
    }
    co_return committed;
  }

  // One zstd frame of a file that is entirely in `data`, into `packed`.
  awaitable<Status> CompressWhole(std::span<const std::byte> data, uint64_t size,
                                  std::optional<compress::FrameCompressor>& compressor,
                                  std::vector<std::byte>& packed) {
    if (!compressor) {
      compressor.emplace(*config_.compress_level, size);
    } else if (Status st = compressor->Reset(*config_.compress_level, size); !st.ok()) {
      co_return st;
    }
    packed.clear();
    auto* c = &*compressor;
    auto* out = &packed;
    auto job = [c, data, out] { return c->Compress(data, true, *out); };
    co_return co_await Offload(pool_, std::move(job));
  }

  // ---- deleting --------------------------------------------------------

  awaitable<void> ApplyDeletes() {
    if (deletes_.empty() || Stopping()) co_return;
    if (had_errors_) {
      // As rclone: a partial view of the source must not drive deletions.
      AddProblem(
          "", "delete",
          Error{errc::kDeleteSkipped, std::to_string(deletes_.size()) +
                                          " deletion(s) not done because of earlier errors"});
      co_return;
    }
    if (config_.max_delete && deletes_.size() > *config_.max_delete) {
      Fatal(Error{errc::kMaxDeleteExceeded, std::to_string(deletes_.size()) +
                                                " deletions planned, --max-delete is " +
                                                std::to_string(*config_.max_delete)},
            "refusing to delete");
      AddProblem("", "delete", Error{errc::kMaxDeleteExceeded, report_.fatal_message});
      co_return;
    }
    for (PendingDelete& d : deletes_) {
      FileEvent ev;
      ev.path = d.path;
      ev.action = FileAction::kDelete;
      if (config_.dry_run) {
        ev.outcome = Outcome::kDryRun;
      } else {
        Status st = co_await dest_.Remove(d.path, d.type);
        if (!st.ok()) {
          AddProblem(d.path, "delete", st.error());
          ev.outcome = Outcome::kFailed;
          ev.error = st.code();
          ev.message = st.error().Message();
          Emit(std::move(ev));
          continue;
        }
      }
      ++report_.totals.files_deleted;
      Emit(std::move(ev));
    }
  }

  EngineConfig config_;
  transport::Destination& dest_;
  asio::thread_pool& pool_;
  asio::any_io_executor ex_;
  // Bounded: listers wait here when the workers fall behind.
  asio::experimental::channel<void(std::error_code, WorkItem)> items_;
  // The chunk buffers of large files in flight: taken and given back by workers.
  struct LargeSlot {
    std::unique_ptr<std::byte[]> data;
    std::vector<std::byte> packed;  // compressed output
  };
  asio::experimental::channel<void(std::error_code, LargeSlot)> large_slots_;
  // Cancelled to wake listers waiting for directories (a broadcast signal).
  asio::steady_timer dir_signal_;
  asio::steady_timer ticker_timer_;
  bool finished_ = false;
  std::vector<DirTask> dirs_;  // a stack: depth first keeps it small
  // Source listings read while the destination was opening, by directory.
  std::unordered_map<std::string, Result<std::vector<Entry>>> read_ahead_;
  bool destination_opened_ = false;
  int active_listers_ = 0;
  std::vector<PendingDelete> deletes_;
  Report report_;
  bool had_errors_ = false;
  bool scanning_ = true;
  uint64_t files_found_ = 0;
  uint64_t files_to_send_ = 0;
  uint64_t bytes_to_send_ = 0;
  uint64_t bytes_sent_ = 0;
  Clock::time_point start_;
};

}  // namespace

std::string PartFileName(std::string_view dest_name, uint64_t size, int64_t mtime_ns,
                         uint64_t ino) {
  // FNV-1a, 64 bits: stable across builds and machines (std::hash is not).
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 0x100000001b3ull;
    }
  };
  mix(dest_name.data(), dest_name.size());
  const unsigned char sep = 0;
  mix(&sep, 1);
  mix(&size, sizeof size);
  mix(&mtime_ns, sizeof mtime_ns);
  mix(&ino, sizeof ino);
  static const char kHex[] = "0123456789abcdef";
  std::string name(kTempPrefix);
  name += "part-";
  for (int i = 15; i >= 0; --i) name.push_back(kHex[(h >> (i * 4)) & 15]);
  return name;
}

awaitable<Report> RunPush(EngineConfig config, transport::Destination& dest,
                          asio::thread_pool& pool) {
  auto ex = co_await asio::this_coro::executor;
  PushRun run(std::move(config), dest, pool, ex);
  co_return co_await run.Run();
}

}  // namespace ferry::engine
