// The built `ferry` CLI run as a child process, for tests that list //cli:ferry
// in their `data`: stdout (the --json events) and stderr go to files, so a
// test can wait for events, signal the process at a chosen point and read its
// exit code.
//
// Threading: one owner. The destructor SIGKILLs and reaps a child still running.
#ifndef FERRY_TESTS_TESTING_FERRY_PROCESS_H_
#define FERRY_TESTS_TESTING_FERRY_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace ferry::testing {

class FerryProcess {
 public:
  // Starts `ferry ARGS...` with stdin from /dev/null and an environment of its
  // own: HOME is a fresh directory (no ~/.ssh/config or known_hosts of the
  // machine), PATH=/usr/bin:/bin, TEST_TMPDIR passed through.
  explicit FerryProcess(std::vector<std::string> args);
  ~FerryProcess();
  FerryProcess(const FerryProcess&) = delete;
  FerryProcess& operator=(const FerryProcess&) = delete;

  bool started() const { return pid_ > 0; }
  // How often `needle` occurs in what the process printed on stdout so far.
  size_t Count(const std::string& needle) const;
  // Lines on stdout that are per-file events (--json): the run is mid-transfer.
  size_t FileEvents() const { return Count("\"event\":\"file\""); }
  // Waits until at least `n` file events were printed or the process ended.
  // Returns true when it is still running (`guard` is a hang guard only).
  bool WaitForFileEvents(size_t n, std::chrono::seconds guard = std::chrono::seconds(120));
  // Reaps the process if it ended; true once it has.
  bool Exited();
  void Signal(int sig);
  // Waits for the end. Exit code, or 128 + signal number.
  int Wait();
  std::string Stderr() const;
  const std::string& home() const { return home_; }

 private:
  void Record(int status);

  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
  std::string out_, err_, home_;
};

}  // namespace ferry::testing

#endif  // FERRY_TESTS_TESTING_FERRY_PROCESS_H_
