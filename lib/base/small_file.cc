#include "lib/base/small_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace ferry {
namespace {

// Closes the descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::error_code CheckType(const struct stat& st, SpecialFiles special) {
  if (S_ISREG(st.st_mode)) return {};
  if (S_ISDIR(st.st_mode)) return std::make_error_code(std::errc::is_a_directory);
  if (special == SpecialFiles::kAllowCharDevices && S_ISCHR(st.st_mode)) return {};
  return std::make_error_code(std::errc::invalid_argument);
}

}  // namespace

Result<std::string> ReadSmallFile(const std::string& path, size_t max_size, SpecialFiles special) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return Error{LastSystemError(), path};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error{LastSystemError(), path};
  if (const std::error_code ec = CheckType(st, special)) return Error{ec, path};
  if (S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) > max_size) {
    return Error{std::make_error_code(std::errc::file_too_large), path};
  }
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{LastSystemError(), path};
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > max_size) {
      return Error{std::make_error_code(std::errc::file_too_large), path};
    }
  }
  return text;
}

Status WriteAll(int fd, std::string_view data, const std::string& name) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status(LastSystemError(), "write " + name);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace ferry
