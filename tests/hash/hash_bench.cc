// XXH3-128 throughput: one-shot, streaming in file-read-sized chunks, and HashCache
// lookups. Run with
//   bazel run -c opt //tests/hash:hash_bench
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "lib/hash/hash.h"
#include "lib/hash/hash_cache.h"

namespace ferry::hash {
namespace {

std::vector<std::byte> Data(size_t n) {
  std::mt19937_64 rng(1);
  std::vector<std::byte> data(n);
  for (auto& b : data) b = std::byte(rng());
  return data;
}

void BM_HashBytes(benchmark::State& state) {
  const auto data = Data(static_cast<size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(HashBytes(data));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_HashBytes)->Arg(64)->Arg(4 << 10)->Arg(1 << 20)->Arg(8 << 20);

void BM_StreamingHasher(benchmark::State& state) {
  const auto data = Data(8 << 20);
  const size_t chunk = static_cast<size_t>(state.range(0));
  StreamingHasher hasher;
  for (auto _ : state) {
    hasher.Reset();
    for (size_t pos = 0; pos < data.size(); pos += chunk) {
      hasher.Update(std::span(data).subspan(pos, std::min(chunk, data.size() - pos)));
    }
    benchmark::DoNotOptimize(hasher.Final());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_StreamingHasher)->Arg(64 << 10)->Arg(kHashReadBytes);

void BM_HashCacheLookup(benchmark::State& state) {
  Result<HashCache> cache = HashCache::Load("/nonexistent/ferry-bench-cache");
  if (!cache.ok()) {
    state.SkipWithError("Load failed");
    return;
  }
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  auto id = [](uint64_t ino) {
    return FileIdentity{.dev = 1, .ino = ino, .size = ino, .mtime_ns = 1, .ctime_ns = 1};
  };
  for (uint64_t i = 0; i < n; ++i) cache->Store(id(i), Hash128{i, i});
  uint64_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(cache->Lookup(id(i++ % n)));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_HashCacheLookup)->Arg(1000)->Arg(1'000'000);

}  // namespace
}  // namespace ferry::hash
