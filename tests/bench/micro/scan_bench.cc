// ListDirectory (readdir + lstat per entry) on a generated directory of N files
// in a temporary directory; the page cache is warm after the first iteration.
//   bazel run -c opt //tests/bench/micro:scan_bench
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "lib/scan/scan.h"

namespace ferry::scan {
namespace {

// A directory of `n` small files, removed at exit.
class GeneratedDir {
 public:
  explicit GeneratedDir(int n) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/scan_bench.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
    for (int i = 0; i < n; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "/f%06d", i);
      int fd = ::open((path_ + name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || ::write(fd, name, 8) != 8) std::abort();
      ::close(fd);
    }
  }
  ~GeneratedDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void BM_ListDirectory(benchmark::State& state) {
  const GeneratedDir dir(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto listing = ListDirectory(dir.path(), /*follow_links=*/false);
    if (!listing.ok() || listing->size() != static_cast<size_t>(state.range(0))) {
      state.SkipWithError("ListDirectory failed");
      break;
    }
    benchmark::DoNotOptimize(listing->data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ListDirectory)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ferry::scan
