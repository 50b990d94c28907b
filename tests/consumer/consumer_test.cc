// Proves that another Bazel workspace can depend on @ferry//lib and include
// "ferry/push.h" exactly as docs/EMBEDDING.md says.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "ferry/push.h"

int main() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string root = tmp != nullptr ? tmp : "/tmp";
  std::string src = root + "/src", dst = root + "/dst";
  std::system(("rm -rf '" + src + "' '" + dst + "' && mkdir -p '" + src + "/sub'").c_str());
  std::ofstream(src + "/sub/hello.txt") << "hello from a consumer\n";

  ferry::PushOptions options;
  options.source = src;
  options.destination = dst;
  ferry::Report report = ferry::PushBlocking(options);
  if (!report.ok() || report.totals.files_sent != 1) {
    std::fprintf(stderr, "push failed: %s\n", report.fatal_message.c_str());
    return 1;
  }
  std::ifstream in(dst + "/sub/hello.txt");
  std::string line;
  std::getline(in, line);
  if (line != "hello from a consumer") return 1;
  std::puts("consumer: ok");
  return 0;
}
