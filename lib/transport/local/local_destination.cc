#include "lib/transport/local/local_destination.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <asio/thread_pool.hpp>
#include <atomic>
#include <cerrno>
#include <random>

#include "ferry/error.h"
#include "lib/base/offload.h"
#include "lib/base/path.h"
#include "lib/scan/scan.h"

namespace ferry::transport {
namespace {

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Opens `rel` (a directory, or "" for the root itself) beneath `root_fd`
// without following any symlink and without leaving the root.
Result<Fd> OpenBeneath(int root_fd, std::string_view rel, uint64_t flags) {
  if (!IsSafeRelPath(rel)) return Error{errc::kUnsafePath, std::string(rel)};
  struct open_how how = {};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  std::string path = rel.empty() ? "." : std::string(rel);
  long fd = ::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how);
  if (fd < 0) {
    // ELOOP here means a symlink sat on the path: name that clearly.
    if (errno == ELOOP || errno == EXDEV) return Error{errc::kUnsafePath, path};
    return Error{LastSystemError(), path};
  }
  return Fd(static_cast<int>(fd));
}

Result<Fd> OpenParent(int root_fd, std::string_view rel) {
  if (rel.empty() || !IsSafeRelPath(rel)) return Error{errc::kUnsafePath, std::string(rel)};
  return OpenBeneath(root_fd, ParentOf(rel), O_PATH | O_DIRECTORY);
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  uint64_t v = rng();
  std::string s(16, '0');
  for (int i = 0; i < 16; ++i) s[i] = kHex[(v >> (i * 4)) & 15];
  return s;
}

Status WriteAll(int fd, std::span<const std::byte> data, uint64_t offset, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{LastSystemError(), what};
    }
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

// rm -rf of `name` inside `dirfd`, never following symlinks.
Status RemoveTree(int dirfd, const std::string& name, const std::string& what) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return Error{LastSystemError(), what};
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return Error{LastSystemError(), what};
    }
    return {};
  }
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error{LastSystemError(), what};
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return Error{LastSystemError(), what};
  }
  std::vector<std::string> children;
  while (struct dirent* de = ::readdir(d)) {
    std::string_view child = de->d_name;
    if (child != "." && child != "..") children.emplace_back(child);
  }
  Status result;
  for (const std::string& child : children) {
    std::string child_what = what;
    child_what.append("/").append(child);
    result = RemoveTree(::dirfd(d), child, child_what);
    if (!result.ok()) break;
  }
  ::closedir(d);
  if (!result.ok()) return result;
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return Error{LastSystemError(), what};
  }
  return {};
}

// Sets mode and mtime on the open temp file, optionally syncs, closes it
// (checking close, which can report delayed write errors) and renames it over
// `final_name`. The caller removes the temp on failure.
Status FinishFile(Fd& file, int dirfd, const std::string& temp_name, const std::string& final_name,
                  const CommitAttrs& attrs, const std::string& display) {
  int fd = file.get();
  if (::fchmod(fd, attrs.mode & 07777) != 0) return Error{LastSystemError(), display};
  struct timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = attrs.mtime_ns / 1'000'000'000;
  times[1].tv_nsec = attrs.mtime_ns % 1'000'000'000;
  if (times[1].tv_nsec < 0) {
    times[1].tv_nsec += 1'000'000'000;
    times[1].tv_sec -= 1;
  }
  if (::futimens(fd, times) != 0) return Error{LastSystemError(), display};
  if (attrs.fsync && ::fdatasync(fd) != 0) return Error{LastSystemError(), display};
  if (::close(file.Release()) != 0) return Error{LastSystemError(), display};
  if (::renameat(dirfd, temp_name.c_str(), dirfd, final_name.c_str()) != 0) {
    return Error{LastSystemError(), display};
  }
  if (attrs.fsync) {
    // The rename itself is durable only once the directory is synced.
    int dfd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  return {};
}

class LocalFileSink final : public FileSink {
 public:
  LocalFileSink(asio::thread_pool& pool, Fd parent, Fd file, std::string temp_name,
                std::string final_name, std::string display)
      : pool_(pool),
        parent_(std::move(parent)),
        file_(std::move(file)),
        temp_name_(std::move(temp_name)),
        final_name_(std::move(final_name)),
        display_(std::move(display)) {}

  // A part file of a resumable upload: kept on Abort, written from `existing`.
  LocalFileSink(asio::thread_pool& pool, Fd parent, Fd file, std::string part_name,
                std::string final_name, std::string display, uint64_t existing)
      : pool_(pool),
        parent_(std::move(parent)),
        file_(std::move(file)),
        temp_name_(std::move(part_name)),
        final_name_(std::move(final_name)),
        display_(std::move(display)),
        offset_(existing),
        keep_on_abort_(true) {}

  ~LocalFileSink() override {
    // Not committed nor aborted (e.g. the engine was torn down): do not leave
    // the temp behind. Blocking, but only on this abnormal path.
    if (!finished_) {
      file_.Reset();
      if (!keep_on_abort_) ::unlinkat(parent_.get(), temp_name_.c_str(), 0);
    }
  }

  asio::awaitable<Status> ResumeAt(uint64_t offset) override {
    if (!keep_on_abort_ || written_) {
      co_return Error{errc::kUnsupported, display_ + ": cannot resume this upload"};
    }
    auto job = [this, offset]() -> Status {
      if (::ftruncate(file_.get(), static_cast<off_t>(offset)) != 0) {
        return Error{LastSystemError(), display_};
      }
      return {};
    };
    Status st = co_await Offload(pool_, std::move(job));
    if (st.ok()) offset_ = offset;
    co_return st;
  }

  asio::awaitable<Status> Write(std::span<const std::byte> data) override {
    written_ = true;
    uint64_t offset = offset_;
    offset_ += data.size();
    auto job = [this, data, offset] { return WriteAll(file_.get(), data, offset, display_); };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Status> Commit(CommitAttrs attrs) override {
    auto job = [this, attrs]() -> Status {
      return FinishFile(file_, parent_.get(), temp_name_, final_name_, attrs, display_);
    };
    Status st = co_await Offload(pool_, std::move(job));
    if (!st.ok()) co_await Abort();
    finished_ = true;
    co_return st;
  }

  asio::awaitable<void> Abort() override {
    if (finished_) co_return;
    finished_ = true;
    auto job = [this]() -> int {
      file_.Reset();
      if (!keep_on_abort_) ::unlinkat(parent_.get(), temp_name_.c_str(), 0);
      return 0;
    };
    (void)co_await Offload(pool_, std::move(job));
  }

 private:
  asio::thread_pool& pool_;
  Fd parent_;
  Fd file_;
  std::string temp_name_;
  std::string final_name_;
  std::string display_;
  uint64_t offset_ = 0;
  bool keep_on_abort_ = false;
  bool written_ = false;
  bool finished_ = false;
};

class LocalDestination final : public Destination {
 public:
  LocalDestination(std::string root, asio::thread_pool& pool)
      : root_(std::move(root)), pool_(pool) {}

  std::string Describe() const override { return root_; }
  int64_t MtimeGranularityNs() const override { return 1; }

  asio::awaitable<Status> Open(bool dry_run) override {
    auto job = [this, dry_run]() -> Result<Fd> {
      int fd = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT && !dry_run) {
        if (Status st = MakeDirs(root_); !st.ok()) return st.error();
        fd = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      }
      if (fd < 0 && errno == ENOENT && dry_run) return Fd();
      if (fd < 0) return Error{LastSystemError(), root_};
      return Fd(fd);
    };
    auto opened = co_await Offload(pool_, std::move(job));
    if (!opened.ok()) co_return opened.error();
    root_fd_ = std::move(*opened);
    co_return Status();
  }

  asio::awaitable<Result<Listing>> List(std::string dir) override {
    if (!root_fd_.valid()) co_return Listing{};  // dry run of a root that does not exist
    auto job = [this, dir]() -> Result<Listing> {
      auto fd = OpenBeneath(root_fd_.get(), dir, O_RDONLY | O_DIRECTORY);
      if (!fd.ok()) {
        if (fd.code() == std::errc::no_such_file_or_directory) return Listing{};
        return Error{fd.code(), Display(dir)};
      }
      // /proc/self/fd/N lets ListDirectory reuse the already-resolved directory.
      auto entries = scan::ListDirectory("/proc/self/fd/" + std::to_string(fd->get()), false);
      if (!entries.ok()) return Error{entries.code(), Display(dir)};
      Listing listing;
      listing.exists = true;
      listing.entries = std::move(*entries);
      return listing;
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Status> MakeDir(std::string path, uint32_t mode) override {
    auto job = [this, path, mode]() -> Status {
      auto parent = OpenParent(root_fd_.get(), path);
      if (!parent.ok()) return Error{parent.code(), Display(path)};
      std::string name(BaseName(path));
      // Owner rwx while ferry fills it: a read-only source directory must not
      // make its own copy unwritable to us.
      const mode_t wanted = (mode & 07777) | S_IRWXU;
      if (::mkdirat(parent->get(), name.c_str(), wanted) == 0) {
        // mkdir applies the umask (0777 would become 0755): set the mode exactly.
        if (::fchmodat(parent->get(), name.c_str(), wanted, 0) != 0) {
          return Error{LastSystemError(), Display(path)};
        }
        return {};
      }
      int err = errno;
      struct stat st;
      if (err == EEXIST && ::fstatat(parent->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISDIR(st.st_mode)) {
        return {};
      }
      return Error{{err, std::system_category()}, Display(path)};
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Status> SetDirMode(std::string path, uint32_t mode) override {
    auto job = [this, path, mode]() -> Status {
      if (path.empty() || !IsSafeRelPath(path)) return Error{errc::kUnsafePath, path};
      // O_PATH: no read permission needed (the mode may be 0000). openat2 has
      // refused every symlink on the way, the last component included, so the
      // chmod through the fd's /proc link reaches exactly this directory.
      auto dir = OpenBeneath(root_fd_.get(), path, O_PATH | O_DIRECTORY);
      if (!dir.ok()) return Error{dir.code(), Display(path)};
      std::string proc = "/proc/self/fd/" + std::to_string(dir->get());
      if (::chmod(proc.c_str(), mode & 07777) != 0) return Error{LastSystemError(), Display(path)};
      return {};
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Result<std::unique_ptr<FileSink>>> CreateFile(std::string path) override {
    // A real (not O_PATH) directory fd: the sink syncs it after the rename.
    auto job = [this, path]() -> Result<Fd> {
      if (path.empty() || !IsSafeRelPath(path)) return Error{errc::kUnsafePath, path};
      auto dir = OpenBeneath(root_fd_.get(), ParentOf(path), O_RDONLY | O_DIRECTORY);
      if (!dir.ok()) return Error{dir.code(), Display(path)};
      return dir;
    };
    auto opened = co_await Offload(pool_, std::move(job));
    if (!opened.ok()) co_return opened.error();
    Fd dir = std::move(*opened);
    std::string name(BaseName(path));
    // Several attempts in case a random name collides with a leftover.
    for (int attempt = 0; attempt < 4; ++attempt) {
      std::string temp = std::string(kTempPrefix) + RandomSuffix();
      auto job = [&dir, temp]() -> Result<Fd> {
        int fd = ::openat(dir.get(), temp.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) return LastSystemError();
        return Fd(fd);
      };
      auto file = co_await Offload(pool_, std::move(job));
      if (file.ok()) {
        co_return std::unique_ptr<FileSink>(std::make_unique<LocalFileSink>(
            pool_, std::move(dir), std::move(*file), temp, name, Display(path)));
      }
      if (file.code() != std::errc::file_exists) co_return Error{file.code(), Display(path)};
    }
    co_return Error{std::make_error_code(std::errc::file_exists), Display(path)};
  }

  bool SupportsResume() const override { return true; }

  asio::awaitable<Result<PartSink>> OpenPart(std::string path, std::string part_name) override {
    struct Opened {
      Fd dir;
      Fd file;
      uint64_t size = 0;
    };
    auto job = [this, path, part_name]() -> Result<Opened> {
      if (path.empty() || !IsSafeRelPath(path)) return Error{errc::kUnsafePath, path};
      if (!IsSafeName(part_name) || !IsTempName(part_name)) {
        return Error{errc::kInvalidArgument, "not a part file name: " + Printable(part_name)};
      }
      auto dir = OpenBeneath(root_fd_.get(), ParentOf(path), O_RDONLY | O_DIRECTORY);
      if (!dir.ok()) return Error{dir.code(), Display(path)};
      // O_NOFOLLOW: a symlink under the part name is refused (ELOOP), never followed.
      int fd = ::openat(dir->get(), part_name.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                        0600);
      if (fd < 0) return Error{LastSystemError(), Display(path)};
      Opened out;
      out.dir = std::move(*dir);
      out.file = Fd(fd);
      struct stat st;
      if (::fstat(fd, &st) != 0) return Error{LastSystemError(), Display(path)};
      if (!S_ISREG(st.st_mode)) {
        return Error{std::make_error_code(std::errc::invalid_argument),
                     Display(path) + ": part file is not a regular file"};
      }
      out.size = static_cast<uint64_t>(st.st_size);
      return out;
    };
    auto opened = co_await Offload(pool_, std::move(job));
    if (!opened.ok()) co_return opened.error();
    PartSink part;
    part.existing_bytes = opened->size;
    part.sink = std::make_unique<LocalFileSink>(
        pool_, std::move(opened->dir), std::move(opened->file), part_name,
        std::string(BaseName(path)), Display(path), opened->size);
    co_return part;
  }

  asio::awaitable<Result<std::vector<std::byte>>> ReadRange(std::string path, uint64_t offset,
                                                            size_t max_bytes) override {
    auto job = [this, path, offset, max_bytes]() -> Result<std::vector<std::byte>> {
      auto fd = OpenFile(path);
      if (!fd.ok()) return fd.error();
      std::vector<std::byte> buf(max_bytes);
      size_t got = 0;
      while (got < buf.size()) {
        ssize_t n = ::pread(fd->get(), buf.data() + got, buf.size() - got,
                            static_cast<off_t>(offset + got));
        if (n < 0) {
          if (errno == EINTR) continue;
          return Error{LastSystemError(), Display(path)};
        }
        if (n == 0) break;
        got += static_cast<size_t>(n);
      }
      buf.resize(got);
      return buf;
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Status> PutFile(std::string path, std::span<const std::byte> data,
                                  CommitAttrs attrs) override {
    // Everything in one pool job: small files are most files, and each hop
    // between the io_context and the pool costs more than the syscalls here.
    auto job = [this, &path, data, attrs]() -> Status {
      if (path.empty() || !IsSafeRelPath(path)) return Error{errc::kUnsafePath, path};
      auto dir = OpenBeneath(root_fd_.get(), ParentOf(path), O_RDONLY | O_DIRECTORY);
      if (!dir.ok()) return Error{dir.code(), Display(path)};
      const std::string final_name(BaseName(path));
      for (int attempt = 0; attempt < 4; ++attempt) {
        const std::string temp = std::string(kTempPrefix) + RandomSuffix();
        int fd = ::openat(dir->get(), temp.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
          if (errno == EEXIST) continue;
          return Error{LastSystemError(), Display(path)};
        }
        Fd file(fd);
        Status st = WriteAll(fd, data, 0, Display(path));
        if (st.ok()) st = FinishFile(file, dir->get(), temp, final_name, attrs, Display(path));
        if (!st.ok()) {
          file.Reset();
          ::unlinkat(dir->get(), temp.c_str(), 0);
        }
        return st;
      }
      return Error{std::make_error_code(std::errc::file_exists), Display(path)};
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Status> Symlink(std::string path, std::string target) override {
    auto job = [this, path, target]() -> Status {
      auto parent = OpenParent(root_fd_.get(), path);
      if (!parent.ok()) return Error{parent.code(), Display(path)};
      std::string temp = std::string(kTempPrefix) + RandomSuffix();
      if (::symlinkat(target.c_str(), parent->get(), temp.c_str()) != 0) {
        return Error{LastSystemError(), Display(path)};
      }
      std::string name(BaseName(path));
      if (::renameat(parent->get(), temp.c_str(), parent->get(), name.c_str()) != 0) {
        auto ec = LastSystemError();
        ::unlinkat(parent->get(), temp.c_str(), 0);
        return Error{ec, Display(path)};
      }
      return {};
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Status> Remove(std::string path, EntryType type) override {
    auto job = [this, path]() -> Status {
      auto parent = OpenParent(root_fd_.get(), path);
      if (!parent.ok()) {
        if (parent.code() == std::errc::no_such_file_or_directory) return {};
        return Error{parent.code(), Display(path)};
      }
      // RemoveTree needs a searchable dirfd; O_PATH works for *at calls.
      return RemoveTree(parent->get(), std::string(BaseName(path)), Display(path));
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Status> Rename(std::string from, std::string to) override {
    auto job = [this, from, to]() -> Status {
      auto from_parent = OpenParent(root_fd_.get(), from);
      if (!from_parent.ok()) return Error{from_parent.code(), Display(from)};
      auto to_parent = OpenParent(root_fd_.get(), to);
      if (!to_parent.ok()) return Error{to_parent.code(), Display(to)};
      std::string from_name(BaseName(from)), to_name(BaseName(to));
      if (::renameat(from_parent->get(), from_name.c_str(), to_parent->get(), to_name.c_str()) !=
          0) {
        return Error{LastSystemError(), Display(from) + " -> " + Display(to)};
      }
      return {};
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Result<std::vector<std::byte>>> ReadHead(std::string path,
                                                           size_t max_bytes) override {
    auto job = [this, path, max_bytes]() -> Result<std::vector<std::byte>> {
      auto fd = OpenFile(path);
      if (!fd.ok()) return fd.error();
      std::vector<std::byte> buf(max_bytes);
      ssize_t n = ::pread(fd->get(), buf.data(), buf.size(), 0);
      if (n < 0) return Error{LastSystemError(), Display(path)};
      buf.resize(static_cast<size_t>(n));
      return buf;
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Status> ReadAll(std::string path, ChunkFn chunk_fn) override {
    auto job = [this, path, chunk_fn]() -> Status {
      auto fd = OpenFile(path);
      if (!fd.ok()) return fd.error();
      std::vector<std::byte> buf(1 << 20);
      while (true) {
        ssize_t n = ::read(fd->get(), buf.data(), buf.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          return Error{LastSystemError(), Display(path)};
        }
        if (n == 0) return {};
        chunk_fn(std::span<const std::byte>(buf.data(), static_cast<size_t>(n)));
      }
    };
    co_return co_await Offload(pool_, std::move(job));
  }

  asio::awaitable<Status> Close() override { co_return Status(); }

 private:
  std::string Display(std::string_view rel) const {
    return rel.empty() ? root_ : root_ + "/" + std::string(rel);
  }

  // A regular file beneath the root, opened for reading, no symlinks anywhere.
  Result<Fd> OpenFile(const std::string& path) {
    auto parent = OpenParent(root_fd_.get(), path);
    if (!parent.ok()) return Error{parent.code(), Display(path)};
    std::string name(BaseName(path));
    int fd = ::openat(parent->get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Error{LastSystemError(), Display(path)};
    return Fd(fd);
  }

  // mkdir -p for the root itself (outside the root, symlinks there are the user's).
  static Status MakeDirs(const std::string& path) {
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
      size_t slash = path.find('/', pos + 1);
      partial = path.substr(0, slash);
      pos = slash;
      if (partial.empty() || partial == "/") continue;
      if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return Error{LastSystemError(), partial};
      }
    }
    return {};
  }

  std::string root_;
  asio::thread_pool& pool_;
  Fd root_fd_;
};

}  // namespace

std::unique_ptr<Destination> MakeLocalDestination(std::string root, asio::thread_pool& pool) {
  while (root.size() > 1 && root.ends_with('/')) root.pop_back();
  return std::make_unique<LocalDestination>(std::move(root), pool);
}

}  // namespace ferry::transport
