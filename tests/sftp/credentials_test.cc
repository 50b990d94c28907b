// The embedder's credential callbacks (ferry::SshOptions::host_key_callback,
// passphrase_callback), end to end through ferry::PushBlocking against a real sshd:
// an unknown host key accepted and saved (a later strict push then passes), an
// unknown key rejected, a changed key rejected or accepted once (and never
// silently), a revoked key never even asked about, and an encrypted user key
// unlocked by the passphrase callback (or refused when it gives nothing).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ferry/error.h"
#include "ferry/push.h"
#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using testing::ReadLocalFile;
using testing::TestBytes;
using testing::WriteLocalFile;

std::string TestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

// Runs ssh-keygen quietly; returns its exit status.
int Keygen(const std::string& path, const std::string& passphrase) {
  fs::remove(path);
  fs::remove(path + ".pub");
  const std::string cmd = "ssh-keygen -q -t ed25519 -N '" + passphrase + "' -C ferry-test -f '" +
                          path + "' </dev/null >/dev/null 2>&1";
  return std::system(cmd.c_str());
}

// "TYPE BASE64" of a .pub file (the comment dropped).
std::string PublicKey(const std::string& pub_path) {
  std::string text = ReadLocalFile(pub_path);
  const size_t first = text.find(' ');
  const size_t second = text.find_first_of(" \n", first + 1);
  return text.substr(0, second);
}

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = sshd_.Start();
    ASSERT_TRUE(started.ok()) << started.error().Message();
    src_ = TestDir() + "/cred_src_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(src_);
    fs::create_directories(src_ + "/sub");
    WriteLocalFile(src_ + "/a.txt", TestBytes(1000, 1));
    WriteLocalFile(src_ + "/sub/b.bin", TestBytes(70000, 2));
    remote_ =
        sshd_.root() + "/cred/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    host_field_ = "[127.0.0.1]:" + std::to_string(sshd_.port());
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "sshd log:\n%s\n", sshd_.Log().c_str());
    fs::remove_all(src_);
  }

  PushOptions Options() {
    PushOptions options;
    options.source = src_;
    options.destination =
        "sftp://" + sshd_.user() + "@127.0.0.1:" + std::to_string(sshd_.port()) + remote_;
    options.ssh.known_hosts = sshd_.known_hosts();
    options.ssh.identity_files = {sshd_.user_key()};
    options.ssh.config_file = "none";
    options.ssh.use_agent = false;
    return options;
  }

  void ExpectArrived() {
    EXPECT_EQ(ReadLocalFile(remote_ + "/a.txt"), ReadLocalFile(src_ + "/a.txt"));
    EXPECT_EQ(ReadLocalFile(remote_ + "/sub/b.bin"), ReadLocalFile(src_ + "/sub/b.bin"));
  }

  // known_hosts names this server with a different ed25519 key.
  std::string WriteChangedKnownHosts() {
    const std::string other = sshd_.dir() + "/other_host_key";
    EXPECT_EQ(Keygen(other, ""), 0);
    const std::string line = host_field_ + " " + PublicKey(other + ".pub") + "\n";
    WriteLocalFile(sshd_.known_hosts(), line);
    return line;
  }

  testing::TestSshd sshd_;
  std::string src_, remote_, host_field_;
};

TEST_F(CredentialsTest, UnknownHostAcceptedAndSavedThenKnown) {
  WriteLocalFile(sshd_.known_hosts(), "");
  std::vector<HostKeyQuestion> asked;
  PushOptions options = Options();
  options.ssh.host_key_callback = [&asked](const HostKeyQuestion& q) {
    asked.push_back(q);
    return HostKeyDecision::kAcceptAndSave;
  };
  Report report = PushBlocking(options);
  ASSERT_FALSE(report.fatal) << report.fatal_message;
  EXPECT_EQ(report.totals.files_sent, 2u);
  ExpectArrived();
  // Asked once, although the pool may open several connections.
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].host, "127.0.0.1");
  EXPECT_EQ(asked[0].port, sshd_.port());
  EXPECT_FALSE(asked[0].changed);
  EXPECT_TRUE(asked[0].known_fingerprint.empty());
  EXPECT_EQ(asked[0].fingerprint.rfind("SHA256:", 0), 0u) << asked[0].fingerprint;
  EXPECT_FALSE(asked[0].key_type.empty());

  // Saved: the file now names this host with the key the server offered.
  const std::string known = ReadLocalFile(sshd_.known_hosts());
  EXPECT_EQ(known.rfind(host_field_ + " " + asked[0].key_type + " ", 0), 0u) << known;
  EXPECT_EQ(known.back(), '\n');

  // A second push, strict and without a callback, passes.
  WriteLocalFile(src_ + "/c.txt", "more");
  Report again = PushBlocking(Options());
  ASSERT_FALSE(again.fatal) << again.fatal_message;
  EXPECT_EQ(ReadLocalFile(remote_ + "/c.txt"), "more");
}

TEST_F(CredentialsTest, UnknownHostRejected) {
  WriteLocalFile(sshd_.known_hosts(), "");
  int calls = 0;
  PushOptions options = Options();
  options.ssh.accept_new_host_key = true;  // the callback takes precedence
  options.ssh.host_key_callback = [&calls](const HostKeyQuestion&) {
    ++calls;
    return HostKeyDecision::kReject;
  };
  Report report = PushBlocking(options);
  EXPECT_EQ(report.fatal, errc::kHostKeyUnknown) << report.fatal_message;
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ReadLocalFile(sshd_.known_hosts()), "");
  EXPECT_FALSE(fs::exists(remote_));
}

TEST_F(CredentialsTest, UnknownHostAcceptedOnceIsNotSaved) {
  WriteLocalFile(sshd_.known_hosts(), "");
  PushOptions options = Options();
  options.ssh.host_key_callback = [](const HostKeyQuestion&) {
    return HostKeyDecision::kAcceptOnce;
  };
  Report report = PushBlocking(options);
  ASSERT_FALSE(report.fatal) << report.fatal_message;
  ExpectArrived();
  EXPECT_EQ(ReadLocalFile(sshd_.known_hosts()), "");
  EXPECT_EQ(PushBlocking(Options()).fatal, errc::kHostKeyUnknown);
}

TEST_F(CredentialsTest, ChangedHostKeyRejected) {
  const std::string line = WriteChangedKnownHosts();
  std::vector<HostKeyQuestion> asked;
  PushOptions options = Options();
  options.ssh.host_key_callback = [&asked](const HostKeyQuestion& q) {
    asked.push_back(q);
    return HostKeyDecision::kReject;
  };
  Report report = PushBlocking(options);
  EXPECT_EQ(report.fatal, errc::kHostKeyMismatch) << report.fatal_message;
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_TRUE(asked[0].changed);
  EXPECT_EQ(asked[0].known_fingerprint.rfind("SHA256:", 0), 0u);
  EXPECT_NE(asked[0].known_fingerprint, asked[0].fingerprint);
  EXPECT_EQ(ReadLocalFile(sshd_.known_hosts()), line);
  EXPECT_FALSE(fs::exists(remote_));
  // Without a callback a changed key is refused even with accept_new_host_key.
  PushOptions accept_new = Options();
  accept_new.ssh.accept_new_host_key = true;
  EXPECT_EQ(PushBlocking(accept_new).fatal, errc::kHostKeyMismatch);
}

TEST_F(CredentialsTest, ChangedHostKeyAcceptedOnlyExplicitly) {
  const std::string line = WriteChangedKnownHosts();
  PushOptions options = Options();
  options.ssh.host_key_callback = [](const HostKeyQuestion& q) {
    return q.changed ? HostKeyDecision::kAcceptOnce : HostKeyDecision::kReject;
  };
  Report report = PushBlocking(options);
  ASSERT_FALSE(report.fatal) << report.fatal_message;
  ExpectArrived();
  EXPECT_EQ(ReadLocalFile(sshd_.known_hosts()), line);  // not saved
}

TEST_F(CredentialsTest, RevokedHostKeyIsNeverAskedAbout) {
  // The server's real key, marked @revoked.
  WriteLocalFile(sshd_.known_hosts(), "@revoked * " + sshd_.host_key_ed25519() + "\n");
  int calls = 0;
  PushOptions options = Options();
  options.ssh.host_key_callback = [&calls](const HostKeyQuestion&) {
    ++calls;
    return HostKeyDecision::kAcceptAndSave;
  };
  Report report = PushBlocking(options);
  EXPECT_EQ(report.fatal, errc::kHostKeyRevoked) << report.fatal_message;
  EXPECT_EQ(calls, 0);
}

class EncryptedKeyTest : public CredentialsTest {
 protected:
  void SetUp() override {
    CredentialsTest::SetUp();
    if (HasFatalFailure()) return;
    key_ = sshd_.dir() + "/encrypted_user_key";
    ASSERT_EQ(Keygen(key_, "secret"), 0);
    // Only this key is authorized, so success proves it was used.
    WriteLocalFile(sshd_.dir() + "/authorized_keys", ReadLocalFile(key_ + ".pub"));
    ::setenv("FERRY_PASSPHRASE", "wrong", 1);  // the callback overrides it
  }
  void TearDown() override {
    ::unsetenv("FERRY_PASSPHRASE");
    CredentialsTest::TearDown();
  }
  PushOptions EncryptedOptions() {
    PushOptions options = Options();
    options.ssh.identity_files = {key_};
    return options;
  }
  std::string key_;
};

TEST_F(EncryptedKeyTest, PassphraseFromCallback) {
  std::vector<std::string> prompts;
  PushOptions options = EncryptedOptions();
  options.ssh.passphrase_callback =
      [&prompts](const std::string& prompt) -> std::optional<std::string> {
    prompts.push_back(prompt);
    return "secret";
  };
  Report report = PushBlocking(options);
  ASSERT_FALSE(report.fatal) << report.fatal_message;
  ExpectArrived();
  ASSERT_EQ(prompts.size(), 1u);
  EXPECT_NE(prompts[0].find(key_), std::string::npos) << prompts[0];
}

TEST_F(EncryptedKeyTest, NoPassphraseFromCallbackFails) {
  PushOptions options = EncryptedOptions();
  options.ssh.passphrase_callback = [](const std::string&) -> std::optional<std::string> {
    return std::nullopt;
  };
  Report report = PushBlocking(options);
  EXPECT_EQ(report.fatal, errc::kAuthFailed) << report.fatal_message;
  EXPECT_EQ(report.fatal_message.find("secret"), std::string::npos);
  EXPECT_FALSE(fs::exists(remote_));
}

TEST_F(EncryptedKeyTest, WrongPassphraseFromCallbackFails) {
  PushOptions options = EncryptedOptions();
  options.ssh.passphrase_callback = [](const std::string&) -> std::optional<std::string> {
    return "not-the-secret";
  };
  Report report = PushBlocking(options);
  EXPECT_EQ(report.fatal, errc::kAuthFailed) << report.fatal_message;
  EXPECT_EQ(report.fatal_message.find("not-the-secret"), std::string::npos);
}

TEST_F(EncryptedKeyTest, PasswordCallbackNotAskedWhenServerOffersNoPassword) {
  // The fixture's sshd offers publickey only: a password callback is never asked.
  int calls = 0;
  PushOptions options = EncryptedOptions();
  options.ssh.passphrase_callback = [](const std::string&) -> std::optional<std::string> {
    return "not-the-secret";
  };
  options.ssh.password_callback = [&calls](const std::string&) -> std::optional<std::string> {
    ++calls;
    return "pw";
  };
  Report report = PushBlocking(options);
  EXPECT_EQ(report.fatal, errc::kAuthFailed) << report.fatal_message;
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace ferry
