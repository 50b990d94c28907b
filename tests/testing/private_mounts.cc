#include "tests/testing/private_mounts.h"

#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ferry::testing {

std::string EnterPrivateMountNamespace() {
  if (::unshare(CLONE_NEWNS) != 0) {
    return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return std::string("make / private: ") + std::strerror(errno);
  }
  return "";
}

Tmpfs::Tmpfs(std::string dir, const std::string& size) : dir_(std::move(dir)) {
  const std::string options = "size=" + size;
  if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) != 0) {
    error_ = std::string("mount tmpfs: ") + std::strerror(errno);
  }
}

Tmpfs::~Tmpfs() {
  if (ok()) ::umount2(dir_.c_str(), MNT_DETACH);
}

std::string Tmpfs::Resize(const std::string& size) {
  const std::string options = "size=" + size;
  if (::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT, options.c_str()) != 0) {
    return std::string("remount tmpfs: ") + std::strerror(errno);
  }
  return "";
}

}  // namespace ferry::testing
