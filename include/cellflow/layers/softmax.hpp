// tf.nn.softmax(logits): each row of [batch, classes] logits as probabilities that sum to 1.
#pragma once

#include "cellflow/core/types.hpp"

namespace cellflow {

/// Row-wise softmax, stable for large logits (the row's maximum is subtracted first). Takes
/// the matrix by value: pass an rvalue to reuse its storage.
template <class T>
Matrix<T> softmax(Matrix<T> logits) {
  for (Index b = 0; b < logits.rows(); ++b) {
    const T mx = logits.row(b).maxCoeff();
    logits.row(b) = (logits.row(b).array() - mx).exp();
    logits.row(b) /= logits.row(b).sum();
  }
  return logits;
}

}  // namespace cellflow
