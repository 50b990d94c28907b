// ferry's entry point for one-shot sync: make DEST a copy of SRC's contents.
//
//   ferry::PushOptions options;
//   options.source = "./site";
//   options.destination = "/srv/www";      // or "sftp://deploy@host/srv/www"
//   ferry::Report report = ferry::PushBlocking(options);
//   if (!report.ok()) { ... report.fatal_message, report.problems ... }
//
// Both forms never throw (allocation failure aside); everything that went
// wrong is in the Report.
#ifndef FERRY_PUSH_H_
#define FERRY_PUSH_H_

#include <asio/awaitable.hpp>

#include "ferry/error.h"
#include "ferry/observer.h"
#include "ferry/options.h"
#include "ferry/report.h"

namespace ferry {

// Coroutine form, for programs that run their own io_context. Runs on the
// awaiting coroutine's executor, which must be single-threaded (an io_context
// run by one thread, or a strand); disk and CPU work go to a pool of ferry's own.
asio::awaitable<Report> Push(PushOptions options);

// Blocking form: runs its own io_context on the calling thread until done.
Report PushBlocking(PushOptions options);

// The library's version, "MAJOR.MINOR.PATCH".
const char* Version();

}  // namespace ferry

#endif  // FERRY_PUSH_H_
