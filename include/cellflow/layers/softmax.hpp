// tf.nn.softmax(logits): each row of [batch, classes] logits as probabilities that sum to 1.
#pragma once

#include <algorithm>
#include <cmath>

#include "cellflow/core/types.hpp"

namespace cellflow {

/// Row-wise softmax, stable for large logits (the row's maximum is subtracted first). Takes
/// the matrix by value: pass an rvalue to reuse its storage. Each row is computed element by
/// element with std::exp and summed in column order, so a row's probabilities are the same
/// bitwise whatever the other rows and wherever the row sits in memory (Eigen's vectorised exp
/// would differ in the last bit between aligned and unaligned rows).
template <class T>
Matrix<T> softmax(Matrix<T> logits) {
  if (logits.cols() == 0) return logits;
  for (Index b = 0; b < logits.rows(); ++b) {
    T* row = logits.data() + b * logits.cols();
    T mx = row[0];
    for (Index j = 1; j < logits.cols(); ++j) mx = std::max(mx, row[j]);
    T sum = 0;
    for (Index j = 0; j < logits.cols(); ++j) sum += row[j] = std::exp(row[j] - mx);
    for (Index j = 0; j < logits.cols(); ++j) row[j] /= sum;
  }
  return logits;
}

}  // namespace cellflow
