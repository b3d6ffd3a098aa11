// Matrix and tensor aliases. cellflow stores every 2-D quantity row-major, as TensorFlow
// does: a batch of vectors is [batch, features] with each example contiguous.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cellflow/detail/eigen.hpp"

namespace cellflow {

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

template <class T>
constexpr void check_scalar() {
  static_assert(std::is_floating_point_v<T>, "cellflow: the scalar type must be float or double");
}

}  // namespace detail
}  // namespace cellflow
