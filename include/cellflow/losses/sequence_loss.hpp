// tf.contrib.seq2seq.sequence_loss(logits, targets, weights, average_across_timesteps,
// average_across_batch, sum_over_timesteps, sum_over_batch) as in TF 1.15, with its gradient
// with respect to the logits.
//
// For logits [B, T, C], integer targets [B, T] in [0, C) and float weights [B, T]:
//
//   ce[b, t] = sparse softmax cross-entropy of logits[b, t, :] against targets[b, t]
//   x[b, t]  = ce[b, t] * w[b, t]
//
// then one of these reductions, tried in this order (safe(n, d) is TF's div_no_nan: n / d, and
// exactly 0 when d = 0, so all-zero weights give a zero loss and a zero gradient):
//
//   average_across_timesteps and average_across_batch   scalar  safe(sum_{b,t} x, sum_{b,t} w)
//   sum_over_timesteps and sum_over_batch               scalar  safe(sum_{b,t} x, #{(b,t): w != 0})
//   average_across_batch (else average_across_timesteps) [T] (else [B])
//                                                       safe(sum over b (over t) of x, the same sum of w)
//   sum_over_batch (else sum_over_timesteps)            [T] (else [B])
//                                                       safe(sum over b (over t) of x, the count of w != 0)
//   none of them                                        [B, T]  x
//
// As in TF, an average wins over a sum on the other axis: average_across_timesteps with
// sum_over_batch averages each example over time and returns [B] (sum_over_batch is not
// applied). average_across_X together with sum_over_X is a ValueError, as in TF. (TF releases
// before 1.12 divided by sum(w) + 1e-12 instead of div_no_nan and had no sum_over_* options;
// for weights whose sums are not 0 the two differ by a relative 1e-12 / sum(w).)
//
// Gradient: with g the upstream gradient of the loss element e that step (b, t) falls into and
// d_e its denominator,
//
//   d logits[b, t, :] = g_e * (1 / d_e, or 0 when d_e = 0) * w[b, t] * (softmax(logits[b, t, :]) - onehot(targets[b,
//   t]))
//
// and g_e * w[b, t] * (softmax - onehot) for the unreduced [B, T] loss.
//
// Padded steps: a step of weight exactly 0 is not computed at all; its cross-entropy, its
// contribution to the loss and its logits' gradient are exactly 0, whatever its logits hold
// (for finite logits that is TF's value; TF would propagate a NaN or infinity there). Its
// target must still lie in [0, C): TF's CPU kernel checks every target, and so does cellflow
// (ValueError naming the position, the target and C).
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/losses/sparse_softmax_cross_entropy.hpp"

namespace cellflow {

/// The reduction options of sequence_loss, named and defaulted as TF 1.15's arguments.
struct SequenceLossOptions {
  bool average_across_timesteps = true;  ///< divide the sum over time by the weights' sum over time
  bool average_across_batch = true;      ///< divide the sum over the batch by the weights' sum over the batch
  bool sum_over_timesteps = false;       ///< divide the sum over time by the count of nonzero weights
  bool sum_over_batch = false;           ///< divide the sum over the batch by the count of nonzero weights
};

/// What sequence_loss returns: the loss (rank 0, 1 or 2, as TF) and what its gradient needs.
template <class T>
struct SequenceLoss {
  /// TF's shape of the loss: {} (a scalar), {batch}, {time} or {batch, time}.
  std::vector<Index> shape;
  /// The loss, stored as: a scalar 1 x 1; [batch] a batch x 1 column (cellflow's per-example
  /// convention); [time] a 1 x time row; [batch, time] a batch x time matrix.
  Matrix<T> loss;
  /// [batch, time]: each step's cross-entropy ce[b, t], unweighted (0 at steps of weight 0,
  /// which are not computed).
  Matrix<T> crossent;
  /// [batch, time, classes]: w[b, t] * (softmax - onehot) (0 at steps of weight 0).
  Tensor3<T> backprop;
  /// The factor of each loss element's gradient, in the layout of `loss`: 1 / its denominator
  /// (0 when that is 0), or 1 for the unreduced [batch, time] loss.
  Matrix<T> scale;

  /// The scalar loss; ValueError unless the loss is rank 0.
  T value() const {
    if (!shape.empty())
      throw ValueError(detail::concat("SequenceLoss::value: the loss has shape ", shape_text(),
                                      ", not a scalar; read `loss` instead"));
    return loss(0, 0);
  }

  /// d loss / d logits [batch, time, classes] for a scalar loss; ValueError unless it is rank 0.
  Tensor3<T> gradient() const {
    if (!shape.empty())
      throw ValueError(detail::concat("SequenceLoss::gradient: the loss has shape ", shape_text(),
                                      ", not a scalar; pass the gradient of each element: gradient(d_loss)"));
    return gradient(Matrix<T>::Ones(1, 1));
  }

  /// d (sum of d_loss * loss) / d logits: d_loss is the upstream gradient in the layout of `loss`
  /// (ShapeError for another shape).
  Tensor3<T> gradient(const Matrix<T>& d_loss) const {
    if (d_loss.rows() != loss.rows() || d_loss.cols() != loss.cols())
      throw ShapeError(detail::concat("SequenceLoss::gradient: d_loss is ", d_loss.rows(), "x", d_loss.cols(),
                                      ", the loss ", shape_text(), " is stored ", loss.rows(), "x", loss.cols()));
    const Index B = backprop.dimension(0), time = backprop.dimension(1), C = backprop.dimension(2);
    Tensor3<T> d(B, time, C);
    for (Index b = 0; b < B; ++b)
      for (Index t = 0; t < time; ++t) {
        const Index i = row_of(b), j = col_of(t);
        const T f = d_loss(i, j) * scale(i, j);
        const T* src = backprop.data() + (b * time + t) * C;
        T* dst = d.data() + (b * time + t) * C;
        for (Index k = 0; k < C; ++k) dst[k] = f * src[k];
      }
    return d;
  }

 private:
  /// "[]", "[4]", "[4, 7]".
  std::string shape_text() const {
    std::string s = "[";
    for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
    return s + "]";
  }
  /// The row of `loss` that step (b, t) falls into (a stored extent of 1 is a reduced axis).
  Index row_of(Index b) const { return loss.rows() == 1 ? 0 : b; }
  /// The column of `loss` that step (b, t) falls into.
  Index col_of(Index t) const { return loss.cols() == 1 ? 0 : t; }
};

/// tf.contrib.seq2seq.sequence_loss(logits, targets, weights, ...) (TF 1.15; see the top of this
/// header): logits [batch, time, classes], targets [batch, time] (any Eigen matrix of integers,
/// e.g. Eigen::MatrixXi), weights [batch, time] (a Matrix<T> or any Eigen expression of one). ShapeError for shapes
/// that do not agree, ValueError for a target outside [0, classes) (naming its position) and for an average and a sum
/// requested over the same axis.
template <class T, class Derived>
SequenceLoss<T> sequence_loss(const Tensor3<T>& logits, const Eigen::DenseBase<Derived>& targets,
                              const std::common_type_t<Matrix<T>>& weights,  // not deduced: takes expressions
                              const SequenceLossOptions& options = {}) {
  static_assert(std::is_integral_v<typename Derived::Scalar>, "sequence_loss: targets must be integers");
  const Index B = logits.dimension(0), time = logits.dimension(1), C = logits.dimension(2);
  const auto dims = [](Index r, Index c) { return detail::concat("[", r, ", ", c, "]"); };
  if (options.average_across_timesteps && options.sum_over_timesteps)
    throw ValueError("sequence_loss: average_across_timesteps and sum_over_timesteps cannot both be set");
  if (options.average_across_batch && options.sum_over_batch)
    throw ValueError("sequence_loss: average_across_batch and sum_over_batch cannot both be set");
  if (targets.rows() != B || targets.cols() != time)
    throw ShapeError(detail::concat("sequence_loss: targets are ", dims(targets.rows(), targets.cols()), ", logits [",
                                    B, ", ", time, ", ", C, "] need ", dims(B, time)));
  if (weights.rows() != B || weights.cols() != time)
    throw ShapeError(detail::concat("sequence_loss: weights are ", dims(weights.rows(), weights.cols()), ", logits [",
                                    B, ", ", time, ", ", C, "] need ", dims(B, time)));
  if (C < 1 && B * time > 0) throw ShapeError("sequence_loss: logits need at least one class");
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < time; ++t)
      if (!detail::label_in_range(targets.derived().coeff(b, t), C))
        throw ValueError(detail::concat("sequence_loss: targets[", b, ", ", t, "] = ", +targets.derived().coeff(b, t),
                                        " is outside the valid range [0, ", C, ")"));

  SequenceLoss<T> r;
  r.crossent = Matrix<T>::Zero(B, time);
  r.backprop = Tensor3<T>(B, time, C);
  r.backprop.setZero();
  Matrix<T> x = Matrix<T>::Zero(B, time);  // ce * w
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < time; ++t) {
      const T w = weights(b, t);
      if (w == T(0)) continue;  // a padded step: contributes exactly nothing
      const Index off = (b * time + t) * C;
      T* bp = r.backprop.data() + off;
      r.crossent(b, t) =
          detail::softmax_xent_row(logits.data() + off, C, static_cast<Index>(targets.derived().coeff(b, t)), bp);
      x(b, t) = r.crossent(b, t) * w;
      for (Index k = 0; k < C; ++k) bp[k] *= w;
    }

  // sum / denominator, 0 when the denominator is 0 (div_no_nan); the factor 1 / denominator.
  const auto safe = [](T num, T den, T& scale) {
    scale = den == T(0) ? T(0) : T(1) / den;
    return den == T(0) ? T(0) : num / den;
  };
  const auto count_nonzero = [](const auto& w) { return static_cast<T>((w.array() != T(0)).count()); };
  const bool avg_t = options.average_across_timesteps, avg_b = options.average_across_batch;
  const bool sum_t = options.sum_over_timesteps, sum_b = options.sum_over_batch;
  if ((avg_t && avg_b) || (sum_t && sum_b)) {
    r.shape = {};
    r.loss.resize(1, 1);
    r.scale.resize(1, 1);
    r.loss(0, 0) = safe(x.sum(), avg_t ? weights.sum() : count_nonzero(weights), r.scale(0, 0));
  } else if (avg_b || (!avg_t && sum_b)) {  // over the batch: [time]
    r.shape = {time};
    r.loss.resize(1, time);
    r.scale.resize(1, time);
    for (Index t = 0; t < time; ++t)
      r.loss(0, t) = safe(x.col(t).sum(), avg_b ? weights.col(t).sum() : count_nonzero(weights.col(t)), r.scale(0, t));
  } else if (avg_t || sum_t) {  // over time: [batch]
    r.shape = {B};
    r.loss.resize(B, 1);
    r.scale.resize(B, 1);
    for (Index b = 0; b < B; ++b)
      r.loss(b, 0) = safe(x.row(b).sum(), avg_t ? weights.row(b).sum() : count_nonzero(weights.row(b)), r.scale(b, 0));
  } else {
    r.shape = {B, time};
    r.loss = x;
    r.scale = Matrix<T>::Ones(B, time);
  }
  return r;
}

}  // namespace cellflow
