#include "lib/ssh/ssh_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "ferry/error.h"

namespace ferry::ssh {
namespace {

namespace fs = std::filesystem;

const ResolveContext kContext{"/home/ann", "ann", "", 0};

SshConfig Parse(std::string_view text) {
  auto config = ParseSshConfig(text, "cfg");
  EXPECT_TRUE(config.ok()) << config.error().Message();
  return config.ok() ? *config : SshConfig{};
}

HostConfig ResolveText(std::string_view text, std::string_view alias,
                       const ResolveContext& context = kContext) {
  return Resolve(Parse(text), alias, context);
}

TEST(SshConfigTest, FirstMatchingHostWins) {
  const std::string text =
      "Host web\n"
      "  Port 2222\n"
      "  User deploy\n"
      "Host *\n"
      "  Port 22\n"
      "  User other\n"
      "  HostName fallback\n";
  const HostConfig web = ResolveText(text, "web");
  EXPECT_EQ(web.port, 2222);
  EXPECT_EQ(web.user, "deploy");
  EXPECT_EQ(web.hostname, "fallback");  // not set above: the catch-all still gives it
  EXPECT_EQ(ResolveText(text, "db").port, 22);
}

TEST(SshConfigTest, EarlierCatchAllBeatsLaterSpecificBlock) {
  const HostConfig hc = ResolveText("Host *\n User first\nHost web\n User second\n", "web");
  EXPECT_EQ(hc.user, "first");
}

TEST(SshConfigTest, SettingsBeforeAnyHostApplyToEveryHost) {
  EXPECT_EQ(ResolveText("Port 2200\nHost web\n Port 1\n", "web").port, 2200);
}

TEST(SshConfigTest, NegatedPatternExcludesHost) {
  const std::string text = "Host *.example.com !bad.example.com\n  User good\n";
  EXPECT_EQ(ResolveText(text, "a.example.com").user, "good");
  EXPECT_EQ(ResolveText(text, "bad.example.com").user, "");
  EXPECT_EQ(ResolveText(text, "example.org").user, "");
}

TEST(SshConfigTest, OnlyNegatedPatternsMatchNothing) {
  EXPECT_EQ(ResolveText("Host !bad\n  User x\n", "good").user, "");
}

TEST(SshConfigTest, SeveralPatternsPerLineAnyMatches) {
  const std::string text = "Host alpha beta\n  Port 7\n";
  EXPECT_EQ(ResolveText(text, "alpha").port, 7);
  EXPECT_EQ(ResolveText(text, "beta").port, 7);
  EXPECT_EQ(ResolveText(text, "gamma").port, 0);
}

TEST(SshConfigTest, QuestionMarkMatchesExactlyOneCharacter) {
  EXPECT_TRUE(HostPatternsMatch({"web?"}, "web1"));
  EXPECT_FALSE(HostPatternsMatch({"web?"}, "web"));
  EXPECT_FALSE(HostPatternsMatch({"web?"}, "web12"));
  EXPECT_TRUE(HostPatternsMatch({"*.x.*"}, "a.x.b"));
  EXPECT_FALSE(HostPatternsMatch({"*.x.*"}, "a.y.b"));
  EXPECT_TRUE(HostPatternsMatch({"*"}, "**"));  // a star in the host is just a character
  EXPECT_TRUE(HostPatternsMatch({"*"}, ""));
}

TEST(SshConfigTest, HostMatchingIgnoresCase) {
  EXPECT_EQ(ResolveText("Host WEB\n Port 1\n", "Web").port, 1);
}

TEST(SshConfigTest, KeywordsAreCaseInsensitive) {
  const HostConfig hc = ResolveText("hOsT web\nPORT 3\nhostname h\nIDENTITYFILE /k\n", "web");
  EXPECT_EQ(hc.port, 3);
  EXPECT_EQ(hc.hostname, "h");
  EXPECT_EQ(hc.identity_files, std::vector<std::string>{"/k"});
}

TEST(SshConfigTest, KeyEqualsValueFormIsAccepted) {
  const HostConfig hc = ResolveText("Port=2200\nUser = bob\nHostName =h\n", "x");
  EXPECT_EQ(hc.port, 2200);
  EXPECT_EQ(hc.user, "bob");
  EXPECT_EQ(hc.hostname, "h");
}

TEST(SshConfigTest, QuotedValuesKeepSpaces) {
  const HostConfig hc =
      ResolveText("IdentityFile \"/keys/my key\"\nUserKnownHostsFile '/kh/a b' /kh/c\n", "x");
  EXPECT_EQ(hc.identity_files, std::vector<std::string>{"/keys/my key"});
  EXPECT_EQ(hc.known_hosts, "/kh/a b");
}

TEST(SshConfigTest, CommentsAndBlankLinesAreIgnored) {
  const HostConfig hc = ResolveText("# a comment\n\n   \n  # indented\nPort 5 # trailing\n", "x");
  EXPECT_EQ(hc.port, 5);
}

TEST(SshConfigTest, CarriageReturnsAreIgnored) {
  EXPECT_EQ(ResolveText("Host web\r\n  User bob\r\n", "web").user, "bob");
}

TEST(SshConfigTest, UnknownKeywordsAreIgnored) {
  const HostConfig hc = ResolveText("ForwardAgent yes\nControlMaster auto\nPort 9\n", "x");
  EXPECT_EQ(hc.port, 9);
}

TEST(SshConfigTest, IdentityFileTildeExpands) {
  const HostConfig hc = ResolveText("IdentityFile ~/.ssh/id_work\n", "x");
  EXPECT_EQ(hc.identity_files, std::vector<std::string>{"/home/ann/.ssh/id_work"});
}

TEST(SshConfigTest, IdentityFilesAccumulateInFileOrder) {
  const HostConfig hc = ResolveText(
      "Host web\n IdentityFile /a\nHost *\n IdentityFile /b\n IdentityFile /c\n", "web");
  EXPECT_EQ(hc.identity_files, (std::vector<std::string>{"/a", "/b", "/c"}));
}

TEST(SshConfigTest, IdentityFileTokensExpand) {
  const HostConfig hc = ResolveText(
      "Host web\n HostName web.internal\n User deploy\n Port 2222\n"
      " IdentityFile %d/keys/%u-%r@%h-%n:%p-100%%\n",
      "web");
  EXPECT_EQ(hc.identity_files,
            std::vector<std::string>{"/home/ann/keys/ann-deploy@web.internal-web:2222-100%"});
}

TEST(SshConfigTest, UserOverrideIsTheRemoteUserToken) {
  ResolveContext context = kContext;
  context.user_override = "carl";
  const HostConfig hc = ResolveText("User deploy\nIdentityFile /k/%r\n", "x", context);
  EXPECT_EQ(hc.identity_files, std::vector<std::string>{"/k/carl"});
  EXPECT_EQ(hc.user, "deploy");
}

TEST(SshConfigTest, RemoteUserTokenDefaultsToLocalUser) {
  EXPECT_EQ(ResolveText("IdentityFile /k/%r\n", "x").identity_files,
            std::vector<std::string>{"/k/ann"});
}

TEST(SshConfigTest, HostNameExpandsAlias) {
  EXPECT_EQ(ResolveText("Host *\n HostName %h.corp.example\n", "web").hostname, "web.corp.example");
}

TEST(SshConfigTest, HostNameRejectsOtherTokens) {
  auto config = ParseSshConfig("HostName %u.example\n", "cfg");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.code(), errc::kInvalidArgument);
  EXPECT_NE(config.error().detail.find("cfg:1"), std::string::npos);
}

TEST(SshConfigTest, KnownHostsTakesFirstFileOfFirstLine) {
  const HostConfig hc =
      ResolveText("UserKnownHostsFile ~/.ssh/kh1 ~/.ssh/kh2\nUserKnownHostsFile /other\n", "x");
  EXPECT_EQ(hc.known_hosts, "/home/ann/.ssh/kh1");
}

TEST(SshConfigTest, StrictHostKeyCheckingIsLowerCased) {
  EXPECT_EQ(ResolveText("StrictHostKeyChecking Accept-New\n", "x").strict_host_key_checking,
            "accept-new");
  EXPECT_FALSE(ResolveText("Port 1\n", "x").strict_host_key_checking.has_value());
}

TEST(SshConfigTest, BadStrictHostKeyCheckingIsAnError) {
  auto config = ParseSshConfig("StrictHostKeyChecking maybe\n", "cfg");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.code(), errc::kInvalidArgument);
}

TEST(SshConfigTest, IdentitiesOnlyFirstValueWins) {
  EXPECT_TRUE(ResolveText("IdentitiesOnly yes\nIdentitiesOnly no\n", "x").identities_only);
  EXPECT_FALSE(ResolveText("IdentitiesOnly no\nIdentitiesOnly yes\n", "x").identities_only);
}

TEST(SshConfigTest, ConnectTimeoutAcceptsTimeUnits) {
  EXPECT_EQ(ResolveText("ConnectTimeout 10\n", "x").connect_timeout_s, 10);
  EXPECT_EQ(ResolveText("ConnectTimeout 1m30s\n", "x").connect_timeout_s, 90);
  EXPECT_FALSE(ResolveText("Port 1\n", "x").connect_timeout_s.has_value());
  auto bad = ParseSshConfig("ConnectTimeout soon\n", "cfg");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), errc::kInvalidArgument);
}

TEST(SshConfigTest, MatchAllActsAsHostStar) {
  const std::string text = "Host web\n Port 1\nMatch all\n User everyone\n";
  EXPECT_EQ(ResolveText(text, "db").user, "everyone");
  EXPECT_EQ(ResolveText(text, "db").port, 0);
}

TEST(SshConfigTest, OtherMatchBlocksAreSkippedWithAWarning) {
  const SshConfig config = Parse("Match exec \"true\"\n User skipped\nHost *\n Port 4\n");
  ASSERT_EQ(config.warnings.size(), 1u);
  EXPECT_NE(config.warnings[0].find("cfg:1"), std::string::npos);
  const HostConfig hc = Resolve(config, "x", kContext);
  EXPECT_EQ(hc.user, "");
  EXPECT_EQ(hc.port, 4);  // the next Host line ends the skipped block
}

TEST(SshConfigTest, MalformedPortIsAnError) {
  for (const char* port : {"0", "65536", "22x", "-1", "99999999999"}) {
    auto config = ParseSshConfig(std::string("# c\nHost x\n  Port ") + port + "\n", "cfg");
    ASSERT_FALSE(config.ok()) << port;
    EXPECT_EQ(config.code(), errc::kInvalidArgument);
    EXPECT_NE(config.error().detail.find("cfg:3"), std::string::npos) << config.error().detail;
  }
}

TEST(SshConfigTest, MalformedPortIsAnErrorEvenInABlockForAnotherHost) {
  EXPECT_FALSE(ParseSshConfig("Host other\n Port x\n", "cfg").ok());
}

TEST(SshConfigTest, UnterminatedQuoteIsAnError) {
  auto config = ParseSshConfig("User ok\nIdentityFile \"/a b\n", "cfg");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.code(), errc::kInvalidArgument);
  EXPECT_NE(config.error().detail.find("cfg:2"), std::string::npos);
  EXPECT_NE(config.error().detail.find("quote"), std::string::npos);
}

TEST(SshConfigTest, MissingArgumentIsAnError) {
  for (const char* text : {"Host\n", "Port\n", "User\n", "IdentityFile\n", "Include\n"}) {
    auto config = ParseSshConfig(text, "cfg");
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.code(), errc::kInvalidArgument);
  }
}

TEST(SshConfigTest, ExtraArgumentsAreAnError) {
  auto config = ParseSshConfig("Port 22 23\n", "cfg");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.code(), errc::kInvalidArgument);
}

TEST(SshConfigTest, UnknownTokenIsAnError) {
  auto config = ParseSshConfig("IdentityFile ~/.ssh/%x\n", "cfg");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.code(), errc::kInvalidArgument);
}

TEST(SshConfigTest, UnsupportedTokenDropsTheLineWithAWarning) {
  const SshConfig config = Parse("IdentityFile ~/.ssh/%C\nIdentityFile /b\n");
  EXPECT_EQ(config.warnings.size(), 1u);
  EXPECT_EQ(Resolve(config, "x", kContext).identity_files, std::vector<std::string>{"/b"});
}

// ---- Load and Include: real files under TEST_TMPDIR.

class SshConfigLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    home_ = fs::path(tmp ? tmp : "/tmp") /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(home_);
    fs::create_directories(home_ / ".ssh");
  }

  void Write(const std::string& relative, const std::string& text) {
    const fs::path path = home_ / ".ssh" / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  Result<SshConfig> Load() { return LoadSshConfig((home_ / ".ssh/config").string(), home_); }

  fs::path home_;
};

TEST_F(SshConfigLoadTest, IncludeIsFollowedButDepthLimited) {
  Write("config", "Include config.d/*\nHost *\n Port 22\n");
  Write("config.d/10-web", "Host web\n Port 2000\n Include ~/.ssh/nested\n");
  Write("config.d/20-db", "Host db\n Port 3000\n");
  Write("nested", "User nested\n");
  auto config = Load();
  ASSERT_TRUE(config.ok()) << config.error().Message();
  const ResolveContext context{home_, "ann", "", 0};
  EXPECT_EQ(Resolve(*config, "web", context).port, 2000);
  EXPECT_EQ(Resolve(*config, "web", context).user, "nested");
  EXPECT_EQ(Resolve(*config, "db", context).port, 3000);
  EXPECT_EQ(Resolve(*config, "db", context).user, "");
  EXPECT_EQ(Resolve(*config, "other", context).port, 22);

  // A file that includes itself stops at the depth limit with an error.
  Write("config", "Include config\n");
  auto loop = Load();
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.code(), errc::kInvalidArgument);
  EXPECT_NE(loop.error().detail.find("Include"), std::string::npos) << loop.error().detail;
}

TEST_F(SshConfigLoadTest, IncludeInsideHostBlockAppliesOnlyToThatHost) {
  Write("config", "Host web\n Include extra\nHost *\n User default\n");
  Write("extra", "User webuser\nHost *\n Port 99\n");
  auto config = Load();
  ASSERT_TRUE(config.ok()) << config.error().Message();
  const ResolveContext context{home_, "ann", "", 0};
  EXPECT_EQ(Resolve(*config, "web", context).user, "webuser");
  EXPECT_EQ(Resolve(*config, "web", context).port, 99);
  EXPECT_EQ(Resolve(*config, "db", context).user, "default");
  EXPECT_EQ(Resolve(*config, "db", context).port, 0);
}

TEST_F(SshConfigLoadTest, IncludeWithoutMatchesIsNotAnError) {
  Write("config", "Include does-not-exist/*\nPort 5\n");
  auto config = Load();
  ASSERT_TRUE(config.ok()) << config.error().Message();
  EXPECT_EQ(Resolve(*config, "x", {}).port, 5);
}

TEST_F(SshConfigLoadTest, ErrorsInIncludedFilesNameThatFile) {
  Write("config", "Include bad\n");
  Write("bad", "\nPort nope\n");
  auto config = Load();
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.code(), errc::kInvalidArgument);
  EXPECT_NE(config.error().detail.find("bad:2"), std::string::npos) << config.error().detail;
}

TEST_F(SshConfigLoadTest, MissingFileIsNoSuchFile) {
  auto config = LoadSshConfig((home_ / "nope").string(), home_);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.code(), std::errc::no_such_file_or_directory);
}

}  // namespace
}  // namespace ferry::ssh
