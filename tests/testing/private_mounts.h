// Small file systems for tests that need a full disk: a private mount
// namespace for the test process (mounts made there vanish with it and are
// never seen by the machine) and tmpfs mounts of a chosen size inside it.
// Children started afterwards (sshd and its sessions) share the namespace.
//
// Needs CAP_SYS_ADMIN and an unsandboxed test (tags = ["no-sandbox"]); tests
// skip themselves with the reason EnterPrivateMountNamespace() gives.
#ifndef FERRY_TESTS_TESTING_PRIVATE_MOUNTS_H_
#define FERRY_TESTS_TESTING_PRIVATE_MOUNTS_H_

#include <string>

namespace ferry::testing {

// unshare(CLONE_NEWNS), then makes every mount private (nothing propagates
// back). Call from main() before any thread exists. Returns "" on success,
// otherwise why not (for GTEST_SKIP).
std::string EnterPrivateMountNamespace();

// A tmpfs of `size` (mount(8)'s syntax: "2m") over the directory `dir`, lazily
// unmounted (MNT_DETACH) when destroyed.
class Tmpfs {
 public:
  Tmpfs(std::string dir, const std::string& size);
  ~Tmpfs();
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }  // "mount tmpfs: <strerror>"
  const std::string& dir() const { return dir_; }
  // Remounts with another size (grows the disk: a full disk gets room again).
  // Returns "" or the error.
  std::string Resize(const std::string& size);

 private:
  std::string dir_;
  std::string error_;
};

}  // namespace ferry::testing

#endif  // FERRY_TESTS_TESTING_PRIVATE_MOUNTS_H_
