// ferry's watch mode: bring DEST up to date like Push, then keep it in sync
// as files change (Linux inotify), until a stop is requested.
//
//   ferry::WatchOptions options;
//   options.push.source = "./site";
//   options.push.destination = "/srv/www";
//   options.push.stop = stop_source.get_token();   // e.g. from a signal handler
//   ferry::Report report = ferry::WatchBlocking(options);
//
// Changes are applied in batches (Observer::OnBatch after each one). A batch
// starts as soon as every file written since the last one has been closed,
// otherwise once the tree was quiet for `coalesce`, at the latest `max_delay`
// after the first change. Renames inside the tree are replayed on DEST
// without sending data; deletions seen during the watch are carried over even
// without --delete (entries that were only on DEST before the watch are
// deleted only with --delete). Idle, it does nothing until the kernel reports
// a change: no polling (except rescans of directories beyond the inotify watch
// limit, which it reports as a warning).
//
// Never throws at the caller; everything that went wrong is in the Report.
#ifndef FERRY_WATCH_H_
#define FERRY_WATCH_H_

#include <asio/awaitable.hpp>
#include <chrono>

#include "ferry/error.h"
#include "ferry/observer.h"
#include "ferry/options.h"
#include "ferry/report.h"

namespace ferry {

struct WatchOptions {
  PushOptions push;  // source, destination, filters, --delete, observer, stop, ...
  // How long the tree must be quiet before a batch starts while a file may
  // still be being written (a writer that has not closed it yet).
  std::chrono::milliseconds coalesce{5};
  // A batch starts at the latest this long after the first change in it.
  std::chrono::milliseconds max_delay{100};
};

// Runs until options.push.stop is requested or a fatal error. The Report holds
// the totals over the whole watch; `fatal` is set when it ended on a fatal
// error (source removed, destination refused, ...). A stop is the normal end:
// `cancelled` is set only when it came before the initial sync completed.
// Runs on the awaiting coroutine's executor, which must be single-threaded.
asio::awaitable<Report> Watch(WatchOptions options);

// Blocking form: runs its own io_context on the calling thread until done.
Report WatchBlocking(WatchOptions options);

}  // namespace ferry

#endif  // FERRY_WATCH_H_
