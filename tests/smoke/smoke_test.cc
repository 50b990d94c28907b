#include <gtest/gtest.h>
#include <libssh2.h>
#include <zstd.h>

#include <asio.hpp>
asio::awaitable<int> F() { co_return 42; }
TEST(Smoke, Works) {
  asio::io_context io;
  int v = 0;
  asio::co_spawn(io, F(), [&](std::exception_ptr, int r) { v = r; });
  io.run();
  EXPECT_EQ(v, 42);
  EXPECT_GT(ZSTD_versionNumber(), 0u);
  EXPECT_EQ(libssh2_init(0), 0);
}
