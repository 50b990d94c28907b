// Planning: what to do in one directory, decided from the two listings alone.
// Pure (no I/O, no Asio), so every rule of sync semantics is unit-testable.
// Deciding is separate from doing: the engine carries the actions out.
#ifndef FERRY_PLAN_PLAN_H_
#define FERRY_PLAN_PLAN_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/entry.h"

namespace ferry::plan {

struct PlanOptions {
  bool delete_extraneous = false;  // --delete
  bool delete_excluded = false;    // --delete-excluded (implies delete_extraneous)
  bool checksum = false;           // --checksum: equal sizes are settled by content hashes
  bool compress = false;           // --compress: regular files are stored as NAME.zst
  // The destination's mtime resolution (1 ns locally, 1 s over SFTP v3): times
  // are compared after truncation to it, so a round trip never looks changed.
  int64_t mtime_granularity_ns = 1;
};

// Destination names the filters exclude (for --delete: excluded names are kept
// unless --delete-excluded). Receives the destination-side entry.
using ExcludedFn = std::function<bool(const Entry& dest_entry)>;

enum class ActionKind : uint8_t {
  kUpload,          // send the local file (new or changed)
  kVerify,          // sizes/times cannot settle it: compare content (or the .zst header)
  kSkip,            // unchanged
  kMkdir,           // directory missing on the destination; recurse into it
  kRecurse,         // directory present on both sides
  kSymlink,         // create or replace a symlink
  kDelete,          // remove an extraneous destination entry (--delete)
  kRemoveTemp,      // a temp file left by an interrupted run
  kReplace,         // remove a destination non-directory that must become a directory
  kSpecialSkipped,  // device, fifo or socket in the source: warn, never sent
  kConflict,        // cannot apply without deleting a directory (needs --delete)
};

const char* ActionName(ActionKind kind);

struct Action {
  ActionKind kind;
  std::string name;       // local name (the destination's for kDelete/kRemoveTemp)
  std::string dest_name;  // name on the destination (NAME.zst in compress mode)
  Entry local;            // valid unless kDelete / kRemoveTemp
  Entry dest;             // valid when the destination had the entry
  bool dest_exists = false;
  // Why an upload happens: "new", "size", "mtime", "mode", "type"; empty otherwise.
  const char* reason = "";
  // A kRecurse whose destination directory's mode must become
  // DestDirMode(local.mode) first (reason "mode").
  bool set_dir_mode = false;
  // A kUpload/kSymlink/kMkdir that must first delete a destination directory
  // of the same name (a type change, allowed by --delete only).
  bool delete_dest_dir_first = false;
};

// Plans one directory. `local` holds the source entries that survived the filters;
// `dest` the destination's listing of the same directory (unsafe names already
// dropped). Output is sorted by name; deletions come last.
std::vector<Action> PlanDirectory(std::vector<Entry> local, std::vector<Entry> dest,
                                  const PlanOptions& options, const ExcludedFn& is_excluded);

// The permission bits a destination directory gets for a source directory of
// `local_mode`: ferry keeps owner rwx so that it can always fill it (a
// read-only source directory must not lock ferry out of its own copy).
inline uint32_t DestDirMode(uint32_t local_mode) { return (local_mode & 0777) | 0700; }

// The destination name for a local entry: NAME.zst for regular files when compressing.
std::string DestName(const Entry& local, const PlanOptions& options);

inline constexpr std::string_view kCompressedSuffix = ".zst";

}  // namespace ferry::plan

#endif  // FERRY_PLAN_PLAN_H_
