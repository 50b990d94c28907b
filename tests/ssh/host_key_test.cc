#include "lib/ssh/host_key.h"

#include <gtest/gtest.h>

namespace ferry::ssh {
namespace {

// A key generated with ssh-keygen; `ssh-keygen -lf` printed the fingerprint below.
constexpr char kKeyBase64[] =
    "AAAAC3NzaC1lZDI1NTE5AAAAIDpkeYmr3tVTjksNxPzh9TwPj2T6GHob1u7bHp+VFduw";

TEST(HostKeyTest, FingerprintMatchesSshKeygen) {
  auto blob = Base64Decode(kKeyBase64);
  ASSERT_TRUE(blob.has_value());
  EXPECT_EQ(Sha256Fingerprint(*blob), "SHA256:nbrxqy52RiYELTs+rWSrWsjFlmWbZDyVoxnsx2VKt3s");
}

TEST(HostKeyTest, KeyTypeIsReadFromTheBlob) {
  auto blob = Base64Decode(kKeyBase64);
  ASSERT_TRUE(blob.has_value());
  EXPECT_EQ(KeyTypeOfBlob(*blob), "ssh-ed25519");
  EXPECT_EQ(KeyTypeOfBlob("\x01\x02"), "");
  EXPECT_EQ(KeyTypeOfBlob(std::string("\0\0\0\x50short", 9)), "");
}

TEST(HostKeyTest, Base64RoundTripsEveryLength) {
  std::string data;
  for (int i = 0; i < 40; ++i) {
    auto decoded = Base64Decode(Base64Encode(data));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(*decoded, data);
    auto unpadded = Base64Decode(Base64Encode(data, /*pad=*/false));
    ASSERT_TRUE(unpadded.has_value());
    EXPECT_EQ(*unpadded, data);
    data += static_cast<char>(i * 37);
  }
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo", false), "Zm8");
}

TEST(HostKeyTest, InvalidBase64IsRejected) {
  EXPECT_FALSE(Base64Decode("ab!d").has_value());
  EXPECT_FALSE(Base64Decode("abcde").has_value());
}

}  // namespace
}  // namespace ferry::ssh
