// Runs the real `ferry` binary (a data dependency) and checks what a user sees:
// exit codes, help, itemized dry runs and the --json event stream.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/testing/tree.h"

extern char** environ;

namespace ferry {
namespace {

namespace t = ferry::testing;

constexpr int64_t kOld = 1'000'000'000'123'456'789;

struct Ran {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string FerryPath() {
  // Tests run in the runfiles tree of the main repository.
  if (t::Exists("cli/ferry")) return "cli/ferry";
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  if (srcdir != nullptr && ws != nullptr) return std::string(srcdir) + "/" + ws + "/cli/ferry";
  return "cli/ferry";
}

Ran RunFerry(std::vector<std::string> args) {
  std::string dir = t::MakeTempDir("run");
  std::string out_path = dir + "/stdout", err_path = dir + "/stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::string path = FerryPath();
  args.insert(args.begin(), path);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  Ran ran;
  int rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ran.err = "posix_spawn failed: " + std::to_string(rc);
    return ran;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  ran.out = t::ReadFile(out_path);
  ran.err = t::ReadFile(err_path);
  return ran;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = t::MakeTempDir("src");
    dst_ = t::MakeTempDir("dst") + "/out";
    t::WriteFile(src_ + "/a.txt", "alpha", 0644, kOld);
    t::WriteFile(src_ + "/sub/b.txt", "beta", 0600, kOld);
    t::WriteFile(src_ + "/name with\nnewline \xff", "odd name", 0644, kOld);
  }
  std::string src_;
  std::string dst_;
};

TEST_F(CliTest, VersionPrintsTheVersion) {
  Ran r = RunFerry({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ferry 0."), std::string::npos) << r.out;
}

TEST_F(CliTest, HelpListsPushAndWatch) {
  Ran r = RunFerry({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("push"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("watch"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Exit codes"), std::string::npos) << r.out;
}

TEST_F(CliTest, UnknownFlagIsAUsageError) {
  Ran r = RunFerry({"push", "--no-such-flag", src_, dst_});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_FALSE(t::Exists(dst_));
}

TEST_F(CliTest, MissingOperandIsAUsageError) {
  EXPECT_EQ(RunFerry({"push", src_}).exit_code, 2);
  EXPECT_EQ(RunFerry({}).exit_code, 2);
}

TEST_F(CliTest, BadSftpUrlIsAUsageError) {
  Ran r = RunFerry({"push", src_, "sftp://[broken/path"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("sftp://[broken"), std::string::npos) << r.err;
}

TEST_F(CliTest, BadNetworkFlagValuesAreUsageErrors) {
  const std::vector<std::vector<std::string>> bad = {
      {"--connections", "0"},   {"--connections", "17"},    {"--timeout", "-1"},
      {"--timeout", "soon"},    {"--connect-timeout", "0"}, {"--bwlimit", "12X"},
      {"--bwlimit", "-5M"},     {"--bwlimit", "M"},         {"--bwlimit", "1.5MX"},
      {"--bwlimit", "0.0001B"},
  };
  for (const auto& flag : bad) {
    Ran r = RunFerry({"push", flag[0], flag[1], src_, dst_});
    EXPECT_EQ(r.exit_code, 2) << flag[0] << " " << flag[1] << ": " << r.out << r.err;
    EXPECT_NE(r.err.find(flag[0]), std::string::npos) << flag[0] << " " << flag[1] << ": " << r.err;
    EXPECT_FALSE(t::Exists(dst_));
  }
}

TEST_F(CliTest, BwlimitForALocalDestinationIsAUsageError) {
  Ran r = RunFerry({"push", "--bwlimit", "500K", src_, dst_});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("SFTP destinations only"), std::string::npos) << r.err;
  EXPECT_FALSE(t::Exists(dst_));
}

TEST_F(CliTest, NetworkFlagsAreAcceptedAndListedInHelp) {
  Ran help = RunFerry({"push", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  for (const char* flag : {"--connections", "--timeout", "--connect-timeout", "--bwlimit",
                           "--no-resume", "--no-listing-cache"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag << "\n" << help.out;
  }
  EXPECT_NE(help.out.find("SFTP destinations only"), std::string::npos) << help.out;
  // SSH settings mean nothing to a local copy, but good values are not refused.
  Ran r = RunFerry({"push", "--no-resume", "--no-listing-cache", "--connections", "4", "--timeout",
                    "0", "--connect-timeout", "2.5", "--bwlimit", "0", src_, dst_});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(CliTest, MissingSourceIsFatal) {
  Ran r = RunFerry({"push", src_ + "/nope", dst_});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_FALSE(t::Exists(dst_));
}

TEST_F(CliTest, GoodPushExitsZeroAndCopies) {
  Ran r = RunFerry({"push", src_ + "/", dst_});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(t::CompareTrees(src_, dst_, {.ignore_dir_mtime = true}), std::vector<std::string>{});
  EXPECT_NE(r.out.find("3 sent"), std::string::npos) << r.out;
  Ran again = RunFerry({"push", src_, dst_});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("0 sent, 3 unchanged"), std::string::npos) << again.out;
}

TEST_F(CliTest, CompressFlagWithoutLevelBeforePositionals) {
  Ran r = RunFerry({"push", "-z", src_, dst_});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(t::Exists(dst_ + "/a.txt.zst"));
}

TEST_F(CliTest, AFailedFileExitsOne) {
  // A directory on the destination where the source has a file, without --delete.
  t::WriteFile(dst_ + "/a.txt/in-the-way", "x");
  Ran r = RunFerry({"push", src_, dst_});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("a.txt"), std::string::npos) << r.err;
  EXPECT_TRUE(t::Exists(dst_ + "/sub/b.txt"));  // the rest was synced
}

TEST_F(CliTest, JsonIsNdjsonEndingWithASummary) {
  t::WriteFile(dst_ + "/a.txt/in-the-way", "x");  // one failure, to see it reported
  Ran r = RunFerry({"push", "--json", src_, dst_});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_GE(lines.size(), 2u) << r.out;
  std::vector<nlohmann::json> events;
  for (const std::string& line : lines) {
    ASSERT_TRUE(nlohmann::json::accept(line)) << "not JSON: " << line;
    events.push_back(nlohmann::json::parse(line));
    ASSERT_TRUE(events.back().is_object()) << line;
    ASSERT_TRUE(events.back().contains("event")) << line;
  }
  const nlohmann::json& summary = events.back();
  EXPECT_EQ(summary["event"], "summary");
  EXPECT_EQ(summary["exit_code"], 1);
  EXPECT_EQ(summary["ok"], false);
  EXPECT_EQ(summary["files_sent"], 2);
  EXPECT_EQ(summary["files_failed"], 1);
  ASSERT_EQ(summary["problems"].size(), 1u);
  EXPECT_EQ(summary["problems"][0]["path"], "a.txt");
  int uploads = 0;
  bool odd_name_seen = false;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_NE(events[i]["event"], "summary");
    if (events[i]["event"] == "file" && events[i]["action"] == "upload" &&
        events[i]["outcome"] == "done") {
      ++uploads;
      odd_name_seen |= events[i]["path"].get<std::string>().find("name with") == 0;
    }
  }
  EXPECT_EQ(uploads, 2);
  EXPECT_TRUE(odd_name_seen);
}

TEST_F(CliTest, DryRunItemizesAndChangesNothing) {
  t::WriteFile(dst_ + "/extra", "x", 0644, kOld);
  auto before = t::Snapshot(dst_);
  Ran r = RunFerry({"push", "-n", "--delete", src_, dst_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(t::Snapshot(dst_) == before);
  std::vector<std::string> lines = Lines(r.out);
  auto has = [&](const std::string& needle) {
    for (const std::string& l : lines) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("upload  a.txt")) << r.out;
  EXPECT_TRUE(has("upload  sub/b.txt")) << r.out;
  EXPECT_TRUE(has("mkdir   sub")) << r.out;
  EXPECT_TRUE(has("delete  extra")) << r.out;
  EXPECT_TRUE(has("dry run:")) << r.out;
  // A newline in a name cannot forge an output line.
  EXPECT_TRUE(has("name with\\x0Anewline \\xFF")) << r.out;
}

TEST_F(CliTest, MaxDeleteExceededIsFatal) {
  for (const char* n : {"x", "y"}) t::WriteFile(dst_ + "/" + n, "x");
  Ran r = RunFerry({"push", "--delete", "--max-delete", "1", src_, dst_});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_TRUE(t::Exists(dst_ + "/x"));
  EXPECT_TRUE(t::Exists(dst_ + "/y"));
}

}  // namespace
}  // namespace ferry
