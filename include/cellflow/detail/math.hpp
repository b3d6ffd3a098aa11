// Scalar activations and small helpers shared by the cells.
#pragma once

#include <algorithm>
#include <cmath>

namespace cellflow {
namespace detail {

template <class T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

/// tf.clip_by_value(v, -clip, clip).
template <class T>
inline T clip(T v, T limit) {
  return std::min(std::max(v, -limit), limit);
}

/// Gradient mask of clip_by_value: TF passes the gradient where -clip <= v <= clip (inclusive).
template <class T>
inline bool clip_passes(T v, T limit) {
  return v >= -limit && v <= limit;
}

}  // namespace detail
}  // namespace cellflow
