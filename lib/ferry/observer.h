// Progress and per-file events, for embedders and for the CLI's progress bar
// and --json output (both are built on this interface).
//
// Threading: every callback runs on the executor that runs the push (the
// caller's io_context for the coroutine form, ferry's own thread for the
// blocking form), never concurrently with another callback of the same run.
// Callbacks must return quickly and must not block.
#ifndef FERRY_OBSERVER_H_
#define FERRY_OBSERVER_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

namespace ferry {

enum class FileAction : uint8_t {
  kUpload,   // file content sent (new or changed)
  kSkip,     // unchanged, nothing sent
  kMkdir,    // directory created
  kSymlink,  // symlink created or replaced
  kDelete,   // extraneous destination entry removed (--delete)
  kRename,   // moved on the destination (watch mode)
  kIgnore,   // not transferable (device, fifo, socket) or in conflict; in watch mode
             // also a path that could not be examined (reason: "scan", "list", "chmod")
};

enum class Outcome : uint8_t {
  kDone,
  kFailed,
  kDryRun,  // would have been done (--dry-run)
};

const char* FileActionName(FileAction action);
const char* OutcomeName(Outcome outcome);

struct FileEvent {
  std::string path;  // relative to the source root, '/'-separated
  FileAction action = FileAction::kUpload;
  Outcome outcome = Outcome::kDone;
  std::string reason;  // why it moved: "new", "size", "mtime", "checksum", "type"
  uint64_t size = 0;   // source size
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;  // after compression
  // A resumed upload: the source bytes already on the destination (in a part
  // file of an interrupted run, verified), not sent again; bytes_read counts
  // only what was sent this time.
  uint64_t resumed_from = 0;
  std::chrono::nanoseconds duration{0};
  std::error_code error;  // when kFailed
  std::string message;    // when kFailed: one line, the path included
};

struct ProgressSnapshot {
  uint64_t files_found = 0;  // entries examined so far (grows while scanning)
  uint64_t files_to_send = 0;
  uint64_t files_sent = 0;
  uint64_t bytes_to_send = 0;
  uint64_t bytes_sent = 0;  // source bytes read and written so far
  bool scanning = true;     // false once the whole tree was listed
  std::chrono::nanoseconds elapsed{0};
};

// One batch of watch mode (ferry::Watch): what it changed on the destination.
struct BatchSummary {
  bool initial = false;      // the initial full sync
  bool full_rescan = false;  // the whole tree compared again (events were lost)
  uint64_t files = 0;        // files uploaded, symlinks set, entries deleted or renamed
  uint64_t bytes = 0;        // source bytes sent
  uint64_t renamed = 0;      // renames replayed on the destination (nothing re-sent)
  uint64_t deleted = 0;
  uint64_t failed = 0;
  std::chrono::nanoseconds duration{0};
};

class Observer {
 public:
  virtual ~Observer() = default;
  // Every action once it ends (also skips, for --json/-v itemizing).
  virtual void OnFile(const FileEvent& event) {}
  // A warning that concerns no single action's outcome (e.g. an unsafe name in
  // a destination listing, a fallback the server forced).
  virtual void OnWarning(const std::string& message) {}
  // At most every `PushOptions::progress_interval`, and once at the end.
  virtual void OnProgress(const ProgressSnapshot& snapshot) {}
  // Watch mode: after the initial sync and after every batch of changes.
  virtual void OnBatch(const BatchSummary& batch) {}
};

}  // namespace ferry

#endif  // FERRY_OBSERVER_H_
