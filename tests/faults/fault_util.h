// Shared by the fault tests: a destination that is either a local directory or
// a real sshd (sftp://), and the checks every fault case ends with: nothing
// truncated or foreign under a final name, no temp left, and a rerun converges.
#ifndef FERRY_TESTS_FAULTS_FAULT_UTIL_H_
#define FERRY_TESTS_FAULTS_FAULT_UTIL_H_

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ferry/push.h"
#include "tests/sshd/sshd_fixture.h"
#include "tests/testing/tree.h"

namespace ferry::faults {

namespace t = ferry::testing;

enum class Where { kLocal, kSftp };

inline std::string WhereName(const ::testing::TestParamInfo<Where>& info) {
  return info.param == Where::kLocal ? "Local" : "Sftp";
}

// Root bypasses permission bits (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
// CAP_FOWNER). Dropping them from this process AND from its bounding set makes
// "permission denied" real for the test, for ferry's threads (created later,
// they inherit) and for the sshd it starts (root regains at exec only what the
// bounding set allows), so the SFTP server's session hits EACCES too. Call from
// main() before any thread exists. Returns false when it could not (not root
// or no CAP_SETPCAP): the permission cases then skip themselves.
inline bool DropFileCapabilities() {
  const int caps[] = {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER};
  for (int cap : caps) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
        ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      return false;
    }
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  for (int cap : caps) {
    const uint32_t bit = 1u << (cap % 32);
    data[cap / 32].effective &= ~bit;
    data[cap / 32].permitted &= ~bit;
    data[cap / 32].inheritable &= ~bit;
  }
  return ::syscall(SYS_capset, &header, data) == 0;
}

// True when permission bits bind this process (not root, or root without the
// capabilities above).
inline bool PermissionsApply() {
  std::string dir = t::MakeTempDir("perm_probe");
  std::string file = dir + "/f";
  t::WriteFile(file, "x", 0000);
  FILE* f = std::fopen(file.c_str(), "r");
  if (f != nullptr) std::fclose(f);
  return f == nullptr;
}

inline std::string Describe(const Report& r) {
  std::string out = "fatal=" + std::string(r.fatal ? r.fatal.message() : "no") + " " +
                    r.fatal_message + " cancelled=" + (r.cancelled ? "yes" : "no") +
                    " sent=" + std::to_string(r.totals.files_sent) +
                    " failed=" + std::to_string(r.totals.files_failed);
  for (const Problem& p : r.problems) {
    out += "\n  [" + p.stage + "] '" + p.path + "' " + p.code.message() + ": " + p.message;
  }
  return out;
}

// A source tree and a destination, local or behind a real sshd.
class FaultTest : public ::testing::TestWithParam<Where> {
 protected:
  void SetUp() override {
    src_ = t::MakeTempDir("src");
    if (GetParam() == Where::kSftp) {
      sshd_ = std::make_unique<t::TestSshd>(SshdOptionsFor());
      BeforeSshdStart();
      Status started = sshd_->Start();
      ASSERT_TRUE(started.ok()) << started.error().Message();
      dst_ = sshd_->root() + "/dst";
    } else {
      dst_ = t::MakeTempDir("dst") + "/dst";
    }
  }
  void TearDown() override {
    if (HasFailure() && sshd_ != nullptr) {
      std::fprintf(stderr, "sshd log:\n%s\n", sshd_->Log().c_str());
    }
  }
  virtual t::SshdOptions SshdOptionsFor() { return {}; }
  virtual void BeforeSshdStart() {}

  bool sftp() const { return GetParam() == Where::kSftp; }
  std::string S(const std::string& rel) const { return src_ + "/" + rel; }
  std::string D(const std::string& rel) const { return dst_ + "/" + rel; }

  // The destination string for dst_ (a path, or sftp://user@127.0.0.1:PORT/path).
  std::string Destination() const {
    if (!sftp()) return dst_;
    return "sftp://" + sshd_->user() + "@127.0.0.1:" + std::to_string(sshd_->port()) + dst_;
  }

  PushOptions Options() const {
    PushOptions o;
    o.source = src_;
    o.destination = Destination();
    o.hash_cache = "none";
    if (sftp()) {
      o.ssh.known_hosts = sshd_->known_hosts();
      o.ssh.identity_files = {sshd_->user_key()};
      o.ssh.config_file = "none";
      o.ssh.use_agent = false;
    }
    return o;
  }

  Report Push() const { return PushBlocking(Options()); }

  // No truncated or foreign file under a final name: every regular file in the
  // destination is byte-identical to the source file of that name, or (when
  // `alternatives` names it) to one of the listed contents, or with
  // `prefixes_ok` to a prefix of one (a state the source passed through while
  // a writer rewrote it in place). No temp file.
  void ExpectNothingPartial(
      const std::map<std::string, std::vector<std::string>>& alternatives = {},
      bool prefixes_ok = false) const {
    if (!t::Exists(dst_)) return;
    for (const auto& [path, info] : t::Snapshot(dst_)) {
      if (info.type != 'f') continue;
      auto alt = alternatives.find(path);
      if (alt != alternatives.end()) {
        bool matches = false;
        for (const std::string& c : alt->second) {
          matches = matches || c == info.content ||
                    (prefixes_ok && c.compare(0, info.content.size(), info.content) == 0);
        }
        EXPECT_TRUE(matches) << "torn or foreign content under final name: " << path << " ("
                             << info.size << " bytes)";
        continue;
      }
      ASSERT_TRUE(t::Exists(S(path))) << "foreign file in destination: " << path;
      EXPECT_TRUE(t::ReadFile(S(path)) == info.content)
          << "content differs under final name: " << path;
    }
    EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});
  }

  // The destination has the source's files, directories and symlinks (content,
  // mode; mtimes are compared by the suites that own them), nothing else.
  void ExpectSameTree(bool ignore_dir_mode = false) const {
    auto src = t::Snapshot(src_);
    auto dst = t::Snapshot(dst_);
    for (const auto& [path, info] : src) {
      auto it = dst.find(path);
      if (it == dst.end()) {
        ADD_FAILURE() << "missing in destination: " << path;
        continue;
      }
      EXPECT_EQ(info.type, it->second.type) << path;
      if (!(ignore_dir_mode && info.type == 'd')) {
        EXPECT_EQ(info.mode, it->second.mode) << path;
      }
      EXPECT_TRUE(info.content == it->second.content) << "content differs: " << path;
      EXPECT_EQ(info.target, it->second.target) << path;
    }
    for (const auto& [path, info] : dst) {
      EXPECT_TRUE(src.count(path) == 1) << "extra in destination: " << path;
    }
  }

  // A rerun succeeds and leaves the destination identical to the source, and a
  // third run has nothing to send. `with_delete`: the rerun also passes
  // --delete, for cases where the source lost entries the first run had sent
  // (nothing is ever deleted without it).
  void ExpectRerunConverges(bool with_delete = false, bool ignore_dir_mode = false) const {
    PushOptions o = Options();
    o.delete_extraneous = with_delete;
    Report again = PushBlocking(o);
    ASSERT_TRUE(again.ok()) << Describe(again);
    ExpectSameTree(ignore_dir_mode);
    EXPECT_EQ(t::FindTemps(dst_), std::vector<std::string>{});
    Report noop = Push();
    ASSERT_TRUE(noop.ok()) << Describe(noop);
    EXPECT_EQ(noop.totals.files_sent, 0u);
  }

  std::string src_, dst_;
  std::unique_ptr<t::TestSshd> sshd_;
};

}  // namespace ferry::faults

#endif  // FERRY_TESTS_FAULTS_FAULT_UTIL_H_
