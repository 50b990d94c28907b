// TestSshd: a real OpenSSH sshd on 127.0.0.1 for integration tests.
//
// The constructor prepares a private directory (under $TEST_TMPDIR when set): an
// ed25519 and an ecdsa host key, an ed25519 user key without passphrase,
// authorized_keys, a known_hosts holding the server's ed25519 key as
// "[127.0.0.1]:PORT ...", a data directory root() to use as the remote side, and an
// sshd_config (port picked by binding port 0; Subsystem sftp internal-sftp;
// StrictModes no; UsePAM no; PermitRootLogin yes, since the tests run as whoever runs
// them, root here). Start() runs `/usr/sbin/sshd -D -e -E <log> -f <config>` as a
// child in its own process group and returns once the SSH banner can be read.
//
// Cleanup: the destructor (and Kill()) SIGKILLs the listener and every process
// descended from it (sshd's per-connection children call setsid(), so they are not
// in its process group; they are found through /proc before anything is killed).
// The listener gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the test process even
// on a crash or abort; the per-connection children then lose their client and exit.
// PDEATHSIG fires when the *thread* that called Start() exits: call it from the test
// thread. The test process becomes a child subreaper so that orphaned sshd children
// are reaped, not left as zombies.
//
// Password authentication for root needs PAM or a crypt()ed password in /etc/shadow:
// not supported (SshdOptions has no password option).
//
// Not thread-safe; use from the test's main thread.
#ifndef FERRY_TESTS_SSHD_SSHD_FIXTURE_H_
#define FERRY_TESTS_SSHD_SSHD_FIXTURE_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"
#include "lib/ssh/session.h"

namespace ferry::testing {

struct SshdOptions {
  int max_sessions = 10;                  // sshd_config MaxSessions
  std::vector<std::string> extra_config;  // more sshd_config lines, appended verbatim
};

class TestSshd {
 public:
  // Prepares keys, files and config; aborts the test program (with a message) if
  // ssh-keygen or the file system fails, since no test could run anyway.
  explicit TestSshd(SshdOptions options = {});
  ~TestSshd();
  TestSshd(const TestSshd&) = delete;
  TestSshd& operator=(const TestSshd&) = delete;

  // Starts sshd and waits (10 s at most) until it answers with its banner. On
  // failure the error detail holds sshd's log.
  Status Start();
  // SIGTERM to the listener and its per-connection children; waits; SIGKILL after 5 s.
  Status Stop();
  // SIGKILL to the listener and its per-connection children; waits for them.
  void Kill();
  // Stop() then Start() on the same port with the same keys.
  Status Restart();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& host() const { return host_; }  // "127.0.0.1"
  uint16_t port() const { return port_; }
  const std::string& user() const { return user_; }

  const std::string& dir() const { return dir_; }            // the fixture's private directory
  const std::string& root() const { return root_; }          // data dir for the remote side
  const std::string& user_key() const { return user_key_; }  // private key; ".pub" beside
  const std::string& known_hosts() const { return known_hosts_; }
  // The AuthorizedKeysFile sshd reads at each login: rewrite it (e.g. empty) to
  // refuse the user key from the next connection on.
  std::string authorized_keys() const { return dir_ + "/authorized_keys"; }
  const std::string& config_path() const { return config_; }
  const std::string& log_path() const { return log_; }
  // "ssh-ed25519 AAAA..." (type and base64, no comment) of the server's host keys.
  const std::string& host_key_ed25519() const { return host_key_ed25519_; }
  const std::string& host_key_ecdsa() const { return host_key_ecdsa_; }
  std::string Log() const;

  // ConnectOptions for this server: its host, port, user, user key and known_hosts,
  // strict host key checking, 10 s timeout.
  ssh::ConnectOptions ConnectOptions() const;

 private:
  void Prepare();
  void SignalAll(int sig);

  SshdOptions options_;
  std::string host_ = "127.0.0.1";
  uint16_t port_ = 0;
  std::string user_;
  std::string dir_, root_, user_key_, known_hosts_, config_, log_;
  std::string host_key_ed25519_, host_key_ecdsa_;
  pid_t pid_ = -1;
};

// Pids of live processes whose command line contains `needle` (e.g. a config path).
std::vector<pid_t> ProcessesWithCommandLine(std::string_view needle);

// Pids of every live descendant of `pid` (children, their children, ...).
std::vector<pid_t> Descendants(pid_t pid);

}  // namespace ferry::testing

#endif  // FERRY_TESTS_SSHD_SSHD_FIXTURE_H_
