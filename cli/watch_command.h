// `ferry watch SRC DEST`: the push flags plus --coalesce; main.cc builds the
// PushOptions exactly as for `ferry push` and hands over here.
#ifndef FERRY_CLI_WATCH_COMMAND_H_
#define FERRY_CLI_WATCH_COMMAND_H_

#include "cli/output.h"
#include "ferry/options.h"

namespace ferry::cli {

// Runs the watch until options.stop is requested (SIGINT/SIGTERM). Prints one
// line per batch that changed something ("synced 3 files (12.0 KiB) in 4.1
// ms"), or a {"event":"batch",...} object per batch with --json, then the
// closing summary. Returns the exit code: 0 after a stop (in-flight files
// finished or abandoned cleanly), 130 if stopped before the initial sync
// completed, 2/3 on a usage/fatal error.
int RunWatch(PushOptions options, OutputMode mode, int coalesce_ms);

}  // namespace ferry::cli

#endif  // FERRY_CLI_WATCH_COMMAND_H_
