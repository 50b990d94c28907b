// What Push and Watch share: checking the options before anything is touched,
// the engine configuration they imply, and the destination they name. Internal
// to lib/ferry.
#ifndef FERRY_SETUP_H_
#define FERRY_SETUP_H_

#include <asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>

#include "ferry/options.h"
#include "ferry/report.h"
#include "lib/base/result.h"
#include "lib/engine/push_engine.h"
#include "lib/filter/filter.h"
#include "lib/hash/hash_cache.h"
#include "lib/ssh/auth_sources.h"
#include "lib/transport/destination.h"
#include "lib/transport/url.h"

namespace asio {
class thread_pool;
}

namespace ferry::setup {

Report FatalReport(std::error_code code, std::string message);

// The source root as the engine wants it: a directory, plus a file name when
// SRC is a single file.
struct SourceRoot {
  std::string dir;
  std::optional<std::string> file;
};

struct Prepared {
  SourceRoot source;
  transport::DestinationSpec dest;
  std::shared_ptr<filter::FilterSet> filters;
  std::unique_ptr<hash::HashCache> cache;
  std::optional<ssh::ConnectSetup> ssh;  // SFTP destinations only
  std::string listing_cache_path;        // SFTP destinations only; empty: no cache
  int connections = 0;                   // SshOptions::connections, checked
  uint64_t bwlimit_bytes_per_s = 0;      // PushOptions::bwlimit_bytes_per_s
};

// Everything that must be right before anything is touched. Blocking (stat,
// canonical paths, exclude files, the hash cache, ~/.ssh/config): run it on the pool.
Result<Prepared> Prepare(const PushOptions& options);

// The engine configuration the options and the prepared run imply.
engine::EngineConfig MakeEngineConfig(const PushOptions& options, const Prepared& prepared);

// The local or SFTP destination the options name (not opened yet). With
// `listing_cache`, an SFTP destination is wrapped in the listing cache (a push
// wants it; a watch lists only what changed and keeps the connection).
asio::awaitable<Result<std::unique_ptr<transport::Destination>>> MakeDestination(
    Prepared& prepared, asio::thread_pool& pool, bool listing_cache);

// After a run: saves the hash cache (unless a dry run) and adds the SSH
// set-up's warnings to the report's notes.
asio::awaitable<void> Finish(Prepared& prepared, const PushOptions& options,
                             asio::thread_pool& pool, Report& report);

// Runs `run` on a fresh io_context on this thread; an escaped exception (a bug)
// becomes a fatal "internal error" report.
Report RunBlocking(asio::awaitable<Report> run);

}  // namespace ferry::setup

#endif  // FERRY_SETUP_H_
