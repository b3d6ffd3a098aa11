// tf.nn.in_top_k(predictions, targets, k) with TF1's kernel semantics.
#pragma once

#include <cmath>
#include <type_traits>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

/// out[b] is true iff fewer than k classes have a prediction strictly greater than the target's
/// (so ties with the target count in its favour). A row with any NaN or infinity, or a target
/// outside [0, classes), gives false; k <= 0 gives false everywhere.
template <class T, class Label>
std::vector<bool> in_top_k(const Matrix<T>& predictions, const std::vector<Label>& targets, Index k) {
  static_assert(std::is_integral_v<Label>, "targets must be integers");
  const Index batch = predictions.rows(), classes = predictions.cols();
  if (static_cast<Index>(targets.size()) != batch)
    throw ShapeError(detail::concat("in_top_k: ", targets.size(), " targets for predictions [", batch, ", ", classes,
                                    "]; expected ", batch));
  std::vector<bool> out(static_cast<std::size_t>(batch), false);
  for (Index b = 0; b < batch; ++b) {
    const Label target = targets[static_cast<std::size_t>(b)];
    if (!detail::label_in_range(target, classes)) continue;
    const T p = predictions(b, static_cast<Index>(target));
    bool finite = true;
    Index greater = 0;
    for (Index j = 0; j < classes; ++j) {
      const T v = predictions(b, j);
      if (!std::isfinite(v)) {
        finite = false;
        break;
      }
      if (v > p) ++greater;
    }
    out[static_cast<std::size_t>(b)] = finite && greater < k;
  }
  return out;
}

/// tf.reduce_mean(tf.cast(in_top_k(...), tf.float32)): the share of true entries (0 if empty).
inline double mean_of(const std::vector<bool>& hits) {
  if (hits.empty()) return 0.0;
  std::size_t n = 0;
  for (bool h : hits) n += h ? 1 : 0;
  return static_cast<double>(n) / static_cast<double>(hits.size());
}

}  // namespace cellflow
