#include "lib/transport/url.h"

#include <gtest/gtest.h>

#include "ferry/error.h"

namespace ferry::transport {
namespace {

using Kind = DestinationSpec::Kind;

TEST(ParseDestinationTest, PlainPathIsLocal) {
  auto spec = ParseDestination("/srv/www");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, Kind::kLocal);
  EXPECT_EQ(spec->path, "/srv/www");
}

TEST(ParseDestinationTest, ColonAfterSlashStaysLocal) {
  auto spec = ParseDestination("./a:b");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, Kind::kLocal);
  EXPECT_EQ(spec->path, "./a:b");
}

TEST(ParseDestinationTest, SftpUrlWithUserPortAndAbsolutePath) {
  auto spec = ParseDestination("sftp://deploy@example.com:2222/srv/www");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, Kind::kSftp);
  EXPECT_EQ(spec->user, "deploy");
  EXPECT_EQ(spec->host, "example.com");
  EXPECT_EQ(spec->port, 2222);
  EXPECT_EQ(spec->path, "/srv/www");
}

TEST(ParseDestinationTest, SftpUrlTildeIsLoginDirectory) {
  auto spec = ParseDestination("sftp://h/~/backup");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->path, "backup");
  EXPECT_EQ(spec->port, 0);
}

TEST(ParseDestinationTest, SftpUrlIpv6Host) {
  auto spec = ParseDestination("sftp://u@[::1]:22/x");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->host, "::1");
  EXPECT_EQ(spec->port, 22);
}

TEST(ParseDestinationTest, PercentEscapesAreDecoded) {
  auto spec = ParseDestination("sftp://h/a%20b");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->path, "/a b");
}

TEST(ParseDestinationTest, ScpStyleIsRelativeToLogin) {
  auto spec = ParseDestination("deploy@host:site");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, Kind::kSftp);
  EXPECT_EQ(spec->user, "deploy");
  EXPECT_EQ(spec->host, "host");
  EXPECT_EQ(spec->path, "site");
}

TEST(ParseDestinationTest, BadInputIsRefusedWithInvalidArgument) {
  for (const char* bad : {"", "sftp://", "sftp://:22/x", "sftp://h:0/x", "sftp://h:99999/x",
                          "sftp://h:x/x", "sftp://@h/x", "ftp://h/x", "sftp://h/%zz",
                          "sftp://h/%00", "a\nb", "sftp://[::1/x", "sftp://h$/x"}) {
    auto spec = ParseDestination(bad);
    EXPECT_FALSE(spec.ok()) << bad;
    if (!spec.ok()) {
      EXPECT_EQ(spec.code(), errc::kInvalidArgument) << bad;
    }
  }
}

TEST(ParseDestinationTest, FileUrlIsLocal) {
  auto spec = ParseDestination("file:///tmp/x");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, Kind::kLocal);
  EXPECT_EQ(spec->path, "/tmp/x");
}

}  // namespace
}  // namespace ferry::transport
