// Helpers shared by the SFTP tests: running a coroutine to completion on an
// io_context, assertions usable inside coroutines, and small file helpers.
#ifndef FERRY_TESTS_SFTP_TEST_UTIL_H_
#define FERRY_TESTS_SFTP_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>

namespace ferry::testing {

// Runs `body()` (returning asio::awaitable<void>) on `io` until it and
// everything it spawned are done; rethrows what it threw.
template <typename Body>
void RunCoroutine(asio::io_context& io, Body&& body) {
  io.restart();
  std::exception_ptr failure;
  bool finished = false;
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    failure = e;
    finished = true;
  });
  io.run();
  if (failure) std::rethrow_exception(failure);
  EXPECT_TRUE(finished);
}

// ASSERT_* cannot be used in coroutines (they `return`): these co_return.
#define CO_ASSERT_TRUE(cond)                      \
  if (!(cond)) {                                  \
    ADD_FAILURE() << "CO_ASSERT_TRUE(" #cond ")"; \
    co_return;                                    \
  }
#define CO_ASSERT_OK(expr)                                                      \
  if (auto&& co_assert_value = (expr); !co_assert_value.ok()) {                 \
    ADD_FAILURE() << #expr << " failed: " << co_assert_value.error().Message(); \
    co_return;                                                                  \
  }

inline std::string ReadLocalFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void WriteLocalFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

inline bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Deterministic pseudo-random bytes.
inline std::string TestBytes(size_t size, uint32_t seed) {
  std::string data(size, '\0');
  uint32_t x = 2463534242u ^ (seed * 2654435761u);
  if (x == 0) x = 1;
  for (char& c : data) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return data;
}

}  // namespace ferry::testing

#endif  // FERRY_TESTS_SFTP_TEST_UTIL_H_
