#include "lib/hash/hash.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <new>
#include <vector>

namespace ferry::hash {
namespace {

Hash128 FromXxh(XXH128_hash_t h) { return {h.high64, h.low64}; }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string Hash128::ToHex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(32, '0');
  for (int i = 0; i < 16; ++i) {
    hex[15 - i] = kDigits[(high >> (4 * i)) & 0xf];
    hex[31 - i] = kDigits[(low >> (4 * i)) & 0xf];
  }
  return hex;
}

std::optional<Hash128> Hash128::FromHex(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  Hash128 h;
  for (size_t i = 0; i < 32; ++i) {
    const int d = HexDigit(hex[i]);
    if (d < 0) return std::nullopt;
    uint64_t& half = i < 16 ? h.high : h.low;
    half = half << 4 | static_cast<uint64_t>(d);
  }
  return h;
}

Hash128 HashBytes(std::span<const std::byte> data) {
  return FromXxh(XXH3_128bits(data.data(), data.size()));
}

Hash128 HashBytes(std::string_view data) { return FromXxh(XXH3_128bits(data.data(), data.size())); }

void StreamingHasher::StateDeleter::operator()(XXH3_state_s* state) const { XXH3_freeState(state); }

StreamingHasher::StreamingHasher() : state_(XXH3_createState()) {
  if (state_ == nullptr) throw std::bad_alloc();
  XXH3_128bits_reset(state_.get());
}

StreamingHasher::~StreamingHasher() = default;
StreamingHasher::StreamingHasher(StreamingHasher&&) noexcept = default;
StreamingHasher& StreamingHasher::operator=(StreamingHasher&&) noexcept = default;

void StreamingHasher::Update(std::span<const std::byte> data) {
  // Only fails for a null state, which the constructor rules out.
  XXH3_128bits_update(state_.get(), data.data(), data.size());
}

Hash128 StreamingHasher::Final() const { return FromXxh(XXH3_128bits_digest(state_.get())); }

void StreamingHasher::Reset() { XXH3_128bits_reset(state_.get()); }

Result<Hash128> HashFile(int fd) {
  // Read-ahead helps; failure to advise does not matter.
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<std::byte> buffer(kHashReadBytes);
  StreamingHasher hasher;
  off_t offset = 0;
  for (;;) {
    const ssize_t n = pread(fd, buffer.data(), buffer.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{LastSystemError(), "pread fd " + std::to_string(fd)};
    }
    if (n == 0) break;
    hasher.Update(std::span(buffer).first(static_cast<size_t>(n)));
    offset += n;
  }
  return hasher.Final();
}

Result<Hash128> HashFile(const std::string& path) {
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Error{LastSystemError(), "open " + path};
  Result<Hash128> result = HashFile(fd);
  close(fd);
  if (!result.ok()) return Error{result.code(), "read " + path};
  return result;
}

}  // namespace ferry::hash
