#include "ferry/watch.h"

#include <algorithm>
#include <asio/thread_pool.hpp>
#include <thread>

#include "lib/base/offload.h"
#include "lib/ferry/setup.h"
#include "lib/watch/watch_loop.h"

namespace ferry {

asio::awaitable<Report> Watch(WatchOptions options) {
  const PushOptions& push = options.push;
  if (options.coalesce.count() < 0 || options.max_delay.count() < 0) {
    co_return setup::FatalReport(errc::kInvalidArgument,
                                 "coalesce and max delay must not be negative");
  }
  asio::thread_pool pool(std::max(4u, 2 * std::thread::hardware_concurrency()));
  auto job = [&push] { return setup::Prepare(push); };
  auto prepared = co_await Offload(pool, std::move(job));
  if (!prepared.ok()) {
    pool.join();
    co_return setup::FatalReport(prepared.code(), prepared.error().Message());
  }
  setup::Prepared p = std::move(*prepared);

  watch::LoopConfig loop;
  loop.engine = setup::MakeEngineConfig(push, p);
  if (!p.filters->empty()) loop.filters = p.filters;
  loop.coalesce = options.coalesce;
  loop.max_delay = std::max(options.max_delay, options.coalesce);

  auto made = co_await setup::MakeDestination(p, pool, /*listing_cache=*/false);
  if (!made.ok()) {
    pool.join();
    co_return setup::FatalReport(made.code(), made.error().Message());
  }
  std::unique_ptr<transport::Destination> dest = std::move(*made);
  loop.engine.plan.mtime_granularity_ns = dest->MtimeGranularityNs();
  std::exception_ptr failure;
  Report report;
  try {
    report = co_await watch::RunWatch(std::move(loop), *dest, pool);
  } catch (...) {
    failure = std::current_exception();
  }
  (void)co_await dest->Close();
  co_await setup::Finish(p, push, pool, report);
  dest.reset();
  pool.join();
  if (failure) std::rethrow_exception(failure);
  co_return report;
}

Report WatchBlocking(WatchOptions options) { return setup::RunBlocking(Watch(std::move(options))); }

}  // namespace ferry
