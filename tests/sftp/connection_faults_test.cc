// Connection robustness against a real sshd behind a FaultProxy: a server
// that stops answering is declared dead after the io timeout (and the push
// recovers once it answers again, or ends with a clear per-file error when it
// never does), connections cut with RST are re-made and the push completes,
// keepalives flow while a connection is idle, and --bwlimit holds the rate
// down. Only lower bounds on time are asserted; waits are hang guards.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "ferry/error.h"
#include "ferry/push.h"
#include "lib/base/path.h"
#include "lib/sftp/client.h"
#include "lib/ssh/session.h"
#include "tests/bench/proxy/fault_proxy.h"
#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::FaultProxy;
using testing::ReadLocalFile;
using testing::RunCoroutine;
using testing::TestBytes;
using testing::WriteLocalFile;

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

std::string TestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

std::string TestName() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

// Regular files under `root`, relative, sorted.
std::vector<std::string> Files(const std::string& root) {
  std::vector<std::string> out;
  if (!fs::exists(root)) return out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->is_regular_file()) out.push_back(it->path().lexically_relative(root).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Problems(const Report& r) {
  std::string out = r.fatal_message;
  for (const Problem& p : r.problems) out += "\n" + p.path + " [" + p.stage + "]: " + p.message;
  return out;
}

// Runs `fn` on a thread once `ready()` holds (polled), with a hang guard.
class WhenThread {
 public:
  template <typename Ready, typename Fn>
  WhenThread(Ready ready, Fn fn) {
    thread_ = std::thread([this, ready, fn] {
      const auto give_up = Clock::now() + std::chrono::seconds(60);
      while (!stop_ && !ready() && Clock::now() < give_up) {
        std::this_thread::sleep_for(milliseconds(5));
      }
      if (!stop_) {
        fn();
        fired_ = true;
      }
    });
  }
  ~WhenThread() { Join(); }
  void Join() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool fired() const { return fired_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<bool> fired_{false};
  std::thread thread_;
};

class ConnectionFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = sshd_.Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
    proxy_ = std::make_unique<FaultProxy>(sshd_.port());
    src_ = TestDir() + "/faults_src_" + TestName();
    fs::remove_all(src_);
    fs::create_directories(src_);
    remote_ = sshd_.root() + "/faults_" + TestName();
    // The proxy's port is another "host" for known_hosts: list the server's key for it.
    known_hosts_ = TestDir() + "/known_hosts_" + TestName();
    WriteLocalFile(known_hosts_, "[127.0.0.1]:" + std::to_string(proxy_->port()) + " " +
                                     sshd_.host_key_ed25519() + "\n");
  }
  void TearDown() override {
    proxy_.reset();  // before sshd goes
    if (HasFailure()) std::fprintf(stderr, "sshd log:\n%s\n", sshd_.Log().c_str());
    fs::remove_all(src_);
  }

  ssh::ConnectOptions ProxiedConnectOptions() {
    ssh::ConnectOptions o = sshd_.ConnectOptions();
    o.port = proxy_->port();
    o.known_hosts_path = known_hosts_;
    return o;
  }

  PushOptions Options() {
    PushOptions options;
    options.source = src_;
    options.destination =
        "sftp://" + sshd_.user() + "@127.0.0.1:" + std::to_string(proxy_->port()) + remote_;
    options.ssh.known_hosts = known_hosts_;
    options.ssh.identity_files = {sshd_.user_key()};
    options.ssh.config_file = "none";
    return options;
  }

  // `count` files of `size` bytes in a few directories.
  void MakeFiles(int count, size_t size) {
    for (int i = 0; i < count; ++i) {
      const std::string dir = src_ + "/d" + std::to_string(i % 7);
      fs::create_directories(dir);
      WriteLocalFile(dir + "/f" + std::to_string(i), TestBytes(size + i, i));
    }
  }

  // Every file under final names remotely is the source's, byte for byte;
  // with `complete`, every source file is there.
  void ExpectRemoteMatches(bool complete) {
    std::vector<std::string> remote = Files(remote_);
    std::vector<std::string> final_names;
    for (const std::string& rel : remote) {
      if (!IsTempName(fs::path(rel).filename().string())) final_names.push_back(rel);
    }
    for (const std::string& rel : final_names) {
      EXPECT_TRUE(ReadLocalFile(src_ + "/" + rel) == ReadLocalFile(remote_ + "/" + rel))
          << rel << " differs (partial content under a final name?)";
    }
    if (complete) {
      EXPECT_EQ(final_names, Files(src_));
      EXPECT_EQ(final_names.size(), remote.size()) << "temp files left behind";
    }
  }

  testing::TestSshd sshd_;
  std::unique_ptr<FaultProxy> proxy_;
  std::string src_, remote_, known_hosts_;
};

// ---- the io timeout, on one session ------------------------------------------------

TEST_F(ConnectionFaultsTest, StalledServerFailsPendingRequestWithConnectionLost) {
  asio::io_context io;
  ssh::ConnectOptions opts = ProxiedConnectOptions();
  opts.io_timeout = milliseconds(1000);
  opts.keepalive_interval = milliseconds(0);
  RunCoroutine(io, [&]() -> asio::awaitable<void> {
    auto session = co_await ssh::Session::Connect(io.get_executor(), opts);
    CO_ASSERT_OK(session);
    (*session)->StartWatchdog();
    auto client = co_await sftp::Client::Start(**session);
    CO_ASSERT_OK(client);
    proxy_->Stall();
    const auto start = Clock::now();
    auto reply = co_await (*client)->Realpath(".");
    const auto took = Clock::now() - start;
    EXPECT_FALSE(reply.ok());
    if (!reply.ok()) {
      EXPECT_EQ(reply.error().code, errc::kConnectionLost) << reply.error().Message();
      EXPECT_NE(reply.error().Message().find("io timeout"), std::string::npos)
          << reply.error().Message();
    }
    EXPECT_GE(took, milliseconds(1000));
    EXPECT_TRUE((*session)->timed_out());
    EXPECT_TRUE((*client)->transport_failed());
    (*client)->Abort(Error{errc::kConnectionLost, "test teardown"});
    Status ignored = co_await (*session)->Disconnect();
    co_await (*client)->Join();
  });
  proxy_->Resume();
}

TEST_F(ConnectionFaultsTest, IdleStalledConnectionIsNotDeclaredDead) {
  asio::io_context io;
  ssh::ConnectOptions opts = ProxiedConnectOptions();
  opts.io_timeout = milliseconds(300);
  opts.keepalive_interval = milliseconds(0);
  RunCoroutine(io, [&]() -> asio::awaitable<void> {
    auto session = co_await ssh::Session::Connect(io.get_executor(), opts);
    CO_ASSERT_OK(session);
    (*session)->StartWatchdog();
    auto client = co_await sftp::Client::Start(**session);
    CO_ASSERT_OK(client);
    // Nothing is due: silence is not a failure, however long.
    proxy_->Stall();
    asio::steady_timer idle(io, milliseconds(1200));
    co_await idle.async_wait(kNoThrow);
    proxy_->Resume();
    EXPECT_FALSE((*session)->timed_out());
    auto reply = co_await (*client)->Realpath(".");
    EXPECT_TRUE(reply.ok()) << reply.error().Message();
    Status closed = co_await (*client)->Close();
    EXPECT_TRUE(closed.ok()) << closed.error().Message();
    Status disconnected = co_await (*session)->Disconnect();
    EXPECT_TRUE(disconnected.ok()) << disconnected.error().Message();
  });
}

// ---- keepalives ----------------------------------------------------------------------

// Bytes the client sends through the proxy while it idles for `idle`.
uint64_t BytesSentWhileIdle(FaultProxy& proxy, ssh::ConnectOptions opts, milliseconds idle) {
  asio::io_context io;
  uint64_t sent = 0;
  RunCoroutine(io, [&]() -> asio::awaitable<void> {
    auto session = co_await ssh::Session::Connect(io.get_executor(), opts);
    CO_ASSERT_OK(session);
    (*session)->StartWatchdog();
    auto client = co_await sftp::Client::Start(**session);
    CO_ASSERT_OK(client);
    // Let the start-up traffic settle, then count.
    asio::steady_timer settle(io, milliseconds(200));
    co_await settle.async_wait(kNoThrow);
    const uint64_t before = proxy.bytes_to_server();
    asio::steady_timer wait(io, idle);
    co_await wait.async_wait(kNoThrow);
    sent = proxy.bytes_to_server() - before;
    Status closed = co_await (*client)->Close();
    EXPECT_TRUE(closed.ok()) << closed.error().Message();
    Status disconnected = co_await (*session)->Disconnect();
  });
  return sent;
}

TEST_F(ConnectionFaultsTest, IdleConnectionSendsKeepalivesOnlyWhenEnabled) {
  ssh::ConnectOptions opts = ProxiedConnectOptions();
  opts.keepalive_interval = milliseconds(0);
  const uint64_t without = BytesSentWhileIdle(*proxy_, opts, milliseconds(2500));
  opts.keepalive_interval = milliseconds(1000);
  const uint64_t with = BytesSentWhileIdle(*proxy_, opts, milliseconds(2500));
  EXPECT_EQ(without, 0u);
  // An encrypted keepalive packet is a few dozen bytes; at least one went out.
  EXPECT_GE(with, 32u);
}

// ---- pushes ------------------------------------------------------------------------

TEST_F(ConnectionFaultsTest, PushSurvivesAStallOnceTheServerAnswersAgain) {
  MakeFiles(60, 64 * 1024);
  WriteLocalFile(src_ + "/big.bin", TestBytes(6 << 20, 7));
  PushOptions options = Options();
  options.ssh.io_timeout = milliseconds(2000);
  options.ssh.connect_timeout = milliseconds(20000);
  options.ssh.connections = 1;
  // Stall once data flows; resume once ferry has given the connection up and
  // dialled again (a new connection reaches the proxy).
  std::atomic<uint64_t> connections_at_stall{0};
  WhenThread stall([&] { return proxy_->bytes_to_server() > (1 << 20); },
                   [&] {
                     connections_at_stall = proxy_->connections();
                     proxy_->Stall();
                   });
  WhenThread resume(
      [&] { return connections_at_stall > 0 && proxy_->connections() > connections_at_stall; },
      [&] { proxy_->Resume(); });
  const auto start = Clock::now();
  Report report = PushBlocking(options);
  const auto took = Clock::now() - start;
  stall.Join();
  resume.Join();
  ASSERT_TRUE(stall.fired()) << "the push ended before 1 MiB went through";
  EXPECT_TRUE(resume.fired()) << "ferry never reconnected";
  EXPECT_TRUE(report.ok()) << Problems(report);
  EXPECT_GE(took, milliseconds(2000));  // the stall was waited out, not missed
  ExpectRemoteMatches(/*complete=*/true);
}

TEST_F(ConnectionFaultsTest, PersistentStallEndsWithAClearErrorAndNothingPartial) {
  MakeFiles(20, 256 * 1024);
  PushOptions options = Options();
  options.ssh.io_timeout = milliseconds(1000);
  options.ssh.connect_timeout = milliseconds(1500);
  options.ssh.connections = 1;
  options.retries = 1;
  WhenThread stall([&] { return proxy_->bytes_to_server() > (512 << 10); },
                   [&] { proxy_->Stall(); });
  Report report = PushBlocking(options);
  stall.Join();
  ASSERT_TRUE(stall.fired()) << "the push ended before 512 KiB went through";
  EXPECT_FALSE(report.ok());
  ASSERT_FALSE(report.problems.empty()) << Problems(report);
  // What a user reads (kept in the log: it documents the message).
  std::fprintf(stderr, "first problem: %s\n", report.problems.front().message.c_str());
  EXPECT_GT(report.totals.files_failed, 0u) << Problems(report);
  for (const Problem& p : report.problems) {
    EXPECT_EQ(p.code, errc::kConnectionLost) << p.path << ": " << p.message;
    const bool says_why = p.message.find("io timeout") != std::string::npos ||
                          p.message.find("no success within") != std::string::npos;
    EXPECT_TRUE(says_why) << p.path << ": " << p.message;
  }
  proxy_->Resume();
  ExpectRemoteMatches(/*complete=*/false);
}

TEST_F(ConnectionFaultsTest, PushCompletesWhenEveryConnectionIsCutMidway) {
  MakeFiles(300, 16 * 1024);
  PushOptions options = Options();
  options.ssh.io_timeout = milliseconds(5000);
  WhenThread cut([&] { return proxy_->bytes_to_server() > (1 << 20); }, [&] { proxy_->CutAll(); });
  Report report = PushBlocking(options);
  cut.Join();
  ASSERT_TRUE(cut.fired()) << "the push ended before 1 MiB went through";
  EXPECT_TRUE(report.ok()) << Problems(report);
  EXPECT_GT(proxy_->connections(), 1u);  // it did reconnect
  ExpectRemoteMatches(/*complete=*/true);
}

// ---- --bwlimit ---------------------------------------------------------------------

TEST_F(ConnectionFaultsTest, BwlimitHoldsTheRateDownAndDataArrivesIntact) {
  WriteLocalFile(src_ + "/four.bin", TestBytes(4 << 20, 4));
  PushOptions options = Options();
  options.bwlimit_bytes_per_s = 2 << 20;
  const auto start = Clock::now();
  Report report = PushBlocking(options);
  const auto took = Clock::now() - start;
  EXPECT_TRUE(report.ok()) << Problems(report);
  // 4 MiB at 2 MiB/s less one burst (a tenth of a second's worth): >= 1.9 s.
  EXPECT_GE(took, milliseconds(1500));
  ExpectRemoteMatches(/*complete=*/true);
}

TEST(RateLimiterTest, SpacesReservationsAtTheRateAfterTheBurst) {
  sftp::RateLimiter limiter(1000, 500);
  const auto t0 = sftp::RateLimiter::Clock::now();
  EXPECT_EQ(limiter.Reserve(500, t0), t0);  // the burst passes at once
  // The next 1000 bytes owe a second; the 500 after them another half.
  EXPECT_EQ(limiter.Reserve(1000, t0), t0 + std::chrono::seconds(1));
  EXPECT_EQ(limiter.Reserve(500, t0), t0 + milliseconds(1500));
  // Refill is capped at the burst: after a long pause only 500 pass at once.
  const auto later = t0 + std::chrono::seconds(100);
  EXPECT_EQ(limiter.Reserve(500, later), later);
  EXPECT_GT(limiter.Reserve(1, later), later);
}

}  // namespace
}  // namespace ferry
