// Soak: `ferry push --delete` SIGKILLed at a seeded random moment, N times over
// a tree with some large files that changes between runs, then a last run to
// completion; to a local DEST and to a real sshd over SFTP. After every kill,
// each file under a final name on DEST must hold a version SRC really had
// (never a truncated or foreign one); the last run must exit 0 and leave DEST
// byte-for-byte equal to SRC (file mtimes to the second over SFTP v3) with no
// temp file. Every failure names the seed; rerun with FERRY_SOAK_SEED=<seed>
// (and FERRY_SOAK_KILLS=<n> for more rounds) to replay it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/soak/soak_common.h"
#include "tests/sshd/sshd_fixture.h"
#include "tests/testing/ferry_binary.h"
#include "tests/testing/tree.h"

namespace ferry::soak {
namespace {

namespace fs = std::filesystem;
namespace t = ferry::testing;
using Clock = std::chrono::steady_clock;

// How to run `ferry push` against the destination: its arguments after the
// source, and a HOME of its own (no ~/.ssh/config or known_hosts of the
// machine; the SFTP listing cache lives there from run to run).
struct Target {
  std::vector<std::string> args;  // DEST and its options
  std::string home;
};

// Starts `ferry push --delete SRC/ DEST...` with output to `log`.
pid_t StartPush(const std::string& src, const Target& target, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::string path = t::FerryBinaryPath();
  std::vector<std::string> args = {path, "push", "--delete", src + "/"};
  args.insert(args.end(), target.args.begin(), target.args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = {"HOME=" + target.home, "PATH=/usr/bin:/bin"};
  if (const char* tmp = std::getenv("TEST_TMPDIR")) {
    env_strings.push_back(std::string("TEST_TMPDIR=") + tmp);
  }
  std::vector<char*> env;
  for (std::string& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Exit code, or 128 + signal.
int Wait(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Every content each relative path of SRC has held, by hash.
using Versions = std::map<std::string, std::set<size_t>>;

class SourceTree {
 public:
  SourceTree(std::string root, uint64_t seed) : root_(std::move(root)), rng_(seed) {}

  void Build() {
    Write("big/a.bin", 12 << 20);
    Write("big/b.bin", 6 << 20);
    Write("c.bin", 3 << 20);
    for (int i = 0; i < 150; ++i) Write(SmallName(i), Pick(32 * 1024));
    t::MakeSymlink(root_ + "/link-to-c", "c.bin");
  }

  // Between runs: one large file rewritten, a few small ones changed, one added,
  // one deleted (so the next run has data to send and something to delete).
  void Mutate() {
    static const char* kBig[] = {"big/a.bin", "big/b.bin", "c.bin"};
    const std::string big = kBig[Pick(3)];
    Write(big, (1 << 20) + Pick(10 << 20));
    for (int i = 0; i < 5; ++i) Write(SmallName(Pick(150)), Pick(32 * 1024));
    Write("new/" + std::to_string(added_++) + ".txt", Pick(4096));
    std::error_code ec;
    fs::remove(root_ + "/" + SmallName(Pick(150)), ec);
  }

  const Versions& versions() const { return versions_; }

 private:
  static std::string SmallName(int i) {
    return "small/d" + std::to_string(i % 10) + "/f" + std::to_string(i) + ".txt";
  }
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  void Write(const std::string& rel, size_t size) {
    const std::string content = t::RandomBytes(size, static_cast<uint32_t>(rng_()));
    versions_[rel].insert(std::hash<std::string>{}(content));
    t::WriteFile(root_ + "/" + rel, content, Pick(4) == 0 ? 0600 : 0644);
  }

  std::string root_;
  std::mt19937_64 rng_;
  Versions versions_;
  int added_ = 0;
};

// Files under a final name on `dst` whose content SRC never had.
std::vector<std::string> ForeignFiles(const std::string& dst, const Versions& versions) {
  std::vector<std::string> bad;
  if (!t::Exists(dst)) return bad;  // killed before it made DEST
  for (const auto& [rel, node] : t::SettledSnapshot(dst)) {
    if (node.type != 'f' || fs::path(rel).filename().string().starts_with(".ferry-tmp-")) {
      continue;
    }
    auto it = versions.find(rel);
    if (it == versions.end() || !it->second.contains(std::hash<std::string>{}(node.content))) {
      bad.push_back(rel + " (" + std::to_string(node.size) + " bytes)");
    }
  }
  return bad;
}

class KillSoakTest : public ::testing::TestWithParam<Where> {};

TEST_P(KillSoakTest, PushKilledAtRandomPointsThenRerunConverges) {
  const bool sftp = GetParam() == Where::kSftp;
  const uint64_t seed = Seed();
  const char* kills_env = std::getenv("FERRY_SOAK_KILLS");
  const int kills = kills_env != nullptr && std::atoi(kills_env) > 0 ? std::atoi(kills_env) : 10;
  std::printf("%s, %d kills\n", ReplayHint(seed).c_str(), kills);
  SCOPED_TRACE(ReplayHint(seed));

  const std::string src = t::MakeTempDir("src");
  const std::string work = t::MakeTempDir("work");
  const std::string log = work + "/ferry.log";
  std::unique_ptr<t::TestSshd> sshd;
  // Where DEST (and the calibration run's copy) is, read directly by the checks.
  std::string remote = work;
  if (sftp) {
    sshd = std::make_unique<t::TestSshd>();
    Status started = sshd->Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
    remote = sshd->root();
  }
  const std::string dst = remote + "/dest";
  const std::string home = t::MakeTempDir("home");
  auto target = [&](const std::string& dir) {
    if (!sftp) return Target{{dir}, home};
    return Target{{"sftp://" + sshd->user() + "@127.0.0.1:" + std::to_string(sshd->port()) + dir,
                   "--known-hosts", sshd->known_hosts(), "-i", sshd->user_key()},
                  home};
  };
  SourceTree tree(src, seed);
  tree.Build();

  // How long a whole push takes here (the kill window scales with the machine
  // and the build: the sanitizer builds are several times slower). A run that
  // ends before its kill narrows the window to its own length, so the later
  // kills land inside the (incremental, shorter) pushes.
  const auto t0 = Clock::now();
  const pid_t calib = StartPush(src, target(remote + "/calibration"), log);
  ASSERT_GT(calib, 0) << "cannot start " << t::FerryBinaryPath();
  ASSERT_EQ(Wait(calib), 0) << t::ReadFile(log);
  int64_t window_ms = std::max<int64_t>(
      20, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());

  std::mt19937_64 rng(seed ^ 0x5eedULL);
  int interrupted = 0;
  for (int round = 0; round < kills; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    tree.Mutate();
    const auto delay = std::chrono::milliseconds(rng() % window_ms);
    const auto start = Clock::now();
    const pid_t pid = StartPush(src, target(dst), log);
    ASSERT_GT(pid, 0);
    int status = 0;
    pid_t reaped = 0;
    while ((reaped = ::waitpid(pid, &status, WNOHANG)) == 0 && Clock::now() - start < delay) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (reaped == pid) {  // finished before the kill
      window_ms = std::max<int64_t>(
          20, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "a push that was not killed failed:\n"
          << t::ReadFile(log);
    } else {
      ::kill(pid, SIGKILL);
      const int code = Wait(pid);
      if (code == 128 + SIGKILL) {
        ++interrupted;
      } else {
        EXPECT_EQ(code, 0) << "a push that was not killed failed:\n" << t::ReadFile(log);
      }
    }
    EXPECT_EQ(ForeignFiles(dst, tree.versions()), std::vector<std::string>{})
        << "after a kill at " << delay.count() << " ms";
  }

  const pid_t last = StartPush(src, target(dst), log);
  ASSERT_GT(last, 0);
  EXPECT_EQ(Wait(last), 0) << t::ReadFile(log);
  std::printf("%d of %d runs killed mid-push (last window %lld ms)\n", interrupted, kills,
              static_cast<long long>(window_ms));
  // Directory and symlink mtimes are not carried over (README: what is synced);
  // SFTP v3 carries whole seconds of a file's.
  EXPECT_EQ(CompareTreesAt(src, dst, {.ignore_dir_mtime = true, .ignore_symlink_mtime = true},
                           sftp ? 1'000'000'000 : 1),
            std::vector<std::string>{});
  EXPECT_EQ(t::FindTemps(dst), std::vector<std::string>{});
  if (HasFailure() && sshd != nullptr) std::fprintf(stderr, "sshd log:\n%s\n", sshd->Log().c_str());
}

INSTANTIATE_TEST_SUITE_P(Both, KillSoakTest, ::testing::Values(Where::kLocal, Where::kSftp),
                         WhereName);

}  // namespace
}  // namespace ferry::soak
