// What changed in the source tree since the last batch, as watch mode needs it:
// directories to re-plan, subtrees to push whole, paths deleted, renames to
// replay on the destination, and a "rescan everything" flag. Pure (no I/O, no
// Asio): the inotify watcher feeds it, the watch loop takes it as a Batch.
//
// Naming: every recorded path is kept under its *current* local name. A
// rename of a directory rewrites what was recorded under the old name, so a
// Batch is applied as: renames in order (they bring the destination to the new
// names), then deletions, then pushes.
//
// Coalescing: a subtree covers the directories and subtrees below it; a
// deleted directory covers what was recorded below it. Memory is bounded: past
// `max_entries` recorded paths the set forgets the details and asks for a full
// rescan instead (which is always a correct answer, only a slower one).
//
// Thread-safety: none; one owner (the watch loop's executor).
#ifndef FERRY_WATCH_DIRTY_SET_H_
#define FERRY_WATCH_DIRTY_SET_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ferry::watch {

struct Rename {
  std::string from;
  std::string to;
  bool is_dir = false;
  bool operator==(const Rename&) const = default;
};

struct Deletion {
  std::string path;
  bool was_dir = false;  // the deleted entry (or one of several) was a directory
  bool operator==(const Deletion&) const = default;
};

// One unit of work for the watch loop.
struct Batch {
  bool full_rescan = false;
  std::vector<Rename> renames;        // in the order they happened
  std::vector<Deletion> deleted;      // sorted by path
  std::vector<std::string> subtrees;  // push recursively; sorted, none inside another
  std::vector<std::string> dirs;      // re-plan this listing only; sorted, none in a subtree
  // A hint for some of `dirs`: the only thing that happened in that directory
  // is that these files (names, sorted) were created or written to, so they can
  // be sent without listing the directory on either side. Dropped (the
  // directory is then re-planned from its listings) on anything else: an
  // attribute change, a rename, a move in, more than kMaxWrittenHint files, a
  // directory renamed anywhere.
  std::map<std::string, std::vector<std::string>> written;
  static constexpr size_t kMaxWrittenHint = 8;

  bool empty() const {
    return !full_rescan && renames.empty() && deleted.empty() && subtrees.empty() && dirs.empty();
  }
};

class DirtySet {
 public:
  static constexpr size_t kDefaultMaxEntries = 100'000;
  explicit DirtySet(size_t max_entries = kDefaultMaxEntries);

  // A file was created or written to and may still be open for writing
  // (IN_CREATE, IN_MODIFY): its directory is dirty and the set is not Settled()
  // until FileClosed() or Take().
  void FileWritten(std::string_view path);
  // A writer closed the file (IN_CLOSE_WRITE).
  void FileClosed(std::string_view path);
  // Anything else that needs the file's directory re-planned (IN_ATTRIB, a
  // file moved in from outside the tree).
  void FileChanged(std::string_view path);
  // Re-plan `dir`'s listing (non-recursive).
  void DirChanged(std::string_view dir);
  // Push `dir` with everything in it (a new or moved-in directory).
  void SubtreeChanged(std::string_view dir);
  // IN_DELETE, or a move out of the tree.
  void Deleted(std::string_view path, bool is_dir);
  // IN_MOVED_FROM: held until the IN_MOVED_TO with the same cookie arrives
  // (a rename inside the tree) or Take() (then it was a move out: a deletion).
  void MovedFrom(uint32_t cookie, std::string_view path, bool is_dir);
  // IN_MOVED_TO. Returns the old path when it pairs with a MovedFrom (the
  // watcher then renames its own records), nullopt for a move in from outside.
  std::optional<std::string> MovedTo(uint32_t cookie, std::string_view path, bool is_dir);
  // Events were lost (IN_Q_OVERFLOW) or are too many to track.
  void SetFullRescan();

  // Nothing recorded (pending moves and writers aside).
  bool empty() const;
  // Some IN_MOVED_FROM still waits for its IN_MOVED_TO; Take() resolves it.
  bool has_pending_moves() const { return !pending_moves_.empty(); }
  // No file is known to be half-written and no move waits for its other half:
  // a batch taken now is unlikely to be followed at once by the rest of it.
  bool Settled() const;
  bool full_rescan() const { return full_rescan_; }
  // Recorded paths (what the memory cap counts).
  size_t size() const;

  // Hands over everything recorded and starts afresh. Moves still waiting for
  // their IN_MOVED_TO become deletions; `moved_out` (optional) receives them.
  Batch Take(std::vector<Deletion>* moved_out = nullptr);

  // Puts back the part of a batch that could not be applied (the destination
  // went away). If a directory was renamed since that batch was taken its
  // names may be stale, so the set falls back to a full rescan then.
  void Requeue(Batch batch);

 private:
  struct PendingMove {
    std::string path;
    bool is_dir = false;
  };

  bool CoveredBySubtree(std::string_view path) const;
  // `written`: the file of that directory that was written (a hint); empty:
  // the directory needs its listings compared.
  void AddDir(std::string_view dir, std::string_view written = {});
  void AddSubtree(std::string_view dir);
  void AddDeleted(std::string_view path, bool is_dir);
  void AddRename(std::string from, std::string to, bool is_dir);
  void CheckCap();

  size_t max_entries_;
  bool full_rescan_ = false;
  std::set<std::string> dirs_;
  // dir -> files written in it, for dirs_ where nothing else happened (see
  // Batch::written); a dir in dirs_ without an entry here needs its listings.
  std::map<std::string, std::set<std::string>> written_;
  std::set<std::string> subtrees_;
  std::map<std::string, bool> deleted_;  // path -> was a directory
  std::vector<Rename> renames_;
  std::set<std::string> writing_;
  bool writing_overflow_ = false;  // stopped tracking writers: not Settled() until Take()
  std::unordered_map<uint32_t, PendingMove> pending_moves_;
  uint64_t dir_renames_ = 0;  // directory renames recorded so far
  uint64_t dir_renames_at_take_ = 0;
};

// True when `path` is `dir` or lies below it ("" contains everything).
bool IsWithin(std::string_view path, std::string_view dir);

}  // namespace ferry::watch

#endif  // FERRY_WATCH_DIRTY_SET_H_
