// tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits), with the gradient TF's kernel
// computes alongside the loss.
//
//   s        = logits[b] - max_j logits[b, j]            (stable for huge finite logits)
//   loss[b]  = log(sum_j exp(s_j)) - s[label_b]
//   backprop = softmax(logits[b]) - onehot(label_b)      (d loss[b] / d logits[b])
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

namespace detail {

/// One row of the fused kernel: the loss of `label` (in [0, classes), checked by the caller) for
/// the row `logits` of `classes` values, and softmax - onehot written to `backprop`.
template <class T>
T softmax_xent_row(const T* logits, Index classes, Index label, T* backprop) {
  T mx = logits[0];
  for (Index j = 1; j < classes; ++j) mx = std::max(mx, logits[j]);
  T sum = 0;
  for (Index j = 0; j < classes; ++j) {
    const T e = std::exp(logits[j] - mx);
    backprop[j] = e;
    sum += e;
  }
  const T loss = std::log(sum) - (logits[label] - mx);
  for (Index j = 0; j < classes; ++j) backprop[j] /= sum;
  backprop[label] -= T(1);
  return loss;
}

}  // namespace detail

template <class T>
/// What sparse_softmax_cross_entropy_with_logits returns: the per-example losses and their gradient
/// with respect to the logits.
struct SoftmaxCrossEntropy {
  /// [batch] per-example losses: a batch x 1 column, entry b for row b of the logits. (cellflow's
  /// convention for 1-D tensors: a per-example quantity is a column, one entry per row of a batch;
  /// a 1-D variable such as a bias is a 1 x n row, as it broadcasts over the rows.)
  Vector<T> loss;
  Matrix<T> backprop;  ///< [batch, classes] d loss[b] / d logits[b]

  /// tf.reduce_mean(loss).
  T mean() const { return loss.size() ? loss.mean() : T(0); }
  /// Gradient of mean() with respect to the logits: backprop / batch.
  Matrix<T> mean_gradient() const { return backprop / static_cast<T>(loss.size() ? loss.size() : 1); }
};

/// Throws ShapeError when the label count differs from the batch, ValueError for a label outside
/// [0, classes) (TF's CPU kernel raises InvalidArgumentError for it too).
template <class T, class Label>
SoftmaxCrossEntropy<T> sparse_softmax_cross_entropy_with_logits(const std::vector<Label>& labels,
                                                                const Matrix<T>& logits) {
  static_assert(std::is_integral_v<Label>, "labels must be integers");
  const Index batch = logits.rows(), classes = logits.cols();
  if (static_cast<Index>(labels.size()) != batch)
    throw ShapeError(detail::concat("sparse_softmax_cross_entropy_with_logits: ", labels.size(), " labels for logits [",
                                    batch, ", ", classes, "]; expected ", batch));
  if (classes < 1 && batch > 0)
    throw ShapeError("sparse_softmax_cross_entropy_with_logits: logits need at least one class");
  for (std::size_t b = 0; b < labels.size(); ++b)
    if (!detail::label_in_range(labels[b], classes))
      throw ValueError(detail::concat("sparse_softmax_cross_entropy_with_logits: labels[", b, "] = ", +labels[b],
                                      " is outside the valid range [0, ", classes, ")"));
  SoftmaxCrossEntropy<T> r;
  r.loss.resize(batch);
  r.backprop.resize(batch, classes);
  for (Index b = 0; b < batch; ++b)
    r.loss(b) = detail::softmax_xent_row(logits.data() + b * classes, classes,
                                         static_cast<Index>(labels[static_cast<std::size_t>(b)]),
                                         r.backprop.data() + b * classes);
  return r;
}

}  // namespace cellflow
