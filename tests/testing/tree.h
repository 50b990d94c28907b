// Test helpers for real directory trees: build them (files with content, mode
// and mtime; directories; symlinks; fifos) under TEST_TMPDIR, snapshot them, and
// compare two of them the way a user of rsync -a would.
//
// Every helper throws std::runtime_error (naming the path and errno) when a
// syscall fails, so a broken fixture fails the test instead of passing silently.
#ifndef FERRY_TESTS_TESTING_TREE_H_
#define FERRY_TESTS_TESTING_TREE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::testing {

// A fresh, empty directory under $TEST_TMPDIR (or /tmp), absolute path.
std::string MakeTempDir(std::string_view prefix = "t");

// Writes `path` (parent directories created, mode 0755), then sets its mode
// exactly (no umask) and, if given, its mtime in ns since the epoch.
void WriteFile(const std::string& path, std::string_view content, mode_t mode = 0644,
               std::optional<int64_t> mtime_ns = std::nullopt);
void MakeDir(const std::string& path, mode_t mode = 0755);  // mkdir -p, exact mode on the last
void MakeSymlink(const std::string& path, const std::string& target);
void MakeFifo(const std::string& path);
// utimensat without following a symlink.
void SetMtime(const std::string& path, int64_t mtime_ns);
int64_t GetMtime(const std::string& path);  // lstat
std::string ReadFile(const std::string& path);
bool Exists(const std::string& path);  // lstat succeeds
// `n` deterministic pseudo-random bytes.
std::string RandomBytes(size_t n, uint32_t seed = 1);

struct NodeInfo {
  char type = '?';  // 'f' file, 'd' directory, 'l' symlink, 'p' fifo, 's' other
  mode_t mode = 0;  // permission bits (07777)
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string content;  // files only
  std::string target;   // symlinks only
  bool operator==(const NodeInfo&) const = default;
};

// Everything below `root` (not `root` itself), keyed by '/'-separated relative path.
std::map<std::string, NodeInfo> Snapshot(const std::string& root);
// Snapshot of a destination right after a kill: over SFTP the server may still
// carry out requests the killed client sent (a rename, a temp's removal), so a
// walk can meet an entry that vanishes under it: walk again until one is clean.
std::map<std::string, NodeInfo> SettledSnapshot(const std::string& root);

struct CompareOptions {
  // Directory mtimes change whenever an entry is added, so a copy that creates
  // directories before filling them can only match if it sets them afterwards.
  bool ignore_dir_mtime = false;
  bool ignore_symlink_mtime = false;
};

// Human-readable differences between the trees below `src` and `dst`
// ("missing in dst: a/b", "content differs: x", "mode differs: y (0600 vs 0644)",
// "mtime differs: ...", "type differs: ...", "target differs: ...", "extra in dst: z").
// Empty when they match.
std::vector<std::string> CompareTrees(const std::string& src, const std::string& dst,
                                      CompareOptions options = {});

// Names in `dir` (recursively) that look like ferry temp files (".ferry-tmp-").
std::vector<std::string> FindTemps(const std::string& dir);

}  // namespace ferry::testing

#endif  // FERRY_TESTS_TESTING_TREE_H_
