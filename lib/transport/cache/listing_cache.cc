#include "lib/transport/cache/listing_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "lib/base/path.h"
#include "lib/base/small_file.h"
#include "lib/hash/hash_cache.h"

namespace ferry::transport {
namespace {

constexpr size_t kFlushBytes = 1 << 20;
constexpr size_t kEndRecordBytes = 1 + 16;
// The smallest encoded entry: type, empty name and target, size, mtime, mode.
constexpr size_t kMinEntryBytes = 1 + 4 + 8 + 8 + 4 + 4;

template <typename T>
void PutInt(std::string& out, T value) {
  char bytes[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) {
    bytes[i] = static_cast<char>(static_cast<uint64_t>(value) >> (8 * i));
  }
  out.append(bytes, sizeof(T));
}

void PutString(std::string& out, std::string_view s) {
  PutInt<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Bounds-checked reading of the format; every Get fails once past the end.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }
  void Seek(size_t pos) { pos_ = pos; }

  template <typename T>
  bool Get(T& value) {
    if (remaining() < sizeof(T)) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      v |= static_cast<uint64_t>(std::to_integer<uint8_t>(bytes_[pos_ + i])) << (8 * i);
    }
    value = static_cast<T>(v);
    pos_ += sizeof(T);
    return true;
  }
  bool GetString(std::string& s) {
    uint32_t size = 0;
    if (!Get(size) || remaining() < size) return false;
    s.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), size);
    pos_ += size;
    return true;
  }
  bool Skip(size_t n) {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
  }

 private:
  std::span<const std::byte> bytes_;
  size_t pos_ = 0;
};

bool IsCachedDirPath(std::string_view path) { return path.empty() || IsSafeRelPath(path); }

// Reads the entries of a 'D' record; `r` is at its dir_mtime_ns field.
bool ReadListing(Reader& r, int64_t& dir_mtime_ns, Listing& listing) {
  uint64_t unsafe = 0;
  uint32_t count = 0;
  if (!r.Get(dir_mtime_ns) || !r.Get(unsafe) || !r.Get(count)) return false;
  // A hostile count cannot make us allocate more than the file could hold.
  if (count > r.remaining() / kMinEntryBytes) return false;
  listing.exists = true;
  listing.unsafe_names = static_cast<size_t>(unsafe);
  listing.entries.clear();
  listing.entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    Entry e;
    uint8_t type = 0;
    if (!r.Get(type) || type > static_cast<uint8_t>(EntryType::kSpecial)) return false;
    e.type = static_cast<EntryType>(type);
    if (!r.GetString(e.name) || !IsSafeName(e.name)) return false;
    if (!r.Get(e.size) || !r.Get(e.mtime_ns) || !r.Get(e.mode)) return false;
    if (!r.GetString(e.link_target)) return false;
    listing.entries.push_back(std::move(e));
  }
  return true;
}

}  // namespace

void AppendListingRecord(std::string& out, const std::string& dir, int64_t dir_mtime_ns,
                         const Listing& listing) {
  out.push_back('D');
  PutString(out, dir);
  PutInt<int64_t>(out, dir_mtime_ns);
  PutInt<uint64_t>(out, listing.unsafe_names);
  PutInt<uint32_t>(out, static_cast<uint32_t>(listing.entries.size()));
  for (const Entry& e : listing.entries) {
    PutInt<uint8_t>(out, static_cast<uint8_t>(e.type));
    PutString(out, e.name);
    PutInt<uint64_t>(out, e.size);
    PutInt<int64_t>(out, e.mtime_ns);
    PutInt<uint32_t>(out, e.mode);
    PutString(out, e.link_target);
  }
}

void AppendForgetRecord(std::string& out, const std::string& dir) {
  out.push_back('X');
  PutString(out, dir);
}

void AppendEndRecord(std::string& out) {
  const hash::Hash128 h = hash::HashBytes(std::string_view(out));
  out.push_back('E');
  PutInt<uint64_t>(out, h.low);
  PutInt<uint64_t>(out, h.high);
}

// ---- snapshot ---------------------------------------------------------------------

ListingCacheSnapshot::ListingCacheSnapshot(ListingCacheSnapshot&& other) noexcept
    : map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      bytes_(std::exchange(other.bytes_, {})),
      index_(std::move(other.index_)),
      discarded_(other.discarded_) {}

ListingCacheSnapshot& ListingCacheSnapshot::operator=(ListingCacheSnapshot&& other) noexcept {
  if (this != &other) {
    if (map_ != nullptr) munmap(map_, map_size_);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    bytes_ = std::exchange(other.bytes_, {});
    index_ = std::move(other.index_);
    discarded_ = other.discarded_;
  }
  return *this;
}

ListingCacheSnapshot::~ListingCacheSnapshot() {
  if (map_ != nullptr) munmap(map_, map_size_);
}

ListingCacheSnapshot ListingCacheSnapshot::Load(const std::string& path) {
  ListingCacheSnapshot snapshot;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snapshot.discarded_ = errno != ENOENT;
    return snapshot;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
    close(fd);
    snapshot.discarded_ = true;
    return snapshot;
  }
  void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    snapshot.discarded_ = true;
    return snapshot;
  }
  snapshot.map_ = map;
  snapshot.map_size_ = static_cast<size_t>(st.st_size);
  snapshot.bytes_ = {static_cast<const std::byte*>(map), snapshot.map_size_};
  if (!snapshot.Index(snapshot.bytes_)) {
    snapshot.index_.clear();
    snapshot.discarded_ = true;
  }
  return snapshot;
}

ListingCacheSnapshot ListingCacheSnapshot::Parse(std::span<const std::byte> bytes) {
  ListingCacheSnapshot snapshot;
  snapshot.bytes_ = bytes;
  if (!snapshot.Index(bytes)) {
    snapshot.index_.clear();
    snapshot.discarded_ = true;
  }
  return snapshot;
}

bool ListingCacheSnapshot::Index(std::span<const std::byte> bytes) {
  const size_t header = kListingCacheHeader.size();
  if (bytes.size() < header + kEndRecordBytes) return false;
  if (std::memcmp(bytes.data(), kListingCacheHeader.data(), header) != 0) return false;
  const size_t end = bytes.size() - kEndRecordBytes;
  if (bytes[end] != std::byte{'E'}) return false;
  Reader tail(bytes.subspan(end + 1));
  hash::Hash128 stored;
  if (!tail.Get(stored.low) || !tail.Get(stored.high)) return false;
  if (hash::HashBytes(bytes.first(end)) != stored) return false;

  Reader r(bytes.first(end));
  r.Seek(header);
  std::string path;
  Listing scratch;
  while (r.remaining() > 0) {
    uint8_t kind = 0;
    if (!r.Get(kind) || !r.GetString(path) || !IsCachedDirPath(path)) return false;
    if (kind == 'X') {
      index_.erase(path);
    } else if (kind == 'D') {
      const size_t at = r.offset();
      int64_t mtime = 0;
      if (!ReadListing(r, mtime, scratch)) return false;
      index_[path] = at;
    } else {
      return false;
    }
  }
  return true;
}

std::optional<ListingCacheSnapshot::Recorded> ListingCacheSnapshot::Find(
    const std::string& path) const {
  auto it = index_.find(path);
  if (it == index_.end()) return std::nullopt;
  Reader r(bytes_.first(bytes_.size() - kEndRecordBytes));
  r.Seek(it->second);
  Recorded recorded;
  // Index() parsed this record already; a failure here cannot happen, but the
  // cache is never trusted blindly.
  if (!ReadListing(r, recorded.dir_mtime_ns, recorded.listing)) return std::nullopt;
  return recorded;
}

// ---- writer -----------------------------------------------------------------------

namespace {

// Removes "<base>.tmp.<pid>" files whose process is gone (a killed run's).
void RemoveDeadTemps(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const std::string prefix = p.filename().string() + ".tmp.";
  DIR* dir = opendir(p.parent_path().c_str());
  if (dir == nullptr) return;
  while (const dirent* d = readdir(dir)) {
    std::string_view name = d->d_name;
    if (!name.starts_with(prefix)) continue;
    const long pid = std::strtol(d->d_name + prefix.size(), nullptr, 10);
    if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      unlinkat(dirfd(dir), d->d_name, 0);
    }
  }
  closedir(dir);
}

}  // namespace

Result<std::unique_ptr<ListingCacheWriter>> ListingCacheWriter::Create(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return Error{ec, "creating the directory of " + path};
  RemoveDeadTemps(path);
  std::string temp = path + ".tmp." + std::to_string(getpid());
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error{LastSystemError(), "creating " + temp};
  auto writer = std::unique_ptr<ListingCacheWriter>(new ListingCacheWriter(path, temp, fd));
  if (Status st = writer->Write(kListingCacheHeader); !st.ok()) return st.error();
  return writer;
}

ListingCacheWriter::ListingCacheWriter(std::string path, std::string temp, int fd)
    : path_(std::move(path)), temp_(std::move(temp)), fd_(fd) {}

ListingCacheWriter::~ListingCacheWriter() {
  if (fd_ >= 0) close(fd_);
  if (!committed_) unlink(temp_.c_str());
}

Status ListingCacheWriter::Write(std::string_view records) {
  hasher_.Update(std::as_bytes(std::span(records.data(), records.size())));
  return WriteAll(fd_, records, temp_);
}

Status ListingCacheWriter::Commit() {
  const hash::Hash128 h = hasher_.Final();
  std::string end;
  end.push_back('E');
  PutInt<uint64_t>(end, h.low);
  PutInt<uint64_t>(end, h.high);
  if (Status st = WriteAll(fd_, end, temp_); !st.ok()) return st;
  // No fsync: a torn file fails its checksum and is simply not used.
  if (close(std::exchange(fd_, -1)) != 0) return Status(LastSystemError(), "close " + temp_);
  if (rename(temp_.c_str(), path_.c_str()) != 0) {
    return Status(LastSystemError(), "rename " + temp_);
  }
  committed_ = true;
  return {};
}

std::string DefaultListingCachePath(std::string_view destination) {
  return hash::FerryCacheDirectory() + "/listings-" + hash::HashBytes(destination).ToHex() + ".v1";
}

}  // namespace ferry::transport
