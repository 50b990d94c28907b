#include "lib/watch/dirty_set.h"

#include <algorithm>
#include <iterator>
#include <type_traits>
#include <utility>

#include "lib/base/path.h"

namespace ferry::watch {
namespace {

template <typename It>
const std::string* KeyOf(It it) {
  if constexpr (std::is_same_v<std::decay_t<decltype(*it)>, std::string>) {
    return &*it;
  } else {
    return &it->first;
  }
}

// Entries of an ordered container that are `dir` or lie below it: `dir` itself,
// then the contiguous range ["dir/", "dir0") ('0' follows '/' in ASCII).
template <typename Container, typename Fn>
void ForEachWithin(Container& c, std::string_view dir, Fn fn) {
  if (dir.empty()) {
    for (auto it = c.begin(); it != c.end();) it = fn(it);
    return;
  }
  std::string key(dir);
  if (auto it = c.find(key); it != c.end()) fn(it);
  std::string lo = key + '/';
  std::string hi = key + '0';
  for (auto it = c.lower_bound(lo); it != c.end() && *KeyOf(it) < hi;) it = fn(it);
}

template <typename Container>
void EraseWithin(Container& c, std::string_view dir) {
  ForEachWithin(c, dir, [&c](auto it) { return c.erase(it); });
}

std::string Rebase(std::string_view path, std::string_view from, std::string_view to) {
  std::string out(to);
  out.append(path.substr(from.size()));
  return out;
}

// Moves the entries recorded under `from` to `to`.
void RebaseSet(std::set<std::string>& s, std::string_view from, std::string_view to) {
  std::vector<std::string> moved;
  ForEachWithin(s, from, [&](auto it) {
    moved.push_back(Rebase(*it, from, to));
    return s.erase(it);
  });
  for (std::string& p : moved) s.insert(std::move(p));
}

void RebaseMap(std::map<std::string, bool>& m, std::string_view from, std::string_view to) {
  std::vector<std::pair<std::string, bool>> moved;
  ForEachWithin(m, from, [&](auto it) {
    moved.emplace_back(Rebase(it->first, from, to), it->second);
    return m.erase(it);
  });
  for (auto& [p, d] : moved) {
    bool& was_dir = m[p];
    was_dir = was_dir || d;
  }
}

}  // namespace

bool IsWithin(std::string_view path, std::string_view dir) {
  if (dir.empty()) return true;
  return path.starts_with(dir) && (path.size() == dir.size() || path[dir.size()] == '/');
}

DirtySet::DirtySet(size_t max_entries) : max_entries_(std::max<size_t>(1, max_entries)) {}

bool DirtySet::CoveredBySubtree(std::string_view path) const {
  if (subtrees_.empty()) return false;
  std::string_view p = path;
  while (true) {
    if (subtrees_.count(std::string(p)) > 0) return true;
    if (p.empty()) return false;
    p = ParentOf(p);
  }
}

void DirtySet::AddDir(std::string_view dir, std::string_view written) {
  if (full_rescan_ || CoveredBySubtree(dir)) return;
  const bool is_new = dirs_.emplace(dir).second;
  auto hint = written_.find(std::string(dir));
  if (written.empty()) {
    if (hint != written_.end()) written_.erase(hint);
  } else if (is_new) {
    written_[std::string(dir)] = {std::string(BaseName(written))};
  } else if (hint != written_.end()) {
    hint->second.emplace(BaseName(written));
    if (hint->second.size() > Batch::kMaxWrittenHint) written_.erase(hint);
  }
  CheckCap();
}

void DirtySet::AddSubtree(std::string_view dir) {
  if (full_rescan_ || CoveredBySubtree(dir)) return;
  EraseWithin(subtrees_, dir);
  EraseWithin(dirs_, dir);
  subtrees_.emplace(dir);
  CheckCap();
}

void DirtySet::AddDeleted(std::string_view path, bool is_dir) {
  if (full_rescan_) return;
  if (is_dir) {
    // Whatever was recorded below is gone with it; if the directory comes back,
    // the watch loop pushes it whole (see watch_loop.cc).
    EraseWithin(dirs_, path);
    EraseWithin(subtrees_, path);
    EraseWithin(deleted_, path);
  }
  bool& was_dir = deleted_[std::string(path)];
  was_dir = was_dir || is_dir;
  CheckCap();
}

void DirtySet::AddRename(std::string from, std::string to, bool is_dir) {
  if (full_rescan_) return;
  // What was recorded under the old name is now under the new one.
  RebaseSet(dirs_, from, to);
  RebaseSet(subtrees_, from, to);
  RebaseMap(deleted_, from, to);
  RebaseSet(writing_, from, to);
  // Rebasing may have put entries under a subtree: coalesce again.
  if (!subtrees_.empty()) {
    std::vector<std::string> all(subtrees_.begin(), subtrees_.end());
    subtrees_.clear();
    for (const std::string& s : all) AddSubtree(s);
    std::vector<std::string> ds(dirs_.begin(), dirs_.end());
    dirs_.clear();
    for (const std::string& d : ds) AddDir(d);
  }
  if (is_dir) {
    ++dir_renames_;
  } else {
    // Per-directory records cannot tell whether the file was also written just
    // before the move: re-plan its new directory (a listing; unchanged files
    // are not sent again).
    AddDir(ParentOf(to));
  }
  renames_.push_back({std::move(from), std::move(to), is_dir});
  CheckCap();
}

void DirtySet::CheckCap() {
  if (size() <= max_entries_) return;
  SetFullRescan();
}

void DirtySet::FileWritten(std::string_view path) {
  AddDir(ParentOf(path), path);
  if (writing_.size() < max_entries_) {
    writing_.emplace(path);
  } else if (writing_.count(std::string(path)) == 0) {
    writing_overflow_ = true;
  }
}

void DirtySet::FileClosed(std::string_view path) {
  AddDir(ParentOf(path), path);
  writing_.erase(std::string(path));
}

void DirtySet::FileChanged(std::string_view path) { AddDir(ParentOf(path)); }

void DirtySet::DirChanged(std::string_view dir) { AddDir(dir); }

void DirtySet::SubtreeChanged(std::string_view dir) { AddSubtree(dir); }

void DirtySet::Deleted(std::string_view path, bool is_dir) {
  EraseWithin(writing_, path);
  AddDeleted(path, is_dir);
}

void DirtySet::MovedFrom(uint32_t cookie, std::string_view path, bool is_dir) {
  // Writers below `path` stay recorded: a rename rebases them, Take() drops them.
  if (pending_moves_.size() >= max_entries_) {
    // Too many unpaired moves: treat this one as gone right away.
    EraseWithin(writing_, path);
    AddDeleted(path, is_dir);
    return;
  }
  pending_moves_[cookie] = {std::string(path), is_dir};
}

std::optional<std::string> DirtySet::MovedTo(uint32_t cookie, std::string_view path, bool is_dir) {
  auto it = pending_moves_.find(cookie);
  if (it == pending_moves_.end()) {
    // Moved in from outside the tree: new content.
    if (is_dir) {
      AddSubtree(path);
    } else {
      FileChanged(path);
    }
    return std::nullopt;
  }
  PendingMove from = std::move(it->second);
  pending_moves_.erase(it);
  if (from.path == path) return from.path;  // mv a a
  AddRename(from.path, std::string(path), is_dir);
  return from.path;
}

void DirtySet::SetFullRescan() {
  full_rescan_ = true;
  dirs_.clear();
  written_.clear();
  subtrees_.clear();
  deleted_.clear();
  renames_.clear();
}

bool DirtySet::empty() const {
  return !full_rescan_ && dirs_.empty() && subtrees_.empty() && deleted_.empty() &&
         renames_.empty();
}

bool DirtySet::Settled() const {
  return writing_.empty() && !writing_overflow_ && pending_moves_.empty();
}

size_t DirtySet::size() const {
  return dirs_.size() + subtrees_.size() + deleted_.size() + renames_.size();
}

Batch DirtySet::Take(std::vector<Deletion>* moved_out) {
  for (auto& [cookie, move] : pending_moves_) {
    if (moved_out != nullptr) moved_out->push_back({move.path, move.is_dir});
    AddDeleted(move.path, move.is_dir);
  }
  pending_moves_.clear();
  Batch b;
  b.full_rescan = std::exchange(full_rescan_, false);
  b.renames = std::move(renames_);
  for (auto& [path, was_dir] : deleted_) b.deleted.push_back({path, was_dir});
  b.subtrees.assign(subtrees_.begin(), subtrees_.end());
  b.dirs.assign(dirs_.begin(), dirs_.end());
  if (dir_renames_ == dir_renames_at_take_) {
    // (After a directory rename a recorded name may be stale: no hints then.)
    for (auto& [dir, names] : written_) {
      if (dirs_.count(dir) > 0) b.written[dir].assign(names.begin(), names.end());
    }
  }
  written_.clear();
  renames_.clear();
  deleted_.clear();
  subtrees_.clear();
  dirs_.clear();
  writing_.clear();
  writing_overflow_ = false;
  dir_renames_at_take_ = dir_renames_;
  return b;
}

void DirtySet::Requeue(Batch batch) {
  if (batch.full_rescan || dir_renames_ != dir_renames_at_take_) {
    SetFullRescan();
    return;
  }
  // The batch's renames happened before anything recorded since.
  std::vector<Rename> later = std::move(renames_);
  renames_ = std::move(batch.renames);
  renames_.insert(renames_.end(), std::make_move_iterator(later.begin()),
                  std::make_move_iterator(later.end()));
  // Deletions recorded since the batch was taken describe a later state: keep
  // theirs, add the batch's only where nothing newer was recorded.
  for (Deletion& d : batch.deleted) deleted_.try_emplace(std::move(d.path), d.was_dir);
  for (const std::string& s : batch.subtrees) AddSubtree(s);
  for (const std::string& d : batch.dirs) AddDir(d);
  CheckCap();
}

}  // namespace ferry::watch
