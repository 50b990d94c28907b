#include "ferry/observer.h"

namespace ferry {

const char* FileActionName(FileAction action) {
  switch (action) {
    case FileAction::kUpload:
      return "upload";
    case FileAction::kSkip:
      return "skip";
    case FileAction::kMkdir:
      return "mkdir";
    case FileAction::kSymlink:
      return "symlink";
    case FileAction::kDelete:
      return "delete";
    case FileAction::kRename:
      return "rename";
    case FileAction::kIgnore:
      return "ignore";
  }
  return "unknown";
}

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kDone:
      return "done";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kDryRun:
      return "dry-run";
  }
  return "unknown";
}

}  // namespace ferry
