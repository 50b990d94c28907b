// Example: push a directory with the blocking API and print what happened.
//
//   bazel run //lib/examples:push_blocking -- ./site /srv/www
//   bazel run //lib/examples:push_blocking -- ./site sftp://deploy@host/srv/www
#include <cstdio>

#include "ferry/push.h"

// Prints each file as it completes; called on the thread that runs the push.
class PrintingObserver : public ferry::Observer {
 public:
  void OnFile(const ferry::FileEvent& event) override {
    if (event.action == ferry::FileAction::kSkip) return;
    std::printf("%-7s %s%s\n", ferry::FileActionName(event.action), event.path.c_str(),
                event.outcome == ferry::Outcome::kFailed ? "  FAILED" : "");
  }
};

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SRC DEST\n", argv[0]);
    return 2;
  }
  PrintingObserver observer;
  ferry::PushOptions options;
  options.source = argv[1];
  options.destination = argv[2];
  options.observer = &observer;

  ferry::Report report = ferry::PushBlocking(options);  // never throws

  if (report.fatal) {
    std::fprintf(stderr, "error: %s\n", report.fatal_message.c_str());
    return 3;
  }
  for (const ferry::Problem& problem : report.problems) {
    std::fprintf(stderr, "failed: %s (%s): %s\n", problem.path.c_str(), problem.stage.c_str(),
                 problem.message.c_str());
  }
  std::printf("%llu sent, %llu unchanged\n",
              static_cast<unsigned long long>(report.totals.files_sent),
              static_cast<unsigned long long>(report.totals.files_skipped));
  return report.ok() ? 0 : 1;
}
