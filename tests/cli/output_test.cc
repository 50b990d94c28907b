#include "cli/output.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ferry/error.h"
#include "tests/testing/tree.h"

namespace ferry::cli {
namespace {

// Runs `fn` with stdout redirected to a file and returns what it printed.
template <typename Fn>
std::string CaptureStdout(Fn fn) {
  std::string path = testing::MakeTempDir("out") + "/stdout";
  std::fflush(stdout);
  int saved = ::dup(1);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(fd, 1);
  ::close(fd);
  fn();
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  return testing::ReadFile(path);
}

TEST(OutputTest, JsonStaysValidForNonUtf8NamesWarningsAndNotes) {
  OutputMode mode;
  mode.json = true;
  ConsoleObserver observer(mode);
  Report report;
  report.notes.push_back("server said \xff\xfe");
  report.problems.push_back(
      {"bad\xff", "write", std::make_error_code(std::errc::io_error), "bad\xff"});
  std::string out = CaptureStdout([&] {
    FileEvent ev;
    ev.path = "caf\xc3\xa9 \xff\n";
    ev.outcome = Outcome::kFailed;
    ev.error = std::make_error_code(std::errc::io_error);
    ev.message = ev.path;
    observer.OnFile(ev);
    observer.OnWarning("odd \xff name");
    observer.Finish(report);
  });
  std::istringstream in(out);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) {
    ASSERT_TRUE(nlohmann::json::accept(line)) << line;
    lines.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0]["path"], "caf\xc3\xa9 \\xFF\\x0A");  // valid UTF-8 kept, the rest escaped
  EXPECT_EQ(lines[1]["event"], "warning");
  EXPECT_EQ(lines[2]["event"], "summary");
  EXPECT_EQ(lines[2]["notes"][0], "server said \\xFF\\xFE");
  EXPECT_EQ(lines[2]["exit_code"], kExitPartial);
}

TEST(OutputTest, ExitCodes) {
  Report ok;
  EXPECT_EQ(ExitCodeFor(ok), kExitOk);
  Report usage;
  usage.fatal = errc::kInvalidArgument;
  EXPECT_EQ(ExitCodeFor(usage), kExitUsage);
  Report fatal;
  fatal.fatal = errc::kSourceMissing;
  EXPECT_EQ(ExitCodeFor(fatal), kExitFatal);
  Report partial;
  partial.problems_dropped = 1;
  EXPECT_EQ(ExitCodeFor(partial), kExitPartial);
  Report cancelled;
  cancelled.cancelled = true;
  cancelled.problems.push_back({});
  EXPECT_EQ(ExitCodeFor(cancelled), kExitInterrupted);
}

}  // namespace
}  // namespace ferry::cli
