#include "tests/testing/tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>

namespace ferry::testing {
namespace {

[[noreturn]] void Fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " '" + path + "': " + std::strerror(errno));
}

int64_t ToNs(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct timespec FromNs(int64_t ns) {
  struct timespec ts;
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1'000'000'000;
    ts.tv_sec -= 1;
  }
  return ts;
}

void MkdirP(const std::string& path) {
  if (path.empty()) return;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) return;
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) MkdirP(path.substr(0, slash));
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) Fail("mkdir", path);
}

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

std::string Octal(mode_t m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m));
  return buf;
}

void Walk(const std::string& root, const std::string& rel, std::map<std::string, NodeInfo>& out) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) Fail("opendir", dir);
  std::vector<std::string> names;
  while (struct dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  for (const std::string& name : names) {
    std::string child_rel = rel.empty() ? name : rel + "/" + name;
    std::string path = root + "/" + child_rel;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) Fail("lstat", path);
    NodeInfo info;
    info.mode = st.st_mode & 07777;
    info.mtime_ns = ToNs(st.st_mtim);
    if (S_ISREG(st.st_mode)) {
      info.type = 'f';
      info.size = static_cast<uint64_t>(st.st_size);
      info.content = ReadFile(path);
    } else if (S_ISDIR(st.st_mode)) {
      info.type = 'd';
    } else if (S_ISLNK(st.st_mode)) {
      info.type = 'l';
      std::string target(4096, '\0');
      ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
      if (n < 0) Fail("readlink", path);
      target.resize(static_cast<size_t>(n));
      info.target = target;
    } else if (S_ISFIFO(st.st_mode)) {
      info.type = 'p';
    } else {
      info.type = 's';
    }
    out[child_rel] = info;
    if (info.type == 'd') Walk(root, child_rel, out);
  }
}

}  // namespace

std::string MakeTempDir(std::string_view prefix) {
  static std::atomic<int> counter{0};
  const char* base = std::getenv("TEST_TMPDIR");
  std::string root = base != nullptr && *base != '\0' ? base : "/tmp";
  std::string path = root + "/" + std::string(prefix) + "-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter++);
  std::string tmpl = path + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp", tmpl);
  return tmpl;
}

void WriteFile(const std::string& path, std::string_view content, mode_t mode,
               std::optional<int64_t> mtime_ns) {
  MkdirP(Parent(path));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) Fail("open", path);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      ::close(fd);
      Fail("write", path);
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) Fail("fchmod", path);
  ::close(fd);
  if (mtime_ns) SetMtime(path, *mtime_ns);
}

void MakeDir(const std::string& path, mode_t mode) {
  MkdirP(path);
  if (::chmod(path.c_str(), mode) != 0) Fail("chmod", path);
}

void MakeSymlink(const std::string& path, const std::string& target) {
  MkdirP(Parent(path));
  if (::symlink(target.c_str(), path.c_str()) != 0) Fail("symlink", path);
}

void MakeFifo(const std::string& path) {
  MkdirP(Parent(path));
  if (::mkfifo(path.c_str(), 0644) != 0) Fail("mkfifo", path);
}

void SetMtime(const std::string& path, int64_t mtime_ns) {
  struct timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1] = FromNs(mtime_ns);
  if (::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) Fail("utimensat", path);
}

int64_t GetMtime(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) Fail("lstat", path);
  return ToNs(st.st_mtim);
}

std::string ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) Fail("open", path);
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      ::close(fd);
      Fail("read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xFF);
  return out;
}

std::map<std::string, NodeInfo> Snapshot(const std::string& root) {
  std::map<std::string, NodeInfo> out;
  Walk(root, "", out);
  return out;
}

std::map<std::string, NodeInfo> SettledSnapshot(const std::string& root) {
  for (int attempt = 1;; ++attempt) {
    try {
      return Snapshot(root);
    } catch (const std::exception&) {  // Snapshot throws on a failed lstat
      if (attempt == 50) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

std::vector<std::string> CompareTrees(const std::string& src, const std::string& dst,
                                      CompareOptions options) {
  auto a = Snapshot(src);
  auto b = Snapshot(dst);
  std::vector<std::string> diffs;
  for (const auto& [path, s] : a) {
    auto it = b.find(path);
    if (it == b.end()) {
      diffs.push_back("missing in dst: " + path);
      continue;
    }
    const NodeInfo& d = it->second;
    if (s.type != d.type) {
      diffs.push_back("type differs: " + path + " (" + s.type + " vs " + d.type + ")");
      continue;
    }
    if (s.type == 'f' && s.content != d.content) {
      diffs.push_back("content differs: " + path + " (" + std::to_string(s.size) + " vs " +
                      std::to_string(d.size) + " bytes)");
    }
    if (s.type == 'l' && s.target != d.target) {
      diffs.push_back("target differs: " + path + " (" + s.target + " vs " + d.target + ")");
    }
    if (s.type != 'l' && s.mode != d.mode) {
      diffs.push_back("mode differs: " + path + " (" + Octal(s.mode) + " vs " + Octal(d.mode) +
                      ")");
    }
    bool skip_mtime = (s.type == 'd' && options.ignore_dir_mtime) ||
                      (s.type == 'l' && options.ignore_symlink_mtime);
    if (!skip_mtime && s.mtime_ns != d.mtime_ns) {
      diffs.push_back("mtime differs: " + path + " (" + std::to_string(s.mtime_ns) + " vs " +
                      std::to_string(d.mtime_ns) + ")");
    }
  }
  for (const auto& [path, d] : b) {
    if (!a.count(path)) diffs.push_back("extra in dst: " + path);
  }
  return diffs;
}

std::vector<std::string> FindTemps(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& [path, info] : Snapshot(dir)) {
    size_t slash = path.rfind('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    if (name.rfind(".ferry-tmp-", 0) == 0) out.push_back(path);
  }
  return out;
}

}  // namespace ferry::testing
