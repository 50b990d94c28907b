// Result<T> and Status: a value or an error, for code that must not throw.
// An Error carries the error_code callers branch on plus a human detail
// ("known_hosts:3 holds SHA256:..."), which the code alone cannot say.
#ifndef FERRY_BASE_RESULT_H_
#define FERRY_BASE_RESULT_H_

#include <cassert>
#include <cerrno>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace ferry {

struct Error {
  std::error_code code;
  std::string detail;  // optional; never holds secrets

  // "detail: code message", or the code's message alone.
  std::string Message() const {
    std::string msg = code.message();
    return detail.empty() ? msg : detail + ": " + msg;
  }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(std::error_code code, std::string detail = {}) : error_{code, std::move(detail)} {
    assert(code);
  }
  Result(Error error) : error_(std::move(error)) { assert(error_.code); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return error_; }
  std::error_code code() const { return error_.code; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> value_;
  Error error_;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(std::error_code code, std::string detail = {})
      : error_{code, std::move(detail)} {}           // NOLINT
  Status(Error error) : error_(std::move(error)) {}  // NOLINT

  bool ok() const { return !error_.code; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return error_; }
  std::error_code code() const { return error_.code; }

 private:
  Error error_;
};

// errno as an error_code, for the common syscall-failed case.
inline std::error_code LastSystemError() { return {errno, std::system_category()}; }

}  // namespace ferry

#endif  // FERRY_BASE_RESULT_H_
