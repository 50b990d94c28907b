// FilterSet::Excluded over 10k generated paths with a typical rule set
// (a .gitignore-like list), and the worst case of ExcludedWithParents.
//   bazel run -c opt //tests/bench/micro:filter_bench
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "lib/filter/filter.h"

namespace ferry::filter {
namespace {

const std::vector<std::string>& Paths() {
  static const std::vector<std::string> paths = [] {
    static constexpr const char* kExt[] = {".c", ".h", ".o", ".txt", ".json", ".log", ".png"};
    std::vector<std::string> v;
    for (int i = 0; i < 10000; ++i) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "src/module%02d/sub%03d/file%05d%s", i % 37, i % 211, i,
                    kExt[i % 7]);
      v.emplace_back(buf);
    }
    return v;
  }();
  return paths;
}

FilterSet Rules() {
  static constexpr const char* kExcludes[] = {"*.o",
                                              "*.log",
                                              "build/",
                                              "/dist",
                                              ".git/",
                                              "node_modules/",
                                              "**/tmp/**",
                                              "*.sw[op]",
                                              "cache/***",
                                              "module1[0-9]/sub0?"
                                              "?/*.png",
                                              "*~",
                                              "core"};
  FilterSet set;
  if (!set.AddInclude("keep/me.txt").ok()) std::abort();
  for (const char* p : kExcludes) {
    if (!set.AddExclude(p).ok()) std::abort();
  }
  return set;
}

void BM_Excluded(benchmark::State& state) {
  const FilterSet set = Rules();
  const auto& paths = Paths();
  for (auto _ : state) {
    int excluded = 0;
    for (const auto& p : paths) excluded += set.Excluded(p, false) ? 1 : 0;
    benchmark::DoNotOptimize(excluded);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(paths.size()));
}
BENCHMARK(BM_Excluded)->Unit(benchmark::kMicrosecond);

void BM_ExcludedWithParents(benchmark::State& state) {
  const FilterSet set = Rules();
  const auto& paths = Paths();
  for (auto _ : state) {
    int excluded = 0;
    for (const auto& p : paths) excluded += set.ExcludedWithParents(p, false) ? 1 : 0;
    benchmark::DoNotOptimize(excluded);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(paths.size()));
}
BENCHMARK(BM_ExcludedWithParents)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ferry::filter
