#include "ferry/watch.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <filesystem>
#include <thread>

#include "lib/base/offload.h"
#include "lib/base/path.h"
#include "lib/engine/push_engine.h"
#include "lib/filter/filter.h"
#include "lib/hash/hash_cache.h"
#include "lib/transport/local/local_destination.h"
#include "lib/transport/url.h"
#include "lib/watch/watch_loop.h"

namespace ferry {
namespace {

// ---- Copied from push.cc (Prepare and its helpers), to be shared later. ----
// Only difference: Prepared::filters is a shared_ptr<const FilterSet>.

constexpr int kDefaultLocalJobs = 8;

Report FatalReport(std::error_code code, std::string message) {
  Report report;
  report.fatal = code;
  report.fatal_message = std::move(message);
  return report;
}

struct SourceRoot {
  std::string dir;
  std::optional<std::string> file;
};

Result<SourceRoot> ResolveSource(const std::string& source) {
  if (source.empty()) return Error{errc::kInvalidArgument, "empty source path"};
  struct stat st;
  if (::stat(source.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) return Error{errc::kSourceMissing, "source '" + Printable(source) + "'"};
    return Error{{err, std::system_category()}, "source '" + Printable(source) + "'"};
  }
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::canonical(source, ec);
  if (ec) return Error{ec, "source '" + Printable(source) + "'"};
  if (S_ISDIR(st.st_mode)) return SourceRoot{abs.string(), std::nullopt};
  if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
    return SourceRoot{abs.parent_path().string(), abs.filename().string()};
  }
  return Error{errc::kSpecialFile, "source '" + Printable(source) + "'"};
}

Status CheckLocalOverlap(const SourceRoot& source, const std::string& dest) {
  std::error_code ec;
  std::filesystem::path d = std::filesystem::weakly_canonical(std::filesystem::absolute(dest), ec);
  if (ec) return Error{ec, "destination '" + Printable(dest) + "'"};
  std::filesystem::path s = source.dir;
  if (source.file) {
    if (d == s / *source.file) {
      return Error{errc::kSourceIsDestination, "destination '" + Printable(dest) + "'"};
    }
    return {};
  }
  if (d == s) return Error{errc::kSourceIsDestination, "destination '" + Printable(dest) + "'"};
  auto [mismatch, _] = std::mismatch(s.begin(), s.end(), d.begin(), d.end());
  if (mismatch == s.end()) {
    return Error{errc::kDestinationInsideSource, "destination '" + Printable(dest) + "'"};
  }
  return {};
}

Result<std::shared_ptr<filter::FilterSet>> BuildFilters(const PushOptions& options) {
  auto filters = std::make_shared<filter::FilterSet>();
  for (const FilterRule& rule : options.filters) {
    Status st = rule.kind == FilterRule::Kind::kInclude ? filters->AddInclude(rule.pattern)
                                                        : filters->AddExclude(rule.pattern);
    if (!st.ok()) return st.error();
  }
  for (const std::string& file : options.exclude_from) {
    if (Status st = filters->AddRulesFromFile(file, false); !st.ok()) return st.error();
  }
  return filters;
}

struct Prepared {
  SourceRoot source;
  transport::DestinationSpec dest;
  std::shared_ptr<filter::FilterSet> filters;
  std::unique_ptr<hash::HashCache> cache;
};

Result<Prepared> Prepare(const PushOptions& options) {
  Prepared p;
  auto dest = transport::ParseDestination(options.destination);
  if (!dest.ok()) return dest.error();
  p.dest = std::move(*dest);
  auto source = ResolveSource(options.source);
  if (!source.ok()) return source.error();
  p.source = std::move(*source);
  if (p.dest.kind == transport::DestinationSpec::Kind::kLocal) {
    if (Status st = CheckLocalOverlap(p.source, p.dest.path); !st.ok()) return st.error();
  } else {
    return Error{errc::kUnsupported, "SFTP destinations ('" + p.dest.ToString() +
                                         "') are not available in this build yet"};
  }
  if (options.jobs < 0) return Error{errc::kInvalidArgument, "--jobs must be positive"};
  if (options.compress_level && (*options.compress_level < 1 || *options.compress_level > 19)) {
    return Error{errc::kInvalidArgument, "compression level must be 1..19"};
  }
  auto filters = BuildFilters(options);
  if (!filters.ok()) return filters.error();
  p.filters = std::move(*filters);
  if (options.checksum && options.hash_cache != "none") {
    std::string path =
        options.hash_cache.empty() ? hash::DefaultCachePath(p.source.dir) : options.hash_cache;
    auto cache = hash::HashCache::Load(path);
    if (cache.ok()) p.cache = std::make_unique<hash::HashCache>(std::move(*cache));
  }
  return p;
}

// ---- End of the copy. ----

}  // namespace

asio::awaitable<Report> Watch(WatchOptions options) {
  const PushOptions& push = options.push;
  if (options.coalesce.count() < 0 || options.max_delay.count() < 0) {
    co_return FatalReport(errc::kInvalidArgument, "coalesce and max delay must not be negative");
  }
  asio::thread_pool pool(std::max(4u, 2 * std::thread::hardware_concurrency()));
  auto job = [&push] { return Prepare(push); };
  auto prepared = co_await Offload(pool, std::move(job));
  if (!prepared.ok()) {
    pool.join();
    co_return FatalReport(prepared.code(), prepared.error().Message());
  }
  Prepared p = std::move(*prepared);

  watch::LoopConfig loop;
  engine::EngineConfig& config = loop.engine;
  config.source_root = p.source.dir;
  config.single_file = p.source.file;
  config.plan.delete_extraneous = push.delete_extraneous || push.delete_excluded;
  config.plan.delete_excluded = push.delete_excluded;
  config.plan.checksum = push.checksum;
  config.plan.compress = push.compress_level.has_value();
  config.jobs = push.jobs > 0 ? push.jobs : kDefaultLocalJobs;
  config.dry_run = push.dry_run;
  config.fsync = push.fsync;
  config.copy_links = push.copy_links;
  config.retries = std::max(0, push.retries);
  config.compress_level = push.compress_level;
  config.max_delete = push.max_delete;
  config.hash_cache = p.cache.get();
  config.observer = push.observer;
  config.progress_interval = push.progress_interval;
  config.stop = push.stop;
  if (!p.filters->empty()) loop.filters = p.filters;
  loop.coalesce = options.coalesce;
  loop.max_delay = std::max(options.max_delay, options.coalesce);

  // The rest is destination-agnostic: an SFTP destination plugs in here.
  std::unique_ptr<transport::Destination> dest = transport::MakeLocalDestination(p.dest.path, pool);
  config.plan.mtime_granularity_ns = dest->MtimeGranularityNs();
  std::exception_ptr failure;
  Report report;
  try {
    report = co_await watch::RunWatch(std::move(loop), *dest, pool);
  } catch (...) {
    failure = std::current_exception();
  }
  (void)co_await dest->Close();
  if (p.cache && !push.dry_run) {
    hash::HashCache* cache = p.cache.get();
    auto save = [cache] { return cache->Save(); };
    (void)co_await Offload(pool, std::move(save));
  }
  dest.reset();
  pool.join();
  if (failure) std::rethrow_exception(failure);
  co_return report;
}

Report WatchBlocking(WatchOptions options) {
  asio::io_context io(1);
  Report report;
  asio::co_spawn(io, Watch(std::move(options)), [&](std::exception_ptr e, Report r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        report = FatalReport(errc::kProtocol, std::string("internal error: ") + ex.what());
      } catch (...) {
        report = FatalReport(errc::kProtocol, "internal error");
      }
      return;
    }
    report = std::move(r);
  });
  io.run();
  return report;
}

}  // namespace ferry
