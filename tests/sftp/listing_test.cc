// The pure part of SFTP listings: hostile names from a server never reach the
// engine, and attributes map to Entries as lstat would.
#include "lib/transport/sftp/listing.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "lib/sftp/codec.h"

namespace ferry::transport::sftp_internal {
namespace {

std::string U32(uint32_t v) {
  std::string s;
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
  return s;
}
std::string Str(std::string_view s) {
  return U32(static_cast<uint32_t>(s.size())) + std::string(s);
}

// A NAME reply body as a hostile server would send it.
std::string NameReply(const std::vector<std::pair<std::string, uint32_t>>& names) {
  std::string body = std::string(1, static_cast<char>(104)) + U32(9) + U32(names.size());
  for (const auto& [name, mode] : names) {
    body += Str(name) + Str("longname") + U32(sftp::kAttrPermissions | sftp::kAttrAcModTime) +
            U32(mode) + U32(1) + U32(1'700'000'000);
  }
  return body;
}

TEST(SftpListingTest, HostileNamesInANameReplyAreDroppedAndCounted) {
  auto reply = sftp::ParseReply(NameReply({
      {".", S_IFDIR | 0755},
      {"..", S_IFDIR | 0755},
      {"../x", S_IFREG | 0644},
      {"a/b", S_IFREG | 0644},
      {"/etc/passwd", S_IFREG | 0644},
      {"", S_IFREG | 0644},
      {std::string("nul\0byte", 8), S_IFREG | 0644},
      {"good", S_IFREG | 0644},
  }));
  ASSERT_TRUE(reply.ok()) << reply.error().Message();
  auto names = sftp::ExpectNames(*reply, "readdir");
  ASSERT_TRUE(names.ok());
  ListingBuilder builder;
  builder.Add(std::move(*names));
  const Listing& listing = builder.listing();
  EXPECT_TRUE(listing.exists);
  ASSERT_EQ(listing.entries.size(), 1u);
  EXPECT_EQ(listing.entries[0].name, "good");
  EXPECT_EQ(listing.unsafe_names, 5u);  // "." and ".." are not counted
}

TEST(SftpListingTest, AttributesMapLikeLstat) {
  sftp::Attrs a;
  a.flags = sftp::kAttrSize | sftp::kAttrPermissions | sftp::kAttrAcModTime;
  a.size = 42;
  a.permissions = S_IFREG | 04755;
  a.mtime = 1'600'000'000;
  Entry file = EntryFromAttrs("f", a);
  EXPECT_EQ(file.type, EntryType::kFile);
  EXPECT_EQ(file.size, 42u);
  EXPECT_EQ(file.mode, 04755u);
  EXPECT_EQ(file.mtime_ns, 1'600'000'000'000'000'000);
  a.permissions = S_IFLNK | 0777;
  EXPECT_EQ(EntryFromAttrs("l", a).type, EntryType::kSymlink);
  a.permissions = S_IFDIR | 0700;
  EXPECT_EQ(EntryFromAttrs("d", a).type, EntryType::kDirectory);
  a.permissions = S_IFIFO | 0600;
  EXPECT_EQ(EntryFromAttrs("p", a).type, EntryType::kSpecial);
  sftp::Attrs none;
  EXPECT_EQ(EntryFromAttrs("?", none).type, EntryType::kSpecial);
}

TEST(SftpListingTest, SymlinksAreRememberedForReadlink) {
  std::vector<sftp::NameEntry> names(3);
  names[0].filename = "a";
  names[0].attrs.flags = sftp::kAttrPermissions;
  names[0].attrs.permissions = S_IFLNK | 0777;
  names[1].filename = "b/c";  // dropped: must not shift the indexes
  names[2].filename = "d";
  names[2].attrs.flags = sftp::kAttrPermissions;
  names[2].attrs.permissions = S_IFLNK | 0777;
  ListingBuilder builder;
  builder.Add(std::move(names));
  ASSERT_EQ(builder.symlinks().size(), 2u);
  EXPECT_EQ(builder.listing().entries[builder.symlinks()[1]].name, "d");
}

TEST(SftpListingTest, SecondsForSftpFloorsAndClamps) {
  EXPECT_EQ(SecondsForSftp(1'500'000'000'999'999'999), 1'500'000'000u);
  EXPECT_EQ(SecondsForSftp(0), 0u);
  EXPECT_EQ(SecondsForSftp(-1), 0u);
  EXPECT_EQ(SecondsForSftp(int64_t{1} << 62), UINT32_MAX);
}

}  // namespace
}  // namespace ferry::transport::sftp_internal
