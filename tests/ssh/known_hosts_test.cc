#include "lib/ssh/known_hosts.h"

#include <gtest/gtest.h>

#include "lib/ssh/host_key.h"

namespace ferry::ssh {
namespace {

// Real keys from ssh-keygen (the blobs carry their own type, which the parser checks).
constexpr char kKeyA[] = "AAAAC3NzaC1lZDI1NTE5AAAAIDpkeYmr3tVTjksNxPzh9TwPj2T6GHob1u7bHp+VFduw";

// Another ed25519 blob, built by hand: type string + 32 bytes of 0x11.
std::string KeyB() {
  std::string blob("\0\0\0\x0bssh-ed25519\0\0\0\x20", 19);
  blob += std::string(32, '\x11');
  return blob;
}

std::string KeyA() { return *Base64Decode(kKeyA); }

std::string Ecdsa() {
  std::string blob(
      "\0\0\0\x13"
      "ecdsa-sha2-nistp256",
      23);
  blob += std::string(40, '\x22');
  return blob;
}

std::string Line(std::string_view hosts, const std::string& blob, std::string_view marker = "") {
  std::string line;
  if (!marker.empty()) line = std::string(marker) + " ";
  return line + std::string(hosts) + " " + KeyTypeOfBlob(blob) + " " + Base64Encode(blob) +
         " comment\n";
}

HostKeyStatus Check(const std::string& file, std::string_view host, uint16_t port,
                    const std::string& blob) {
  return CheckHostKey(ParseKnownHosts(file), host, port, KeyTypeOfBlob(blob), blob).status;
}

TEST(KnownHostsTest, PlainHostnameMatches) {
  EXPECT_EQ(Check(Line("example.com", KeyA()), "example.com", 22, KeyA()), HostKeyStatus::kKnown);
}

TEST(KnownHostsTest, HostnamesCompareWithoutCase) {
  EXPECT_EQ(Check(Line("Example.COM", KeyA()), "example.com", 22, KeyA()), HostKeyStatus::kKnown);
  EXPECT_EQ(Check(Line("example.com", KeyA()), "EXAMPLE.com", 22, KeyA()), HostKeyStatus::kKnown);
}

TEST(KnownHostsTest, CommaListMatchesAnyMember) {
  const std::string file = Line("alpha,example.com,10.0.0.1", KeyA());
  EXPECT_EQ(Check(file, "example.com", 22, KeyA()), HostKeyStatus::kKnown);
  EXPECT_EQ(Check(file, "10.0.0.1", 22, KeyA()), HostKeyStatus::kKnown);
  EXPECT_EQ(Check(file, "beta", 22, KeyA()), HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, EntryWithoutPortDoesNotMatchOtherPort) {
  EXPECT_EQ(Check(Line("example.com", KeyA()), "example.com", 2222, KeyA()),
            HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, BracketedEntryMatchesOnlyItsPort) {
  const std::string file = Line("[example.com]:2222", KeyA());
  EXPECT_EQ(Check(file, "example.com", 2222, KeyA()), HostKeyStatus::kKnown);
  EXPECT_EQ(Check(file, "example.com", 2223, KeyA()), HostKeyStatus::kUnknown);
  EXPECT_EQ(Check(file, "example.com", 22, KeyA()), HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, BracketedPort22EntryIsNotHowOpenSshWritesPort22) {
  // OpenSSH looks up port 22 as the bare name, so "[host]:22" never matches.
  EXPECT_EQ(Check(Line("[example.com]:22", KeyA()), "example.com", 22, KeyA()),
            HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, WildcardsMatch) {
  EXPECT_EQ(Check(Line("*.example.com", KeyA()), "a.example.com", 22, KeyA()),
            HostKeyStatus::kKnown);
  EXPECT_EQ(Check(Line("host?", KeyA()), "host1", 22, KeyA()), HostKeyStatus::kKnown);
  EXPECT_EQ(Check(Line("*.example.com", KeyA()), "example.org", 22, KeyA()),
            HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, WildcardWithoutPortDoesNotMatchOtherPort) {
  EXPECT_EQ(Check(Line("*.example.com", KeyA()), "a.example.com", 2222, KeyA()),
            HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, NegatedPatternExcludesTheHost) {
  const std::string file = Line("*.example.com,!bad.example.com", KeyA());
  EXPECT_EQ(Check(file, "good.example.com", 22, KeyA()), HostKeyStatus::kKnown);
  EXPECT_EQ(Check(file, "bad.example.com", 22, KeyA()), HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, HashedEntryMatches) {
  // Written by `ssh-keygen -H` from "example.com" and "[example.com]:2222" lines.
  const std::string file =
      std::string("|1|c3+U+GhClZGn0zwIXRyvYRfGttE=|rjqJRqc7ucb/vuoY3euuT8vCUQE= ssh-ed25519 ") +
      kKeyA + "\n" + "|1|UiHWThBAJ1S6+94FaC74PXtq61I=|0iJ43DAWGxO76iWSMA9XVH0IwA8= ssh-ed25519 " +
      kKeyA + "\n";
  EXPECT_EQ(Check(file, "example.com", 22, KeyA()), HostKeyStatus::kKnown);
  EXPECT_EQ(Check(file, "example.com", 2222, KeyA()), HostKeyStatus::kKnown);
  EXPECT_EQ(Check(file, "example.com", 2223, KeyA()), HostKeyStatus::kUnknown);
  EXPECT_EQ(Check(file, "example.org", 22, KeyA()), HostKeyStatus::kUnknown);
  EXPECT_EQ(Check(file, "example.com", 22, KeyB()), HostKeyStatus::kMismatch);
}

TEST(KnownHostsTest, CorruptHashedEntryNeverMatches) {
  EXPECT_FALSE(HostFieldMatches("|1|c3+U+GhClZGn0zwIXRyvYRfGttE=", "example.com", 22));
  EXPECT_FALSE(HostFieldMatches("|2|abc|def", "example.com", 22));
}

TEST(KnownHostsTest, DifferentKeyIsMismatchWithTheLineOnRecord) {
  const std::string file = "# comment\n\n" + Line("example.com", KeyA());
  auto check = CheckHostKey(ParseKnownHosts(file), "example.com", 22, "ssh-ed25519", KeyB());
  EXPECT_EQ(check.status, HostKeyStatus::kMismatch);
  EXPECT_EQ(check.line, 3);
  EXPECT_EQ(check.known_key_type, "ssh-ed25519");
  EXPECT_EQ(check.known_key_blob, KeyA());
}

TEST(KnownHostsTest, AnyMatchingLineAcceptsTheKey) {
  const std::string file = Line("example.com", KeyB()) + Line("example.com", KeyA());
  EXPECT_EQ(Check(file, "example.com", 22, KeyA()), HostKeyStatus::kKnown);
}

TEST(KnownHostsTest, KeyOfAnotherTypeOnRecordIsMismatch) {
  EXPECT_EQ(Check(Line("example.com", Ecdsa()), "example.com", 22, KeyA()),
            HostKeyStatus::kMismatch);
}

TEST(KnownHostsTest, RevokedKeyIsRefused) {
  const std::string file = Line("example.com", KeyA()) + Line("*", KeyA(), "@revoked");
  auto check = CheckHostKey(ParseKnownHosts(file), "example.com", 22, "ssh-ed25519", KeyA());
  EXPECT_EQ(check.status, HostKeyStatus::kRevoked);
  EXPECT_EQ(check.line, 2);
}

TEST(KnownHostsTest, RevokedKeyIsRefusedWhateverHostTheLineNames) {
  const std::string file = Line("example.com", KeyA()) + Line("other", KeyA(), "@revoked");
  EXPECT_EQ(Check(file, "example.com", 22, KeyA()), HostKeyStatus::kRevoked);
}

TEST(KnownHostsTest, RevokedLineDoesNotVouchForItsHost) {
  EXPECT_EQ(Check(Line("example.com", KeyB(), "@revoked"), "example.com", 22, KeyA()),
            HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, CertAuthorityLinesAreIgnored) {
  EXPECT_EQ(Check(Line("example.com", KeyA(), "@cert-authority"), "example.com", 22, KeyA()),
            HostKeyStatus::kUnknown);
  EXPECT_EQ(Check(Line("example.com", KeyB(), "@cert-authority"), "example.com", 22, KeyA()),
            HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, UnknownMarkerLineIsIgnored) {
  EXPECT_EQ(Check(Line("example.com", KeyA(), "@whatever"), "example.com", 22, KeyA()),
            HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, MalformedLinesAreSkipped) {
  const std::string file = std::string("example.com ssh-ed25519\n") +
                           "example.com ssh-ed25519 not*base64\n" +
                           // the blob says ed25519, the line says ecdsa
                           "example.com ecdsa-sha2-nistp256 " + kKeyA + "\n" +
                           "   # indented comment\n" + Line("example.com", KeyA());
  auto entries = ParseKnownHosts(file);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].line, 5);
  EXPECT_EQ(Check(file, "example.com", 22, KeyA()), HostKeyStatus::kKnown);
}

TEST(KnownHostsTest, CrLfLineEndingsAreAccepted) {
  std::string line = Line("example.com", KeyA());
  line.insert(line.size() - 1, "\r");
  EXPECT_EQ(Check(line, "example.com", 22, KeyA()), HostKeyStatus::kKnown);
}

TEST(KnownHostsTest, EmptyFileKnowsNothing) {
  EXPECT_EQ(Check("", "example.com", 22, KeyA()), HostKeyStatus::kUnknown);
}

TEST(KnownHostsTest, KnownKeyTypesListsTypesOnRecordForTheHost) {
  const std::string file = Line("example.com", Ecdsa()) + Line("example.com", KeyA()) +
                           Line("example.com", KeyB()) + Line("other", KeyA()) +
                           Line("[example.com]:2222", KeyA());
  auto entries = ParseKnownHosts(file);
  EXPECT_EQ(KnownKeyTypes(entries, "example.com", 22),
            (std::vector<std::string>{"ecdsa-sha2-nistp256", "ssh-ed25519"}));
  EXPECT_EQ(KnownKeyTypes(entries, "example.com", 2222), (std::vector<std::string>{"ssh-ed25519"}));
}

TEST(KnownHostsTest, AppendedLineUsesBracketsForNonDefaultPort) {
  EXPECT_EQ(FormatKnownHostsLine("Example.com", 22, "ssh-ed25519", KeyA()),
            std::string("example.com ssh-ed25519 ") + kKeyA + "\n");
  EXPECT_EQ(FormatKnownHostsLine("127.0.0.1", 2222, "ssh-ed25519", KeyA()),
            std::string("[127.0.0.1]:2222 ssh-ed25519 ") + kKeyA + "\n");
}

TEST(KnownHostsTest, AppendedLineIsFoundAgain) {
  const std::string file = FormatKnownHostsLine("127.0.0.1", 2222, "ssh-ed25519", KeyA());
  EXPECT_EQ(Check(file, "127.0.0.1", 2222, KeyA()), HostKeyStatus::kKnown);
}

}  // namespace
}  // namespace ferry::ssh
