#include "tests/sshd/sshd_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "ferry/error.h"

extern char** environ;

namespace ferry::testing {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "TestSshd: %s\n", what.c_str());
  std::abort();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) Die("cannot write " + path);
}

// Runs a program to completion, output appended to `log`; aborts if it fails.
void Run(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) Die("cannot run " + args[0] + ": " + std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die(args[0] + " failed: " + ReadFile(log));
  }
}

// "type base64" of an OpenSSH .pub file (without the comment).
std::string PublicKey(const std::string& pub_path) {
  std::istringstream in(ReadFile(pub_path));
  std::string type, base64;
  if (!(in >> type >> base64)) Die("cannot read " + pub_path);
  return type + " " + base64;
}

uint16_t PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Die(std::string("cannot pick a free port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// True once a TCP connection to the port yields an "SSH-" banner line.
bool BannerReadable(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval timeout{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string got;
    char buf[256];
    while (got.find('\n') == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      got.append(buf, n);
    }
    ok = got.starts_with("SSH-");
  }
  ::close(fd);
  return ok;
}

// Parent pid of every live process, from /proc/<pid>/stat.
std::map<pid_t, pid_t> ParentsOfAllProcesses() {
  std::map<pid_t, pid_t> parents;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return parents;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::string stat = ReadFile(std::string("/proc/") + entry->d_name + "/stat");
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream in(stat.substr(paren + 1));
    char state = 0;
    long ppid = 0;
    if (in >> state >> ppid && state != 'Z') parents[static_cast<pid_t>(pid)] = ppid;
  }
  ::closedir(proc);
  return parents;
}

// Waits for `pid` (our child) up to `timeout`; true if it was reaped.
bool WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

std::vector<pid_t> Descendants(pid_t root) {
  auto parents = ParentsOfAllProcesses();
  std::vector<pid_t> found{root};
  for (size_t i = 0; i < found.size(); ++i) {
    for (const auto& [pid, ppid] : parents) {
      if (ppid == found[i]) found.push_back(pid);
    }
  }
  found.erase(found.begin());
  return found;
}

std::vector<pid_t> ProcessesWithCommandLine(std::string_view needle) {
  std::vector<pid_t> pids;
  for (const auto& [pid, ppid] : ParentsOfAllProcesses()) {
    std::string cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    if (cmdline.find(needle) != std::string::npos) pids.push_back(pid);
  }
  return pids;
}

TestSshd::TestSshd(SshdOptions options) : options_(std::move(options)) {
  // Orphaned sshd children become ours, so Kill() can reap them (no zombies).
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  Prepare();
}

TestSshd::~TestSshd() {
  Kill();
  std::error_code ignored;
  if (std::getenv("FERRY_KEEP_SSHD_DIR") == nullptr) std::filesystem::remove_all(dir_, ignored);
}

void TestSshd::Prepare() {
  const passwd* pw = ::getpwuid(::geteuid());
  if (pw == nullptr) Die("no passwd entry for the current user");
  user_ = pw->pw_name;

  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/sshd.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) Die("mkdtemp " + pattern + ": " + std::strerror(errno));
  dir_ = pattern;
  root_ = dir_ + "/data";
  std::filesystem::create_directory(root_);
  log_ = dir_ + "/sshd.log";
  config_ = dir_ + "/sshd_config";
  known_hosts_ = dir_ + "/known_hosts";
  user_key_ = dir_ + "/id_ed25519";
  const std::string keygen_log = dir_ + "/ssh-keygen.log";
  const std::string host_ed25519 = dir_ + "/ssh_host_ed25519_key";
  const std::string host_ecdsa = dir_ + "/ssh_host_ecdsa_key";
  Run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ferry-test-host", "-f", host_ed25519},
      keygen_log);
  Run({"ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-N", "", "-C", "ferry-test-host", "-f",
       host_ecdsa},
      keygen_log);
  Run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ferry-test-user", "-f", user_key_},
      keygen_log);
  host_key_ed25519_ = PublicKey(host_ed25519 + ".pub");
  host_key_ecdsa_ = PublicKey(host_ecdsa + ".pub");
  WriteFile(dir_ + "/authorized_keys", ReadFile(user_key_ + ".pub"));

  port_ = PickFreePort();
  WriteFile(known_hosts_, "[127.0.0.1]:" + std::to_string(port_) + " " + host_key_ed25519_ + "\n");

  std::ostringstream config;
  config << "# Written by ferry's TestSshd.\n"
         << "ListenAddress 127.0.0.1\n"
         << "Port " << port_ << "\n"
         << "HostKey " << host_ed25519 << "\n"
         << "HostKey " << host_ecdsa << "\n"
         << "AuthorizedKeysFile " << dir_ << "/authorized_keys\n"
         << "PidFile " << dir_ << "/sshd.pid\n"
         << "StrictModes no\n"
         << "UsePAM no\n"
         << "PermitRootLogin yes\n"
         << "PubkeyAuthentication yes\n"
         << "PasswordAuthentication no\n"
         << "KbdInteractiveAuthentication no\n"
         << "LogLevel VERBOSE\n"
         << "MaxSessions " << options_.max_sessions << "\n"
         << "MaxStartups 100\n"
         << "UseDNS no\n"
         << "Subsystem sftp internal-sftp\n";
  for (const auto& line : options_.extra_config) config << line << "\n";
  WriteFile(config_, config.str());
}

Status TestSshd::Start() {
  if (pid_ > 0) return Status{};
  // sshd's privilege separation needs this directory (tools/setup creates it too).
  ::mkdir("/run/sshd", 0755);

  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls until exec.
  const std::string stderr_path = dir_ + "/sshd.stderr";
  std::vector<std::string> args = {"/usr/sbin/sshd", "-D", "-e", "-E", log_, "-f", config_};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Status{LastSystemError(), "fork"};
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    int in = ::open("/dev/null", O_RDONLY);
    int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in >= 0) ::dup2(in, 0);
    if (err >= 0) {
      ::dup2(err, 1);
      ::dup2(err, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  pid_ = pid;

  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Status{std::make_error_code(std::errc::no_such_process),
                    "sshd exited with status " + std::to_string(status) + "; log:\n" + Log()};
    }
    if (BannerReadable(port_)) return Status{};
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  return Status{errc::kTimeout, "sshd did not answer on port " + std::to_string(port_) +
                                    " within 10 s; log:\n" + Log()};
}

void TestSshd::SignalAll(int sig) {
  // Stop the listener first so that it cannot fork while its tree is collected.
  ::kill(pid_, SIGSTOP);
  std::vector<pid_t> children = Descendants(pid_);
  for (pid_t child : children) ::kill(child, sig);
  ::kill(pid_, sig);
  if (sig != SIGKILL) ::kill(pid_, SIGCONT);
  // Reap orphans that were handed to us (we are a child subreaper).
  for (pid_t child : children)
    WaitFor(child, std::chrono::milliseconds(sig == SIGKILL ? 2000 : 200));
}

Status TestSshd::Stop() {
  if (pid_ <= 0) return Status{};
  SignalAll(SIGTERM);
  if (!WaitFor(pid_, std::chrono::seconds(5))) {
    Kill();
    return Status{errc::kTimeout, "sshd ignored SIGTERM for 5 s and was killed"};
  }
  pid_ = -1;
  return Status{};
}

void TestSshd::Kill() {
  if (pid_ <= 0) return;
  SignalAll(SIGKILL);
  WaitFor(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

Status TestSshd::Restart() {
  Status stopped = Stop();
  if (!stopped.ok()) return stopped;
  return Start();
}

std::string TestSshd::Log() const { return ReadFile(log_) + ReadFile(dir_ + "/sshd.stderr"); }

ssh::ConnectOptions TestSshd::ConnectOptions() const {
  ssh::ConnectOptions opts;
  opts.host = host_;
  opts.port = port_;
  opts.user = user_;
  opts.known_hosts_path = known_hosts_;
  opts.host_key_policy = ssh::HostKeyPolicy::kStrict;
  opts.identities.push_back({user_key_, ""});
  opts.connect_timeout = std::chrono::seconds(10);
  return opts;
}

}  // namespace ferry::testing
