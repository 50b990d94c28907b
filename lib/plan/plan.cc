#include "lib/plan/plan.h"

#include <algorithm>
#include <unordered_map>

#include "lib/base/path.h"

namespace ferry::plan {

const char* ActionName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kUpload:
      return "upload";
    case ActionKind::kVerify:
      return "verify";
    case ActionKind::kSkip:
      return "skip";
    case ActionKind::kMkdir:
      return "mkdir";
    case ActionKind::kRecurse:
      return "recurse";
    case ActionKind::kSymlink:
      return "symlink";
    case ActionKind::kDelete:
      return "delete";
    case ActionKind::kRemoveTemp:
      return "remove-temp";
    case ActionKind::kReplace:
      return "replace";
    case ActionKind::kSpecialSkipped:
      return "special";
    case ActionKind::kConflict:
      return "conflict";
  }
  return "unknown";
}

std::string DestName(const Entry& local, const PlanOptions& options) {
  if (options.compress && local.type == EntryType::kFile) {
    return local.name + std::string(kCompressedSuffix);
  }
  return local.name;
}

namespace {

int64_t Truncate(int64_t ns, int64_t granularity) {
  if (granularity <= 1) return ns;
  int64_t q = ns / granularity;
  if (ns < 0 && q * granularity != ns) --q;  // floor, also for pre-1970 times
  return q * granularity;
}

// Regular file against regular file.
void PlanFile(Action& action, const PlanOptions& options) {
  const Entry& l = action.local;
  const Entry& d = action.dest;
  bool same_time = Truncate(l.mtime_ns, options.mtime_granularity_ns) ==
                   Truncate(d.mtime_ns, options.mtime_granularity_ns);
  // A chmod alone must reach the destination too; sending the file again is
  // how (the Destination interface has no chmod). Only the permission bits:
  // set-id bits may be dropped by the destination's kernel, which would make
  // the file look changed on every run.
  if ((l.mode & 0777) != (d.mode & 0777)) {
    action.kind = ActionKind::kUpload;
    action.reason = "mode";
    return;
  }
  if (options.compress) {
    // The stored size is the compressed one: the .zst header must tell the
    // original size, so an mtime match is only a candidate for skipping.
    action.kind = same_time || options.checksum ? ActionKind::kVerify : ActionKind::kUpload;
    action.reason = "mtime";
    return;
  }
  if (l.size != d.size) {
    action.kind = ActionKind::kUpload;
    action.reason = "size";
  } else if (options.checksum) {
    action.kind = ActionKind::kVerify;
    action.reason = "checksum";
  } else if (!same_time) {
    action.kind = ActionKind::kUpload;
    action.reason = "mtime";
  } else {
    action.kind = ActionKind::kSkip;
  }
}

}  // namespace

std::vector<Action> PlanDirectory(std::vector<Entry> local, std::vector<Entry> dest,
                                  const PlanOptions& options, const ExcludedFn& is_excluded) {
  const bool deleting = options.delete_extraneous || options.delete_excluded;
  std::unordered_map<std::string_view, const Entry*> dest_by_name;
  dest_by_name.reserve(dest.size());
  for (const Entry& d : dest) {
    if (IsSafeName(d.name)) dest_by_name.emplace(d.name, &d);
  }

  std::vector<Action> actions;
  actions.reserve(local.size() + 4);
  std::unordered_map<std::string_view, bool> claimed;  // destination names a local entry maps to
  claimed.reserve(local.size());

  std::sort(local.begin(), local.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (Entry& l : local) {
    if (!IsSafeName(l.name)) continue;
    Action action;
    action.name = l.name;
    action.dest_name = DestName(l, options);
    action.local = std::move(l);
    const Entry& le = action.local;
    if (le.type == EntryType::kSpecial) {
      action.kind = ActionKind::kSpecialSkipped;
      actions.push_back(std::move(action));
      continue;
    }
    auto it = dest_by_name.find(action.dest_name);
    if (it != dest_by_name.end()) {
      action.dest = *it->second;
      action.dest_exists = true;
      claimed.emplace(it->first, true);
    }
    const Entry& de = action.dest;
    const bool dest_is_dir = action.dest_exists && de.type == EntryType::kDirectory;

    switch (le.type) {
      case EntryType::kDirectory:
        if (!action.dest_exists) {
          action.kind = ActionKind::kMkdir;
          action.reason = "new";
        } else if (dest_is_dir) {
          action.kind = ActionKind::kRecurse;
          // A chmod of the source directory: only the permission bits, as for
          // files (set-id bits may be dropped by the destination's kernel).
          if ((de.mode & 0777) != DestDirMode(le.mode)) {
            action.set_dir_mode = true;
            action.reason = "mode";
          }
        } else {
          // A file or symlink stands where a directory must go: replacing a
          // non-directory is an overwrite, as for files, so no --delete needed.
          action.kind = ActionKind::kReplace;
          action.reason = "type";
        }
        break;
      case EntryType::kSymlink:
      case EntryType::kFile: {
        const bool is_link = le.type == EntryType::kSymlink;
        if (dest_is_dir) {
          if (deleting) {
            action.kind = is_link ? ActionKind::kSymlink : ActionKind::kUpload;
            action.delete_dest_dir_first = true;
            action.reason = "type";
          } else {
            action.kind = ActionKind::kConflict;
          }
        } else if (!action.dest_exists) {
          action.kind = is_link ? ActionKind::kSymlink : ActionKind::kUpload;
          action.reason = "new";
        } else if (is_link) {
          bool same = de.type == EntryType::kSymlink && de.link_target == le.link_target;
          action.kind = same ? ActionKind::kSkip : ActionKind::kSymlink;
          action.reason = de.type == EntryType::kSymlink ? "target" : "type";
        } else if (de.type != EntryType::kFile) {
          action.kind = ActionKind::kUpload;
          action.reason = "type";
        } else {
          PlanFile(action, options);
        }
        break;
      }
      case EntryType::kSpecial:
        break;  // handled above
    }
    actions.push_back(std::move(action));
  }

  // Whatever the destination has beyond the local entries.
  std::vector<Action> removals;
  for (const Entry& d : dest) {
    if (!IsSafeName(d.name) || claimed.count(d.name)) continue;
    Action action;
    action.name = d.name;
    action.dest_name = d.name;
    action.dest = d;
    action.dest_exists = true;
    if (IsTempName(d.name) && d.type == EntryType::kFile) {
      action.kind = ActionKind::kRemoveTemp;
      removals.push_back(std::move(action));
      continue;
    }
    if (!deleting) continue;
    if (!options.delete_excluded && is_excluded && is_excluded(d)) continue;
    action.kind = ActionKind::kDelete;
    removals.push_back(std::move(action));
  }
  std::sort(removals.begin(), removals.end(),
            [](const Action& a, const Action& b) { return a.name < b.name; });
  for (Action& a : removals) actions.push_back(std::move(a));
  return actions;
}

}  // namespace ferry::plan
