#include "lib/sftp/codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ferry/error.h"

namespace ferry::sftp {
namespace {

// Server-side packet building, for feeding the decoder.
struct Wire {
  std::string body;
  Wire& U8(uint8_t v) {
    body.push_back(static_cast<char>(v));
    return *this;
  }
  Wire& U32(uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) body.push_back(static_cast<char>((v >> s) & 0xff));
    return *this;
  }
  Wire& U64(uint64_t v) {
    U32(static_cast<uint32_t>(v >> 32));
    return U32(static_cast<uint32_t>(v));
  }
  Wire& Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    body.append(s);
    return *this;
  }
  // Length-prefixed, as on the wire.
  std::string Packet() const {
    Wire w;
    w.U32(static_cast<uint32_t>(body.size()));
    return w.body + body;
  }
};

std::string Hex(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

// ---- encoding ----------------------------------------------------------------

TEST(SftpEncodeTest, InitCarriesTheVersion) { EXPECT_EQ(Hex(EncodeInit()), "000000050100000003"); }

TEST(SftpEncodeTest, OpenHasIdPathFlagsAndAttrs) {
  Attrs attrs;
  attrs.flags = kAttrPermissions;
  attrs.permissions = 0600;
  std::string p = EncodeOpen(7, "a/b", kOpenWrite | kOpenCreate | kOpenExclusive, attrs);
  Wire expected;
  expected.U8(3).U32(7).Str("a/b").U32(0x2a).U32(kAttrPermissions).U32(0600);
  EXPECT_EQ(Hex(p), Hex(expected.Packet()));
  EXPECT_EQ(RequestIdOf(p), 7u);
}

TEST(SftpEncodeTest, AttrsWithEveryFieldAreEncodedInDraftOrder) {
  Attrs a;
  a.flags = kAttrSize | kAttrUidGid | kAttrPermissions | kAttrAcModTime | kAttrExtended;
  a.size = 0x0102030405060708ull;
  a.uid = 1;
  a.gid = 2;
  a.permissions = 0100644;
  a.atime = 10;
  a.mtime = 20;
  a.extended = {{"k", "v"}};
  Wire expected;
  expected.U8(10)
      .U32(1)
      .Str("h")
      .U32(a.flags)
      .U64(a.size)
      .U32(1)
      .U32(2)
      .U32(0100644)
      .U32(10)
      .U32(20)
      .U32(1)
      .Str("k")
      .Str("v");
  EXPECT_EQ(Hex(EncodeFsetstat(1, "h", a)), Hex(expected.Packet()));
}

TEST(SftpEncodeTest, WriteIntoAReusedBufferKeepsItsCapacityAndNoneOfItsBytes) {
  const std::byte data[] = {std::byte{0xde}, std::byte{0xad}};
  std::string spent(300 * 1024, 'x');
  const size_t capacity = spent.capacity();
  const char* storage = spent.data();
  std::string packet = EncodeWrite(9, "hd", 7, data, std::move(spent));
  EXPECT_EQ(Hex(packet), Hex(EncodeWrite(9, "hd", 7, data)));
  EXPECT_EQ(packet.data(), storage);  // no new allocation
  EXPECT_EQ(packet.capacity(), capacity);
}

TEST(SftpEncodeTest, WriteAndReadLayout) {
  const std::byte data[] = {std::byte{0xde}, std::byte{0xad}};
  Wire w;
  w.U8(6).U32(9).Str("hd").U64(1ull << 33).Str("\xde\xad");
  EXPECT_EQ(Hex(EncodeWrite(9, "hd", 1ull << 33, data)), Hex(w.Packet()));
  Wire r;
  r.U8(5).U32(10).Str("hd").U64(5).U32(32768);
  EXPECT_EQ(Hex(EncodeRead(10, "hd", 5, 32768)), Hex(r.Packet()));
}

TEST(SftpEncodeTest, SymlinkSendsTargetFirstAsOpenSshExpects) {
  Wire w;
  w.U8(20).U32(3).Str("the-target").Str("the-link");
  EXPECT_EQ(Hex(EncodeSymlink(3, "the-link", "the-target")), Hex(w.Packet()));
}

TEST(SftpEncodeTest, ExtensionsAreNamedExtendedRequests) {
  Wire rename;
  rename.U8(200).U32(4).Str("posix-rename@openssh.com").Str("/a").Str("/b");
  EXPECT_EQ(Hex(EncodePosixRename(4, "/a", "/b")), Hex(rename.Packet()));
  Wire fsync;
  fsync.U8(200).U32(5).Str("fsync@openssh.com").Str("h");
  EXPECT_EQ(Hex(EncodeFsync(5, "h")), Hex(fsync.Packet()));
  Wire limits;
  limits.U8(200).U32(6).Str("limits@openssh.com");
  EXPECT_EQ(Hex(EncodeLimits(6)), Hex(limits.Packet()));
  Wire statvfs;
  statvfs.U8(200).U32(7).Str("statvfs@openssh.com").Str("/");
  EXPECT_EQ(Hex(EncodeStatvfs(7, "/")), Hex(statvfs.Packet()));
  Wire hardlink;
  hardlink.U8(200).U32(8).Str("hardlink@openssh.com").Str("x").Str("y");
  EXPECT_EQ(Hex(EncodeHardlink(8, "x", "y")), Hex(hardlink.Packet()));
}

TEST(SftpEncodeTest, PathRequestsShareOneLayout) {
  struct Case {
    std::string packet;
    uint8_t type;
  } cases[] = {
      {EncodeLstat(1, "p"), 7},    {EncodeStat(1, "p"), 17},     {EncodeFstat(1, "p"), 8},
      {EncodeOpendir(1, "p"), 11}, {EncodeReaddir(1, "p"), 12},  {EncodeRemove(1, "p"), 13},
      {EncodeRmdir(1, "p"), 15},   {EncodeRealpath(1, "p"), 16}, {EncodeReadlink(1, "p"), 19},
      {EncodeClose(1, "p"), 4},
  };
  for (const Case& c : cases) {
    Wire w;
    w.U8(c.type).U32(1).Str("p");
    EXPECT_EQ(Hex(c.packet), Hex(w.Packet())) << int(c.type);
  }
  Wire mkdir;
  mkdir.U8(14).U32(2).Str("d").U32(0);
  EXPECT_EQ(Hex(EncodeMkdir(2, "d", Attrs{})), Hex(mkdir.Packet()));
  Wire rename;
  rename.U8(18).U32(2).Str("a").Str("b");
  EXPECT_EQ(Hex(EncodeRename(2, "a", "b")), Hex(rename.Packet()));
  Wire setstat;
  setstat.U8(9).U32(2).Str("f").U32(0);
  EXPECT_EQ(Hex(EncodeSetstat(2, "f", Attrs{})), Hex(setstat.Packet()));
}

// ---- framing ------------------------------------------------------------------

TEST(SftpFramerTest, ReassemblesPacketsSplitAnywhere) {
  Wire a, b;
  a.U8(101).U32(1).U32(0).Str("ok").Str("");
  b.U8(102).U32(2).Str("h1");
  const std::string stream = a.Packet() + b.Packet();
  for (size_t step = 1; step <= stream.size(); ++step) {
    PacketFramer framer;
    std::vector<std::string> bodies;
    for (size_t i = 0; i < stream.size(); i += step) {
      framer.Append(std::string_view(stream).substr(i, step));
      for (;;) {
        auto next = framer.Next();
        ASSERT_TRUE(next.ok());
        if (!*next) break;
        bodies.push_back(**next);
      }
    }
    ASSERT_EQ(bodies.size(), 2u) << step;
    EXPECT_EQ(bodies[0], a.body);
    EXPECT_EQ(bodies[1], b.body);
    EXPECT_EQ(framer.buffered(), 0u);
  }
}

TEST(SftpFramerTest, OversizedLengthIsAProtocolErrorBeforeAnyAllocation) {
  PacketFramer framer;
  framer.Append(std::string_view("\xff\xff\xff\xf0\x65", 5));
  auto next = framer.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.code(), errc::kProtocol);
  PacketFramer just_over;
  Wire w;
  w.U32(kMaxPacketLength + 1);
  just_over.Append(w.body);
  EXPECT_EQ(just_over.Next().code(), errc::kProtocol);
}

TEST(SftpFramerTest, ZeroLengthIsAProtocolError) {
  PacketFramer framer;
  framer.Append(std::string_view("\0\0\0\0", 4));
  EXPECT_EQ(framer.Next().code(), errc::kProtocol);
}

TEST(SftpFramerTest, IncompletePacketWaitsForMore) {
  PacketFramer framer;
  Wire w;
  w.U8(103).U32(1).Str(std::string(1000, 'x'));
  std::string p = w.Packet();
  framer.Append(std::string_view(p).substr(0, 500));
  auto next = framer.Next();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
  framer.Append(std::string_view(p).substr(500));
  next = framer.Next();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ(**next, w.body);
}

// ---- parsing -------------------------------------------------------------------

TEST(SftpParseTest, VersionWithExtensions) {
  Wire w;
  w.U8(2).U32(3).Str("posix-rename@openssh.com").Str("1").Str("limits@openssh.com").Str("1");
  auto v = ParseVersion(w.body);
  ASSERT_TRUE(v.ok()) << v.error().Message();
  EXPECT_EQ(v->version, 3u);
  ASSERT_EQ(v->extensions.size(), 2u);
  EXPECT_TRUE(v->Has(kPosixRename));
  EXPECT_TRUE(v->Has(kLimits));
  EXPECT_FALSE(v->Has(kFsync));
}

TEST(SftpParseTest, VersionWithTruncatedExtensionIsRejected) {
  Wire w;
  w.U8(2).U32(3).Str("posix-rename@openssh.com").U32(10).U8('1');
  EXPECT_EQ(ParseVersion(w.body).code(), errc::kProtocol);
  Wire not_version;
  not_version.U8(101).U32(3);
  EXPECT_EQ(ParseVersion(not_version.body).code(), errc::kProtocol);
}

TEST(SftpParseTest, StatusWithAndWithoutMessage) {
  Wire full;
  full.U8(101).U32(42).U32(2).Str("No such file").Str("en");
  auto r = ParseReply(full.body);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, PacketType::kStatus);
  EXPECT_EQ(r->id, 42u);
  EXPECT_EQ(r->status.code, 2u);
  EXPECT_EQ(r->status.message, "No such file");
  EXPECT_EQ(r->status.language, "en");
  Wire bare;
  bare.U8(101).U32(43).U32(0);
  auto b = ParseReply(bare.body);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(ExpectOk(*b, "x").ok());
}

TEST(SftpParseTest, NameWithAttributes) {
  Wire w;
  w.U8(104).U32(5).U32(2);
  w.Str("file")
      .Str("-rw-r--r-- file")
      .U32(kAttrSize | kAttrPermissions | kAttrAcModTime)
      .U64(1234)
      .U32(0100644)
      .U32(100)
      .U32(200);
  w.Str("link")
      .Str("lrwxrwxrwx link")
      .U32(kAttrPermissions | kAttrExtended)
      .U32(0120777)
      .U32(1)
      .Str("k")
      .Str("v");
  auto r = ParseReply(w.body);
  ASSERT_TRUE(r.ok()) << r.error().Message();
  ASSERT_EQ(r->names.size(), 2u);
  EXPECT_EQ(r->names[0].filename, "file");
  EXPECT_EQ(r->names[0].attrs.size, 1234u);
  EXPECT_EQ(r->names[0].attrs.permissions, 0100644u);
  EXPECT_EQ(r->names[0].attrs.mtime, 200u);
  EXPECT_EQ(r->names[1].filename, "link");
  EXPECT_FALSE(r->names[1].attrs.Has(kAttrSize));
  ASSERT_EQ(r->names[1].attrs.extended.size(), 1u);
  EXPECT_EQ(r->names[1].attrs.extended[0].second, "v");
  auto names = ExpectNames(*r, "readdir");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 2u);
}

TEST(SftpParseTest, HandleDataAttrsAndExtendedReply) {
  Wire h;
  h.U8(102).U32(1).Str(std::string_view("\0\0\0\1", 4));
  auto handle = ExpectHandle(*ParseReply(h.body), "open");
  ASSERT_TRUE(handle.ok());
  EXPECT_EQ(handle->size(), 4u);

  Wire d;
  d.U8(103).U32(2).Str("payload");
  EXPECT_EQ(*ExpectData(*ParseReply(d.body), "read"), "payload");

  Wire a;
  a.U8(105).U32(3).U32(kAttrUidGid).U32(1000).U32(1001);
  auto attrs = ExpectAttrs(*ParseReply(a.body), "stat");
  ASSERT_TRUE(attrs.ok());
  EXPECT_EQ(attrs->gid, 1001u);

  Wire limits;
  limits.U8(201).U32(4).U64(262144).U64(261120).U64(261120).U64(0);
  auto payload = ExpectExtendedReply(*ParseReply(limits.body), "limits");
  ASSERT_TRUE(payload.ok());
  auto l = ParseLimits(*payload);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->max_write_length, 261120u);
  EXPECT_EQ(ParseLimits(payload->substr(0, 20)).code(), errc::kProtocol);
  EXPECT_EQ(ParseStatVfs(*payload).code(), errc::kProtocol);  // 32 bytes, needs 88
}

TEST(SftpParseTest, EofStatusMeansEmptyDataAndEndOfDirectory) {
  Wire eof;
  eof.U8(101).U32(1).U32(1).Str("EOF").Str("");
  auto r = ParseReply(eof.body);
  ASSERT_TRUE(r.ok());
  auto data = ExpectData(*r, "read");
  ASSERT_TRUE(data.ok());
  EXPECT_TRUE(data->empty());
  auto names = ExpectNames(*r, "readdir");
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
  // ... but EOF is an error where a STATUS OK is expected.
  EXPECT_FALSE(ExpectOk(*r, "close").ok());
}

TEST(SftpParseTest, WrongReplyTypeIsAProtocolError) {
  Wire d;
  d.U8(103).U32(2).Str("payload");
  auto r = ParseReply(d.body);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ExpectOk(*r, "close").code(), errc::kProtocol);
  EXPECT_EQ(ExpectHandle(*r, "open").code(), errc::kProtocol);
  EXPECT_EQ(ExpectOneName(*r, "realpath").code(), errc::kProtocol);
}

// ---- hostile input ----------------------------------------------------------------

TEST(SftpHostileTest, HugeNameCountIsRejectedWithoutAllocating) {
  Wire w;
  w.U8(104).U32(1).U32(0xffffffff).Str("a").Str("b").U32(0);
  auto r = ParseReply(w.body);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), errc::kProtocol);
}

TEST(SftpHostileTest, StringLongerThanThePacketIsRejected) {
  Wire w;
  w.U8(103).U32(1).U32(1000).body += "short";
  EXPECT_EQ(ParseReply(w.body).code(), errc::kProtocol);
  Wire name;
  name.U8(104).U32(1).U32(1).U32(0x7fffffff).body += "x";
  EXPECT_EQ(ParseReply(name.body).code(), errc::kProtocol);
}

TEST(SftpHostileTest, TruncatedFieldsAreRejected) {
  Wire w;
  w.U8(105).U32(1).U32(kAttrSize).U32(0);  // size needs 8 bytes
  EXPECT_EQ(ParseReply(w.body).code(), errc::kProtocol);
  EXPECT_EQ(ParseReply(std::string_view("\x65\x00", 2)).code(), errc::kProtocol);
  EXPECT_EQ(ParseReply(std::string_view()).code(), errc::kProtocol);
  Wire status;
  status.U8(101).U32(1).U32(4).U32(50).body += "cut";
  EXPECT_EQ(ParseReply(status.body).code(), errc::kProtocol);
}

TEST(SftpHostileTest, UnknownTypesAndFlagsAreRejected) {
  Wire unknown;
  unknown.U8(99).U32(1);
  EXPECT_EQ(ParseReply(unknown.body).code(), errc::kProtocol);
  Wire version;  // VERSION is only valid as the first packet
  version.U8(2).U32(3);
  EXPECT_EQ(ParseReply(version.body).code(), errc::kProtocol);
  Wire flags;
  flags.U8(105).U32(1).U32(0x10).U32(0);
  EXPECT_EQ(ParseReply(flags.body).code(), errc::kProtocol);
}

TEST(SftpHostileTest, HugeExtendedAttrCountIsRejected) {
  Wire w;
  w.U8(105).U32(1).U32(kAttrExtended).U32(0x10000000).Str("k").Str("v");
  EXPECT_EQ(ParseReply(w.body).code(), errc::kProtocol);
}

TEST(SftpHostileTest, OverlongHandleIsRejected) {
  Wire w;
  w.U8(102).U32(1).Str(std::string(300, 'h'));
  EXPECT_EQ(ParseReply(w.body).code(), errc::kProtocol);
}

// ---- errors ------------------------------------------------------------------------

TEST(SftpErrorTest, StatusCodesCompareEqualToPortableConditions) {
  std::error_code missing = StatusCode::kNoSuchFile;
  EXPECT_EQ(missing, std::errc::no_such_file_or_directory);
  EXPECT_NE(missing, std::errc::permission_denied);
  std::error_code denied = StatusCode::kPermissionDenied;
  EXPECT_EQ(denied, std::errc::permission_denied);
  std::error_code unsupported = StatusCode::kOpUnsupported;
  EXPECT_EQ(unsupported, std::errc::operation_not_supported);
  std::error_code failure = StatusCode::kFailure;
  EXPECT_NE(failure, std::errc::no_such_file_or_directory);
  EXPECT_STREQ(missing.category().name(), "sftp");
  EXPECT_NE(missing.message().find("FX_NO_SUCH_FILE"), std::string::npos);
  EXPECT_NE(std::error_code(77, sftp_category()).message().find("77"), std::string::npos);
}

TEST(SftpErrorTest, ErrorFromStatusKeepsWhatAndServerText) {
  StatusReply s;
  s.code = 3;
  s.message = "Permission denied\nforged line";
  Status st = ErrorFromStatus(s, "open /x");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), std::errc::permission_denied);
  EXPECT_NE(st.error().detail.find("open /x"), std::string::npos);
  EXPECT_EQ(st.error().detail.find('\n'), std::string::npos);
  s.code = 0;
  EXPECT_TRUE(ErrorFromStatus(s, "x").ok());
}

}  // namespace
}  // namespace ferry::sftp
