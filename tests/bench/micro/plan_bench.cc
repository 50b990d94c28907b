// PlanDirectory on one directory of 10k entries: the no-op case (every file
// unchanged), the first push (destination empty) and a 1 % update.
//   bazel run -c opt //tests/bench/micro:plan_bench
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "lib/plan/plan.h"

namespace ferry::plan {
namespace {

constexpr int kEntries = 10000;

std::vector<Entry> Listing(int n, int changed_every) {
  std::vector<Entry> v;
  v.reserve(n);
  for (int i = 0; i < n; ++i) {
    Entry e;
    char name[32];
    std::snprintf(name, sizeof name, "file%06d.txt", (i * 7919) % n);  // not pre-sorted
    e.name = name;
    e.type = EntryType::kFile;
    e.size = 100 + i % 5000;
    e.mtime_ns = 1704067200LL * 1000000000 + i;
    if (changed_every > 0 && i % changed_every == 0) e.mtime_ns += 86400LL * 1000000000;
    e.mode = 0644;
    v.push_back(std::move(e));
  }
  return v;
}

void Run(benchmark::State& state, const std::vector<Entry>& local, const std::vector<Entry>& dest) {
  const PlanOptions options;
  for (auto _ : state) {
    auto actions = PlanDirectory(local, dest, options, nullptr);
    benchmark::DoNotOptimize(actions.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(local.size()));
}

void BM_PlanNoop(benchmark::State& state) {
  const auto local = Listing(kEntries, 0);
  Run(state, local, local);
}
BENCHMARK(BM_PlanNoop)->Unit(benchmark::kMillisecond);

void BM_PlanFirstPush(benchmark::State& state) {
  const auto local = Listing(kEntries, 0);
  Run(state, local, {});
}
BENCHMARK(BM_PlanFirstPush)->Unit(benchmark::kMillisecond);

void BM_PlanUpdateOnePercent(benchmark::State& state) {
  Run(state, Listing(kEntries, 100), Listing(kEntries, 0));
}
BENCHMARK(BM_PlanUpdateOnePercent)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ferry::plan
