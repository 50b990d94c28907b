#include "tests/testing/ferry_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "tests/testing/ferry_binary.h"
#include "tests/testing/tree.h"

namespace ferry::testing {

FerryProcess::FerryProcess(std::vector<std::string> args) {
  const std::string dir = MakeTempDir("run");
  out_ = dir + "/stdout";
  err_ = dir + "/stderr";
  home_ = MakeTempDir("home");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::string path = FerryBinaryPath();
  args.insert(args.begin(), path);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = {"HOME=" + home_, "PATH=/usr/bin:/bin"};
  if (const char* tmp = std::getenv("TEST_TMPDIR")) {
    env_strings.push_back(std::string("TEST_TMPDIR=") + tmp);
  }
  std::vector<char*> env;
  for (std::string& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  int rc = ::posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) pid_ = -1;
}

FerryProcess::~FerryProcess() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    Wait();
  }
}

size_t FerryProcess::Count(const std::string& needle) const {
  const std::string out = ReadFile(out_);
  size_t n = 0;
  for (size_t pos = 0; (pos = out.find(needle, pos)) != std::string::npos; ++pos) ++n;
  return n;
}

bool FerryProcess::WaitForFileEvents(size_t n, std::chrono::seconds guard) {
  const auto deadline = std::chrono::steady_clock::now() + guard;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Exited()) return false;
    if (FileEvents() >= n) return !Exited();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return !Exited();
}

bool FerryProcess::Exited() {
  if (exited_) return true;
  int status = 0;
  if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) Record(status);
  return exited_;
}

void FerryProcess::Signal(int sig) {
  if (pid_ > 0 && !exited_) ::kill(pid_, sig);
}

int FerryProcess::Wait() {
  if (!exited_ && pid_ > 0) {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    Record(status);
  }
  return exit_code_;
}

std::string FerryProcess::Stderr() const { return ReadFile(err_); }

void FerryProcess::Record(int status) {
  exited_ = true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace ferry::testing
