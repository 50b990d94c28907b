// What a run did: totals, and a list of problems, one per failed path. The
// facade never throws; everything that went wrong is in here.
#ifndef FERRY_REPORT_H_
#define FERRY_REPORT_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace ferry {

struct Problem {
  std::string path;   // relative to the source root ("" for the run itself)
  std::string stage;  // "scan", "list", "read", "write", "commit", "delete", "connect", ...
  std::error_code code;
  std::string message;  // one line for people; never holds secrets
};

struct Totals {
  uint64_t files_sent = 0;
  uint64_t files_skipped = 0;  // unchanged
  uint64_t files_failed = 0;
  uint64_t files_deleted = 0;
  uint64_t dirs_created = 0;
  uint64_t symlinks = 0;
  uint64_t ignored = 0;        // special files and conflicts
  uint64_t bytes_read = 0;     // source bytes read
  uint64_t bytes_written = 0;  // bytes written to the destination (compressed size)
  uint64_t bytes_skipped = 0;  // source bytes of unchanged files
  uint64_t files_resumed = 0;  // uploads continued from an interrupted run's part file
  uint64_t bytes_resumed = 0;  // source bytes those part files already held (not sent)
  std::chrono::nanoseconds elapsed{0};
};

struct Report {
  Totals totals;
  // Problems in the order they happened; at most kMaxProblems are kept
  // (problems_dropped counts the rest), so memory stays bounded.
  std::vector<Problem> problems;
  uint64_t problems_dropped = 0;
  static constexpr size_t kMaxProblems = 10000;
  // Set when the run could not start or had to stop (bad source, unreachable
  // or refused destination, --max-delete): nothing more was attempted.
  std::error_code fatal;
  std::string fatal_message;
  bool cancelled = false;
  bool dry_run = false;
  // Things the user should know about the run as a whole (e.g. a server without
  // atomic rename).
  std::vector<std::string> notes;

  bool ok() const { return !fatal && problems.empty() && problems_dropped == 0 && !cancelled; }
};

}  // namespace ferry

#endif  // FERRY_REPORT_H_
