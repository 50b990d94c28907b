// The example programs (//lib/examples:push_blocking, :watch_progress) against a
// real sshd. They take only SRC and an sftp:// URL, so they find known_hosts and
// the user key the way any user's program does: under $HOME/.ssh. Each child runs
// with HOME set to a private directory holding the fixture's known_hosts and a
// copy of its user key (id_ed25519), with no ssh-agent and no $FERRY_* variables.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using testing::ReadLocalFile;
using testing::TestBytes;
using testing::WriteLocalFile;
using Clock = std::chrono::steady_clock;

std::string TestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

// A child process: `argv` with HOME=`home`, stdout+stderr to `log`.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& home, const std::string& log) {
    std::vector<std::string> env_strings = {"HOME=" + home, "PATH=/usr/bin:/bin",
                                            "USER=nobody-unused"};
    if (const char* tmp = std::getenv("TEST_TMPDIR"))
      env_strings.push_back(std::string("TEST_TMPDIR=") + tmp);
    std::vector<char*> args, env;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : env_strings) env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      FILE* out = std::fopen(log.c_str(), "w");
      if (out != nullptr) {
        ::dup2(::fileno(out), 1);
        ::dup2(::fileno(out), 2);
      }
      ::execve(args[0], args.data(), env.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // The exit status, or -1 if it did not exit within `limit` (then it is killed).
  int Wait(std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (pid_ > 0) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (Clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

bool WaitFor(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

class ExamplesSftpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = sshd_.Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
    const std::string base = TestDir() + "/examples_" + std::to_string(::getpid()) + "_" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(base);
    home_ = base + "/home";
    src_ = base + "/src";
    log_ = base + "/child.log";
    fs::create_directories(home_ + "/.ssh");
    ::chmod((home_ + "/.ssh").c_str(), 0700);
    WriteLocalFile(home_ + "/.ssh/known_hosts", ReadLocalFile(sshd_.known_hosts()));
    WriteLocalFile(home_ + "/.ssh/id_ed25519", ReadLocalFile(sshd_.user_key()));
    ::chmod((home_ + "/.ssh/id_ed25519").c_str(), 0600);
    WriteLocalFile(home_ + "/.ssh/id_ed25519.pub", ReadLocalFile(sshd_.user_key() + ".pub"));
    fs::create_directories(src_ + "/docs/deep");
    fs::create_directories(src_ + "/empty");
    WriteLocalFile(src_ + "/index.html", TestBytes(3000, 1));
    WriteLocalFile(src_ + "/docs/a.txt", TestBytes(10, 2));
    WriteLocalFile(src_ + "/docs/deep/big.bin", TestBytes(3 << 20, 3));
    WriteLocalFile(src_ + "/zero", "");
    remote_ = sshd_.root() + "/site";
    url_ = "sftp://" + sshd_.user() + "@127.0.0.1:" + std::to_string(sshd_.port()) + remote_;
  }
  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "child output:\n%s\nsshd log:\n%s\n",
                   fs::exists(log_) ? ReadLocalFile(log_).c_str() : "(none)", sshd_.Log().c_str());
    }
  }

  // Every regular file, directory and its content under src_ is under remote_.
  void ExpectSameTree() {
    size_t count = 0;
    for (const auto& entry : fs::recursive_directory_iterator(src_)) {
      const std::string rel = entry.path().lexically_relative(src_).string();
      const std::string there = remote_ + "/" + rel;
      ++count;
      if (entry.is_directory()) {
        EXPECT_TRUE(fs::is_directory(there)) << rel;
      } else {
        ASSERT_TRUE(fs::is_regular_file(there)) << rel;
        EXPECT_EQ(ReadLocalFile(there), ReadLocalFile(entry.path().string())) << rel;
      }
    }
    size_t remote_count = 0;
    for (auto it = fs::recursive_directory_iterator(remote_);
         it != fs::recursive_directory_iterator(); ++it) {
      ++remote_count;
    }
    EXPECT_EQ(remote_count, count);  // and nothing else (no temp files)
  }

  testing::TestSshd sshd_;
  std::string home_, src_, log_, remote_, url_;
};

TEST_F(ExamplesSftpTest, PushBlockingToSftp) {
  Child child({"lib/examples/push_blocking", src_, url_}, home_, log_);
  ASSERT_EQ(child.Wait(std::chrono::seconds(60)), 0);
  ExpectSameTree();
  EXPECT_NE(ReadLocalFile(log_).find("4 sent, 0 unchanged"), std::string::npos)
      << ReadLocalFile(log_);

  // Again: nothing to send.
  Child again({"lib/examples/push_blocking", src_, url_}, home_, log_);
  ASSERT_EQ(again.Wait(std::chrono::seconds(60)), 0);
  EXPECT_NE(ReadLocalFile(log_).find("0 sent, 4 unchanged"), std::string::npos)
      << ReadLocalFile(log_);
}

TEST_F(ExamplesSftpTest, PushBlockingRefusesUnknownHost) {
  WriteLocalFile(home_ + "/.ssh/known_hosts", "");
  Child child({"lib/examples/push_blocking", src_, url_}, home_, log_);
  EXPECT_EQ(child.Wait(std::chrono::seconds(60)), 3);
  EXPECT_FALSE(fs::exists(remote_));
}

TEST_F(ExamplesSftpTest, WatchProgressToSftp) {
  const auto started = Clock::now();
  const int seconds = 8;
  Child child({"lib/examples/watch_progress", src_, url_, std::to_string(seconds)}, home_, log_);
  // The initial sync.
  ASSERT_TRUE(WaitFor(
      [&] {
        return fs::exists(remote_ + "/docs/deep/big.bin") &&
               fs::file_size(remote_ + "/docs/deep/big.bin") == (3u << 20);
      },
      std::chrono::seconds(seconds)))
      << "the initial sync did not arrive";
  ASSERT_TRUE(child.running());
  // A file created while it watches arrives.
  WriteLocalFile(src_ + "/docs/new.txt", "created while watching\n");
  ASSERT_TRUE(WaitFor(
      [&] {
        return fs::exists(remote_ + "/docs/new.txt") &&
               ReadLocalFile(remote_ + "/docs/new.txt") == "created while watching\n";
      },
      std::chrono::seconds(seconds)))
      << "the new file did not arrive";
  // SECONDS expire: it stops by itself, cleanly.
  EXPECT_EQ(child.Wait(std::chrono::seconds(seconds + 30)), 0);
  EXPECT_GE(Clock::now() - started, std::chrono::seconds(seconds - 1));
  ExpectSameTree();
}

}  // namespace
}  // namespace ferry
