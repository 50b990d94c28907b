// The ferry command: parses flags into ferry::PushOptions, runs the library,
// renders what it reports and maps the result to an exit code. Nothing else.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <stop_token>
#include <thread>

#include "cli/output.h"
#include "cli/watch_command.h"
#include "ferry/push.h"

namespace {

using ferry::cli::OutputMode;

struct PushFlags {
  std::string source;
  std::string destination;
  bool dry_run = false;
  bool delete_extraneous = false;
  bool delete_excluded = false;
  int64_t max_delete = -1;
  std::vector<std::string> excludes;
  std::vector<std::string> includes;
  std::vector<std::string> exclude_from;
  bool checksum = false;
  int compress_level = 0;  // 0: off
  int jobs = 0;
  bool fsync = false;
  bool copy_links = false;
  int retries = 3;
  std::string hash_cache;
  bool no_listing_cache = false;
  bool no_resume = false;
  std::string known_hosts;
  bool accept_new_host_key = false;
  std::vector<std::string> identities;
  int connections = 0;           // 0: the library's default
  double timeout_s = 60;         // io timeout; 0: none
  double connect_timeout_s = 0;  // 0: the library's default (or ~/.ssh/config)
  std::string bwlimit;           // RATE as given
  int verbose = 0;
  bool quiet = false;
  bool json = false;
  bool no_progress = false;
};

// --bwlimit RATE as rsync and rclone read it: a number with an optional
// suffix B, K, M, G (powers of 1024; a trailing "iB" or "B" is allowed, as in
// 10MiB); no suffix means KiB, as in rsync. "0": no limit. Returns bytes per
// second, or nullopt on bad input.
std::optional<uint64_t> ParseRate(const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!std::isfinite(value) || value < 0 || text.empty() || !std::isdigit(text[0])) {
    return std::nullopt;
  }
  std::string suffix = text.substr(used);
  for (char& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double unit = 1024;
  if (!suffix.empty()) {
    const char u = suffix[0];
    std::string rest = suffix.substr(1);
    if (u == 'B') {
      unit = 1;
    } else if (u == 'K' || u == 'M' || u == 'G') {
      unit = u == 'K' ? 1024.0 : u == 'M' ? 1024.0 * 1024 : 1024.0 * 1024 * 1024;
      if (!rest.empty() && rest != "B" && rest != "IB") return std::nullopt;
      rest.clear();
    } else {
      return std::nullopt;
    }
    if (!rest.empty()) return std::nullopt;
  }
  const double bytes = value * unit;
  if (bytes > 1e15) return std::nullopt;
  if (value > 0 && bytes < 1) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

void AddPushFlags(CLI::App* cmd, PushFlags& f, CLI::Option** exclude_opt,
                  CLI::Option** include_opt) {
  cmd->add_option("SRC", f.source, "Source directory (its contents are copied) or file")
      ->required();
  cmd->add_option("DEST", f.destination,
                  "Destination: a directory, sftp://[user@]host[:port]/path or [user@]host:path")
      ->required();
  cmd->add_flag("-n,--dry-run", f.dry_run, "Change nothing; print what would be done");
  cmd->add_flag("--delete", f.delete_extraneous,
                "Delete destination entries that are not in the source");
  cmd->add_flag("--delete-excluded", f.delete_excluded,
                "With --delete semantics, also delete excluded entries on the destination");
  cmd->add_option("--max-delete", f.max_delete,
                  "Delete nothing if more than N entries would be deleted")
      ->check(CLI::NonNegativeNumber);
  *exclude_opt = cmd->add_option("--exclude", f.excludes, "Exclude paths matching PATTERN")
                     ->type_name("PATTERN")
                     ->allow_extra_args(false);
  *include_opt = cmd->add_option("--include", f.includes,
                                 "Include paths matching PATTERN (before a later --exclude)")
                     ->type_name("PATTERN")
                     ->allow_extra_args(false);
  cmd->add_option("--exclude-from", f.exclude_from, "Read exclude patterns from FILE")
      ->type_name("FILE")
      ->allow_extra_args(false);
  cmd->add_flag("-c,--checksum", f.checksum, "Compare content hashes instead of size and mtime");
  cmd->add_option("-z,--compress", f.compress_level,
                  "Store files as NAME.zst (zstd), optionally at LEVEL 1-19 (default 3)")
      ->expected(0, 1)
      ->default_str("3")
      ->type_name("[LEVEL]")
      ->check(CLI::Range(1, 19));
  cmd->add_option("-j,--jobs", f.jobs,
                  "Files in flight (default: 8 to a local directory, 64 over SFTP, 256 over SFTP "
                  "with a round trip of 10 ms or more)")
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("--fsync", f.fsync, "Make each file durable before it is renamed into place");
  cmd->add_flag("-L,--copy-links", f.copy_links,
                "Follow symlinks in the source instead of recreating them");
  cmd->add_option("--retries", f.retries,
                  "Attempts for a file that changes while it is read (default 3)")
      ->check(CLI::Range(0, 100));
  cmd->add_option("--hash-cache", f.hash_cache,
                  "Where --checksum caches local hashes (default ~/.cache/ferry; 'none')");
  cmd->add_flag("--no-listing-cache", f.no_listing_cache,
                "SFTP: read every remote directory instead of trusting the listing cache "
                "(for servers where something else rewrites files in place)");
  cmd->add_flag("--no-resume", f.no_resume,
                "Never resume a large file from the part file of an interrupted run");
  cmd->add_option("--known-hosts", f.known_hosts, "known_hosts file (default ~/.ssh/known_hosts)");
  cmd->add_flag("--accept-new-host-key", f.accept_new_host_key,
                "Accept and record the key of a host not yet in known_hosts");
  cmd->add_option("-i,--identity", f.identities, "SSH private key file")->allow_extra_args(false);
  cmd->add_option("--connections", f.connections, "SSH connections to open at most (default 2)")
      ->type_name("N")
      ->check(CLI::Range(1, 16));
  cmd->add_option("--timeout", f.timeout_s,
                  "Declare a connection dead when nothing arrives for SECONDS while replies are "
                  "due; its files are retried on a new one (default 60; 0: never)")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--connect-timeout", f.connect_timeout_s,
                  "Give up connecting (TCP, SSH handshake, authentication) after SECONDS "
                  "(default 15, or ConnectTimeout from ~/.ssh/config)")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.001, 86400.0));
  const CLI::Validator rate(
      [](std::string& text) -> std::string {
        return ParseRate(text) ? std::string() : "not a rate like 500K, 10M or 1.5M: " + text;
      },
      "RATE");
  cmd->add_option("--bwlimit", f.bwlimit,
                  "Limit file data sent to RATE bytes/s over all connections: 500K, 10M, 1.5M "
                  "(K = 1024; no suffix: KiB; 0: no limit). SFTP destinations only")
      ->type_name("RATE")
      ->check(rate);
  cmd->add_flag("-v,--verbose", f.verbose, "Itemize changes (-vv: also unchanged files)");
  cmd->add_flag("-q,--quiet", f.quiet, "Print errors only");
  cmd->add_flag("--json", f.json, "Print NDJSON events and a summary object on stdout");
  cmd->add_flag("--no-progress", f.no_progress, "No live progress line on a terminal");
}

// --include and --exclude interleave: the order on the command line is the
// order the rules apply in (first match wins), as with rsync.
std::vector<ferry::FilterRule> OrderedFilters(const CLI::App& cmd, const PushFlags& f,
                                              const CLI::Option* exclude_opt,
                                              const CLI::Option* include_opt) {
  std::vector<ferry::FilterRule> rules;
  size_t next_exclude = 0, next_include = 0;
  for (const CLI::Option* opt : cmd.parse_order()) {
    if (opt == exclude_opt && next_exclude < f.excludes.size()) {
      rules.push_back({ferry::FilterRule::Kind::kExclude, f.excludes[next_exclude++]});
    } else if (opt == include_opt && next_include < f.includes.size()) {
      rules.push_back({ferry::FilterRule::Kind::kInclude, f.includes[next_include++]});
    }
  }
  return rules;
}

// SIGINT/SIGTERM ask the run to stop; a watcher thread turns them into a stop request.
class SignalStopper {
 public:
  SignalStopper() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);  // used to end the watcher thread
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      int sig = 0;
      while (sigwait(&set_, &sig) == 0) {
        if (sig == SIGUSR1) return;
        source_.request_stop();
      }
    });
  }
  ~SignalStopper() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  std::stop_token token() const { return source_.get_token(); }

 private:
  sigset_t set_;
  std::stop_source source_;
  std::thread thread_;
};

int RunPush(const CLI::App& cmd, const PushFlags& f, const CLI::Option* exclude_opt,
            const CLI::Option* include_opt, std::optional<int> watch_coalesce_ms = {}) {
  ferry::PushOptions options;
  options.source = f.source;
  options.destination = f.destination;
  options.filters = OrderedFilters(cmd, f, exclude_opt, include_opt);
  options.exclude_from = f.exclude_from;
  options.jobs = f.jobs;
  options.checksum = f.checksum;
  if (cmd.count("--compress") > 0)
    options.compress_level = f.compress_level > 0 ? f.compress_level : 3;
  options.delete_extraneous = f.delete_extraneous;
  options.delete_excluded = f.delete_excluded;
  if (f.max_delete >= 0) options.max_delete = static_cast<uint64_t>(f.max_delete);
  options.dry_run = f.dry_run;
  options.fsync = f.fsync;
  options.copy_links = f.copy_links;
  options.retries = f.retries;
  options.hash_cache = f.hash_cache;
  if (f.no_listing_cache) options.listing_cache = "none";
  if (f.no_resume) options.resume_threshold_bytes = 0;
  options.ssh.known_hosts = f.known_hosts;
  options.ssh.accept_new_host_key = f.accept_new_host_key;
  options.ssh.identity_files = f.identities;
  options.ssh.connections = f.connections;
  options.ssh.io_timeout = std::chrono::milliseconds(std::llround(f.timeout_s * 1000));
  if (f.connect_timeout_s > 0) {
    options.ssh.connect_timeout =
        std::chrono::milliseconds(std::max<long long>(1, std::llround(f.connect_timeout_s * 1000)));
  }
  if (!f.bwlimit.empty()) options.bwlimit_bytes_per_s = ParseRate(f.bwlimit).value_or(0);

  OutputMode mode;
  mode.json = f.json;
  mode.verbosity = f.quiet ? -1 : f.verbose;
  mode.dry_run = f.dry_run;
  mode.progress = !f.json && !f.quiet && !f.no_progress && ::isatty(STDERR_FILENO) != 0;
  ferry::cli::ConsoleObserver observer(mode);
  options.observer = &observer;

  SignalStopper stopper;
  options.stop = stopper.token();
  if (watch_coalesce_ms) return ferry::cli::RunWatch(std::move(options), mode, *watch_coalesce_ms);
  ferry::Report report = ferry::PushBlocking(std::move(options));
  observer.Finish(report);
  return ferry::cli::ExitCodeFor(report);
}

}  // namespace

namespace {

int Main(int argc, char** argv) {
  CLI::App app{"ferry: fast, safe file transfer and sync over SSH/SFTP"};
  app.set_version_flag("-V,--version", std::string("ferry ") + ferry::Version());
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 success, 1 some files failed, 2 usage error, 3 fatal error, "
      "130 interrupted.\nSee README.md for examples.");

  PushFlags push_flags;
  CLI::Option* exclude_opt = nullptr;
  CLI::Option* include_opt = nullptr;
  CLI::App* push = app.add_subcommand("push", "Make DEST a copy of SRC's contents (one shot)");
  AddPushFlags(push, push_flags, &exclude_opt, &include_opt);

  PushFlags watch_flags;
  CLI::Option* watch_exclude = nullptr;
  CLI::Option* watch_include = nullptr;
  CLI::App* watch = app.add_subcommand("watch", "Sync SRC to DEST, then keep it in sync");
  AddPushFlags(watch, watch_flags, &watch_exclude, &watch_include);
  int coalesce_ms = 5;
  watch->add_option("--coalesce", coalesce_ms, "Quiet ms before syncing a file still being written")
      ->check(CLI::Range(0, 60000));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : ferry::cli::kExitUsage;
  }
  if (push->parsed()) return RunPush(*push, push_flags, exclude_opt, include_opt);
  if (watch->parsed()) {
    return RunPush(*watch, watch_flags, watch_exclude, watch_include, coalesce_ms);
  }
  return ferry::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // The library never throws; this catches what would otherwise be a bare
  // std::terminate (e.g. std::bad_alloc while setting up the flags).
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ferry: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "ferry: internal error\n");
  }
  return ferry::cli::kExitFatal;
}
