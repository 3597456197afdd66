// Typed exceptions. Every error a user can cause is one of these, with a message of the form
// "[op] what is wrong: values" naming shapes, dtypes and devices.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ember {

/// Base of every exception Ember throws on bad input or a failed operation.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Shapes do not fit the op (broadcasting, inner dimensions, view compatibility).
class ShapeError : public Error {
  using Error::Error;
};
/// A dtype is not supported by the op, or an in-place result cannot hold the promoted type.
class DTypeError : public Error {
  using Error::Error;
};
/// A device is unavailable, or operands live on different devices.
class DeviceError : public Error {
  using Error::Error;
};
/// An index or dimension is out of range.
class IndexError : public Error {
  using Error::Error;
};
/// An argument has a bad value (negative size, step 0, probability outside [0, 1], overflow).
class ValueError : public Error {
  using Error::Error;
};
/// Reading or writing a file failed, or a file is malformed.
class IOError : public Error {
  using Error::Error;
};

namespace detail {
template <class... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

}  // namespace ember

/// Throws `Type` with the streamed message when `cond` is false.
#define EMBER_CHECK(cond, Type, ...)                              \
  do {                                                            \
    if (!(cond)) throw Type(::ember::detail::str_cat(__VA_ARGS__)); \
  } while (0)
