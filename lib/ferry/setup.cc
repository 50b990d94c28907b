#include "lib/ferry/setup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <filesystem>

#include "ferry/error.h"
#include "lib/base/offload.h"
#include "lib/base/path.h"
#include "lib/filter/filter.h"
#include "lib/hash/hash_cache.h"
#include "lib/transport/cache/caching_destination.h"
#include "lib/transport/local/local_destination.h"
#include "lib/transport/sftp/sftp_destination.h"

namespace ferry::setup {
namespace {

// Files in flight for a local destination: measured on 2 cores (see
// docs/ARCHITECTURE.md); more only adds contention on the pool.
constexpr int kDefaultLocalJobs = 8;
// Files in flight for SFTP: every file costs a few round trips (open, close,
// rename) that only overlap when many files are in flight, and the server side
// (sshd and one sftp-server per channel) wakes once per burst of requests, not
// once per request, when many are queued. 20k small files over loopback to a
// tmpfs (docs/PERFORMANCE.md): 6.3 s with 16, 3.3 s with 64, no better with 128.
// Memory stays small: a worker's buffer is only touched as far as its files go.
constexpr int kDefaultSftpJobs = 64;

// The source root as the engine wants it: a directory, plus a file name when
// SRC is a single file. Follows a symlink given as SRC itself.

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
  if (S_ISREG(st.st_mode)) {
    // The name given, not the target's: `ferry push link dest` copies `link`
    // (a symlink to a file is recreated as a symlink unless --copy-links), as rsync does.
    std::filesystem::path given(source);
    while (given.has_relative_path() && given.filename().empty()) given = given.parent_path();
    std::filesystem::path parent = std::filesystem::canonical(
        given.has_parent_path() ? given.parent_path() : std::filesystem::path("."), ec);
    if (ec) return Error{ec, "source '" + Printable(source) + "'"};
    return SourceRoot{parent.string(), given.filename().string()};
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

}  // namespace

Report FatalReport(std::error_code code, std::string message) {
  Report report;
  report.fatal = code;
  report.fatal_message = std::move(message);
  return report;
}

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
  const SshOptions& so = options.ssh;
  if (so.connections < 0 || so.connections > 16) {
    return Error{errc::kInvalidArgument,
                 "connections must be 1..16, not " + std::to_string(so.connections)};
  }
  if (so.io_timeout.count() < 0 || so.keepalive_interval.count() < 0 ||
      so.connect_timeout.count() <= 0) {
    return Error{errc::kInvalidArgument,
                 "timeouts must not be negative (and the connect timeout must be positive)"};
  }
  p.connections = so.connections;
  p.bwlimit_bytes_per_s = options.bwlimit_bytes_per_s;
  if (p.dest.kind == transport::DestinationSpec::Kind::kLocal) {
    if (options.bwlimit_bytes_per_s != 0) {
      return Error{errc::kInvalidArgument,
                   "--bwlimit applies to SFTP destinations only, not to " + options.destination};
    }
    if (Status st = CheckLocalOverlap(p.source, p.dest.path); !st.ok()) return st.error();
  } else {
    // User, port, known_hosts, host key policy, identities (else ssh-agent),
    // $FERRY_PASSWORD: options > URL > ~/.ssh/config > defaults (auth_sources.h).
    auto setup = ssh::BuildConnectOptions(p.dest, options.ssh, ssh::Environment::FromProcess());
    if (!setup.ok()) return setup.error();
    p.ssh = std::move(*setup);
    if (options.listing_cache != "none") {
      // One cache per server account and remote root, as connected to.
      const ssh::ConnectOptions& c = p.ssh->options;
      p.listing_cache_path =
          !options.listing_cache.empty()
              ? options.listing_cache
              : transport::DefaultListingCachePath("sftp://" + c.user + "@" + c.host + ":" +
                                                   std::to_string(c.port) + "/" + p.dest.path);
    }
    p.ssh->options.io_timeout = so.io_timeout;
    p.ssh->options.keepalive_interval = so.keepalive_interval;
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

engine::EngineConfig MakeEngineConfig(const PushOptions& options, const Prepared& p) {
  engine::EngineConfig config;
  config.source_root = p.source.dir;
  config.single_file = p.source.file;
  config.plan.delete_extraneous = options.delete_extraneous || options.delete_excluded;
  config.plan.delete_excluded = options.delete_excluded;
  config.plan.checksum = options.checksum;
  config.plan.compress = options.compress_level.has_value();
  const bool sftp = p.dest.kind == transport::DestinationSpec::Kind::kSftp;
  config.jobs = options.jobs > 0 ? options.jobs : sftp ? kDefaultSftpJobs : kDefaultLocalJobs;
  config.jobs_from_destination = options.jobs == 0;
  config.dry_run = options.dry_run;
  config.fsync = options.fsync;
  config.copy_links = options.copy_links;
  config.retries = std::max(0, options.retries);
  config.compress_level = options.compress_level;
  config.max_delete = options.max_delete;
  config.hash_cache = p.cache.get();
  config.resume_threshold_bytes = options.resume_threshold_bytes;
  config.observer = options.observer;
  config.progress_interval = options.progress_interval;
  config.stop = options.stop;
  if (!p.filters->empty()) {
    config.excluded = [filters = p.filters](std::string_view rel, bool is_dir) {
      return filters->Excluded(rel, is_dir);
    };
  }
  return config;
}

asio::awaitable<Result<std::unique_ptr<transport::Destination>>> MakeDestination(
    Prepared& p, asio::thread_pool& pool, bool listing_cache) {
  if (p.dest.kind != transport::DestinationSpec::Kind::kSftp) {
    co_return transport::MakeLocalDestination(p.dest.path, pool);
  }
  transport::SftpConfig sftp_config;
  sftp_config.connect = p.ssh->options;
  if (p.connections > 0) sftp_config.connections = p.connections;
  sftp_config.bwlimit_bytes_per_s = p.bwlimit_bytes_per_s;
  sftp_config.root = p.dest.path;
  sftp_config.display = p.dest.ToString();
  asio::any_io_executor ex = co_await asio::this_coro::executor;
  auto sftp = transport::MakeSftpDestination(std::move(sftp_config), ex, pool);
  if (!sftp.ok() || !listing_cache || p.listing_cache_path.empty()) co_return sftp;
  std::unique_ptr<transport::Destination> cached =
      std::make_unique<transport::CachingDestination>(std::move(*sftp), p.listing_cache_path, pool);
  co_return cached;
}

asio::awaitable<void> Finish(Prepared& p, const PushOptions& options, asio::thread_pool& pool,
                             Report& report) {
  if (p.ssh) {
    // What the user should know about the SSH set-up (e.g. an RSA key left out).
    for (const std::string& warning : p.ssh->warnings) report.notes.push_back(warning);
  }
  if (p.cache && !options.dry_run) {
    hash::HashCache* cache = p.cache.get();
    auto job = [cache] { return cache->Save(); };
    (void)co_await Offload(pool, std::move(job));
  }
}

Report RunBlocking(asio::awaitable<Report> run) {
  asio::io_context io(1);
  Report report;
  asio::co_spawn(io, std::move(run), [&](std::exception_ptr e, Report r) {
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

}  // namespace ferry::setup
