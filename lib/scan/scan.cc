#include "lib/scan/scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace ferry::scan {
namespace {

int64_t ToNs(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Result<std::string> ReadLinkAt(int dirfd, const char* name) {
  std::string target(256, '\0');
  while (true) {
    ssize_t n = ::readlinkat(dirfd, name, target.data(), target.size());
    if (n < 0) return LastSystemError();
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    target.resize(target.size() * 2);
  }
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

}  // namespace

Entry EntryFromStat(std::string name, const struct stat& st) {
  Entry e;
  e.name = std::move(name);
  if (S_ISREG(st.st_mode)) {
    e.type = EntryType::kFile;
  } else if (S_ISDIR(st.st_mode)) {
    e.type = EntryType::kDirectory;
  } else if (S_ISLNK(st.st_mode)) {
    e.type = EntryType::kSymlink;
  } else {
    e.type = EntryType::kSpecial;
  }
  e.size = e.type == EntryType::kFile ? static_cast<uint64_t>(st.st_size) : 0;
  e.mtime_ns = ToNs(st.st_mtim);
  e.ctime_ns = ToNs(st.st_ctim);
  e.mode = st.st_mode & 07777;
  e.dev = st.st_dev;
  e.ino = st.st_ino;
  return e;
}

Result<std::vector<Entry>> ListDirectory(const std::string& dir, bool follow_links) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error{LastSystemError(), dir};
  std::unique_ptr<DIR, DirCloser> d(::fdopendir(fd));
  if (!d) {
    auto ec = LastSystemError();
    ::close(fd);
    return Error{ec, dir};
  }
  std::vector<Entry> entries;
  while (true) {
    errno = 0;
    struct dirent* de = ::readdir(d.get());
    if (de == nullptr) {
      if (errno != 0) return Error{LastSystemError(), dir};
      break;
    }
    std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (::fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // vanished since readdir
      return Error{LastSystemError(), dir + "/" + de->d_name};
    }
    std::string target;
    int follow_errno = 0;
    if (S_ISLNK(st.st_mode)) {
      auto link = ReadLinkAt(fd, de->d_name);
      if (!link.ok()) {
        if (link.code() == std::errc::no_such_file_or_directory) continue;
        return Error{link.code(), dir + "/" + de->d_name};
      }
      target = std::move(*link);
      struct stat followed;
      if (follow_links) {
        if (::fstatat(fd, de->d_name, &followed, 0) == 0) {
          st = followed;
          target.clear();
        } else {
          follow_errno = errno;
        }
      }
    }
    Entry e = EntryFromStat(std::string(name), st);
    e.link_target = std::move(target);
    e.follow_errno = follow_errno;
    entries.push_back(std::move(e));
  }
  return entries;
}

Result<Entry> StatPath(const std::string& path, std::string name, bool follow_links) {
  struct stat st;
  int rc = follow_links ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st);
  if (rc != 0) return Error{LastSystemError(), path};
  Entry e = EntryFromStat(std::move(name), st);
  if (e.type == EntryType::kSymlink) {
    auto link = ReadLinkAt(AT_FDCWD, path.c_str());
    if (!link.ok()) return Error{link.code(), path};
    e.link_target = std::move(*link);
  }
  return e;
}

}  // namespace ferry::scan
