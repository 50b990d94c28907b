// sftp::Client against a real OpenSSH sshd (internal-sftp): every request type,
// pipelining, many files on two channels, and failure when the server dies.
#include "lib/sftp/client.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <filesystem>
#include <memory>
#include <vector>

#include "ferry/error.h"
#include "lib/base/task_group.h"
#include "lib/ssh/session.h"
#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

namespace ferry::sftp {
namespace {

using ferry::testing::Exists;
using ferry::testing::ReadLocalFile;
using ferry::testing::RunCoroutine;
using ferry::testing::TestBytes;
using ferry::testing::WriteLocalFile;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

class SftpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = sshd_.Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
    root_ = sshd_.root();
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "sshd log:\n%s\n", sshd_.Log().c_str());
  }

  // Connects, starts one client, runs `body(client)`, closes everything.
  template <typename Body>
  void WithClient(Body body) {
    RunCoroutine(io_, [&]() -> asio::awaitable<void> {
      auto session = co_await ssh::Session::Connect(io_.get_executor(), sshd_.ConnectOptions());
      CO_ASSERT_OK(session);
      auto client = co_await Client::Start(**session);
      CO_ASSERT_OK(client);
      co_await body(**client);
      Status closed = co_await (*client)->Close();
      EXPECT_TRUE(closed.ok()) << closed.error().Message();
      Status disconnected = co_await (*session)->Disconnect();
      EXPECT_TRUE(disconnected.ok()) << disconnected.error().Message();
    });
  }

  asio::io_context io_;
  ferry::testing::TestSshd sshd_;
  std::string root_;
};

TEST_F(SftpClientTest, HandshakeRecordsVersionExtensionsAndLimits) {
  WithClient([&](Client& c) -> asio::awaitable<void> {
    EXPECT_EQ(c.server_version(), 3u);
    EXPECT_TRUE(c.HasExtension(kPosixRename));
    EXPECT_TRUE(c.HasExtension(kFsync));
    EXPECT_TRUE(c.HasExtension(kStatvfs));
    EXPECT_TRUE(c.HasExtension(kHardlink));
    EXPECT_TRUE(c.HasExtension(kLimits));
    // OpenSSH 9.2: 256 KiB packets, 255 KiB reads and writes.
    EXPECT_EQ(c.limits().max_packet_length, 256u * 1024);
    EXPECT_EQ(c.max_write_length(), 255u * 1024);
    EXPECT_EQ(c.max_read_length(), 255u * 1024);
    co_return;
  });
}

TEST_F(SftpClientTest, OpenWriteCloseStatAndReadBack) {
  const std::string path = root_ + "/f.bin";
  const std::string data = TestBytes(600'000, 1);
  WithClient([&](Client& c) -> asio::awaitable<void> {
    Attrs create;
    create.flags = kAttrPermissions;
    create.permissions = 0600;
    auto handle = co_await c.Open(path, kOpenWrite | kOpenCreate | kOpenExclusive, create);
    CO_ASSERT_OK(handle);
    const size_t chunk = c.max_write_length();
    for (size_t off = 0; off < data.size(); off += chunk) {
      auto piece = Bytes(data).subspan(off, std::min(chunk, data.size() - off));
      CO_ASSERT_OK(co_await c.Write(*handle, off, piece));
    }
    auto fstat = co_await c.Fstat(*handle);
    CO_ASSERT_OK(fstat);
    EXPECT_EQ(fstat->size, data.size());
    Attrs times;
    times.flags = kAttrAcModTime | kAttrPermissions;
    times.atime = 1'600'000'000;
    times.mtime = 1'500'000'000;
    times.permissions = 0640;
    CO_ASSERT_OK(co_await c.Fsetstat(*handle, times));
    CO_ASSERT_OK(co_await c.Fsync(*handle));
    CO_ASSERT_OK(co_await c.Close(*handle));

    auto stat = co_await c.Stat(path);
    CO_ASSERT_OK(stat);
    EXPECT_EQ(stat->size, data.size());
    EXPECT_EQ(stat->mtime, 1'500'000'000u);
    EXPECT_EQ(stat->permissions & 07777, 0640u);
    EXPECT_EQ(stat->permissions & S_IFMT, unsigned{S_IFREG});

    // Exclusive create of an existing file fails.
    auto again = co_await c.Open(path, kOpenWrite | kOpenCreate | kOpenExclusive, create);
    EXPECT_FALSE(again.ok());

    auto reader = co_await c.Open(path, kOpenRead);
    CO_ASSERT_OK(reader);
    std::string back;
    for (;;) {
      auto piece = co_await c.Read(*reader, back.size(), c.max_read_length());
      CO_ASSERT_OK(piece);
      if (piece->empty()) break;
      back += *piece;
    }
    EXPECT_TRUE(back == data);
    CO_ASSERT_OK(co_await c.Close(*reader));
  });
  EXPECT_TRUE(ReadLocalFile(path) == data);
}

TEST_F(SftpClientTest, MissingPathsCompareEqualToPortableErrors) {
  WithClient([&](Client& c) -> asio::awaitable<void> {
    auto st = co_await c.Lstat(root_ + "/nope");
    CO_ASSERT_TRUE(!st.ok());
    EXPECT_EQ(st.code(), std::errc::no_such_file_or_directory) << st.error().Message();
    EXPECT_EQ(st.code().category(), sftp_category());
    EXPECT_NE(st.error().detail.find("/nope"), std::string::npos);
    auto dir = co_await c.Opendir(root_ + "/nope");
    EXPECT_EQ(dir.code(), std::errc::no_such_file_or_directory);
    Status removed = co_await c.Remove(root_ + "/nope");
    EXPECT_EQ(removed.code(), std::errc::no_such_file_or_directory);
  });
}

TEST_F(SftpClientTest, DirectoriesSymlinksAndReaddirWithLstatAttributes) {
  WithClient([&](Client& c) -> asio::awaitable<void> {
    Attrs mode;
    mode.flags = kAttrPermissions;
    mode.permissions = 0750;
    CO_ASSERT_OK(co_await c.Mkdir(root_ + "/d", mode));
    Status twice = co_await c.Mkdir(root_ + "/d", mode);
    EXPECT_FALSE(twice.ok());
    auto h = co_await c.Open(root_ + "/d/file", kOpenWrite | kOpenCreate);
    CO_ASSERT_OK(h);
    CO_ASSERT_OK(co_await c.Write(*h, 0, Bytes("12345")));
    CO_ASSERT_OK(co_await c.Close(*h));
    // The link is created at the first argument and points at the second.
    CO_ASSERT_OK(co_await c.Symlink(root_ + "/d/link", "file"));
    CO_ASSERT_OK(co_await c.Symlink(root_ + "/d/dangling", "../nowhere"));
    auto target = co_await c.Readlink(root_ + "/d/link");
    CO_ASSERT_OK(target);
    EXPECT_EQ(*target, "file");

    auto dir = co_await c.Opendir(root_ + "/d");
    CO_ASSERT_OK(dir);
    std::map<std::string, Attrs> seen;
    for (;;) {
      auto batch = co_await c.Readdir(*dir);
      CO_ASSERT_OK(batch);
      if (batch->empty()) break;
      for (auto& e : *batch) seen[e.filename] = e.attrs;
    }
    CO_ASSERT_OK(co_await c.Close(*dir));
    EXPECT_EQ(seen.size(), 5u);  // . .. file link dangling
    CO_ASSERT_TRUE(seen.count("file") && seen.count("link") && seen.count("dangling"));
    EXPECT_EQ(seen["file"].size, 5u);
    EXPECT_EQ(seen["file"].permissions & S_IFMT, unsigned{S_IFREG});
    // READDIR reports the link itself (lstat), dangling or not.
    EXPECT_EQ(seen["link"].permissions & S_IFMT, unsigned{S_IFLNK});
    EXPECT_EQ(seen["dangling"].permissions & S_IFMT, unsigned{S_IFLNK});

    auto lst = co_await c.Lstat(root_ + "/d/link");
    CO_ASSERT_OK(lst);
    EXPECT_EQ(lst->permissions & S_IFMT, unsigned{S_IFLNK});
    auto st = co_await c.Stat(root_ + "/d/link");
    CO_ASSERT_OK(st);
    EXPECT_EQ(st->permissions & S_IFMT, unsigned{S_IFREG});

    Status not_empty = co_await c.Rmdir(root_ + "/d");
    EXPECT_FALSE(not_empty.ok());
    for (const char* name : {"file", "link", "dangling"}) {
      CO_ASSERT_OK(co_await c.Remove(root_ + "/d/" + name));
    }
    CO_ASSERT_OK(co_await c.Rmdir(root_ + "/d"));
  });
  EXPECT_FALSE(Exists(root_ + "/d"));
}

TEST_F(SftpClientTest, PlainRenameRefusesAnExistingTargetPosixRenameReplacesIt) {
  WriteLocalFile(root_ + "/a", "new");
  WriteLocalFile(root_ + "/b", "old");
  WithClient([&](Client& c) -> asio::awaitable<void> {
    Status plain = co_await c.Rename(root_ + "/a", root_ + "/b");
    EXPECT_FALSE(plain.ok());
    EXPECT_EQ(plain.code(), make_error_code(StatusCode::kFailure)) << plain.error().Message();
    CO_ASSERT_OK(co_await c.PosixRename(root_ + "/a", root_ + "/b"));
    CO_ASSERT_OK(co_await c.Rename(root_ + "/b", root_ + "/c"));
    CO_ASSERT_OK(co_await c.Hardlink(root_ + "/c", root_ + "/d"));
  });
  EXPECT_FALSE(Exists(root_ + "/a"));
  EXPECT_FALSE(Exists(root_ + "/b"));
  EXPECT_EQ(ReadLocalFile(root_ + "/c"), "new");
  EXPECT_EQ(ReadLocalFile(root_ + "/d"), "new");
}

TEST_F(SftpClientTest, RealpathStatvfsAndSetstat) {
  WriteLocalFile(root_ + "/s", "x");
  WithClient([&](Client& c) -> asio::awaitable<void> {
    auto home = co_await c.Realpath(".");
    CO_ASSERT_OK(home);
    EXPECT_TRUE(home->starts_with("/"));
    auto canonical = co_await c.Realpath(root_ + "/./s");
    CO_ASSERT_OK(canonical);
    EXPECT_EQ(*canonical, std::filesystem::canonical(root_ + "/s").string());
    auto vfs = co_await c.QueryStatVfs(root_);
    CO_ASSERT_OK(vfs);
    EXPECT_GT(vfs->bsize, 0u);
    EXPECT_GT(vfs->namemax, 0u);
    Attrs a;
    a.flags = kAttrPermissions | kAttrAcModTime;
    a.permissions = 0604;
    a.atime = a.mtime = 1'234'567'890;
    CO_ASSERT_OK(co_await c.Setstat(root_ + "/s", a));
  });
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/s").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  EXPECT_EQ(st.st_mtime, 1'234'567'890);
}

TEST_F(SftpClientTest, PipelinedWritesOnOneHandleStayWithinTheBudget) {
  const std::string data = TestBytes(8 << 20, 7);
  const std::string path = root_ + "/pipelined";
  RunCoroutine(io_, [&]() -> asio::awaitable<void> {
    auto session = co_await ssh::Session::Connect(io_.get_executor(), sshd_.ConnectOptions());
    CO_ASSERT_OK(session);
    ClientOptions options;
    options.max_outstanding_bytes = 1 << 20;
    auto client = co_await Client::Start(**session, options);
    CO_ASSERT_OK(client);
    Client& c = **client;
    auto handle = co_await c.Open(path, kOpenWrite | kOpenCreate | kOpenTruncate);
    CO_ASSERT_OK(handle);
    std::vector<Ticket> tickets;
    size_t most_outstanding = 0, most_requests = 0;
    const size_t chunk = 64 * 1024;
    for (size_t off = 0; off < data.size(); off += chunk) {
      const uint32_t id = c.NextId();
      std::string packet = EncodeWrite(id, *handle, off, Bytes(data).subspan(off, chunk));
      auto ticket = co_await c.Submit(id, std::move(packet));
      CO_ASSERT_OK(ticket);
      tickets.push_back(std::move(*ticket));
      most_outstanding = std::max(most_outstanding, c.outstanding_bytes());
      most_requests = std::max(most_requests, c.outstanding_requests());
    }
    for (Ticket& t : tickets) {
      auto reply = co_await c.Await(t);
      CO_ASSERT_OK(reply);
      CO_ASSERT_OK(ExpectOk(*reply, "write"));
    }
    CO_ASSERT_OK(co_await c.Close(*handle));
    EXPECT_LE(most_outstanding, options.max_outstanding_bytes);
    EXPECT_GT(most_requests, 4u);  // really pipelined
    CO_ASSERT_OK(co_await c.Close());
    CO_ASSERT_OK(co_await (*session)->Disconnect());
  });
  EXPECT_TRUE(ReadLocalFile(path) == data);
}

TEST_F(SftpClientTest, TwoHundredFilesConcurrentlyOnTwoChannels) {
  constexpr int kFiles = 200;
  std::filesystem::create_directory(root_ + "/many");
  RunCoroutine(io_, [&]() -> asio::awaitable<void> {
    auto session = co_await ssh::Session::Connect(io_.get_executor(), sshd_.ConnectOptions());
    CO_ASSERT_OK(session);
    std::vector<std::shared_ptr<Client>> clients;
    for (int i = 0; i < 2; ++i) {
      auto client = co_await Client::Start(**session);
      CO_ASSERT_OK(client);
      clients.push_back(*client);
    }
    int failures = 0;
    size_t peak_requests = 0;
    auto put = [&](int i) -> asio::awaitable<void> {
      Client& c = *clients[i % 2];
      const std::string data = TestBytes(1000 + i * 97, i);
      const std::string path = root_ + "/many/f" + std::to_string(i);
      auto h = co_await c.Open(path, kOpenWrite | kOpenCreate | kOpenTruncate);
      if (!h.ok()) {
        ++failures;
        co_return;
      }
      peak_requests = std::max(peak_requests, c.outstanding_requests());
      Status w = co_await c.Write(*h, 0, Bytes(data));
      Status cl = co_await c.Close(*h);
      if (!w.ok() || !cl.ok()) ++failures;
    };
    TaskGroup group(io_.get_executor());
    for (int i = 0; i < kFiles; ++i) group.Spawn(put(i));
    co_await group.Wait();
    EXPECT_EQ(failures, 0);
    EXPECT_GT(peak_requests, 10u);
    for (auto& c : clients) CO_ASSERT_OK(co_await c->Close());
    CO_ASSERT_OK(co_await (*session)->Disconnect());
  });
  for (int i = 0; i < kFiles; ++i) {
    EXPECT_TRUE(ReadLocalFile(root_ + "/many/f" + std::to_string(i)) == TestBytes(1000 + i * 97, i))
        << i;
  }
}

TEST_F(SftpClientTest, KilledServerFailsPendingRequestsWithConnectionLost) {
  RunCoroutine(io_, [&]() -> asio::awaitable<void> {
    auto session = co_await ssh::Session::Connect(io_.get_executor(), sshd_.ConnectOptions());
    CO_ASSERT_OK(session);
    auto client = co_await Client::Start(**session);
    CO_ASSERT_OK(client);
    Client& c = **client;
    auto h = co_await c.Open(root_ + "/doomed", kOpenWrite | kOpenCreate);
    CO_ASSERT_OK(h);
    sshd_.Kill();
    const std::string data = TestBytes(1 << 20, 3);
    Status w = co_await c.Write(*h, 0, Bytes(data));
    EXPECT_EQ(w.code(), errc::kConnectionLost) << w.error().Message();
    EXPECT_TRUE(c.failed());
    auto later = co_await c.Lstat(root_);
    EXPECT_EQ(later.code(), errc::kConnectionLost);
    c.Abort(Error{errc::kConnectionLost, "test teardown"});
    (void)co_await (*session)->Disconnect();
    co_await c.Join();
  });
}

TEST_F(SftpClientTest, CloseWaitsForRepliesAndRefusesLaterRequests) {
  RunCoroutine(io_, [&]() -> asio::awaitable<void> {
    auto session = co_await ssh::Session::Connect(io_.get_executor(), sshd_.ConnectOptions());
    CO_ASSERT_OK(session);
    auto client = co_await Client::Start(**session);
    CO_ASSERT_OK(client);
    Client& c = **client;
    std::vector<Ticket> tickets;
    for (int i = 0; i < 20; ++i) {
      const uint32_t id = c.NextId();
      std::string packet = EncodeLstat(id, root_);
      auto t = co_await c.Submit(id, std::move(packet));
      CO_ASSERT_OK(t);
      tickets.push_back(*t);
    }
    CO_ASSERT_OK(co_await c.Close());
    for (auto& t : tickets) EXPECT_TRUE(t->done());
    auto first = co_await c.Await(tickets[0]);
    CO_ASSERT_OK(first);
    EXPECT_TRUE(ExpectAttrs(*first, "lstat").ok());
    auto after = co_await c.Lstat(root_);
    EXPECT_FALSE(after.ok());
    CO_ASSERT_OK(co_await (*session)->Disconnect());
  });
}

}  // namespace
}  // namespace ferry::sftp
