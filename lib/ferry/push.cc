#include "ferry/push.h"

#include <algorithm>
#include <asio/thread_pool.hpp>
#include <thread>

#include "lib/base/offload.h"
#include "lib/engine/push_engine.h"
#include "lib/ferry/setup.h"

namespace ferry {

const char* Version() { return "0.1.0"; }

asio::awaitable<Report> Push(PushOptions options) {
  // Disk reads, writes and zstd run here; the caller's executor only coordinates.
  asio::thread_pool pool(std::max(4u, 2 * std::thread::hardware_concurrency()));
  auto job = [&options] { return setup::Prepare(options); };
  auto prepared = co_await Offload(pool, std::move(job));
  if (!prepared.ok()) {
    pool.join();
    co_return setup::FatalReport(prepared.code(), prepared.error().Message());
  }
  setup::Prepared p = std::move(*prepared);
  engine::EngineConfig config = setup::MakeEngineConfig(options, p);
  auto made = co_await setup::MakeDestination(p, pool, /*listing_cache=*/true);
  if (!made.ok()) {
    pool.join();
    co_return setup::FatalReport(made.code(), made.error().Message());
  }
  std::unique_ptr<transport::Destination> dest = std::move(*made);
  config.plan.mtime_granularity_ns = dest->MtimeGranularityNs();
  Report report = co_await engine::RunPush(std::move(config), *dest, pool);
  (void)co_await dest->Close();
  co_await setup::Finish(p, options, pool, report);
  dest.reset();
  pool.join();
  co_return report;
}

Report PushBlocking(PushOptions options) { return setup::RunBlocking(Push(std::move(options))); }

}  // namespace ferry
