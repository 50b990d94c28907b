#include "ferry/error.h"

namespace ferry {
namespace {

class FerryCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ferry"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::kOk:
        return "success";
      case errc::kInvalidArgument:
        return "invalid argument";
      case errc::kSourceMissing:
        return "source does not exist";
      case errc::kDestinationInsideSource:
        return "destination is inside the source";
      case errc::kSourceIsDestination:
        return "source and destination are the same";
      case errc::kSourceChanged:
        return "file changed while it was read";
      case errc::kSourceVanished:
        return "file vanished before it could be read";
      case errc::kUnsafePath:
        return "unsafe path (would escape the destination)";
      case errc::kSpecialFile:
        return "special file (device, fifo or socket) not transferred";
      case errc::kTypeConflict:
        return "type conflict between source and destination";
      case errc::kMaxDeleteExceeded:
        return "--max-delete limit exceeded, nothing deleted";
      case errc::kDeleteSkipped:
        return "deletions skipped because of errors";
      case errc::kCancelled:
        return "cancelled";
      case errc::kUnsupported:
        return "not supported";
      case errc::kHostKeyUnknown:
        return "host key unknown";
      case errc::kHostKeyMismatch:
        return "host key does not match known_hosts";
      case errc::kHostKeyRevoked:
        return "host key is revoked";
      case errc::kAuthFailed:
        return "authentication failed";
      case errc::kConnectionLost:
        return "connection lost";
      case errc::kTimeout:
        return "timed out";
      case errc::kProtocol:
        return "protocol error";
      case errc::kCorruptState:
        return "corrupt state file";
    }
    return "unknown ferry error";
  }
};

}  // namespace

const std::error_category& ferry_category() noexcept {
  static const FerryCategory category;
  return category;
}

}  // namespace ferry
