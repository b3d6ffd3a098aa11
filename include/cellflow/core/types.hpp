// Matrix and tensor aliases. cellflow stores every 2-D quantity row-major, as TensorFlow
// does: a batch of vectors is [batch, features] with each example contiguous.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cellflow/detail/eigen.hpp"

namespace cellflow {

/// Sizes and indices: Eigen::Index, a signed integer (std::ptrdiff_t by default).
using Index = Eigen::Index;

/// Row-major dynamic matrix: the layout of every kernel, batch and state in cellflow.
template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Row vector, e.g. a bias broadcast over the rows of a batch.
template <class T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;

/// Column vector, e.g. per-example losses.
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// Rank-3 row-major tensor: [batch, time, depth] (or [time, batch, depth] when time-major).
template <class T>
using Tensor3 = Eigen::Tensor<T, 3, Eigen::RowMajor>;

namespace detail {

/// False, but only once T is known: for a static_assert in a template that must not be used.
template <class T>
inline constexpr bool dependent_false = false;

/// Whether X is an Eigen::Tensor stored column-major (Eigen's default), which cellflow does not
/// take: its tensors are row-major (Tensor3).
template <class X>
struct is_col_major_tensor : std::false_type {};
template <class S, int N, int Options, class I>
struct is_col_major_tensor<Eigen::Tensor<S, N, Options, I>> : std::bool_constant<(Options & Eigen::RowMajor) == 0> {};

/// Whether an integer label lies in [0, classes), for any integer type: an unsigned label is
/// compared as unsigned (a value at or above 2^63 is not turned negative by a cast).
template <class Label>
constexpr bool label_in_range(Label label, Index classes) {
  static_assert(std::is_integral_v<Label>, "labels must be integers");
  if (classes <= 0) return false;
  if constexpr (std::is_signed_v<Label>) {
    return label >= 0 && static_cast<std::intmax_t>(label) < static_cast<std::intmax_t>(classes);
  } else {
    return static_cast<std::uintmax_t>(label) < static_cast<std::uintmax_t>(classes);
  }
}

template <class T>
constexpr void check_scalar() {
  static_assert(std::is_floating_point_v<T>, "cellflow: the scalar type must be float or double");
}

}  // namespace detail
}  // namespace cellflow
