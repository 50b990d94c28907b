// How the CLI shows a run: a live progress line on a terminal, itemized
// actions (-v, --dry-run), NDJSON events (--json), and the closing summary.
#ifndef FERRY_CLI_OUTPUT_H_
#define FERRY_CLI_OUTPUT_H_

#include <cstdio>
#include <string>

#include "ferry/observer.h"
#include "ferry/report.h"

namespace ferry::cli {

struct OutputMode {
  bool json = false;      // NDJSON on stdout, nothing else there
  int verbosity = 0;      // -1 quiet, 0 normal, 1 itemize changes, 2 also skips
  bool progress = false;  // live progress line on stderr
  bool dry_run = false;
};

class ConsoleObserver final : public Observer {
 public:
  explicit ConsoleObserver(OutputMode mode) : mode_(mode) {}
  void OnFile(const FileEvent& event) override;
  void OnWarning(const std::string& message) override;
  void OnProgress(const ProgressSnapshot& snapshot) override;

  // The closing summary (text or a JSON object) and the run-level errors.
  void Finish(const Report& report);

 private:
  void ClearProgress();

  OutputMode mode_;
  bool progress_shown_ = false;
};

// Exit codes, documented in the README.
inline constexpr int kExitOk = 0;
inline constexpr int kExitPartial = 1;  // some files failed, the rest were synced
inline constexpr int kExitUsage = 2;    // bad flags, URL, pattern
inline constexpr int kExitFatal = 3;    // the run could not proceed
inline constexpr int kExitInterrupted = 130;

int ExitCodeFor(const Report& report);

// 1536 -> "1.5 KiB".
std::string HumanBytes(double bytes);

}  // namespace ferry::cli

#endif  // FERRY_CLI_OUTPUT_H_
