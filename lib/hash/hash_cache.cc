#include "lib/hash/hash_cache.h"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <utility>
#include <vector>

#include "lib/base/small_file.h"

namespace ferry::hash {
namespace {

constexpr size_t kWriteBufferBytes = 1 << 20;

int64_t ToNs(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ToNs(ts);
}

// Parses all of `field` as a decimal number.
template <typename T>
bool ParseNumber(std::string_view field, T& value) {
  if (field.empty()) return false;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  return ec == std::errc() && end == field.data() + field.size();
}

// Splits off the text up to the next space; false when there is none.
bool NextField(std::string_view& rest, std::string_view& field) {
  const size_t space = rest.find(' ');
  if (space == std::string_view::npos) return false;
  field = rest.substr(0, space);
  rest.remove_prefix(space + 1);
  return true;
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

}  // namespace

FileIdentity FileIdentity::FromStat(const struct stat& st) {
  return {
      .dev = static_cast<uint64_t>(st.st_dev),
      .ino = static_cast<uint64_t>(st.st_ino),
      .size = static_cast<uint64_t>(st.st_size),
      .mtime_ns = ToNs(st.st_mtim),
      .ctime_ns = ToNs(st.st_ctim),
  };
}

size_t HashCache::KeyHash::operator()(const Key& k) const noexcept {
  // Inode numbers are dense and devices few: mix so buckets spread.
  uint64_t h = k.ino * 0x9E3779B97F4A7C15ull ^ (k.dev + 0x632BE59BD9B4E019ull);
  h ^= h >> 29;
  return static_cast<size_t>(h);
}

HashCache::HashCache(HashCache&& other) noexcept {
  std::lock_guard lock(other.mu_);
  path_ = std::move(other.path_);
  discarded_ = other.discarded_;
  entries_ = std::move(other.entries_);
}

HashCache& HashCache::operator=(HashCache&& other) noexcept {
  if (this != &other) {
    std::scoped_lock lock(mu_, other.mu_);
    path_ = std::move(other.path_);
    discarded_ = other.discarded_;
    entries_ = std::move(other.entries_);
  }
  return *this;
}

bool HashCache::ParseLine(std::string_view line, Map& entries) {
  std::string_view dev, ino, size, mtime, ctime;
  if (!NextField(line, dev) || !NextField(line, ino) || !NextField(line, size) ||
      !NextField(line, mtime) || !NextField(line, ctime)) {
    return false;
  }
  Key key;
  Entry entry{};
  if (!ParseNumber(dev, key.dev) || !ParseNumber(ino, key.ino) || !ParseNumber(size, entry.size) ||
      !ParseNumber(mtime, entry.mtime_ns) || !ParseNumber(ctime, entry.ctime_ns)) {
    return false;
  }
  std::optional<Hash128> hash = Hash128::FromHex(line);  // the rest: exactly 32 digits
  if (!hash) return false;
  entry.hash = *hash;
  entry.in_use = false;
  // Save() never writes an identity twice.
  return entries.emplace(key, entry).second;
}

Result<HashCache> HashCache::Load(const std::string& path) {
  HashCache cache(path);
  std::unique_ptr<FILE, FileCloser> file(std::fopen(path.c_str(), "re"));
  if (file == nullptr) {
    if (errno == ENOENT) return cache;
    return Error{LastSystemError(), "open " + path};
  }
  char* raw_line = nullptr;
  size_t capacity = 0;
  bool header_seen = false;
  bool corrupt = false;
  for (;;) {
    errno = 0;
    const ssize_t n = getline(&raw_line, &capacity, file.get());
    if (n < 0) break;
    std::string_view line(raw_line, static_cast<size_t>(n));
    // Every line Save() writes ends in '\n'; a missing one means a cut-off file.
    if (line.empty() || line.back() != '\n') {
      corrupt = true;
      break;
    }
    line.remove_suffix(1);
    if (!header_seen) {
      header_seen = true;
      if (line != kHeader) {
        corrupt = true;
        break;
      }
      continue;
    }
    if (!ParseLine(line, cache.entries_)) {
      corrupt = true;
      break;
    }
  }
  const int read_errno = errno;
  const bool read_failed = std::ferror(file.get()) != 0;
  std::free(raw_line);
  if (read_failed) {
    return Error{{read_errno != 0 ? read_errno : EIO, std::system_category()}, "read " + path};
  }
  if (corrupt || !header_seen) {
    cache.entries_.clear();
    cache.discarded_ = true;
  }
  return cache;
}

std::optional<Hash128> HashCache::Lookup(const FileIdentity& id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(Key{id.dev, id.ino});
  if (it == entries_.end()) return std::nullopt;
  const Entry& e = it->second;
  if (e.size != id.size || e.mtime_ns != id.mtime_ns || e.ctime_ns != id.ctime_ns) {
    return std::nullopt;
  }
  e.in_use = true;
  return e.hash;
}

void HashCache::Store(const FileIdentity& id, const Hash128& hash) {
  const int64_t racy_after = NowNs() - kRacyWindowNs;
  if (id.mtime_ns > racy_after || id.ctime_ns > racy_after) return;
  std::lock_guard lock(mu_);
  entries_.insert_or_assign(Key{id.dev, id.ino},
                            Entry{id.size, id.mtime_ns, id.ctime_ns, hash, /*in_use=*/true});
}

size_t HashCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

Status HashCache::WriteTo(int fd, const std::string& name) const {
  std::string buffer;
  buffer.reserve(kWriteBufferBytes + 128);
  buffer.append(kHeader);
  buffer.push_back('\n');
  for (const auto& [key, e] : entries_) {
    if (!e.in_use) continue;
    buffer += std::to_string(key.dev);
    buffer += ' ';
    buffer += std::to_string(key.ino);
    buffer += ' ';
    buffer += std::to_string(e.size);
    buffer += ' ';
    buffer += std::to_string(e.mtime_ns);
    buffer += ' ';
    buffer += std::to_string(e.ctime_ns);
    buffer += ' ';
    buffer += e.hash.ToHex();
    buffer += '\n';
    if (buffer.size() >= kWriteBufferBytes) {
      if (Status s = WriteAll(fd, buffer, name); !s.ok()) return s;
      buffer.clear();
    }
  }
  return WriteAll(fd, buffer, name);
}

Status HashCache::Save() const {
  namespace fs = std::filesystem;
  const fs::path target(path_);
  const fs::path dir = target.parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status(ec, "create directory " + dir.string());
  }
  const std::string tmp = path_ + ".tmp." + std::to_string(getpid());

  std::lock_guard lock(mu_);
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status(LastSystemError(), "open " + tmp);
  Status status = WriteTo(fd, tmp);
  if (status.ok() && fsync(fd) != 0) status = Status(LastSystemError(), "fsync " + tmp);
  if (close(fd) != 0 && status.ok()) status = Status(LastSystemError(), "close " + tmp);
  if (status.ok() && std::rename(tmp.c_str(), path_.c_str()) != 0) {
    status = Status(LastSystemError(), "rename " + tmp + " to " + path_);
  }
  if (!status.ok()) {
    unlink(tmp.c_str());
    return status;
  }
  // Make the rename itself durable. Best effort: some filesystems refuse to sync a
  // directory, and the data is only a cache.
  const int dir_fd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)fsync(dir_fd);
    close(dir_fd);
  }
  return {};
}

std::string FerryCacheDirectory() {
  std::string base;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && xdg[0] == '/') {
    base = xdg;
  } else {
    std::string home;
    if (const char* env = std::getenv("HOME"); env != nullptr && env[0] != '\0') {
      home = env;
    } else {
      struct passwd pw;
      struct passwd* found = nullptr;
      std::vector<char> buf(16384);
      home = getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr
                 ? found->pw_dir
                 : "/tmp";
    }
    base = home + "/.cache";
  }
  return base + "/ferry";
}

std::string DefaultCachePath(std::string_view source_root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path root = fs::absolute(fs::path(source_root), ec);
  if (ec) root = fs::path(source_root);
  std::string normal = root.lexically_normal().string();
  // "/src/" and "/src" are the same tree.
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();

  return FerryCacheDirectory() + "/hashes-" + HashBytes(normal).ToHex() + ".v1";
}

}  // namespace ferry::hash
