// Reading the source tree, one directory at a time (never the whole tree in
// memory). Blocking calls: the engine runs them on its thread pool.
#ifndef FERRY_SCAN_SCAN_H_
#define FERRY_SCAN_SCAN_H_

#include <sys/stat.h>

#include <string>
#include <vector>

#include "lib/base/entry.h"
#include "lib/base/result.h"

namespace ferry::scan {

// Fills an Entry (type, size, times, mode, identity) from a stat result.
Entry EntryFromStat(std::string name, const struct stat& st);

// Lists `dir` (absolute or relative to the cwd), without "." and "..".
// Symlinks are reported as such (with their target) unless `follow_links`, in
// which case the entry describes what they point to; a link that cannot be
// followed is then reported as a symlink with the stat(2) errno in
// `follow_errno` (the caller decides). Entries that vanish between
// readdir and stat are skipped.
Result<std::vector<Entry>> ListDirectory(const std::string& dir, bool follow_links);

// lstat (or stat when following) of one path, as an Entry named `name`.
Result<Entry> StatPath(const std::string& path, std::string name, bool follow_links);

}  // namespace ferry::scan

#endif  // FERRY_SCAN_SCAN_H_
