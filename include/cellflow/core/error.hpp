// Exceptions thrown by cellflow. Every user-facing check throws one of these, in release
// builds too; messages name the operation, what was expected and what was given.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace cellflow {

/// Root of cellflow's exceptions.
class Error : public std::runtime_error {
 public:
  /// An error whose message (what()) is `what`.
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A tensor or state whose shape does not fit the operation.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// An argument whose value is out of its valid range (label, sequence length, option).
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A file that cannot be read or written, or whose content is malformed.
class IOError : public Error {
 public:
  using Error::Error;
};

/// A NaN or infinity where a finite number is required: a diverged loss or gradient.
class NumericError : public Error {
 public:
  using Error::Error;
};

namespace detail {

template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}

}  // namespace detail
}  // namespace cellflow
