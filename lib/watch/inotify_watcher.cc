#include "lib/watch/inotify_watcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "ferry/error.h"
#include "lib/base/offload.h"
#include "lib/base/path.h"

namespace ferry::watch {
namespace {

constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                           IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR |
                           IN_DONT_FOLLOW | IN_EXCL_UNLINK;
// Beyond this many unwatched directories, rescan the whole tree instead.
constexpr size_t kMaxUnwatched = 1000;
// Directories reported by watches whose walk has not landed, kept at most.
constexpr size_t kMaxUnlandedDirs = 10000;

std::string ReadSysctl(const char* path) {
  std::ifstream in(path);
  std::string value;
  in >> value;
  return value.empty() ? "?" : value;
}

}  // namespace

struct InotifyWatcher::WalkResult {
  std::vector<std::pair<int, std::string>> watched;  // wd, rel
  std::vector<std::string> unwatched;                // watch limit hit below these
  bool limit_hit = false;
  std::vector<std::string> warnings;
};

InotifyWatcher::InotifyWatcher(asio::any_io_executor ex, asio::thread_pool& pool,
                               WatcherConfig config)
    : ex_(ex),
      pool_(pool),
      config_(std::move(config)),
      dirty_(config_.max_dirty),
      walks_group_(ex) {}

InotifyWatcher::~InotifyWatcher() {
  if (!sd_ && fd_ >= 0) ::close(fd_);
}

bool InotifyWatcher::Excluded(std::string_view rel, bool is_dir) const {
  // Watched directories passed the filters already: checking the last
  // component's rule set is enough (see FilterSet::ExcludedWithParents).
  return config_.filters && !config_.filters->empty() && config_.filters->Excluded(rel, is_dir);
}

asio::awaitable<Status> InotifyWatcher::Start() {
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) {
    int err = errno;
    if (err == EMFILE) {
      co_return Error{{err, std::system_category()},
                      "inotify instance limit reached (fs.inotify.max_user_instances=" +
                          ReadSysctl("/proc/sys/fs/inotify/max_user_instances") +
                          "); raise it with sysctl -w fs.inotify.max_user_instances=N"};
    }
    co_return Error{{err, std::system_category()}, "inotify_init1"};
  }
  sd_ = std::make_unique<asio::posix::stream_descriptor>(ex_, fd_);
  ++walks_;
  full_walk_running_ = true;
  std::string root;
  // The initial sync follows: nothing to mark dirty.
  co_await Walk(root, move_log_.size(), next_stamp_++, /*mark_dirty=*/false);
  auto it = path_wd_.find("");
  if (it == path_wd_.end()) {
    co_return Error{errc::kSourceMissing, "cannot watch source '" + Printable(config_.root) + "'"};
  }
  root_wd_ = it->second;
  co_return Status();
}

void InotifyWatcher::StartWalk(std::string rel) {
  if (stopped_) return;
  if (rel.empty()) {
    if (full_walk_running_) {
      full_walk_again_ = true;
      return;
    }
    full_walk_running_ = true;
  }
  ++walks_;
  // A full walk follows an overflow: the full rescan after it covers everything.
  const bool mark_dirty = !rel.empty();
  walks_group_.Spawn(Walk(std::move(rel), move_log_.size(), next_stamp_++, mark_dirty));
}

asio::awaitable<void> InotifyWatcher::Walk(std::string rel, size_t log_start, uint64_t started,
                                           bool mark_dirty) {
  const int fd = fd_;
  const std::string root = config_.root;
  const bool recurse = !config_.single_file.has_value();
  std::shared_ptr<const filter::FilterSet> filters = config_.filters;
  std::function<void(const std::string&)> listed = config_.walk_listed;
  auto job = [fd, root, rel, recurse, filters, listed]() -> WalkResult {
    WalkResult out;
    std::vector<std::string> stack{rel};
    while (!stack.empty()) {
      std::string dir = std::move(stack.back());
      stack.pop_back();
      std::string full = dir.empty() ? root : JoinRel(root, dir);
      int wd = ::inotify_add_watch(fd, full.c_str(), kMask);
      if (wd < 0) {
        int err = errno;
        if (err == ENOSPC) {
          out.limit_hit = true;
          out.unwatched.push_back(dir);
          for (std::string& d : stack) out.unwatched.push_back(std::move(d));
          break;
        }
        // Vanished or replaced by a file meanwhile: its own events say so.
        if (err == ENOENT || err == ENOTDIR || err == ELOOP) continue;
        if (out.warnings.size() < 20) {
          out.warnings.push_back("cannot watch '" + Printable(full) + "': " + std::strerror(err));
        }
        continue;
      }
      out.watched.emplace_back(wd, dir);
      if (!recurse) continue;
      // Listed after the watch is in place: what appears later is an event.
      DIR* d = ::opendir(full.c_str());
      if (d == nullptr) continue;
      while (struct dirent* de = ::readdir(d)) {
        std::string_view name = de->d_name;
        if (name == "." || name == "..") continue;
        bool is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
          struct stat st;
          is_dir = ::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                   S_ISDIR(st.st_mode);
        }
        if (!is_dir) continue;
        std::string child = JoinRel(dir, name);
        if (filters && !filters->empty() && filters->Excluded(child, true)) continue;
        stack.push_back(std::move(child));
      }
      ::closedir(d);
    }
    if (listed) listed(rel);
    return out;
  };
  WalkResult result = co_await Offload(pool_, std::move(job));
  Merge(std::move(result), log_start, started, rel, mark_dirty);
  --walks_;
  if (rel.empty()) {
    full_walk_running_ = false;
    if (full_walk_again_) {
      full_walk_again_ = false;
      StartWalk("");
    }
  }
  if (walks_ == 0) {
    move_log_.clear();
    placed_at_.clear();
    ignored_during_walks_.clear();
    unlanded_dirs_.clear();
  }
  last_event_ = Clock::now();
  if (on_event_) on_event_();
}

void InotifyWatcher::Merge(WalkResult result, size_t log_start, uint64_t started,
                           const std::string& root_rel, bool mark_dirty) {
  // Rename what the walk found by the directory moves seen meanwhile.
  auto rebase = [&](std::string path) -> std::optional<std::string> {
    for (size_t i = log_start; i < move_log_.size(); ++i) {
      const LoggedMove& m = move_log_[i];
      if (!IsWithin(path, m.from)) continue;
      if (m.to.empty()) return std::nullopt;
      path = m.to + path.substr(m.from.size());
    }
    return path;
  };
  for (auto& [wd, rel] : result.watched) {
    std::optional<std::string> path = rebase(rel);
    if (!path || ignored_during_walks_.count(wd) > 0) {
      if (!path) ::inotify_rm_watch(fd_, wd);
      continue;
    }
    if (auto placed = placed_at_.find(wd); placed != placed_at_.end() && placed->second > started) {
      continue;  // placed since this walk began: the newer news
    }
    placed_at_[wd] = started;
    if (auto it = wd_path_.find(wd); it != wd_path_.end() && it->second != *path) {
      // Known under another name (moved while events were lost): the walk is current.
      if (auto p = path_wd_.find(it->second); p != path_wd_.end() && p->second == wd) {
        path_wd_.erase(p);
      }
    }
    if (auto p = path_wd_.find(*path); p != path_wd_.end() && p->second != wd) {
      wd_path_.erase(p->second);  // a deleted directory's watch, not yet IN_IGNORED
    }
    wd_path_[wd] = *path;
    path_wd_[*path] = wd;
    unwatched_.erase(*path);
  }
  for (std::string& w : result.warnings) warnings_.push_back(std::move(w));
  if (result.limit_hit) {
    if (!limit_reported_) {
      limit_reported_ = true;
      warnings_.push_back(
          "inotify watch limit reached (fs.inotify.max_user_watches=" +
          ReadSysctl("/proc/sys/fs/inotify/max_user_watches") +
          "); raise it with: sysctl -w fs.inotify.max_user_watches=1048576 (persist it in "
          "/etc/sysctl.d/). Until then, directories beyond the limit are rescanned periodically.");
    }
    for (std::string& u : result.unwatched) {
      if (auto path = rebase(u)) unwatched_.insert(std::move(*path));
    }
    if (unwatched_.size() > kMaxUnwatched) {
      unwatched_.clear();
      unwatched_.insert("");
    }
  }
  // Whatever arrived in the walked tree before its watches: push it whole.
  if (mark_dirty) {
    if (auto root = rebase(root_rel)) dirty_.SubtreeChanged(*root);
  }
  // Directories that appeared in walked directories after the walk listed
  // them (see Process): watch them now, and push them whole.
  std::vector<UnlandedDir> later;
  for (UnlandedDir& u : unlanded_dirs_) {
    auto parent = wd_path_.find(u.wd);
    if (parent == wd_path_.end()) {
      later.push_back(std::move(u));  // another walk's directory
      continue;
    }
    std::string rel = JoinRel(parent->second, u.name);
    if (Excluded(rel, true)) continue;
    if (u.moved_in && limbo_.count(u.cookie) > 0) {
      Reattach(u.cookie, rel);  // moved here from inside the tree: keeps its watches
    } else {
      StartWalk(rel);
    }
    dirty_.SubtreeChanged(rel);
  }
  unlanded_dirs_ = std::move(later);
}

void InotifyWatcher::Log(std::string from, std::string to) {
  if (walks_ > 0) move_log_.push_back({std::move(from), std::move(to)});
}

void InotifyWatcher::Forget(int wd) {
  auto it = wd_path_.find(wd);
  if (it == wd_path_.end()) return;
  if (auto p = path_wd_.find(it->second); p != path_wd_.end() && p->second == wd) {
    path_wd_.erase(p);
  }
  wd_path_.erase(it);
}

void InotifyWatcher::Detach(const std::string& rel, uint32_t cookie) {
  std::vector<std::pair<int, std::string>>& moved = limbo_[cookie];
  auto take = [&](std::map<std::string, int>::iterator it) {
    moved.emplace_back(it->second, it->first.substr(rel.size()));
    wd_path_.erase(it->second);
    return path_wd_.erase(it);
  };
  if (auto it = path_wd_.find(rel); it != path_wd_.end()) take(it);
  for (auto it = path_wd_.lower_bound(rel + '/'); it != path_wd_.end() && it->first < rel + '0';) {
    it = take(it);
  }
}

void InotifyWatcher::Reattach(uint32_t cookie, const std::string& to) {
  auto it = limbo_.find(cookie);
  if (it == limbo_.end()) return;
  for (auto& [wd, suffix] : it->second) {
    std::string path = to + suffix;
    if (auto p = path_wd_.find(path); p != path_wd_.end() && p->second != wd) {
      wd_path_.erase(p->second);
    }
    wd_path_[wd] = path;
    path_wd_[path] = wd;
    if (walks_ > 0) placed_at_[wd] = next_stamp_;
  }
  ++next_stamp_;
  limbo_.erase(it);
}

void InotifyWatcher::Overflow() {
  dirty_.SetFullRescan();
  // Directory creations were lost with the rest: watch everything again
  // (inotify_add_watch on a watched directory returns its existing watch).
  StartWalk("");
}

void InotifyWatcher::Process(const ::inotify_event& ev) {
  if (ev.mask & IN_Q_OVERFLOW) {
    Overflow();
    return;
  }
  auto it = wd_path_.find(ev.wd);
  if (ev.mask & IN_IGNORED) {
    if (it != wd_path_.end()) {
      Forget(ev.wd);
    } else if (walks_ > 0) {
      ignored_during_walks_.insert(ev.wd);
    }
    return;
  }
  // Unknown: a watch whose walk has not landed (that walk's subtree is pushed
  // whole when it does) or a directory in limbo between its two move events.
  if (it == wd_path_.end()) {
    // The walk pushes whole what it listed, but a directory that appeared
    // after its listing is known from this event alone: keep it for Merge to
    // watch, or it would never be watched (nothing in it would sync again).
    const bool new_dir = (ev.mask & IN_ISDIR) && (ev.mask & (IN_CREATE | IN_MOVED_TO)) &&
                         ev.len > 0 && ev.name[0] != '\0';
    if (new_dir && walks_ > 0) {
      if (unlanded_dirs_.size() >= kMaxUnlandedDirs) {
        Overflow();  // too many to keep: watch and rescan everything
      } else {
        unlanded_dirs_.push_back({ev.wd, ev.name, ev.cookie, (ev.mask & IN_MOVED_TO) != 0});
      }
    }
    return;
  }
  const std::string dir = it->second;
  const uint32_t mask = ev.mask;
  if (ev.len == 0 || ev.name[0] == '\0') {
    if ((mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) && ev.wd == root_wd_) {
      source_gone_ = true;
    }
    return;  // the parent reports everything else about a directory itself
  }
  std::string_view name(ev.name);
  const bool is_dir = (mask & IN_ISDIR) != 0;
  if (config_.single_file && (!dir.empty() || name != *config_.single_file)) return;
  std::string rel = JoinRel(dir, name);
  if (Excluded(rel, is_dir)) return;
  last_event_ = Clock::now();

  if (mask & IN_CREATE) {
    if (is_dir) {
      dirty_.SubtreeChanged(rel);
      StartWalk(rel);
    } else {
      dirty_.FileWritten(rel);
    }
  }
  if (mask & IN_MODIFY) dirty_.FileWritten(rel);
  if (mask & IN_CLOSE_WRITE) dirty_.FileClosed(rel);
  // A file's or a directory's mode or times: its parent's listing shows it (a
  // directory's mode reaches its copy through the parent's plan, SetDirMode).
  if (mask & IN_ATTRIB) dirty_.FileChanged(rel);
  if (mask & IN_DELETE) {
    dirty_.Deleted(rel, is_dir);
    if (is_dir) Log(rel, "");
  }
  if (mask & IN_MOVED_FROM) {
    dirty_.MovedFrom(ev.cookie, rel, is_dir);
    if (is_dir) Detach(rel, ev.cookie);
  }
  if (mask & IN_MOVED_TO) {
    std::optional<std::string> from = dirty_.MovedTo(ev.cookie, rel, is_dir);
    if (is_dir) {
      if (from && limbo_.count(ev.cookie) > 0) {
        Reattach(ev.cookie, rel);
        Log(*from, rel);
      } else {
        // In from outside (or from an excluded place): watch it like a new directory.
        StartWalk(rel);
      }
    }
  }
}

bool InotifyWatcher::ReadQueued() {
  // Aligned for inotify_event; large enough for thousands of events per read.
  constexpr size_t kBufBytes = size_t{64} * 1024;
  if (!read_buffer_) read_buffer_ = std::make_unique<uint64_t[]>(kBufBytes / sizeof(uint64_t));
  char* buf = reinterpret_cast<char*>(read_buffer_.get());
  bool recorded = false;
  while (!stopped_) {
    ssize_t n = ::read(fd_, buf, kBufBytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        warnings_.push_back(std::string("reading inotify events failed: ") + std::strerror(errno) +
                            "; rescanning");
        Overflow();
        recorded = true;
      }
      break;
    }
    if (n == 0) break;
    recorded = true;
    if (config_.drop_read_as_overflow && config_.drop_read_as_overflow()) {
      Overflow();
      continue;
    }
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const struct inotify_event*>(buf + off);
      Process(*ev);
      off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
    }
  }
  return recorded;
}

asio::awaitable<void> InotifyWatcher::Run(std::function<void()> on_event) {
  on_event_ = on_event;
  while (!stopped_) {
    auto [ec] = co_await sd_->async_wait(asio::posix::stream_descriptor::wait_read,
                                         asio::experimental::as_tuple(asio::use_awaitable));
    if (ec || stopped_) break;
    if (ReadQueued() && on_event) on_event();
  }
  co_await walks_group_.Wait();
  on_event_ = nullptr;
}

void InotifyWatcher::Stop() {
  stopped_ = true;
  if (sd_) {
    std::error_code ignored;
    sd_->cancel(ignored);
  }
}

Batch InotifyWatcher::Take() {
  // An IN_MOVED_FROM still unpaired would be taken as a move out of the tree.
  // Its IN_MOVED_TO is queued in the same rename(2); when this thread was late
  // (a loaded machine), it may be in the kernel's queue but not read yet.
  if (dirty_.has_pending_moves()) ReadQueued();
  std::vector<Deletion> moved_out;
  Batch batch = dirty_.Take(&moved_out);
  // Directories that left the tree: their watches would report stale paths.
  for (auto& [cookie, wds] : limbo_) {
    for (auto& [wd, suffix] : wds) ::inotify_rm_watch(fd_, wd);
  }
  limbo_.clear();
  for (Deletion& d : moved_out) {
    if (d.was_dir) Log(d.path, "");
  }
  return batch;
}

}  // namespace ferry::watch
