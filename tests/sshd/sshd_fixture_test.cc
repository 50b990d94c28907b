// End-to-end tests of ferry::ssh::Session against a real OpenSSH sshd (TestSshd).
#include "tests/sshd/sshd_fixture.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include "ferry/error.h"
#include "lib/ssh/host_key.h"
#include "lib/ssh/session.h"
#include "tests/sshd/sftp_wire.h"

namespace ferry::testing {
namespace {

using ssh::Session;

// Every config path of every fixture made here, checked at exit (no sshd left).
std::set<std::string>& AllConfigs() {
  static std::set<std::string> configs;
  return configs;
}

class NoSshdLeftBehind : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& config : AllConfigs()) {
      EXPECT_TRUE(ProcessesWithCommandLine(config).empty()) << "sshd still running: " << config;
    }
    EXPECT_TRUE(Descendants(::getpid()).empty()) << "child processes left behind";
  }
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new NoSshdLeftBehind);

// Runs a coroutine to completion on `io` (single-threaded). Sessions it returns
// must be destroyed before `io`.
template <typename T>
T RunIo(asio::io_context& io, std::function<asio::awaitable<T>(asio::any_io_executor)> make) {
  io.restart();
  std::optional<T> result;
  // Result<T> has no default constructor, which co_spawn's handler form needs: store
  // the value from inside the coroutine instead.
  auto run = [&]() -> asio::awaitable<void> { result.emplace(co_await make(io.get_executor())); };
  asio::co_spawn(io, run(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  return std::move(*result);
}

Result<std::unique_ptr<Session>> Connect(asio::io_context& io, ssh::ConnectOptions opts) {
  return RunIo<Result<std::unique_ptr<Session>>>(
      io, [&](asio::any_io_executor ex) { return Session::Connect(ex, opts); });
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string Fingerprint(const std::string& type_and_base64) {
  return ssh::Sha256Fingerprint(
      *ssh::Base64Decode(type_and_base64.substr(type_and_base64.find(' ') + 1)));
}

std::string TestData(size_t size, int seed) {
  std::string data(size, '\0');
  uint32_t x = 2463534242u + seed;
  for (char& c : data) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return data;
}

// Opens its own SFTP channel and uploads 1 MiB in large WRITEs, so that sends are
// split and wait on the socket mid-packet while other channels run.
asio::awaitable<Status> UploadOnOwnChannel(Session& session, std::string path, int seed) {
  auto channel = co_await session.OpenSubsystemChannel("sftp");
  if (!channel.ok()) co_return channel.error();
  SftpWire sftp(*channel);
  auto version = co_await sftp.Init();
  if (!version.ok()) co_return version.error();
  if (Status st = co_await sftp.PutFile(path, TestData(1 << 20, seed), 200'000); !st.ok()) {
    co_return st;
  }
  co_return co_await channel->Close();
}

class SshdFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AllConfigs().insert(sshd_.config_path());
    Status started = sshd_.Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
  }

  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "sshd log:\n%s\n", sshd_.Log().c_str());
  }

  asio::io_context io_;  // outlives every Session a test makes
  TestSshd sshd_;
};

TEST_F(SshdFixtureTest, ConnectsVerifiesHostKeyAndTransfersAFileOverSftp) {
  const std::string data = TestData(300'000, 1);
  const std::string path = sshd_.root() + "/hello.bin";
  Status outcome = RunIo<Status>(io_, [&](asio::any_io_executor ex) -> asio::awaitable<Status> {
    auto session = co_await Session::Connect(ex, sshd_.ConnectOptions());
    if (!session.ok()) co_return session.error();
    EXPECT_EQ((*session)->host_key_type(), "ssh-ed25519");
    EXPECT_EQ((*session)->host_key_fingerprint(), Fingerprint(sshd_.host_key_ed25519()));
    auto channel = co_await (*session)->OpenSubsystemChannel("sftp");
    if (!channel.ok()) co_return channel.error();
    SftpWire sftp(*channel);
    auto version = co_await sftp.Init();
    if (!version.ok()) co_return version.error();
    EXPECT_EQ(*version, 3u);
    if (Status s = co_await sftp.PutFile(path, data); !s.ok()) co_return s;
    EXPECT_TRUE(ReadFile(path) == data) << "the file on disk differs";
    auto back = co_await sftp.GetFile(path);
    if (!back.ok()) co_return back.error();
    EXPECT_TRUE(*back == data) << "the file read back differs";
    if (Status s = co_await channel->Close(); !s.ok()) co_return s;
    co_return co_await (*session)->Disconnect();
  });
  EXPECT_TRUE(outcome.ok()) << outcome.error().Message();
}

TEST_F(SshdFixtureTest, ConcurrentChannelsOnOneSessionTransferIntact) {
  constexpr int kChannels = 4;
  Status outcome = RunIo<Status>(io_, [&](asio::any_io_executor ex) -> asio::awaitable<Status> {
    auto session = co_await Session::Connect(ex, sshd_.ConnectOptions());
    if (!session.ok()) co_return session.error();
    Session& s = **session;
    int done = 0;
    Status first_error;
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    for (int i = 0; i < kChannels; ++i) {
      asio::co_spawn(ex, UploadOnOwnChannel(s, sshd_.root() + "/file" + std::to_string(i), i),
                     [&](std::exception_ptr e, Status st) {
                       if (e) std::rethrow_exception(e);
                       if (!st.ok() && first_error.ok()) first_error = st;
                       if (++done == kChannels) all_done.cancel();
                     });
    }
    co_await all_done.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    if (!first_error.ok()) co_return first_error;
    for (int i = 0; i < kChannels; ++i) {
      EXPECT_TRUE(ReadFile(sshd_.root() + "/file" + std::to_string(i)) == TestData(1 << 20, i))
          << "file " << i << " differs";
    }
    co_return co_await s.Disconnect();
  });
  EXPECT_TRUE(outcome.ok()) << outcome.error().Message();
}

TEST_F(SshdFixtureTest, UnknownHostKeyIsRefused) {
  WriteFile(sshd_.known_hosts(), "");
  auto session = Connect(io_, sshd_.ConnectOptions());
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.code(), errc::kHostKeyUnknown) << session.error().Message();
  EXPECT_NE(session.error().detail.find(Fingerprint(sshd_.host_key_ed25519())), std::string::npos)
      << session.error().detail;
}

TEST_F(SshdFixtureTest, ChangedHostKeyIsMismatchNamingBothFingerprints) {
  // Pretend the server used to have the user's key as its host key.
  std::istringstream pub(ReadFile(sshd_.user_key() + ".pub"));
  std::string type, base64;
  pub >> type >> base64;
  WriteFile(sshd_.known_hosts(),
            "[127.0.0.1]:" + std::to_string(sshd_.port()) + " " + type + " " + base64 + "\n");
  auto session = Connect(io_, sshd_.ConnectOptions());
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.code(), errc::kHostKeyMismatch) << session.error().Message();
  const std::string& detail = session.error().detail;
  EXPECT_NE(detail.find(Fingerprint(sshd_.host_key_ed25519())), std::string::npos) << detail;
  EXPECT_NE(detail.find(Fingerprint(type + " " + base64)), std::string::npos) << detail;
}

TEST_F(SshdFixtureTest, RevokedHostKeyIsRefused) {
  WriteFile(sshd_.known_hosts(),
            ReadFile(sshd_.known_hosts()) + "@revoked * " + sshd_.host_key_ed25519() + "\n");
  auto session = Connect(io_, sshd_.ConnectOptions());
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.code(), errc::kHostKeyRevoked) << session.error().Message();
}

TEST_F(SshdFixtureTest, KnownEcdsaKeyIsAskedForAndAccepted) {
  WriteFile(sshd_.known_hosts(),
            "[127.0.0.1]:" + std::to_string(sshd_.port()) + " " + sshd_.host_key_ecdsa() + "\n");
  auto session = Connect(io_, sshd_.ConnectOptions());
  ASSERT_TRUE(session.ok()) << session.error().Message();
  EXPECT_EQ((*session)->host_key_type(), "ecdsa-sha2-nistp256");
}

TEST_F(SshdFixtureTest, AcceptNewRecordsTheKeyAndStrictAcceptsItNext) {
  std::filesystem::remove(sshd_.known_hosts());
  auto opts = sshd_.ConnectOptions();
  opts.host_key_policy = ssh::HostKeyPolicy::kAcceptNew;
  auto first = Connect(io_, opts);
  ASSERT_TRUE(first.ok()) << first.error().Message();
  EXPECT_EQ(ReadFile(sshd_.known_hosts()),
            "[127.0.0.1]:" + std::to_string(sshd_.port()) + " " + sshd_.host_key_ed25519() + "\n");
  auto second = Connect(io_, sshd_.ConnectOptions());
  EXPECT_TRUE(second.ok()) << second.error().Message();
}

TEST_F(SshdFixtureTest, AcceptNewStillRefusesAChangedKey) {
  std::istringstream pub(ReadFile(sshd_.user_key() + ".pub"));
  std::string type, base64;
  pub >> type >> base64;
  WriteFile(sshd_.known_hosts(),
            "[127.0.0.1]:" + std::to_string(sshd_.port()) + " " + type + " " + base64 + "\n");
  auto opts = sshd_.ConnectOptions();
  opts.host_key_policy = ssh::HostKeyPolicy::kAcceptNew;
  auto session = Connect(io_, opts);
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.code(), errc::kHostKeyMismatch);
}

TEST_F(SshdFixtureTest, WrongUserKeyIsAuthFailed) {
  const std::string other = sshd_.dir() + "/other_ed25519";
  ASSERT_EQ(std::system(("ssh-keygen -q -t ed25519 -N '' -f " + other).c_str()), 0);
  auto opts = sshd_.ConnectOptions();
  opts.identities = {{other, ""}};
  auto session = Connect(io_, opts);
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.code(), errc::kAuthFailed) << session.error().Message();
  EXPECT_NE(session.error().detail.find("publickey " + other), std::string::npos)
      << session.error().detail;
  EXPECT_EQ(session.error().detail.find("RSA"), std::string::npos) << session.error().detail;
}

TEST_F(SshdFixtureTest, RsaUserKeyFailureExplainsTheLibssh2Limit) {
  const std::string rsa = sshd_.dir() + "/id_rsa";
  ASSERT_EQ(std::system(("ssh-keygen -q -t rsa -b 2048 -N '' -f " + rsa).c_str()), 0);
  // Authorised, so it is the ssh-rsa signature that OpenSSH 9 refuses.
  std::ofstream(sshd_.dir() + "/authorized_keys", std::ios::app) << ReadFile(rsa + ".pub");
  auto opts = sshd_.ConnectOptions();
  opts.identities = {{rsa, ""}};
  auto session = Connect(io_, opts);
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.code(), errc::kAuthFailed) << session.error().Message();
  EXPECT_NE(session.error().detail.find("ed25519"), std::string::npos) << session.error().detail;
  EXPECT_NE(session.error().detail.find("OpenSSH >= 8.8"), std::string::npos)
      << session.error().detail;
}

TEST_F(SshdFixtureTest, ConnectAfterKillIsRefused) {
  sshd_.Kill();
  EXPECT_FALSE(sshd_.running());
  EXPECT_TRUE(ProcessesWithCommandLine(sshd_.config_path()).empty());
  auto session = Connect(io_, sshd_.ConnectOptions());
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.code(), std::errc::connection_refused) << session.error().Message();
  EXPECT_NE(session.error().detail.find(std::to_string(sshd_.port())), std::string::npos);
}

TEST_F(SshdFixtureTest, KillDropsOpenSessionsAndRestartServesTheSamePort) {
  const uint16_t port = sshd_.port();
  Status outcome = RunIo<Status>(io_, [&](asio::any_io_executor ex) -> asio::awaitable<Status> {
    auto session = co_await Session::Connect(ex, sshd_.ConnectOptions());
    if (!session.ok()) co_return session.error();
    auto channel = co_await (*session)->OpenSubsystemChannel("sftp");
    if (!channel.ok()) co_return channel.error();
    sshd_.Kill();  // the listener and the connection's processes
    SftpWire sftp(*channel);
    auto version = co_await sftp.Init();
    EXPECT_FALSE(version.ok());
    if (!version.ok()) {
      EXPECT_EQ(version.code(), errc::kConnectionLost) << version.error().Message();
    }
    co_return Status{};
  });
  ASSERT_TRUE(outcome.ok()) << outcome.error().Message();
  Status restarted = sshd_.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.error().Message();
  EXPECT_EQ(sshd_.port(), port);
  auto session = Connect(io_, sshd_.ConnectOptions());
  EXPECT_TRUE(session.ok()) << session.error().Message();
  restarted = sshd_.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.error().Message();
  session = Connect(io_, sshd_.ConnectOptions());
  EXPECT_TRUE(session.ok()) << session.error().Message();
}

TEST_F(SshdFixtureTest, StopLeavesNoProcessBehind) {
  auto session = Connect(io_, sshd_.ConnectOptions());
  ASSERT_TRUE(session.ok()) << session.error().Message();
  const pid_t pid = sshd_.pid();
  EXPECT_FALSE(Descendants(pid).empty());  // the connection's processes
  Status stopped = sshd_.Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.error().Message();
  EXPECT_TRUE(ProcessesWithCommandLine(sshd_.config_path()).empty());
  EXPECT_TRUE(Descendants(::getpid()).empty());
}

TEST(SessionTimeoutTest, SilentServerTimesOut) {
  asio::io_context io_;
  // A listening socket that never answers: TCP connects, the SSH banner never comes.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ssh::ConnectOptions opts;
  opts.host = "127.0.0.1";
  opts.port = ntohs(addr.sin_port);
  opts.user = "nobody";
  opts.known_hosts_path = "/nonexistent/known_hosts";
  opts.connect_timeout = std::chrono::milliseconds(300);
  auto session = Connect(io_, opts);
  ::close(fd);
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.code(), errc::kTimeout) << session.error().Message();
}

}  // namespace
}  // namespace ferry::testing
