// Watch mode's loop: an initial full push, then batches of changes reported by
// inotify, applied to one destination until a stop is requested.
//
// A batch starts as soon as the tree looks settled (every file written since
// the last batch was closed, no directory walk or move half-done), otherwise
// once it has been quiet for `coalesce`, and at the latest `max_delay` after
// the first change. It is applied as: renames replayed on the destination (no
// data sent), deletions of paths that no longer exist locally, then one engine
// run per changed directory (non-recursive) and per new directory (recursive).
// Changes that arrive meanwhile go into the next batch. See watch_loop.cc for
// the rules on deletions, overflows and errors.
//
// Threading: runs on the awaiting coroutine's executor, which must be
// single-threaded; disk work goes to `pool`.
#ifndef FERRY_WATCH_WATCH_LOOP_H_
#define FERRY_WATCH_WATCH_LOOP_H_

#include <asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>

#include "ferry/report.h"
#include "lib/engine/push_engine.h"
#include "lib/filter/filter.h"
#include "lib/transport/destination.h"
#include "lib/watch/dirty_set.h"

namespace asio {
class thread_pool;
}

namespace ferry::watch {

struct LoopConfig {
  // The push every run is derived from: source_root (a directory),
  // single_file, plan (--delete ...), jobs, observer, stop. `engine.excluded`
  // is ignored: the loop builds its own from `filters`.
  engine::EngineConfig engine;
  std::shared_ptr<const filter::FilterSet> filters;  // may be null
  std::chrono::milliseconds coalesce{5};
  std::chrono::milliseconds max_delay{100};
  // How often directories left unwatched by the inotify watch limit are rescanned.
  std::chrono::milliseconds unwatched_rescan{10000};
  // Retry delays after a transient destination error (doubling).
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{10000};
  size_t max_dirty = DirtySet::kDefaultMaxEntries;
  // Test hooks: see WatcherConfig::drop_read_as_overflow and walk_listed.
  std::function<bool()> drop_read_as_overflow;
  std::function<void(const std::string& rel)> walk_listed;
};

// Runs until config.engine.stop is requested (the report is then not
// "cancelled", unless the stop came during the initial sync) or a fatal error
// (report.fatal). `dest` is constructed, not opened; it is not closed here.
// The report's totals and problems cover the whole watch.
asio::awaitable<Report> RunWatch(LoopConfig config, transport::Destination& dest,
                                 asio::thread_pool& pool);

}  // namespace ferry::watch

#endif  // FERRY_WATCH_WATCH_LOOP_H_
