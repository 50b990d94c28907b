#include "lib/ssh/auth_sources.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "ferry/error.h"

namespace ferry::ssh {
namespace {

namespace fs = std::filesystem;
using transport::DestinationSpec;

DestinationSpec Sftp(std::string host, std::string user = "", uint16_t port = 0) {
  DestinationSpec spec;
  spec.kind = DestinationSpec::Kind::kSftp;
  spec.host = std::move(host);
  spec.user = std::move(user);
  spec.port = port;
  spec.path = "/srv";
  return spec;
}

class AuthSourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    home_ = (fs::path(tmp ? tmp : "/tmp") /
             ::testing::UnitTest::GetInstance()->current_test_info()->name())
                .string();
    fs::remove_all(home_);
    fs::create_directories(ssh_dir());
    env_.home_dir = home_;
    env_.user = "ann";
  }

  std::string ssh_dir() const { return home_ + "/.ssh"; }

  void WriteConfig(const std::string& text) { std::ofstream(ssh_dir() + "/config") << text; }

  // Runs ssh-keygen: type "ed25519", "ecdsa" or "rsa"; empty passphrase = unencrypted.
  std::string Keygen(const std::string& name, const std::string& type,
                     const std::string& passphrase = "") {
    const std::string path = ssh_dir() + "/" + name;
    const std::string cmd = "ssh-keygen -q -t " + type + (type == "rsa" ? " -b 2048" : "") +
                            " -N '" + passphrase + "' -C test -f '" + path + "' </dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return path;
  }

  Result<ConnectSetup> Build(const DestinationSpec& spec) {
    return BuildConnectOptions(spec, opts_, env_);
  }

  std::string home_;
  SshOptions opts_;
  Environment env_;
};

std::vector<std::string> Paths(const ConnectOptions& o) {
  std::vector<std::string> paths;
  for (const Identity& id : o.identities) paths.push_back(id.private_key);
  return paths;
}

TEST_F(AuthSourcesTest, DefaultsComeFromTheEnvironment) {
  auto setup = Build(Sftp("example.com"));
  ASSERT_TRUE(setup.ok()) << setup.error().Message();
  const ConnectOptions& o = setup->options;
  EXPECT_EQ(o.host, "example.com");
  EXPECT_EQ(o.port, 22);
  EXPECT_EQ(o.user, "ann");
  EXPECT_EQ(o.known_hosts_path, home_ + "/.ssh/known_hosts");
  EXPECT_EQ(o.host_key_policy, HostKeyPolicy::kStrict);
  EXPECT_TRUE(o.identities.empty());
  EXPECT_FALSE(o.password.has_value());
  EXPECT_FALSE(o.passphrase.has_value());
  EXPECT_EQ(o.connect_timeout, SshOptions{}.connect_timeout);
  ASSERT_EQ(setup->warnings.size(), 1u);  // no key, no agent
  EXPECT_NE(setup->warnings[0].find("SSH_AUTH_SOCK"), std::string::npos);
}

TEST_F(AuthSourcesTest, NoKeysButAgentMeansNoIdentitiesAndNoWarning) {
  env_.ssh_auth_sock = "/tmp/agent.sock";
  auto setup = Build(Sftp("example.com"));
  ASSERT_TRUE(setup.ok());
  EXPECT_TRUE(setup->options.identities.empty());
  EXPECT_TRUE(setup->warnings.empty());
}

TEST_F(AuthSourcesTest, DefaultIdentitiesAreUsedWhenTheyExist) {
  const std::string ecdsa = Keygen("id_ecdsa", "ecdsa");
  auto only_ecdsa = Build(Sftp("h"));
  ASSERT_TRUE(only_ecdsa.ok());
  EXPECT_EQ(Paths(only_ecdsa->options), std::vector<std::string>{ecdsa});

  const std::string ed = Keygen("id_ed25519", "ed25519");
  auto both = Build(Sftp("h"));
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(Paths(both->options), (std::vector<std::string>{ed, ecdsa}));
  EXPECT_TRUE(both->warnings.empty());
}

TEST_F(AuthSourcesTest, ConfigHostNamePortAndUserApply) {
  WriteConfig("Host web\n HostName web.internal\n Port 2222\n User deploy\n");
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok()) << setup.error().Message();
  EXPECT_EQ(setup->options.host, "web.internal");
  EXPECT_EQ(setup->options.port, 2222);
  EXPECT_EQ(setup->options.user, "deploy");
}

TEST_F(AuthSourcesTest, UrlUserOverridesConfigUser) {
  WriteConfig("Host web\n User deploy\n IdentityFile ~/.ssh/key_%r\n");
  const std::string key = Keygen("key_carl", "ed25519");
  auto setup = Build(Sftp("web", "carl"));
  ASSERT_TRUE(setup.ok()) << setup.error().Message();
  EXPECT_EQ(setup->options.user, "carl");
  EXPECT_EQ(Paths(setup->options), std::vector<std::string>{key});  // %r is the URL user
}

TEST_F(AuthSourcesTest, UrlPortOverridesConfigPort) {
  WriteConfig("Port 2222\n");
  auto setup = Build(Sftp("web", "", 4444));
  ASSERT_TRUE(setup.ok());
  EXPECT_EQ(setup->options.port, 4444);
}

TEST_F(AuthSourcesTest, FlagIdentityOverridesConfig) {
  const std::string config_key = Keygen("config_key", "ed25519");
  const std::string flag_key = Keygen("flag_key", "ed25519");
  WriteConfig("IdentityFile " + config_key + "\n");
  opts_.identity_files = {"~/.ssh/flag_key"};
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok()) << setup.error().Message();
  EXPECT_EQ(Paths(setup->options), std::vector<std::string>{flag_key});
}

TEST_F(AuthSourcesTest, ConfigIdentityReplacesDefaults) {
  Keygen("id_ed25519", "ed25519");
  const std::string work = Keygen("id_work", "ed25519");
  WriteConfig("IdentityFile ~/.ssh/missing\nIdentityFile ~/.ssh/id_work\n");
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok()) << setup.error().Message();
  EXPECT_EQ(Paths(setup->options), std::vector<std::string>{work});  // missing: skipped
}

TEST_F(AuthSourcesTest, MissingFlagIdentityIsAnError) {
  opts_.identity_files = {ssh_dir() + "/nope"};
  auto setup = Build(Sftp("web"));
  ASSERT_FALSE(setup.ok());
  EXPECT_EQ(setup.code(), std::errc::no_such_file_or_directory);
  EXPECT_NE(setup.error().detail.find("nope"), std::string::npos);
}

TEST_F(AuthSourcesTest, FlagKnownHostsOverridesConfig) {
  WriteConfig("UserKnownHostsFile ~/.ssh/config_kh\n");
  auto from_config = Build(Sftp("web"));
  ASSERT_TRUE(from_config.ok());
  EXPECT_EQ(from_config->options.known_hosts_path, ssh_dir() + "/config_kh");
  opts_.known_hosts = "/etc/flag_kh";
  auto from_flag = Build(Sftp("web"));
  ASSERT_TRUE(from_flag.ok());
  EXPECT_EQ(from_flag->options.known_hosts_path, "/etc/flag_kh");
}

TEST_F(AuthSourcesTest, StrictNoBecomesAcceptNew) {
  for (const char* value : {"no", "off", "accept-new"}) {
    WriteConfig(std::string("StrictHostKeyChecking ") + value + "\n");
    auto setup = Build(Sftp("web"));
    ASSERT_TRUE(setup.ok());
    EXPECT_EQ(setup->options.host_key_policy, HostKeyPolicy::kAcceptNew) << value;
  }
}

TEST_F(AuthSourcesTest, StrictYesAndAskStayStrict) {
  for (const char* value : {"yes", "ask"}) {
    WriteConfig(std::string("StrictHostKeyChecking ") + value + "\n");
    auto setup = Build(Sftp("web"));
    ASSERT_TRUE(setup.ok());
    EXPECT_EQ(setup->options.host_key_policy, HostKeyPolicy::kStrict) << value;
  }
}

TEST_F(AuthSourcesTest, AcceptNewFlagBeatsStrictConfig) {
  WriteConfig("StrictHostKeyChecking yes\n");
  opts_.accept_new_host_key = true;
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok());
  EXPECT_EQ(setup->options.host_key_policy, HostKeyPolicy::kAcceptNew);
}

TEST_F(AuthSourcesTest, ConfigFileNoneSkipsTheConfig) {
  WriteConfig("Port 2222\n");
  opts_.config_file = "none";
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok());
  EXPECT_EQ(setup->options.port, 22);
}

TEST_F(AuthSourcesTest, ExplicitConfigFileReplacesTheDefaultOne) {
  WriteConfig("Port 2222\n");
  std::ofstream(ssh_dir() + "/other") << "Port 3333\n";
  opts_.config_file = "~/.ssh/other";
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok());
  EXPECT_EQ(setup->options.port, 3333);
}

TEST_F(AuthSourcesTest, MissingExplicitConfigIsAnErrorButMissingDefaultIsNot) {
  ASSERT_TRUE(Build(Sftp("web")).ok());  // no ~/.ssh/config
  opts_.config_file = ssh_dir() + "/nope";
  auto setup = Build(Sftp("web"));
  ASSERT_FALSE(setup.ok());
  EXPECT_EQ(setup.code(), std::errc::no_such_file_or_directory);
}

TEST_F(AuthSourcesTest, MalformedConfigIsAnError) {
  WriteConfig("Host web\n  Port twenty-two\n");
  auto setup = Build(Sftp("web"));
  ASSERT_FALSE(setup.ok());
  EXPECT_EQ(setup.code(), errc::kInvalidArgument);
  EXPECT_NE(setup.error().detail.find("config:2"), std::string::npos) << setup.error().detail;
}

TEST_F(AuthSourcesTest, ConfigWarningsArePassedOn) {
  WriteConfig("Match exec true\n User x\n");
  env_.ssh_auth_sock = "/tmp/agent.sock";
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok());
  ASSERT_EQ(setup->warnings.size(), 1u);
  EXPECT_NE(setup->warnings[0].find("Match"), std::string::npos);
}

TEST_F(AuthSourcesTest, ConnectTimeoutFromConfigUnlessTheFlagChangedIt) {
  WriteConfig("ConnectTimeout 5\n");
  auto from_config = Build(Sftp("web"));
  ASSERT_TRUE(from_config.ok());
  EXPECT_EQ(from_config->options.connect_timeout, std::chrono::seconds(5));
  opts_.connect_timeout = std::chrono::seconds(60);
  auto from_flag = Build(Sftp("web"));
  ASSERT_TRUE(from_flag.ok());
  EXPECT_EQ(from_flag->options.connect_timeout, std::chrono::seconds(60));
}

TEST_F(AuthSourcesTest, EncryptedKeyAsksForPassphrase) {
  const std::string key = Keygen("id_ed25519", "ed25519", "secret");
  int calls = 0;
  std::string prompt;
  env_.prompt_passphrase = [&](std::string p) -> std::optional<std::string> {
    ++calls;
    prompt = std::move(p);
    return "secret";
  };
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok()) << setup.error().Message();
  EXPECT_EQ(calls, 1);
  EXPECT_NE(prompt.find(key), std::string::npos) << prompt;
  EXPECT_EQ(setup->options.passphrase, "secret");
  EXPECT_EQ(Paths(setup->options), std::vector<std::string>{key});
}

TEST_F(AuthSourcesTest, PassphraseFromEnvironmentSkipsThePrompt) {
  Keygen("id_ed25519", "ed25519", "secret");
  env_.passphrase = "secret";
  env_.prompt_passphrase = [](std::string) -> std::optional<std::string> {
    ADD_FAILURE() << "prompted";
    return std::nullopt;
  };
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok());
  EXPECT_EQ(setup->options.passphrase, "secret");
}

TEST_F(AuthSourcesTest, UnencryptedKeyDoesNotAskForPassphrase) {
  Keygen("id_ed25519", "ed25519");
  env_.prompt_passphrase = [](std::string) -> std::optional<std::string> {
    ADD_FAILURE() << "prompted";
    return std::nullopt;
  };
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok());
  EXPECT_FALSE(setup->options.passphrase.has_value());
  EXPECT_EQ(setup->options.identities.size(), 1u);
}

TEST_F(AuthSourcesTest, EncryptedDefaultKeyWithoutPassphraseIsSkipped) {
  Keygen("id_ed25519", "ed25519", "secret");
  const std::string ecdsa = Keygen("id_ecdsa", "ecdsa");
  env_.prompt_passphrase = [](std::string) -> std::optional<std::string> { return std::nullopt; };
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok());
  EXPECT_EQ(Paths(setup->options), std::vector<std::string>{ecdsa});
  ASSERT_EQ(setup->warnings.size(), 1u);
  EXPECT_NE(setup->warnings[0].find("encrypted"), std::string::npos);
}

TEST_F(AuthSourcesTest, EncryptedFlagKeyWithoutPassphraseIsAnError) {
  opts_.identity_files = {Keygen("flag_key", "ed25519", "secret")};
  auto setup = Build(Sftp("web"));
  ASSERT_FALSE(setup.ok());
  EXPECT_EQ(setup.code(), errc::kAuthFailed);
}

TEST_F(AuthSourcesTest, PasswordFromEnvironment) {
  env_.password = "hunter2";
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok());
  EXPECT_EQ(setup->options.password, "hunter2");
  EXPECT_TRUE(setup->warnings.empty());  // a password is a way in: no "no key" warning
}

TEST_F(AuthSourcesTest, RsaIdentityWarns) {
  const std::string key = Keygen("id_rsa", "rsa");
  opts_.identity_files = {key};
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok()) << setup.error().Message();
  ASSERT_EQ(setup->warnings.size(), 1u);
  EXPECT_NE(setup->warnings[0].find("RSA"), std::string::npos);
  EXPECT_NE(setup->warnings[0].find("8.8"), std::string::npos);
  EXPECT_NE(setup->warnings[0].find("ed25519"), std::string::npos);
  EXPECT_EQ(Paths(setup->options), std::vector<std::string>{key});  // still tried
}

TEST_F(AuthSourcesTest, RsaIsDetectedWithoutThePublicKeyFile) {
  const std::string key = Keygen("id_rsa", "rsa", "secret");
  fs::remove(key + ".pub");
  auto info = InspectKeyFile(key);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->type, "ssh-rsa");
  EXPECT_TRUE(info->encrypted);
}

TEST_F(AuthSourcesTest, InspectKeyFileTellsEncryptedFromPlain) {
  const std::string plain = Keygen("plain", "ed25519");
  const std::string locked = Keygen("locked", "ed25519", "secret");
  fs::remove(locked + ".pub");
  auto p = InspectKeyFile(plain);
  auto l = InspectKeyFile(locked);
  ASSERT_TRUE(p.ok() && l.ok());
  EXPECT_FALSE(p->encrypted);
  EXPECT_TRUE(l->encrypted);
  EXPECT_EQ(p->type, "ssh-ed25519");
  EXPECT_EQ(l->type, "ssh-ed25519");
}

TEST_F(AuthSourcesTest, LegacyPemEncryptedHeaderIsDetected) {
  const std::string path = ssh_dir() + "/legacy";
  std::ofstream(path) << "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                         "DEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
  auto info = InspectKeyFile(path);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->encrypted);
  EXPECT_EQ(info->type, "ssh-rsa");
}

TEST_F(AuthSourcesTest, SecretsNeverAppearInWarningsOrErrors) {
  Keygen("id_ed25519", "ed25519", "pass-SECRET-1");
  Keygen("id_rsa", "rsa");
  env_.password = "pw-SECRET-2";
  env_.passphrase = "wrong-SECRET-3";
  WriteConfig("IdentityFile ~/.ssh/id_ed25519\nIdentityFile ~/.ssh/id_rsa\nMatch exec x\n");
  auto setup = Build(Sftp("web"));
  ASSERT_TRUE(setup.ok());
  EXPECT_FALSE(setup->warnings.empty());
  for (const std::string& w : setup->warnings) EXPECT_EQ(w.find("SECRET"), std::string::npos) << w;

  opts_.identity_files = {ssh_dir() + "/nope"};
  auto error = Build(Sftp("web"));
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.error().Message().find("SECRET"), std::string::npos);
}

TEST_F(AuthSourcesTest, NoUserAnywhereIsAnError) {
  env_.user.clear();
  auto setup = Build(Sftp("web"));
  ASSERT_FALSE(setup.ok());
  EXPECT_EQ(setup.code(), errc::kInvalidArgument);
}

TEST_F(AuthSourcesTest, LocalDestinationIsAnError) {
  DestinationSpec local;
  local.path = "/tmp/x";
  auto setup = Build(local);
  ASSERT_FALSE(setup.ok());
  EXPECT_EQ(setup.code(), errc::kInvalidArgument);
}

TEST_F(AuthSourcesTest, PassphraseCallbackOverridesEnvironment) {
  Keygen("id_ed25519", "ed25519", "secret");
  env_.passphrase = "wrong";
  env_.prompt_passphrase = [](std::string) -> std::optional<std::string> { return "wrong"; };
  int calls = 0;
  opts_.passphrase_callback = [&calls](const std::string& prompt) -> std::optional<std::string> {
    ++calls;
    EXPECT_NE(prompt.find("id_ed25519"), std::string::npos) << prompt;
    return "secret";
  };
  auto setup = Build(Sftp("h", "u"));
  ASSERT_TRUE(setup.ok()) << setup.error().Message();
  EXPECT_EQ(setup->options.passphrase, "secret");
  EXPECT_EQ(calls, 1);
}

TEST_F(AuthSourcesTest, PasswordCallbackOverridesEnvironmentAndIsAskedOnce) {
  env_.password = "from-env";
  int calls = 0;
  opts_.password_callback = [&calls](const std::string&) -> std::optional<std::string> {
    ++calls;
    return "from-callback";
  };
  auto setup = Build(Sftp("h", "u"));
  ASSERT_TRUE(setup.ok()) << setup.error().Message();
  EXPECT_FALSE(setup->options.password.has_value());  // asked lazily, by the Session
  ASSERT_TRUE(setup->options.password_callback);
  EXPECT_EQ(calls, 0);
  ConnectOptions copy = setup->options;  // e.g. one per pooled connection
  EXPECT_EQ(setup->options.password_callback("p: "), "from-callback");
  EXPECT_EQ(copy.password_callback("p: "), "from-callback");
  EXPECT_EQ(calls, 1);
}

TEST_F(AuthSourcesTest, HostKeyCallbackIsPassedOnAndRemembersItsAnswer) {
  int calls = 0;
  opts_.host_key_callback = [&calls](const HostKeyQuestion& q) {
    ++calls;
    return q.changed ? HostKeyDecision::kReject : HostKeyDecision::kAcceptOnce;
  };
  auto setup = Build(Sftp("h", "u"));
  ASSERT_TRUE(setup.ok()) << setup.error().Message();
  ASSERT_TRUE(setup->options.host_key_callback);
  HostKeyQuestion q;
  q.host = "h";
  q.fingerprint = "SHA256:x";
  EXPECT_EQ(setup->options.host_key_callback(q), HostKeyDecision::kAcceptOnce);
  EXPECT_EQ(setup->options.host_key_callback(q), HostKeyDecision::kAcceptOnce);
  EXPECT_EQ(calls, 1);
  q.changed = true;  // another question: asked again
  EXPECT_EQ(setup->options.host_key_callback(q), HostKeyDecision::kReject);
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace ferry::ssh
