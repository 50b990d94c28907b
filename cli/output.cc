#include "cli/output.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "ferry/error.h"
#include "lib/base/path.h"

namespace ferry::cli {
namespace {

double Seconds(std::chrono::nanoseconds ns) { return static_cast<double>(ns.count()) / 1e9; }

// JSON strings must be valid UTF-8; file names need not be.
std::string JsonSafe(const std::string& s) { return Printable(s); }

}  // namespace

std::string HumanBytes(double bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} {}", bytes, kUnits[unit])
                   : fmt::format("{:.1f} {}", bytes, kUnits[unit]);
}

int ExitCodeFor(const Report& report) {
  if (report.cancelled) return kExitInterrupted;
  if (report.fatal) {
    return report.fatal == errc::kInvalidArgument ? kExitUsage : kExitFatal;
  }
  if (!report.problems.empty() || report.problems_dropped > 0) return kExitPartial;
  return kExitOk;
}

void ConsoleObserver::ClearProgress() {
  if (progress_shown_) {
    std::fputs("\r\033[K", stderr);
    progress_shown_ = false;
  }
}

void ConsoleObserver::OnFile(const FileEvent& e) {
  if (mode_.json) {
    nlohmann::json j = {
        {"event", "file"},
        {"path", JsonSafe(e.path)},
        {"action", FileActionName(e.action)},
        {"outcome", OutcomeName(e.outcome)},
        {"size", e.size},
        {"bytes_read", e.bytes_read},
        {"bytes_written", e.bytes_written},
        {"duration_ms", static_cast<double>(e.duration.count()) / 1e6},
    };
    if (!e.reason.empty()) j["reason"] = e.reason;
    if (e.resumed_from > 0) j["resumed_from"] = e.resumed_from;
    if (e.outcome == Outcome::kFailed) {
      j["error"] = e.error.message();
      j["message"] = JsonSafe(e.message);
    }
    std::puts(j.dump().c_str());
    return;
  }
  if (e.outcome == Outcome::kFailed) {
    ClearProgress();
    std::fprintf(stderr, "ferry: failed: %s\n", Printable(e.message).c_str());
    return;
  }
  const bool itemize = mode_.verbosity >= 1 || (mode_.dry_run && mode_.verbosity >= 0);
  if (!itemize) return;
  if (e.action == FileAction::kSkip && mode_.verbosity < 2) return;
  ClearProgress();
  std::string what = FileActionName(e.action);
  std::string line =
      fmt::format("{}{:<7} {}", mode_.dry_run ? "(dry-run) " : "", what, Printable(e.path));
  if (!e.reason.empty()) line += fmt::format("  ({})", e.reason);
  if (e.resumed_from > 0) {
    line += fmt::format("  (resumed at {})", HumanBytes(static_cast<double>(e.resumed_from)));
  }
  std::puts(line.c_str());
}

void ConsoleObserver::OnWarning(const std::string& message) {
  if (mode_.json) {
    nlohmann::json j = {{"event", "warning"}, {"message", JsonSafe(message)}};
    std::puts(j.dump().c_str());
    return;
  }
  if (mode_.verbosity < 0) return;
  ClearProgress();
  std::fprintf(stderr, "ferry: warning: %s\n", message.c_str());
}

void ConsoleObserver::OnProgress(const ProgressSnapshot& s) {
  if (!mode_.progress) return;
  double elapsed = Seconds(s.elapsed);
  double rate = elapsed > 0 ? static_cast<double>(s.bytes_sent) / elapsed : 0;
  std::string eta = "--:--";
  if (!s.scanning && rate > 0 && s.bytes_to_send >= s.bytes_sent) {
    auto left = static_cast<long>(static_cast<double>(s.bytes_to_send - s.bytes_sent) / rate);
    eta = fmt::format("{}:{:02}", left / 60, left % 60);
  }
  int percent = s.bytes_to_send > 0 ? static_cast<int>(100.0 * static_cast<double>(s.bytes_sent) /
                                                       static_cast<double>(s.bytes_to_send))
                                    : (s.scanning ? 0 : 100);
  constexpr int kWidth = 20;
  int filled = std::clamp(percent * kWidth / 100, 0, kWidth);
  std::string bar = std::string(static_cast<size_t>(filled), '#') +
                    std::string(static_cast<size_t>(kWidth - filled), '.');
  std::fprintf(stderr, "\r\033[K[%s] %3d%%  %s / %s%s  %s/s  ETA %s  files %llu/%llu", bar.c_str(),
               percent, HumanBytes(static_cast<double>(s.bytes_sent)).c_str(),
               HumanBytes(static_cast<double>(s.bytes_to_send)).c_str(), s.scanning ? "+" : "",
               HumanBytes(rate).c_str(), eta.c_str(), static_cast<unsigned long long>(s.files_sent),
               static_cast<unsigned long long>(s.files_to_send));
  progress_shown_ = true;
}

void ConsoleObserver::Finish(const Report& r) {
  ClearProgress();
  const Totals& t = r.totals;
  double secs = Seconds(t.elapsed);
  double ratio = t.bytes_written > 0
                     ? static_cast<double>(t.bytes_read) / static_cast<double>(t.bytes_written)
                     : 1.0;
  if (mode_.json) {
    nlohmann::json problems = nlohmann::json::array();
    for (const Problem& p : r.problems) {
      problems.push_back({{"path", JsonSafe(p.path)},
                          {"stage", p.stage},
                          {"error", p.code.message()},
                          {"message", JsonSafe(p.message)}});
    }
    // Notes come from the destination (e.g. a server's messages): not necessarily UTF-8.
    nlohmann::json notes = nlohmann::json::array();
    for (const std::string& note : r.notes) notes.push_back(JsonSafe(note));
    nlohmann::json j = {
        {"event", "summary"},
        {"ok", r.ok()},
        {"exit_code", ExitCodeFor(r)},
        {"dry_run", r.dry_run},
        {"cancelled", r.cancelled},
        {"files_sent", t.files_sent},
        {"files_skipped", t.files_skipped},
        {"files_deleted", t.files_deleted},
        {"files_failed", t.files_failed},
        {"dirs_created", t.dirs_created},
        {"symlinks", t.symlinks},
        {"ignored", t.ignored},
        {"bytes_read", t.bytes_read},
        {"bytes_written", t.bytes_written},
        {"bytes_skipped", t.bytes_skipped},
        {"files_resumed", t.files_resumed},
        {"bytes_resumed", t.bytes_resumed},
        {"compression_ratio", ratio},
        {"elapsed_s", secs},
        {"problems", problems},
        {"problems_dropped", r.problems_dropped},
        {"notes", notes},
    };
    if (r.fatal) {
      j["fatal"] = r.fatal.message();
      j["message"] = JsonSafe(r.fatal_message);
    }
    std::puts(j.dump().c_str());
    std::fflush(stdout);
    return;
  }
  if (r.fatal) std::fprintf(stderr, "ferry: error: %s\n", Printable(r.fatal_message).c_str());
  for (const Problem& p : r.problems) {
    if (p.stage == "delete" && p.path.empty()) {
      std::fprintf(stderr, "ferry: %s\n", Printable(p.message).c_str());
    }
  }
  if (r.fatal && t.files_sent == 0 && t.files_skipped == 0) return;
  if (mode_.verbosity < 0) return;
  for (const std::string& note : r.notes) std::printf("note: %s\n", Printable(note).c_str());
  double rate = secs > 0 ? static_cast<double>(t.bytes_read) / secs : 0;
  std::printf(
      "%s%llu sent, %llu unchanged, %llu deleted, %llu failed; %llu dirs created; "
      "%s read, %s written (ratio %.2f); %.2f s, %s/s\n",
      r.dry_run ? "dry run: " : "", static_cast<unsigned long long>(t.files_sent),
      static_cast<unsigned long long>(t.files_skipped),
      static_cast<unsigned long long>(t.files_deleted),
      static_cast<unsigned long long>(t.files_failed),
      static_cast<unsigned long long>(t.dirs_created),
      HumanBytes(static_cast<double>(t.bytes_read)).c_str(),
      HumanBytes(static_cast<double>(t.bytes_written)).c_str(), ratio, secs,
      HumanBytes(rate).c_str());
  if (t.files_resumed > 0) {
    std::printf("%llu resumed from interrupted runs (%s already there, verified)\n",
                static_cast<unsigned long long>(t.files_resumed),
                HumanBytes(static_cast<double>(t.bytes_resumed)).c_str());
  }
  if (r.cancelled) std::fprintf(stderr, "ferry: interrupted\n");
  std::fflush(stdout);
}

}  // namespace ferry::cli
