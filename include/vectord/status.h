// Status and Result<T>: how every layer reports recoverable failures (no exceptions across layers).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace vectord {

class Status {
 public:
  // Codes map one-to-one onto HTTP statuses in server/ (see README "Errors and limits").
  enum class Code {
    kOk = 0,
    kInvalidArgument,     // 400: bad input; nothing was changed
    kNotFound,            // 404
    kAlreadyExists,       // 409
    kFailedPrecondition,  // 400: e.g. collection not ready, index missing
    kPayloadTooLarge,     // 413
    kCorruption,          // 500: checksum mismatch, truncated file
    kIOError,             // 500: the OS refused a read/write/sync
    kInternal,            // 500
    kUnavailable,         // 503: shutting down
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return Status(Code::kInvalidArgument, std::move(m));
  }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status AlreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
  static Status FailedPrecondition(std::string m) {
    return Status(Code::kFailedPrecondition, std::move(m));
  }
  static Status PayloadTooLarge(std::string m) {
    return Status(Code::kPayloadTooLarge, std::move(m));
  }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status IOError(std::string m) { return Status(Code::kIOError, std::move(m)); }
  static Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: vector 3 has 127 dimensions, expected 128"
  std::string ToString() const {
    static const char* const kNames[] = {"OK",
                                         "InvalidArgument",
                                         "NotFound",
                                         "AlreadyExists",
                                         "FailedPrecondition",
                                         "PayloadTooLarge",
                                         "Corruption",
                                         "IOError",
                                         "Internal",
                                         "Unavailable"};
    return ok() ? "OK" : std::string(kNames[static_cast<int>(code_)]) + ": " + message_;
  }
  // Returns a copy with "context: " put in front of the message.
  Status WithContext(const std::string& context) const {
    return ok() ? *this : Status(code_, context + ": " + message_);
  }

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Result<T> holds a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status s) : v_(std::move(s)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

#define VECTORD_RETURN_IF_ERROR(expr) \
  do {                                \
    ::vectord::Status _st = (expr);   \
    if (!_st.ok()) return _st;        \
  } while (0)

#define VECTORD_CONCAT_INNER(a, b) a##b
#define VECTORD_CONCAT(a, b) VECTORD_CONCAT_INNER(a, b)
// VECTORD_ASSIGN_OR_RETURN(auto x, Foo()); returns Foo()'s Status on failure.
#define VECTORD_ASSIGN_OR_RETURN(lhs, expr)                                                   \
  auto VECTORD_CONCAT(_res_, __LINE__) = (expr);                                              \
  if (!VECTORD_CONCAT(_res_, __LINE__).ok()) return VECTORD_CONCAT(_res_, __LINE__).status(); \
  lhs = std::move(VECTORD_CONCAT(_res_, __LINE__)).value()

}  // namespace vectord
