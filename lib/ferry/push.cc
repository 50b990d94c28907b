#include "ferry/push.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <filesystem>
#include <thread>

#include "lib/base/offload.h"
#include "lib/base/path.h"
#include "lib/engine/push_engine.h"
#include "lib/filter/filter.h"
#include "lib/hash/hash_cache.h"
#include "lib/ssh/auth_sources.h"
#include "lib/transport/local/local_destination.h"
#include "lib/transport/sftp/sftp_destination.h"
#include "lib/transport/url.h"

namespace ferry {
namespace {

// Files in flight for a local destination: measured on 2 cores (see
// docs/ARCHITECTURE.md); more only adds contention on the pool.
constexpr int kDefaultLocalJobs = 8;
// Files in flight for SFTP: every file costs a few round trips (open, close,
// rename) that only overlap when many files are in flight.
constexpr int kDefaultSftpJobs = 16;

Report FatalReport(std::error_code code, std::string message) {
  Report report;
  report.fatal = code;
  report.fatal_message = std::move(message);
  return report;
}

// The source root as the engine wants it: a directory, plus a file name when
// SRC is a single file. Follows a symlink given as SRC itself.
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

// Refuses a destination equal to or inside the source (a push would chase its
// own tail) for local destinations.
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
  std::optional<ssh::ConnectSetup> ssh;  // SFTP destinations only
};

// Everything that must be right before anything is touched; blocking (stat,
// canonical paths, reading exclude files and the hash cache), so it runs on the pool.
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
    // User, port, known_hosts, host key policy, identities (else ssh-agent),
    // $FERRY_PASSWORD: options > URL > ~/.ssh/config > defaults (auth_sources.h).
    auto setup = ssh::BuildConnectOptions(p.dest, options.ssh, ssh::Environment::FromProcess());
    if (!setup.ok()) return setup.error();
    p.ssh = std::move(*setup);
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
    // An unreadable cache only costs time: go on without it.
  }
  return p;
}

}  // namespace

const char* Version() { return "0.1.0"; }

asio::awaitable<Report> Push(PushOptions options) {
  // Disk reads, writes and zstd run here; the caller's executor only coordinates.
  asio::thread_pool pool(std::max(4u, 2 * std::thread::hardware_concurrency()));
  auto job = [&options] { return Prepare(options); };
  auto prepared = co_await Offload(pool, std::move(job));
  if (!prepared.ok()) {
    pool.join();
    co_return FatalReport(prepared.code(), prepared.error().Message());
  }
  Prepared p = std::move(*prepared);

  engine::EngineConfig config;
  config.source_root = p.source.dir;
  config.single_file = p.source.file;
  config.plan.delete_extraneous = options.delete_extraneous || options.delete_excluded;
  config.plan.delete_excluded = options.delete_excluded;
  config.plan.checksum = options.checksum;
  config.plan.compress = options.compress_level.has_value();
  const bool sftp = p.dest.kind == transport::DestinationSpec::Kind::kSftp;
  config.jobs = options.jobs > 0 ? options.jobs : sftp ? kDefaultSftpJobs : kDefaultLocalJobs;
  config.dry_run = options.dry_run;
  config.fsync = options.fsync;
  config.copy_links = options.copy_links;
  config.retries = std::max(0, options.retries);
  config.compress_level = options.compress_level;
  config.max_delete = options.max_delete;
  config.hash_cache = p.cache.get();
  config.observer = options.observer;
  config.progress_interval = options.progress_interval;
  config.stop = options.stop;
  if (!p.filters->empty()) {
    config.excluded = [filters = p.filters](std::string_view rel, bool is_dir) {
      return filters->Excluded(rel, is_dir);
    };
  }

  std::unique_ptr<transport::Destination> dest;
  if (sftp) {
    transport::SftpConfig sftp_config;
    sftp_config.connect = std::move(p.ssh->options);
    sftp_config.root = p.dest.path;
    sftp_config.display = p.dest.ToString();
    asio::any_io_executor ex = co_await asio::this_coro::executor;
    auto made = transport::MakeSftpDestination(std::move(sftp_config), ex, pool);
    if (!made.ok()) {
      pool.join();
      co_return FatalReport(made.code(), made.error().Message());
    }
    dest = std::move(*made);
  } else {
    dest = transport::MakeLocalDestination(p.dest.path, pool);
  }
  config.plan.mtime_granularity_ns = dest->MtimeGranularityNs();
  Report report = co_await engine::RunPush(std::move(config), *dest, pool);
  (void)co_await dest->Close();
  if (p.ssh) {
    // What the user should know about the SSH setup (e.g. an RSA key left out).
    for (std::string& warning : p.ssh->warnings) report.notes.push_back(std::move(warning));
  }
  if (p.cache && !options.dry_run) {
    hash::HashCache* cache = p.cache.get();
    auto job = [cache] { return cache->Save(); };
    (void)co_await Offload(pool, std::move(job));
  }
  dest.reset();
  pool.join();
  co_return report;
}

Report PushBlocking(PushOptions options) {
  asio::io_context io(1);
  Report report;
  asio::co_spawn(io, Push(std::move(options)), [&](std::exception_ptr e, Report r) {
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

const char* FileActionName(FileAction action) {
  switch (action) {
    case FileAction::kUpload:
      return "upload";
    case FileAction::kSkip:
      return "skip";
    case FileAction::kMkdir:
      return "mkdir";
    case FileAction::kSymlink:
      return "symlink";
    case FileAction::kDelete:
      return "delete";
    case FileAction::kRename:
      return "rename";
    case FileAction::kIgnore:
      return "ignore";
  }
  return "unknown";
}

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kDone:
      return "done";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kDryRun:
      return "dry-run";
  }
  return "unknown";
}

}  // namespace ferry
