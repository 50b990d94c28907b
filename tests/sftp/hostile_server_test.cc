// ferry's SFTP client and destination against a deliberately broken server
// (fake_sftp_server.py, run by a real sshd as a subsystem): replies to requests
// nobody sent, absurd packet lengths, and listings with names that try to
// leave the directory. Each must fail cleanly or be filtered, never crash.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <filesystem>

#include "ferry/error.h"
#include "lib/sftp/client.h"
#include "lib/ssh/session.h"
#include "lib/transport/sftp/sftp_destination.h"
#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

namespace ferry {
namespace {

using testing::RunCoroutine;

std::string FakeServerCommand(const std::string& mode) {
  // Tests run from the runfiles root.
  const std::string script = std::filesystem::absolute("tests/sftp/fake_sftp_server.py").string();
  return "Subsystem fake-" + mode + " /usr/bin/python3 " + script + " " + mode;
}

class HostileServerTest : public ::testing::Test {
 protected:
  HostileServerTest()
      : sshd_(
            testing::SshdOptions{10,
                                 {FakeServerCommand("unknown-id"), FakeServerCommand("huge-length"),
                                  FakeServerCommand("hostile-names")}}) {}
  void SetUp() override {
    Status started = sshd_.Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "sshd log:\n%s\n", sshd_.Log().c_str());
  }

  // Starts a client on the fake subsystem `mode`, runs one LSTAT, returns its error.
  std::error_code LstatOn(const std::string& mode) {
    std::error_code result;
    RunCoroutine(io_, [&]() -> asio::awaitable<void> {
      auto session = co_await ssh::Session::Connect(io_.get_executor(), sshd_.ConnectOptions());
      CO_ASSERT_OK(session);
      sftp::ClientOptions options;
      options.subsystem = "fake-" + mode;
      auto client = co_await sftp::Client::Start(**session, options);
      CO_ASSERT_OK(client);
      std::string path = "/x";
      auto attrs = co_await (*client)->Lstat(path);
      EXPECT_FALSE(attrs.ok());
      if (!attrs.ok()) result = attrs.code();
      EXPECT_TRUE((*client)->failed());
      // Later requests fail at once with the same error.
      auto again = co_await (*client)->Lstat(path);
      EXPECT_EQ(again.code(), result);
      Status closed = co_await (*client)->Close();
      (void)closed;
      Status disconnected = co_await (*session)->Disconnect();
      (void)disconnected;
    });
    return result;
  }

  asio::io_context io_;
  testing::TestSshd sshd_;
};

TEST_F(HostileServerTest, ReplyToAnUnknownRequestIdFailsTheClient) {
  EXPECT_EQ(LstatOn("unknown-id"), errc::kProtocol);
}

TEST_F(HostileServerTest, AbsurdPacketLengthFailsTheClient) {
  EXPECT_EQ(LstatOn("huge-length"), errc::kProtocol);
}

TEST_F(HostileServerTest, HostileNamesInAListingAreDroppedAndCounted) {
  asio::thread_pool pool(1);
  RunCoroutine(io_, [&]() -> asio::awaitable<void> {
    transport::SftpConfig config;
    config.connect = sshd_.ConnectOptions();
    config.root = "/hostile";
    config.subsystem = "fake-hostile-names";
    config.connections = 1;
    config.channels_per_connection = 1;
    auto made = transport::MakeSftpDestination(config, io_.get_executor(), pool);
    CO_ASSERT_OK(made);
    transport::Destination& dest = **made;
    Status opened = co_await dest.Open(false);
    EXPECT_TRUE(opened.ok()) << opened.error().Message();
    if (opened.ok()) {
      std::string root;
      auto listing = co_await dest.List(root);
      EXPECT_TRUE(listing.ok()) << listing.error().Message();
      if (listing.ok()) {
        EXPECT_TRUE(listing->exists);
        EXPECT_EQ(listing->entries.size(), 1u);
        if (!listing->entries.empty()) {
          EXPECT_EQ(listing->entries[0].name, "good");
        }
        EXPECT_EQ(listing->unsafe_names, 3u);  // "../x", "a/b", ""
      }
    }
    Status closed = co_await dest.Close();
    EXPECT_TRUE(closed.ok());
  });
}

}  // namespace
}  // namespace ferry
