// Rules, in one place:
//
// Deletions. A path deleted (or moved out) during the watch is removed from
// the destination when it no longer exists locally, with or without --delete:
// it is a change the user made while ferry watched. Entries that were only on
// the destination before the watch are deleted only with --delete (by the
// initial push). A directory that was deleted and exists again was emptied
// meanwhile, so it is pushed with delete semantics inside it; a directory
// replaced by a file is removed first.
//
// Overflow (events lost): one recursive push of the whole tree. With --delete
// it deletes as usual. Without it, the deletions lost with the events must
// still be carried over, while what was only on the destination before the
// watch must stay: at start the loop lists those entries (a dry run of
// --delete) and the rescan runs with delete semantics except for them. If that
// list could not be made (errors, more than kMaxPreserved entries), a rescan
// does not delete and says so.
//
// Coarse destination mtimes (SFTP v3: whole seconds). A file sent within the
// second of its mtime and then rewritten with the same size in that second
// looks unchanged to size + mtime; the loop keeps the exact mtime of each such
// upload until that second is over and the file still has it (RecentlySent),
// and the engine sends a file whose mtime differs from it (engine::SentMtimes).
//
// Errors. A transient destination error (kConnectionLost, kTimeout) puts the
// unapplied rest of the batch back (a full rescan: the whole rescan) and
// retries after a backoff (100 ms doubling to 10 s). Authentication and host
// key errors and the loss of the source end the watch (report.fatal). Anything
// else is a problem in the report, and the next change to that path tries
// again.
#include "lib/watch/watch_loop.h"

#include <sys/stat.h>

#include <algorithm>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <optional>
#include <set>
#include <stop_token>
#include <unordered_map>
#include <unordered_set>

#include "ferry/error.h"
#include "lib/base/offload.h"
#include "lib/base/path.h"
#include "lib/base/task_group.h"
#include "lib/plan/plan.h"
#include "lib/transport/prefixed_destination.h"
#include "lib/watch/inotify_watcher.h"

namespace ferry::watch {
namespace {

using asio::awaitable;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kMaxPreserved = 100'000;

bool IsTransient(std::error_code ec) { return ec == errc::kConnectionLost || ec == errc::kTimeout; }

// A source path that disappeared while a run looked at it. In a watched tree
// the event that removed it is already queued, so it is not a failure.
bool IsVanished(std::error_code ec, std::string_view stage) {
  return ec == errc::kSourceVanished ||
         (stage == "scan" && ec == std::errc::no_such_file_or_directory);
}

bool IsFatal(std::error_code ec) {
  return ec == errc::kAuthFailed || ec == errc::kHostKeyMismatch || ec == errc::kHostKeyUnknown ||
         ec == errc::kHostKeyRevoked;
}

// A path reported by a sub-run rooted at `prefix`, relative to the source
// root ("" is the prefix itself, not "prefix/").
std::string UnderPrefix(const std::string& prefix, const std::string& path) {
  return path.empty() ? prefix : JoinRel(prefix, path);
}

// Stages of the problems the engine records without a FileEvent: a directory
// that could not be listed (source or destination) or chmodded, a link that -L
// cannot follow; and "sync", the loop's own for a sub-run that could not start.
bool HasNoFileEvent(const Problem& p) {
  return p.stage == "scan" || p.stage == "list" || p.stage == "chmod" || p.stage == "sync";
}

void AddTotals(Totals& t, const Totals& r) {
  t.files_sent += r.files_sent;
  t.files_skipped += r.files_skipped;
  t.files_failed += r.files_failed;
  t.files_deleted += r.files_deleted;
  t.dirs_created += r.dirs_created;
  t.symlinks += r.symlinks;
  t.ignored += r.ignored;
  t.bytes_read += r.bytes_read;
  t.bytes_written += r.bytes_written;
  t.bytes_skipped += r.bytes_skipped;
}

// A local path's state when a batch is applied.
struct LocalState {
  bool exists = false;
  bool is_dir = false;
  uint32_t mode = 0755;
};

// Forwards a sub-run's events with paths made relative to the source root.
class PrefixObserver final : public Observer {
 public:
  PrefixObserver(Observer* inner, std::string prefix, bool progress,
                 std::unordered_set<std::string>* preserved)
      : inner_(inner), prefix_(std::move(prefix)), progress_(progress), preserved_(preserved) {}

  void OnFile(const FileEvent& event) override {
    if (event.outcome == Outcome::kFailed && IsVanished(event.error, "")) return;
    FileEvent ev = event;
    ev.path = UnderPrefix(prefix_, event.path);
    if (preserved_ != nullptr && !preserved_->empty() && ev.outcome == Outcome::kDone &&
        ev.action != FileAction::kSkip && ev.action != FileAction::kDelete) {
      // Now written from the source: no longer a destination-only entry.
      preserved_->erase(ev.path);
      preserved_->erase(ev.path + std::string(plan::kCompressedSuffix));
    }
    if (inner_ != nullptr) inner_->OnFile(ev);
  }
  void OnWarning(const std::string& message) override {
    if (inner_ != nullptr) inner_->OnWarning(message);
  }
  void OnProgress(const ProgressSnapshot& snapshot) override {
    if (progress_ && inner_ != nullptr) inner_->OnProgress(snapshot);
  }

 private:
  Observer* inner_;
  std::string prefix_;
  bool progress_;
  std::unordered_set<std::string>* preserved_;
};

// Collects what a dry run of --delete would delete: the destination-only entries.
class DeleteCollector final : public Observer {
 public:
  void OnFile(const FileEvent& event) override {
    if (event.action != FileAction::kDelete) return;
    if (paths.size() >= kMaxPreserved) {
      overflow = true;
      return;
    }
    paths.insert(event.path);
  }
  std::unordered_set<std::string> paths;
  bool overflow = false;
};

// A destination whose listings are empty: for a run that sends files known
// to have been written (DirtySet's hint), so that one changed file costs no
// listing of its directory on either side, however large it is. Everything
// else goes to `inner`; the upload replaces the old file by rename as usual.
class UnlistedDestination final : public transport::Destination {
 public:
  explicit UnlistedDestination(transport::Destination& inner) : inner_(inner) {}
  std::string Describe() const override { return inner_.Describe(); }
  int64_t MtimeGranularityNs() const override { return inner_.MtimeGranularityNs(); }
  awaitable<Status> Open(bool dry_run) override { return inner_.Open(dry_run); }
  awaitable<Result<transport::Listing>> List(std::string) override {
    transport::Listing listing;
    listing.exists = true;
    co_return listing;
  }
  awaitable<Status> MakeDir(std::string path, uint32_t mode) override {
    return inner_.MakeDir(std::move(path), mode);
  }
  awaitable<Result<std::unique_ptr<transport::FileSink>>> CreateFile(std::string path) override {
    return inner_.CreateFile(std::move(path));
  }
  awaitable<Status> PutFile(std::string path, std::span<const std::byte> data,
                            transport::CommitAttrs attrs) override {
    return inner_.PutFile(std::move(path), data, attrs);
  }
  awaitable<Status> Symlink(std::string path, std::string target) override {
    return inner_.Symlink(std::move(path), std::move(target));
  }
  awaitable<Status> Remove(std::string path, EntryType type) override {
    return inner_.Remove(std::move(path), type);
  }
  awaitable<Status> Rename(std::string from, std::string to) override {
    return inner_.Rename(std::move(from), std::move(to));
  }
  awaitable<Result<std::vector<std::byte>>> ReadHead(std::string path, size_t max_bytes) override {
    return inner_.ReadHead(std::move(path), max_bytes);
  }
  awaitable<Status> ReadAll(std::string path, ChunkFn chunk_fn) override {
    return inner_.ReadAll(std::move(path), std::move(chunk_fn));
  }
  awaitable<Status> Close() override { return inner_.Close(); }
  std::vector<std::string> TakeNotes() override { return inner_.TakeNotes(); }

 private:
  transport::Destination& inner_;
};

// Holds a sub-run's file events back (warnings go through at once), for the
// caller to forward or drop once it knows the outcome.
class HoldingObserver final : public Observer {
 public:
  explicit HoldingObserver(Observer* inner) : inner_(inner) {}
  void OnFile(const FileEvent& event) override { events.push_back(event); }
  void OnWarning(const std::string& message) override {
    if (inner_ != nullptr) inner_->OnWarning(message);
  }
  std::vector<FileEvent> events;

 private:
  Observer* inner_;
};

// A written file sent without listings (WatchLoop::RunFile), and its events,
// held back.
struct HintedRun {
  Report report;
  std::vector<FileEvent> events;
};

// The hint's assumption (nothing on the destination stands in the way of the
// file) may be wrong: a directory of that name is a type conflict, or with
// --delete something to replace, which only the listings show. So any failure
// that is not the source vanishing, the connection or a refused login sends
// the directory to a listed re-plan, which reports it properly.
bool NeedsListings(const Report& r) {
  if (r.fatal) return false;
  return std::any_of(r.problems.begin(), r.problems.end(), [](const Problem& p) {
    return !IsVanished(p.code, p.stage) && !IsTransient(p.code) && !IsFatal(p.code);
  });
}

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The exact source mtimes of files sent while their mtime's granule (of the
// destination's mtime resolution) might not be over: the only ones a
// same-size rewrite can change unseen by size + mtime. Paths relative to the
// source root.
class RecentlySent {
 public:
  explicit RecentlySent(int64_t granularity_ns) : granularity_ns_(granularity_ns) {}

  std::optional<int64_t> Find(const std::string& rel) const {
    auto it = mtimes_.find(rel);
    if (it == mtimes_.end()) return std::nullopt;
    return it->second;
  }
  void Sent(const std::string& rel, int64_t mtime_ns) {
    // Two granules of margin: file times come from a coarse kernel clock.
    if (WallNs() - mtime_ns < 2 * granularity_ns_) {
      mtimes_[rel] = mtime_ns;
    } else {
      mtimes_.erase(rel);  // a later write will land in a later granule
    }
  }
  // The destination renamed `from` (a file or a directory) to `to`.
  void Moved(const std::string& from, const std::string& to) {
    std::vector<std::pair<std::string, int64_t>> moved;
    for (auto it = mtimes_.begin(); it != mtimes_.end();) {
      if (!IsWithin(it->first, from)) {
        ++it;
        continue;
      }
      moved.emplace_back(to + it->first.substr(from.size()), it->second);
      it = mtimes_.erase(it);
    }
    for (auto& [rel, mtime] : moved) mtimes_[rel] = mtime;
  }
  // Entries whose granule is over, to check against the source (Settled).
  std::vector<std::pair<std::string, int64_t>> Due() const {
    std::vector<std::pair<std::string, int64_t>> due;
    const int64_t now = WallNs();
    for (const auto& [rel, mtime] : mtimes_) {
      if (now - mtime >= 2 * granularity_ns_) due.emplace_back(rel, mtime);
    }
    return due;
  }
  // The source file no longer has a racy mtime, or is gone: a later write
  // lands in a later granule.
  void Settled(const std::string& rel, int64_t mtime_ns) {
    auto it = mtimes_.find(rel);
    if (it != mtimes_.end() && it->second == mtime_ns) mtimes_.erase(it);
  }
  bool empty() const { return mtimes_.empty(); }

 private:
  int64_t granularity_ns_;
  std::unordered_map<std::string, int64_t> mtimes_;
};

// One engine run's view of RecentlySent: the run's paths are below `prefix`.
class PrefixedSent final : public engine::SentMtimes {
 public:
  PrefixedSent(RecentlySent& all, std::string prefix) : all_(all), prefix_(std::move(prefix)) {}
  std::optional<int64_t> Find(const std::string& rel) const override {
    return all_.Find(JoinRel(prefix_, rel));
  }
  void Sent(const std::string& rel, int64_t mtime_ns) override {
    all_.Sent(JoinRel(prefix_, rel), mtime_ns);
  }

 private:
  RecentlySent& all_;
  std::string prefix_;
};

enum class Outcome3 { kOk, kTransient, kFatal };

class WatchLoop {
 public:
  WatchLoop(LoopConfig config, transport::Destination& dest, asio::thread_pool& pool,
            asio::any_io_executor ex)
      : config_(std::move(config)),
        dest_(dest),
        pool_(pool),
        ex_(ex),
        watcher_(ex, pool, MakeWatcherConfig(config_)),
        wake_(ex),
        backoff_timer_(ex),
        backoff_(config_.backoff_min),
        sent_(config_.engine.plan.mtime_granularity_ns) {}

  awaitable<Report> Run() {
    const auto started = Clock::now();
    // A stop may be requested from any thread: hop onto the loop's executor.
    auto link = std::make_shared<WatchLoop*>(this);
    std::stop_callback on_stop(config_.engine.stop, [ex = ex_, link] {
      asio::post(ex, [link] {
        if (*link != nullptr) (*link)->OnStop();
      });
    });
    std::exception_ptr failure;
    try {
      co_await RunInner();
    } catch (...) {
      failure = std::current_exception();
    }
    *link = nullptr;
    if (failure) std::rethrow_exception(failure);
    report_.totals.elapsed = Clock::now() - started;
    co_return std::move(report_);
  }

 private:
  static WatcherConfig MakeWatcherConfig(const LoopConfig& c) {
    WatcherConfig w;
    w.root = c.engine.source_root;
    w.single_file = c.engine.single_file;
    w.filters = c.filters;
    w.max_dirty = c.max_dirty;
    w.drop_read_as_overflow = c.drop_read_as_overflow;
    w.walk_listed = c.walk_listed;
    return w;
  }

  bool stopping() const { return stopping_ || config_.engine.stop.stop_requested(); }
  bool user_delete() const { return config_.engine.plan.delete_extraneous; }
  Observer* observer() const { return config_.engine.observer; }

  void OnStop() {
    stopping_ = true;
    watcher_.Stop();
    wake_.cancel();
    backoff_timer_.cancel();
  }

  void Fatal(std::error_code code, std::string message) {
    report_.fatal = code;
    report_.fatal_message = std::move(message);
  }

  void AddProblem(std::string path, std::string stage, const Error& error) {
    if (report_.problems.size() >= Report::kMaxProblems) {
      ++report_.problems_dropped;
      return;
    }
    report_.problems.push_back({std::move(path), std::move(stage), error.code, error.Message()});
  }

  // A sub-run's totals, problems and notes into the watch's report. Problems
  // that came with no FileEvent are sent to the observer here: a push reports
  // them at its end, but a watch's report comes only when it stops, and until
  // then nobody would hear of a directory it could not list. They arrive as
  // failed kIgnore events whose reason is the stage.
  void Merge(Report r, const std::string& prefix) {
    AddTotals(report_.totals, r.totals);
    for (const Problem& p : r.problems) {
      if (!HasNoFileEvent(p)) continue;
      FileEvent ev;
      ev.path = UnderPrefix(prefix, p.path);
      ev.action = FileAction::kIgnore;
      ev.outcome = Outcome::kFailed;
      ev.reason = p.stage;
      ev.error = p.code;
      ev.message = p.message;
      Emit(std::move(ev));
    }
    for (Problem& p : r.problems) {
      if (report_.problems.size() >= Report::kMaxProblems) {
        ++report_.problems_dropped;
        continue;
      }
      p.path = UnderPrefix(prefix, p.path);
      report_.problems.push_back(std::move(p));
    }
    report_.problems_dropped += r.problems_dropped;
    for (std::string& note : r.notes) {
      if (std::find(report_.notes.begin(), report_.notes.end(), note) == report_.notes.end()) {
        report_.notes.push_back(std::move(note));
      }
    }
  }

  void ForwardWarnings() {
    for (const std::string& w : watcher_.TakeWarnings()) {
      if (observer() != nullptr) observer()->OnWarning(w);
      if (std::find(report_.notes.begin(), report_.notes.end(), w) == report_.notes.end()) {
        report_.notes.push_back(w);
      }
    }
  }

  void Emit(FileEvent ev) {
    if (observer() != nullptr) observer()->OnFile(ev);
  }

  awaitable<void> RunInner() {
    if (Status st = co_await watcher_.Start(); !st.ok()) {
      Fatal(st.code(), "cannot watch the source: " + st.error().Message());
      co_return;
    }
    ForwardWarnings();
    // Events are consumed from now on, also during the initial sync, so the
    // kernel's queue does not overflow while it runs.
    TaskGroup reader(ex_);
    reader.Spawn(watcher_.Run([this] { wake_.cancel(); }));
    std::exception_ptr failure;
    try {
      if (co_await InitialSync()) co_await Batches();
    } catch (...) {
      failure = std::current_exception();
    }
    watcher_.Stop();
    co_await reader.Wait();
    if (failure) std::rethrow_exception(failure);
  }

  // ---- the initial sync ----------------------------------------------------

  awaitable<bool> InitialSync() {
    const auto t0 = Clock::now();
    const Totals before = report_.totals;
    if (!user_delete() && !config_.engine.dry_run) co_await CollectPreserved();
    if (stopping()) {
      report_.cancelled = true;
      co_return false;
    }
    std::string root;
    Report r = co_await RunEngine(root, /*recursive=*/true, /*exact=*/false, /*full=*/false);
    const bool cancelled = r.cancelled;
    const std::error_code fatal = r.fatal;
    std::string fatal_message = r.fatal_message;
    Merge(std::move(r), "");
    if (fatal) {
      Fatal(fatal, std::move(fatal_message));
      co_return false;
    }
    if (cancelled || stopping()) {
      report_.cancelled = true;
      co_return false;
    }
    BatchSummary s = Summarize(before, t0);
    s.initial = true;
    if (observer() != nullptr) observer()->OnBatch(s);
    co_return true;
  }

  // A dry run of --delete: what exists only on the destination now, to be kept
  // by rescans (see the top of this file).
  awaitable<void> CollectPreserved() {
    engine::EngineConfig c = config_.engine;
    DeleteCollector collector;
    c.dry_run = true;
    c.recursive = true;
    c.plan.delete_extraneous = true;
    c.plan.delete_excluded = false;
    c.plan.checksum = false;
    c.max_delete.reset();
    c.hash_cache = nullptr;
    c.observer = &collector;
    c.excluded = ExcludeFn("");
    Report r = co_await engine::RunPush(std::move(c), dest_, pool_);
    if (r.fatal || !r.problems.empty() || r.problems_dropped > 0 || collector.overflow) {
      preserved_known_ = false;
      return_note_ =
          "could not list destination-only entries at start: after an event overflow, local "
          "deletions are carried over only with --delete";
      co_return;
    }
    preserved_known_ = true;
    preserved_ = std::move(collector.paths);
  }

  // ---- batches ---------------------------------------------------------------

  awaitable<void> Batches() {
    auto next_unwatched_rescan = Clock::now() + config_.unwatched_rescan;
    while (!stopping()) {
      ForwardWarnings();
      if (watcher_.source_gone()) {
        Fatal(errc::kSourceMissing, "source '" + Printable(config_.engine.source_root) +
                                        "' was removed or moved away; watch ended");
        co_return;
      }
      if (!watcher_.unwatched().empty() && Clock::now() >= next_unwatched_rescan) {
        for (const std::string& dir : watcher_.unwatched()) watcher_.MarkSubtree(dir);
        next_unwatched_rescan = Clock::now() + config_.unwatched_rescan;
      }
      if (!watcher_.HasWork()) {
        // Idle: nothing runs until the kernel reports a change (no polling),
        // except the rescans of directories the watch limit left unwatched.
        wake_.expires_at(watcher_.unwatched().empty() ? Clock::time_point::max()
                                                      : next_unwatched_rescan);
        co_await wake_.async_wait(kTuple);
        continue;
      }
      // Collect until settled, quiet for `coalesce`, or `max_delay` passed.
      const auto first = Clock::now();
      while (!stopping() && !watcher_.Settled() && !watcher_.source_gone()) {
        auto deadline =
            std::min(watcher_.last_event() + config_.coalesce, first + config_.max_delay);
        if (watcher_.RescanWaitsForWalk()) {
          deadline = Clock::time_point::max();  // the walk's end wakes us
        } else if (Clock::now() >= deadline) {
          break;
        }
        wake_.expires_at(deadline);
        co_await wake_.async_wait(kTuple);
      }
      if (stopping() || watcher_.source_gone()) continue;
      Batch batch = watcher_.Take();
      if (batch.empty()) continue;
      Outcome3 result = co_await Apply(std::move(batch));
      if (result == Outcome3::kFatal) co_return;
      co_await ForgetSettledUploads();
      if (result == Outcome3::kTransient) {
        need_open_ = true;
        backoff_timer_.expires_after(backoff_);
        co_await backoff_timer_.async_wait(kTuple);
        backoff_ = std::min(backoff_ * 2, config_.backoff_max);
      } else {
        backoff_ = config_.backoff_min;
      }
    }
  }

  bool coarse_mtimes() const { return config_.engine.plan.mtime_granularity_ns > 1; }

  // Drops the RecentlySent entries whose granule is over and whose source
  // still has that mtime (or is gone): one lstat each, on the pool.
  awaitable<void> ForgetSettledUploads() {
    if (sent_.empty()) co_return;
    std::vector<std::pair<std::string, int64_t>> due = sent_.Due();
    if (due.empty()) co_return;
    std::string root = config_.engine.source_root;
    auto job = [root, due = std::move(due)] {
      std::vector<std::pair<std::string, int64_t>> settled;
      for (const auto& [rel, mtime] : due) {
        struct stat st;
        const std::string full = JoinRel(root, rel);
        if (::lstat(full.c_str(), &st) != 0 ||
            int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec == mtime) {
          settled.emplace_back(rel, mtime);
        }
      }
      return settled;
    };
    auto settled = co_await Offload(pool_, std::move(job));
    for (const auto& [rel, mtime] : settled) sent_.Settled(rel, mtime);
  }

  BatchSummary Summarize(const Totals& before, Clock::time_point t0) const {
    const Totals& t = report_.totals;
    BatchSummary s;
    s.deleted = t.files_deleted - before.files_deleted;
    s.files = (t.files_sent - before.files_sent) + (t.symlinks - before.symlinks) + s.deleted;
    s.bytes = t.bytes_read - before.bytes_read;
    s.failed = t.files_failed - before.files_failed;
    s.duration = Clock::now() - t0;
    return s;
  }

  // Applies one batch; on a transient error puts its unapplied rest back.
  awaitable<Outcome3> Apply(Batch batch) {
    const auto t0 = Clock::now();
    const Totals before = report_.totals;
    uint64_t renamed = 0;
    Outcome3 result = Outcome3::kOk;
    const bool full_rescan = batch.full_rescan;  // batch is moved from below
    if (full_rescan) {
      result = co_await FullRescan();
      if (result == Outcome3::kTransient) {
        // The events it stands for are lost: only another rescan can carry
        // those changes over, so it goes back like any unapplied batch.
        Batch again;
        again.full_rescan = true;
        watcher_.Requeue(std::move(again));
      }
    } else {
      result = co_await ApplyChanges(std::move(batch), renamed);
    }
    BatchSummary s = Summarize(before, t0);
    s.full_rescan = full_rescan;
    s.renamed = renamed;
    s.files += renamed;
    if (observer() != nullptr) observer()->OnBatch(s);
    co_return result;
  }

  awaitable<Outcome3> FullRescan() {
    if (!user_delete() && preserved_known_ && !preserved_.empty()) {
      // Entries that were only on the destination and now exist locally are
      // the user's again: sync them normally.
      std::vector<std::string> paths(preserved_.begin(), preserved_.end());
      std::string root = config_.engine.source_root;
      auto job = [root, paths] {
        std::vector<std::string> present;
        for (const std::string& p : paths) {
          struct stat st;
          if (p.ends_with(plan::kCompressedSuffix)) {
            const std::string stripped =
                JoinRel(root, p.substr(0, p.size() - plan::kCompressedSuffix.size()));
            if (::lstat(stripped.c_str(), &st) == 0) present.push_back(p);
          }
          const std::string local = JoinRel(root, p);
          if (::lstat(local.c_str(), &st) == 0) present.push_back(p);
        }
        return present;
      };
      std::vector<std::string> present = co_await Offload(pool_, std::move(job));
      for (const std::string& p : present) preserved_.erase(p);
    }
    if (!user_delete() && !preserved_known_ && !return_note_.empty()) {
      if (observer() != nullptr) observer()->OnWarning(return_note_);
      return_note_.clear();
    }
    std::string root;
    Report r = co_await RunEngine(root, /*recursive=*/true, /*exact=*/false, /*full=*/true);
    co_return Classify(std::move(r), root);
  }

  // What an engine run's outcome means for the watch. Failures that will be
  // retried (transient) are not kept as problems.
  Outcome3 Classify(Report r, const std::string& prefix) {
    std::error_code fatal = r.fatal;
    std::string message = r.fatal_message;
    if (!fatal) {
      // A reconnection refused (auth, host key) shows up as the failure of the
      // files that needed it: it ends the watch, it is not one file's problem.
      auto refused = std::find_if(r.problems.begin(), r.problems.end(),
                                  [](const Problem& p) { return IsFatal(p.code); });
      if (refused != r.problems.end()) {
        fatal = refused->code;
        message = "cannot reconnect to " + dest_.Describe() + ": " + refused->message;
        r.fatal = fatal;
        r.fatal_message = message;
        const size_t n =
            std::erase_if(r.problems, [](const Problem& p) { return IsFatal(p.code); });
        r.totals.files_failed -= std::min<uint64_t>(r.totals.files_failed, n);
      }
    }
    bool transient = IsTransient(fatal);
    size_t before = r.problems.size();
    // Only vanished files were counted as failed; a vanished directory was not.
    uint64_t vanished_files = static_cast<uint64_t>(
        std::count_if(r.problems.begin(), r.problems.end(),
                      [](const Problem& p) { return p.code == errc::kSourceVanished; }));
    std::erase_if(r.problems, [](const Problem& p) { return IsVanished(p.code, p.stage); });
    r.totals.files_failed -= std::min(r.totals.files_failed, vanished_files);
    before = r.problems.size();
    std::erase_if(r.problems, [](const Problem& p) { return IsTransient(p.code); });
    size_t retried = before - r.problems.size();
    transient = transient || retried > 0;
    r.totals.files_failed -= std::min<uint64_t>(r.totals.files_failed, retried);
    if (IsTransient(fatal)) r.fatal = {};
    if (r.fatal && !IsFatal(r.fatal)) {
      // This directory could not be synced; the watch goes on.
      r.problems.push_back({"", "sync", r.fatal, message});
      r.fatal = {};
    }
    Merge(std::move(r), prefix);
    if (IsFatal(fatal)) {
      Fatal(fatal, std::move(message));
      return Outcome3::kFatal;
    }
    return transient ? Outcome3::kTransient : Outcome3::kOk;
  }

  Outcome3 RefusedOnReconnect(const Status& st) {
    Fatal(st.code(), "cannot reconnect to " + dest_.Describe() + ": " + st.error().Message());
    return Outcome3::kFatal;
  }

  awaitable<Status> DestRename(const Rename& r) {
    if (!r.is_dir && config_.engine.plan.compress) {
      std::string suffix(plan::kCompressedSuffix);
      std::string from = r.from + suffix;
      std::string to = r.to + suffix;
      Status st = co_await dest_.Rename(std::move(from), std::move(to));
      if (st.ok() || IsTransient(st.code())) co_return st;
    }
    co_return co_await dest_.Rename(r.from, r.to);
  }

  awaitable<Status> DestRemove(const Deletion& d) {
    if (d.was_dir) co_return co_await dest_.Remove(d.path, EntryType::kDirectory);
    if (config_.engine.plan.compress) {
      std::string packed = d.path + std::string(plan::kCompressedSuffix);
      Status st = co_await dest_.Remove(packed, EntryType::kFile);
      if (!st.ok()) co_return st;
    }
    co_return co_await dest_.Remove(d.path, EntryType::kFile);
  }

  awaitable<Outcome3> ApplyChanges(Batch batch, uint64_t& renamed) {
    const bool dry = config_.engine.dry_run;
    const bool single = config_.engine.single_file.has_value();
    if (need_open_ && (!batch.renames.empty() || !batch.deleted.empty())) {
      Status st = co_await dest_.Open(dry);
      if (!st.ok()) {
        if (IsTransient(st.code())) {
          watcher_.Requeue(std::move(batch));
          co_return Outcome3::kTransient;
        }
        if (IsFatal(st.code())) {
          Fatal(st.code(),
                "cannot open destination " + dest_.Describe() + ": " + st.error().Message());
          co_return Outcome3::kFatal;
        }
      } else {
        need_open_ = false;
      }
    }

    // 1. Renames, in order: the destination moves its copy, nothing is sent.
    for (size_t i = 0; i < batch.renames.size(); ++i) {
      const Rename& r = batch.renames[i];
      // (Not `dry ? Status() : co_await ...`: g++ 12 mishandles co_await in ?:.)
      Status st;
      if (!dry) st = co_await DestRename(r);
      if (IsFatal(st.code())) co_return RefusedOnReconnect(st);
      if (IsTransient(st.code())) {
        batch.renames.erase(batch.renames.begin(),
                            batch.renames.begin() + static_cast<std::ptrdiff_t>(i));
        watcher_.Requeue(std::move(batch));
        co_return Outcome3::kTransient;
      }
      if (!st.ok()) {
        // Not there on the destination (new, or never synced) or blocked:
        // delete the old name, push the new one.
        batch.deleted.push_back({r.from, r.is_dir});
        if (r.is_dir) {
          batch.subtrees.push_back(r.to);
        } else {
          batch.dirs.push_back(std::string(ParentOf(r.to)));
        }
        continue;
      }
      ++renamed;
      if (!dry) sent_.Moved(r.from, r.to);
      FileEvent ev;
      ev.path = r.to;
      ev.action = FileAction::kRename;
      ev.outcome = dry ? Outcome::kDryRun : Outcome::kDone;
      ev.reason = "from " + r.from;
      Emit(std::move(ev));
    }
    batch.renames.clear();

    // 2. The local state of everything about to be acted on, in one trip.
    std::vector<std::string> paths;
    for (const Deletion& d : batch.deleted) paths.push_back(d.path);
    for (const std::string& s : batch.subtrees) paths.push_back(s);
    for (const std::string& d : batch.dirs) paths.push_back(d);
    if (single) paths.push_back(*config_.engine.single_file);
    std::string root = config_.engine.source_root;
    auto job = [root, paths] {
      std::vector<LocalState> out(paths.size());
      for (size_t i = 0; i < paths.size(); ++i) {
        struct stat st;
        std::string full = paths[i].empty() ? root : root + "/" + paths[i];
        if (::lstat(full.c_str(), &st) != 0) continue;
        out[i] = {true, S_ISDIR(st.st_mode), static_cast<uint32_t>(st.st_mode & 07777)};
      }
      return out;
    };
    std::vector<LocalState> states = co_await Offload(pool_, std::move(job));
    std::map<std::string, LocalState> local;
    for (size_t i = 0; i < paths.size(); ++i) local[paths[i]] = states[i];

    // 3. Deletions of what is gone locally.
    struct Run {
      std::string path;
      bool recursive;
      bool exact;
      uint32_t mode;
      std::vector<std::string> files = {};  // only these were written (Batch::written)
    };
    std::vector<Run> exact_runs;
    std::vector<Deletion> removals;
    for (Deletion& d : batch.deleted) {
      const LocalState& s = local[d.path];
      if (!s.exists) {
        removals.push_back(std::move(d));
      } else if (d.was_dir && s.is_dir) {
        // Deleted and created again: emptied meanwhile, so mirror it exactly.
        exact_runs.push_back({d.path, true, true, s.mode});
      } else if (d.was_dir) {
        // A directory became a file: remove the directory, push the file.
        std::string parent(ParentOf(d.path));
        removals.push_back(std::move(d));
        batch.dirs.push_back(parent);
        if (!local.count(parent)) local[parent] = {true, true, 0755};
      }
      // A file replaced by a file or a directory: the pushes handle it.
    }
    batch.deleted.clear();
    if (config_.engine.max_delete && removals.size() > *config_.engine.max_delete) {
      AddProblem(
          "", "delete",
          Error{errc::kMaxDeleteExceeded,
                std::to_string(removals.size()) + " deletions in one batch, --max-delete is " +
                    std::to_string(*config_.engine.max_delete) + ": none done"});
      removals.clear();
    }
    for (size_t i = 0; i < removals.size(); ++i) {
      const Deletion& d = removals[i];
      if (stopping()) co_return Outcome3::kOk;
      Status st;
      if (!dry) st = co_await DestRemove(d);
      if (IsFatal(st.code())) co_return RefusedOnReconnect(st);
      if (IsTransient(st.code())) {
        Batch rest;
        rest.deleted.assign(removals.begin() + static_cast<std::ptrdiff_t>(i), removals.end());
        for (const Run& r : exact_runs) rest.deleted.push_back({r.path, true});
        rest.subtrees = std::move(batch.subtrees);
        rest.dirs = std::move(batch.dirs);
        watcher_.Requeue(std::move(rest));
        co_return Outcome3::kTransient;
      }
      FileEvent ev;
      ev.path = d.path;
      ev.action = FileAction::kDelete;
      ev.reason = "deleted";
      if (!st.ok()) {
        AddProblem(d.path, "delete", st.error());
        ev.outcome = Outcome::kFailed;
        ev.error = st.code();
        ev.message = st.error().Message();
      } else {
        ev.outcome = dry ? Outcome::kDryRun : Outcome::kDone;
        ++report_.totals.files_deleted;
      }
      Emit(std::move(ev));
    }

    // 4. Pushes: exact subtrees, new subtrees, then changed directories (a
    // directory's run also enters subdirectories new on the destination).
    std::vector<Run> runs = std::move(exact_runs);
    auto covered = [&runs](const std::string& p, bool by_any) {
      for (const Run& r : runs) {
        if ((r.exact || by_any) && r.recursive && IsWithin(p, r.path)) return true;
      }
      return false;
    };
    if (single) {
      if (!batch.subtrees.empty() || !batch.dirs.empty()) {
        if (local[*config_.engine.single_file].exists) runs.push_back({"", false, false, 0755});
      }
    } else {
      std::sort(batch.subtrees.begin(), batch.subtrees.end());
      for (const std::string& s : batch.subtrees) {
        const LocalState& st = local[s];
        if (!st.exists || !st.is_dir || covered(s, true)) continue;
        runs.push_back({s, true, false, st.mode});
      }
      std::sort(batch.dirs.begin(), batch.dirs.end());
      batch.dirs.erase(std::unique(batch.dirs.begin(), batch.dirs.end()), batch.dirs.end());
      // --checksum compares content: it needs the listings.
      const bool hints = !config_.engine.plan.checksum;
      for (const std::string& d : batch.dirs) {
        const LocalState& st = local[d];
        if (!st.exists || !st.is_dir || covered(d, true)) continue;
        auto written = batch.written.find(d);
        if (hints && written != batch.written.end()) {
          runs.push_back({d, false, false, st.mode, std::move(written->second)});
        } else {
          runs.push_back({d, false, false, st.mode});
        }
      }
    }
    for (size_t i = 0; i < runs.size(); ++i) {
      if (stopping()) co_return Outcome3::kOk;
      const Run& run = runs[i];
      Outcome3 outcome = Outcome3::kOk;
      if (!run.files.empty()) {
        bool replan = false;
        for (const std::string& name : run.files) {
          HintedRun hinted = co_await RunFile(run.path, name, run.mode);
          const bool relist = NeedsListings(hinted.report);
          for (const FileEvent& ev : hinted.events) {
            // What was done is said; the failures, the re-plan reports.
            if (!relist || ev.outcome != Outcome::kFailed) Emit(ev);
          }
          if (relist) {
            replan = true;
            continue;
          }
          outcome = Classify(std::move(hinted.report), run.path);
          if (outcome != Outcome3::kOk) break;
        }
        if (replan && outcome == Outcome3::kOk) {
          Report r = co_await RunEngine(run.path, /*recursive=*/false, /*exact=*/false,
                                        /*full=*/false, run.mode);
          outcome = Classify(std::move(r), run.path);
        }
      } else {
        Report r = co_await RunEngine(run.path, run.recursive, run.exact, false, run.mode);
        outcome = Classify(std::move(r), run.path);
      }
      if (outcome == Outcome3::kFatal) co_return outcome;
      if (outcome == Outcome3::kTransient) {
        Batch rest;
        for (size_t k = i; k < runs.size(); ++k) {
          if (runs[k].exact) {
            rest.deleted.push_back({runs[k].path, true});
          } else if (runs[k].recursive) {
            rest.subtrees.push_back(runs[k].path);
          } else {
            rest.dirs.push_back(runs[k].path);
          }
        }
        watcher_.Requeue(std::move(rest));
        co_return outcome;
      }
    }
    co_return Outcome3::kOk;
  }

  // The filters seen from a run rooted at `prefix`.
  engine::ExcludeFn ExcludeFn(const std::string& prefix) const {
    std::shared_ptr<const filter::FilterSet> filters = config_.filters;
    if (!filters || filters->empty()) return {};
    if (prefix.empty()) {
      return
          [filters](std::string_view rel, bool is_dir) { return filters->Excluded(rel, is_dir); };
    }
    return [filters, prefix](std::string_view rel, bool is_dir) {
      return filters->Excluded(JoinRel(prefix, rel), is_dir);
    };
  }

  // One engine run over `rel` (a directory relative to the source root).
  // `exact`: with delete semantics inside it. `full`: the whole tree after an
  // overflow (see the top of this file).
  awaitable<Report> RunEngine(std::string rel, bool recursive, bool exact, bool full,
                              uint32_t mode = 0755) {
    engine::EngineConfig c = config_.engine;
    c.recursive = recursive;
    if (!rel.empty()) c.source_root = config_.engine.source_root + "/" + rel;
    c.ancestry_top = config_.engine.source_root;  // -L: cycles through the whole tree
    c.excluded = ExcludeFn(rel);
    if (exact) {
      c.plan.delete_extraneous = true;
      c.max_delete.reset();
    }
    std::shared_ptr<const std::unordered_set<std::string>> keep;
    if (full && !user_delete() && preserved_known_) {
      // Delete what the lost events deleted, keep what was only on the destination.
      c.plan.delete_extraneous = true;
      keep = std::make_shared<const std::unordered_set<std::string>>(preserved_);
      engine::ExcludeFn base = c.excluded;
      c.excluded = [base, keep](std::string_view path, bool is_dir) {
        if (base && base(path, is_dir)) return true;
        std::string p(path);
        return keep->count(p) > 0 || keep->count(p + std::string(plan::kCompressedSuffix)) > 0;
      };
    }
    const bool whole_tree = rel.empty() && recursive;
    PrefixObserver obs(observer(), rel, /*progress=*/whole_tree,
                       preserved_known_ ? &preserved_ : nullptr);
    c.observer = &obs;
    PrefixedSent sent(sent_, rel);
    if (coarse_mtimes()) c.sent_mtimes = &sent;
    // The destination was opened by the initial sync; it is opened again only
    // after a transient error (need_open_), so a batch costs no reconnect.
    const bool open_inner = need_open_ || !opened_once_;
    transport::PrefixedDestination dest(dest_, rel, mode, open_inner);
    Report r = co_await engine::RunPush(std::move(c), dest, pool_);
    if (open_inner && !r.fatal) {
      opened_once_ = true;
      need_open_ = false;
    }
    co_return r;
  }

  // One written file `name` of directory `rel`, sent without listing the
  // directory (see UnlistedDestination). A file gone meanwhile is a vanished
  // source (not a problem: its deletion event is queued). Its file events are
  // held back in the result (see NeedsListings).
  awaitable<HintedRun> RunFile(std::string rel, std::string name, uint32_t mode) {
    engine::EngineConfig c = config_.engine;
    c.recursive = false;
    if (!rel.empty()) c.source_root = config_.engine.source_root + "/" + rel;
    c.ancestry_top = config_.engine.source_root;  // -L: cycles through the whole tree
    c.single_file = name;
    c.excluded = ExcludeFn(rel);
    HoldingObserver held(observer());
    PrefixObserver obs(&held, rel, /*progress=*/false, preserved_known_ ? &preserved_ : nullptr);
    c.observer = &obs;
    PrefixedSent sent(sent_, rel);
    if (coarse_mtimes()) c.sent_mtimes = &sent;
    const bool open_inner = need_open_ || !opened_once_;
    UnlistedDestination unlisted(dest_);
    transport::PrefixedDestination dest(unlisted, rel, mode, open_inner);
    Report r = co_await engine::RunPush(std::move(c), dest, pool_);
    if (open_inner && !r.fatal) {
      opened_once_ = true;
      need_open_ = false;
    }
    HintedRun out{std::move(r), std::move(held.events)};  // named: see Offload's note on g++ 12
    co_return out;
  }

  LoopConfig config_;
  transport::Destination& dest_;
  asio::thread_pool& pool_;
  asio::any_io_executor ex_;
  InotifyWatcher watcher_;
  asio::steady_timer wake_;  // cancelled by the watcher after each read, and by a stop
  asio::steady_timer backoff_timer_;
  std::chrono::milliseconds backoff_;
  bool stopping_ = false;
  bool need_open_ = false;
  bool opened_once_ = false;
  // Destination-only entries at start (see the top of this file).
  bool preserved_known_ = false;
  std::unordered_set<std::string> preserved_;
  std::string return_note_;
  // Only for destinations with coarse mtimes (granularity > 1 ns).
  RecentlySent sent_;
  Report report_;
};

}  // namespace

awaitable<Report> RunWatch(LoopConfig config, transport::Destination& dest,
                           asio::thread_pool& pool) {
  auto ex = co_await asio::this_coro::executor;
  WatchLoop loop(std::move(config), dest, pool, ex);
  co_return co_await loop.Run();
}

}  // namespace ferry::watch
