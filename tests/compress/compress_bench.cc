// FrameCompressor throughput on generated text. Run with
//   bazel run -c opt //tests/compress:compress_bench
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "lib/compress/compress.h"

namespace ferry::compress {
namespace {

constexpr size_t kInputBytes = 8 << 20;
constexpr size_t kChunkBytes = 1 << 20;  // what a file reader hands over at a time

const std::vector<std::byte>& Text() {
  static const std::vector<std::byte> text = [] {
    static constexpr const char* kWords[] = {"sync",   "ferry", "file",  "chunk", "frame",
                                             "hash",   "the",   "of",    "\n",    "1024",
                                             "remote", "local", "error", "delta"};
    std::mt19937 rng(7);
    std::string s;
    while (s.size() < kInputBytes) {
      s += kWords[rng() % std::size(kWords)];
      s += ' ';
    }
    s.resize(kInputBytes);
    auto* p = reinterpret_cast<const std::byte*>(s.data());
    return std::vector<std::byte>(p, p + s.size());
  }();
  return text;
}

void BM_FrameCompressor(benchmark::State& state) {
  const int level = static_cast<int>(state.range(0));
  const auto& text = Text();
  std::span<const std::byte> input(text);
  FrameCompressor compressor(level, input.size());
  std::vector<std::byte> out;
  out.reserve(input.size());
  size_t compressed = 0;
  for (auto _ : state) {
    if (!compressor.Reset(level, input.size()).ok()) state.SkipWithError("Reset failed");
    out.clear();
    for (size_t pos = 0; pos < input.size(); pos += kChunkBytes) {
      const size_t n = std::min(kChunkBytes, input.size() - pos);
      if (!compressor.Compress(input.subspan(pos, n), pos + n == input.size(), out).ok()) {
        state.SkipWithError("Compress failed");
        break;
      }
    }
    compressed = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * input.size()));
  state.counters["ratio"] = static_cast<double>(input.size()) / static_cast<double>(compressed);
}
BENCHMARK(BM_FrameCompressor)->Arg(1)->Arg(3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ferry::compress
