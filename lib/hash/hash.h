// Content hashes: XXH3 128-bit, one-shot, streaming, and over a file descriptor.
//
// XXH3 is not cryptographic: it detects changes and corruption, not tampering.
// Pure and synchronous; HashFile() blocks on reads, so callers run it on a thread pool.
#ifndef FERRY_HASH_HASH_H_
#define FERRY_HASH_HASH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lib/base/result.h"

struct XXH3_state_s;  // xxhash.h stays out of ferry's headers.

namespace ferry::hash {

// An XXH3-128 value. ToHex() is the canonical form `xxhsum -H2` (xxh128sum) prints:
// high then low, big-endian, 32 lowercase hex digits.
struct Hash128 {
  uint64_t high = 0;
  uint64_t low = 0;

  bool operator==(const Hash128&) const = default;

  std::string ToHex() const;
  // Accepts exactly 32 hex digits (either case); nullopt otherwise.
  static std::optional<Hash128> FromHex(std::string_view hex);
};

// One-shot XXH3-128 (seed 0).
Hash128 HashBytes(std::span<const std::byte> data);
Hash128 HashBytes(std::string_view data);

// XXH3-128 over data fed in pieces; equals HashBytes() of the concatenation.
// Not thread-safe: one thread at a time (it is movable between threads).
class StreamingHasher {
 public:
  // Throws std::bad_alloc if the state (about 600 bytes) cannot be allocated.
  StreamingHasher();
  ~StreamingHasher();
  StreamingHasher(StreamingHasher&&) noexcept;
  StreamingHasher& operator=(StreamingHasher&&) noexcept;
  StreamingHasher(const StreamingHasher&) = delete;
  StreamingHasher& operator=(const StreamingHasher&) = delete;

  void Update(std::span<const std::byte> data);
  // The hash of everything fed since construction or Reset(). Does not end the
  // stream: more Update() calls may follow.
  Hash128 Final() const;
  // Starts over, keeping the allocation.
  void Reset();

 private:
  struct StateDeleter {
    void operator()(XXH3_state_s* state) const;
  };
  std::unique_ptr<XXH3_state_s, StateDeleter> state_;
};

// HashFile() reads this much per pread().
inline constexpr size_t kHashReadBytes = 1 << 20;

// Hashes a file's contents from offset 0 to end of file, with pread() (the
// descriptor's offset is not used or moved). The file should not change meanwhile:
// callers that need to know compare fstat() before and after. Errors are system
// errors (EIO, EISDIR, ...), with the path (or fd) in the detail.
Result<Hash128> HashFile(int fd);
Result<Hash128> HashFile(const std::string& path);

}  // namespace ferry::hash

#endif  // FERRY_HASH_HASH_H_
