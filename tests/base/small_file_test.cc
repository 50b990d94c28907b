#include "lib/base/small_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <system_error>

namespace ferry {
namespace {

class SmallFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string templ = std::string(tmp ? tmp : "/tmp") + "/small_file_XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  std::string dir_;
};

TEST_F(SmallFileTest, ReadsWholeFileIncludingNulBytes) {
  const std::string content = std::string("key\0data\n", 9) + std::string(20000, 'x');
  const std::string path = Write("f", content);
  auto text = ReadSmallFile(path, 1 << 20);
  ASSERT_TRUE(text.ok()) << text.error().Message();
  EXPECT_EQ(*text, content);
}

TEST_F(SmallFileTest, EmptyFileIsEmptyString) {
  auto text = ReadSmallFile(Write("empty", ""), 10);
  ASSERT_TRUE(text.ok()) << text.error().Message();
  EXPECT_EQ(*text, "");
}

TEST_F(SmallFileTest, FileOfExactlyMaxSizeIsRead) {
  auto text = ReadSmallFile(Write("f", std::string(100, 'a')), 100);
  ASSERT_TRUE(text.ok()) << text.error().Message();
  EXPECT_EQ(text->size(), 100u);
}

TEST_F(SmallFileTest, FileOverMaxSizeIsFileTooLargeWithPath) {
  const std::string path = Write("big", std::string(101, 'a'));
  auto text = ReadSmallFile(path, 100);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.code(), std::errc::file_too_large);
  EXPECT_EQ(text.error().detail, path);
}

TEST_F(SmallFileTest, MissingFileIsNoSuchFileWithPath) {
  const std::string path = dir_ + "/missing";
  auto text = ReadSmallFile(path, 100);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.code(), std::errc::no_such_file_or_directory);
  EXPECT_NE(text.error().Message().find(path), std::string::npos);
}

TEST_F(SmallFileTest, DirectoryIsIsADirectory) {
  auto text = ReadSmallFile(dir_, 100, SpecialFiles::kAllowCharDevices);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.code(), std::errc::is_a_directory);
}

TEST_F(SmallFileTest, FifoIsInvalidArgumentWithoutBlocking) {
  const std::string path = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  for (SpecialFiles special : {SpecialFiles::kReject, SpecialFiles::kAllowCharDevices}) {
    auto text = ReadSmallFile(path, 100, special);
    ASSERT_FALSE(text.ok());
    EXPECT_EQ(text.code(), std::errc::invalid_argument);
    EXPECT_EQ(text.error().detail, path);
  }
}

TEST_F(SmallFileTest, CharDeviceIsReadOnlyWhenAllowed) {
  auto allowed = ReadSmallFile("/dev/null", 100, SpecialFiles::kAllowCharDevices);
  ASSERT_TRUE(allowed.ok()) << allowed.error().Message();
  EXPECT_EQ(*allowed, "");
  auto rejected = ReadSmallFile("/dev/null", 100, SpecialFiles::kReject);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.code(), std::errc::invalid_argument);
}

TEST_F(SmallFileTest, EndlessCharDeviceStopsAtMaxSize) {
  auto text = ReadSmallFile("/dev/zero", 1000, SpecialFiles::kAllowCharDevices);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.code(), std::errc::file_too_large);
}

TEST_F(SmallFileTest, UnreadableFileIsPermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads mode-000 files";
  const std::string path = Write("secret", "x");
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  auto text = ReadSmallFile(path, 100);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.code(), std::errc::permission_denied);
}

}  // namespace
}  // namespace ferry
