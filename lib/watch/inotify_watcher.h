// Linux inotify over a source tree, turned into DirtySet records.
//
// One watch per directory (excluded directories are not watched). A directory
// that appears is watched and then listed on the thread pool; what arrived in
// it before its watch is covered because the directory is then marked dirty as
// a whole. Renamed directories keep their watches (the path map is rewritten);
// directories moved out of the tree lose them. IN_Q_OVERFLOW means events were
// lost: the set asks for a full rescan and the tree is walked again so that
// every directory is watched. When the kernel's watch limit is reached
// (fs.inotify.max_user_watches) the watcher says so once, keeps what it has and
// reports the directories it could not watch (unwatched()) for the loop to
// rescan periodically.
//
// Threading: everything runs on `ex` (single-threaded); directory walks and
// inotify_add_watch of new subtrees run on `pool`. Reads are non-blocking,
// driven by asio::posix::stream_descriptor readiness.
#ifndef FERRY_WATCH_INOTIFY_WATCHER_H_
#define FERRY_WATCH_INOTIFY_WATCHER_H_

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "lib/base/result.h"
#include "lib/base/task_group.h"
#include "lib/filter/filter.h"
#include "lib/watch/dirty_set.h"

namespace asio {
class thread_pool;
}

struct inotify_event;

namespace ferry::watch {

struct WatcherConfig {
  std::string root;                                  // absolute path of the source directory
  std::optional<std::string> single_file;            // only this name in `root` matters
  std::shared_ptr<const filter::FilterSet> filters;  // may be null
  size_t max_dirty = DirtySet::kDefaultMaxEntries;
  // Test hook, called once per read(): returning true drops what was read and
  // reports IN_Q_OVERFLOW instead, as the kernel does when its queue is full.
  std::function<bool()> drop_read_as_overflow;
  // Test hook, called on the pool once a walk has watched and listed the
  // subtree at `rel`, before its result reaches the watcher: a change made
  // here lands in the window between the two.
  std::function<void(const std::string& rel)> walk_listed;
};

class InotifyWatcher {
 public:
  using Clock = std::chrono::steady_clock;

  InotifyWatcher(asio::any_io_executor ex, asio::thread_pool& pool, WatcherConfig config);
  InotifyWatcher(const InotifyWatcher&) = delete;
  InotifyWatcher& operator=(const InotifyWatcher&) = delete;
  ~InotifyWatcher();

  // Creates the inotify instance and watches the whole tree. Events start
  // queueing at once; Run() consumes them.
  asio::awaitable<Status> Start();
  // Reads events until Stop(); calls `on_event` after every read that recorded
  // something and after every directory walk. Returns once stopped and every
  // walk it started has finished.
  asio::awaitable<void> Run(std::function<void()> on_event);
  void Stop();

  // Nothing half-done: no walk in flight, no writer open, no move half-seen.
  bool Settled() const { return walks_ == 0 && dirty_.Settled(); }
  bool HasWork() const { return !dirty_.empty() || dirty_.has_pending_moves(); }
  // A full rescan is due but the tree is still being walked for watches: the
  // rescan must wait, or changes in directories not yet watched could be missed.
  bool RescanWaitsForWalk() const { return dirty_.full_rescan() && full_walk_running_; }
  Clock::time_point last_event() const { return last_event_; }
  // Hands the recorded changes over (see DirtySet::Take) and drops the watches
  // of directories that were moved out of the tree.
  Batch Take();
  void Requeue(Batch batch) { dirty_.Requeue(std::move(batch)); }
  void MarkSubtree(std::string_view dir) { dirty_.SubtreeChanged(dir); }
  void MarkDir(std::string_view dir) { dirty_.DirChanged(dir); }

  // The source directory itself was deleted or moved away.
  bool source_gone() const { return source_gone_; }
  // Things the user should hear about (watch limit, unreadable directories).
  std::vector<std::string> TakeWarnings() { return std::exchange(warnings_, {}); }
  // Top-most directories left unwatched because of the watch limit.
  const std::set<std::string>& unwatched() const { return unwatched_; }
  size_t watch_count() const { return wd_path_.size(); }

 private:
  struct WalkResult;
  struct LoggedMove {
    std::string from;
    std::string to;  // empty: left the tree
  };
  // A directory created in (or moved into) a directory whose watch's walk had
  // not landed when the event came.
  struct UnlandedDir {
    int wd = -1;  // the parent's watch
    std::string name;
    uint32_t cookie = 0;
    bool moved_in = false;
  };

  void StartWalk(std::string rel);
  // `log_start`: the first move logged after the walk began; `started`: when
  // it began, on the watcher's own clock (next_stamp_).
  asio::awaitable<void> Walk(std::string rel, size_t log_start, uint64_t started,
                             bool mark_dirty);
  void Merge(WalkResult result, size_t log_start, uint64_t started, const std::string& root_rel,
             bool mark_dirty);
  // Reads and processes every event queued now, without waiting; true when
  // any was recorded.
  bool ReadQueued();
  void Process(const ::inotify_event& ev);
  void Overflow();
  bool Excluded(std::string_view rel, bool is_dir) const;
  void Detach(const std::string& rel, uint32_t cookie);
  void Reattach(uint32_t cookie, const std::string& to);
  void Forget(int wd);
  void Log(std::string from, std::string to);

  asio::any_io_executor ex_;
  asio::thread_pool& pool_;
  WatcherConfig config_;
  int fd_ = -1;  // owned by sd_ once Start() succeeded
  std::unique_ptr<asio::posix::stream_descriptor> sd_;
  int root_wd_ = -1;
  std::unordered_map<int, std::string> wd_path_;
  std::map<std::string, int> path_wd_;  // ordered: a subtree is a contiguous range
  // Directories seen leaving by IN_MOVED_FROM, until their IN_MOVED_TO: cookie
  // -> (wd, path below the moved directory).
  std::unordered_map<uint32_t, std::vector<std::pair<int, std::string>>> limbo_;
  DirtySet dirty_;
  TaskGroup walks_group_;
  int walks_ = 0;
  bool full_walk_running_ = false;
  bool full_walk_again_ = false;
  // Directory moves seen while walks are in flight: their results are renamed
  // accordingly when they land.
  std::vector<LoggedMove> move_log_;
  // While walks are in flight: when each watch got its current path (from a
  // walk that began then, or a move). A walk that began earlier may have
  // watched the directory before a move nobody saw (out of a directory whose
  // own walk had not landed); its path for that watch is older news, and the
  // later walk of the directory's new place must win whatever order they land.
  std::unordered_map<int, uint64_t> placed_at_;
  uint64_t next_stamp_ = 1;
  std::set<int> ignored_during_walks_;
  std::vector<UnlandedDir> unlanded_dirs_;
  std::set<std::string> unwatched_;
  bool limit_reported_ = false;
  bool source_gone_ = false;
  bool stopped_ = false;
  Clock::time_point last_event_{};
  std::vector<std::string> warnings_;
  std::function<void()> on_event_;
  std::unique_ptr<uint64_t[]> read_buffer_;  // ReadQueued's, aligned for inotify_event
};

}  // namespace ferry::watch

#endif  // FERRY_WATCH_INOTIFY_WATCHER_H_
