#include "cli/watch_command.h"

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "ferry/watch.h"
#include "lib/base/path.h"

namespace ferry::cli {
namespace {

std::string HumanDuration(std::chrono::nanoseconds d) {
  double ms = static_cast<double>(d.count()) / 1e6;
  return ms < 1000 ? fmt::format("{:.1f} ms", ms) : fmt::format("{:.2f} s", ms / 1000);
}

// The push console plus one line (or JSON object) per batch.
class WatchConsole final : public Observer {
 public:
  WatchConsole(OutputMode mode, std::string source)
      : mode_(mode), console_(mode), source_(std::move(source)) {}

  void OnFile(const FileEvent& event) override { console_.OnFile(event); }
  void OnWarning(const std::string& message) override { console_.OnWarning(message); }
  void OnProgress(const ProgressSnapshot& snapshot) override { console_.OnProgress(snapshot); }

  void OnBatch(const BatchSummary& b) override {
    if (mode_.json) {
      nlohmann::json j = {
          {"event", "batch"},
          {"initial", b.initial},
          {"full_rescan", b.full_rescan},
          {"files", b.files},
          {"bytes", b.bytes},
          {"renamed", b.renamed},
          {"deleted", b.deleted},
          {"failed", b.failed},
          {"duration_ms", static_cast<double>(b.duration.count()) / 1e6},
      };
      std::puts(j.dump().c_str());
      std::fflush(stdout);
      return;
    }
    if (mode_.verbosity < 0) return;
    if (b.initial) {
      // The initial sync's progress line (a terminal only) ends here.
      if (mode_.progress) std::fputs("\r\033[K", stderr);
      std::printf("initial sync: %llu files (%s) in %s\n", static_cast<unsigned long long>(b.files),
                  HumanBytes(static_cast<double>(b.bytes)).c_str(),
                  HumanDuration(b.duration).c_str());
      std::fprintf(stderr, "ferry: watching %s for changes (Ctrl-C to stop)\n",
                   Printable(source_).c_str());
    } else if (b.files > 0 || b.failed > 0) {
      std::string line =
          fmt::format("{}synced {} file{} ({}) in {}", mode_.dry_run ? "(dry-run) " : "", b.files,
                      b.files == 1 ? "" : "s", HumanBytes(static_cast<double>(b.bytes)),
                      HumanDuration(b.duration));
      if (b.failed > 0) line += fmt::format(", {} failed", b.failed);
      if (b.full_rescan) line += " (full rescan)";
      std::puts(line.c_str());
    }
    std::fflush(stdout);
  }

  void Finish(const Report& report) { console_.Finish(report); }

 private:
  OutputMode mode_;
  ConsoleObserver console_;
  std::string source_;
};

}  // namespace

int RunWatch(PushOptions options, OutputMode mode, int coalesce_ms) {
  // A progress bar only makes sense for the initial sync; the loop sends no
  // progress for batches.
  WatchConsole console(mode, options.source);
  options.observer = &console;
  WatchOptions watch;
  watch.push = std::move(options);
  watch.coalesce = std::chrono::milliseconds(coalesce_ms);
  Report report = WatchBlocking(std::move(watch));
  console.Finish(report);
  if (report.fatal || report.cancelled) return ExitCodeFor(report);
  // Stopped by a signal after the initial sync: the normal end of a watch.
  // Failures were reported as they happened.
  return kExitOk;
}

}  // namespace ferry::cli
