// tf.argmax(logits, axis=1): the predicted class of every row of a [batch, classes] matrix.
#pragma once

#include <cmath>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

/// For each row b, the index of its largest value; on a tie, the first of them (as tf.argmax and
/// numpy.argmax). A row holding a NaN gives the index of its first NaN, as numpy does, so a
/// diverged model shows up instead of predicting an arbitrary class. Any Eigen matrix
/// expression (logits, probabilities, one row) is accepted; a matrix without columns is a
/// ShapeError.
template <class Derived>
std::vector<Index> argmax(const Eigen::MatrixBase<Derived>& scores) {
  if (scores.cols() == 0 && scores.rows() > 0)
    throw ShapeError(detail::concat("argmax: the scores are [", scores.rows(), ", 0]: no class to choose"));
  std::vector<Index> out(static_cast<std::size_t>(scores.rows()), 0);
  for (Index b = 0; b < scores.rows(); ++b) {
    Index best = 0;
    for (Index j = 0; j < scores.cols(); ++j) {
      const auto v = scores(b, j);
      if (std::isnan(v)) {
        best = j;
        break;
      }
      if (v > scores(b, best)) best = j;
    }
    out[static_cast<std::size_t>(b)] = best;
  }
  return out;
}

}  // namespace cellflow
