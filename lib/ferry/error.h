// ferry's error codes. std::error_code is the currency across the library; these
// are ferry's own conditions. System errors (ENOENT, EACCES, ENOSPC, ...) stay in
// std::system_category, and transport errors use their own categories, so callers
// compare against the specific condition they care about.
#ifndef FERRY_ERROR_H_
#define FERRY_ERROR_H_

#include <string>
#include <system_error>

namespace ferry {

enum class errc {
  kOk = 0,
  kInvalidArgument,  // a malformed option, URL or pattern
  kSourceMissing,    // the source path does not exist
  kDestinationInsideSource,
  kSourceIsDestination,
  kSourceChanged,      // a file kept changing while it was read
  kSourceVanished,     // a file disappeared between listing and reading
  kUnsafePath,         // a name that would escape the destination (.., /, NUL)
  kSpecialFile,        // device, fifo or socket: not transferred
  kTypeConflict,       // e.g. a file in the source where the destination has a directory
  kMaxDeleteExceeded,  // --max-delete would be exceeded: nothing was deleted
  kDeleteSkipped,      // deletions skipped because of earlier errors
  kCancelled,
  kUnsupported,
  kHostKeyUnknown,   // not in known_hosts and the policy refuses new keys
  kHostKeyMismatch,  // known_hosts holds another key for this host
  kHostKeyRevoked,   // marked @revoked in known_hosts
  kAuthFailed,
  kConnectionLost,
  kTimeout,
  kProtocol,      // the peer broke the protocol (bad length, unknown id, ...)
  kCorruptState,  // a state or cache file could not be parsed
};

const std::error_category& ferry_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), ferry_category()};
}

}  // namespace ferry

template <>
struct std::is_error_code_enum<ferry::errc> : std::true_type {};

#endif  // FERRY_ERROR_H_
