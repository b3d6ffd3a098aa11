// tf.nn.embedding_lookup(params, ids) and its gradient, and Embedding, the layer that owns the
// `params` variable (what a TF1 program makes with tf.get_variable("embedding", [V, D])).
//
// Forward (TF's gather of rows): for params E [V, D] and integer ids,
//
//   out[b, t, :] = E[ids[b, t], :]      ids [B, T] -> out [B, T, D]
//   out[n, :]    = E[ids[n], :]         ids [N]    -> out [N, D]
//
// Backward: TF's gradient of the gather is an IndexedSlices (values = d_out with one row per id,
// indices = the ids), which becomes a dense gradient by summing the rows that share an index. So
// every row of d_out is added into the row of dE its id selects, and an id that occurs k times
// receives the sum of its k rows:
//
//   dE[v, :] += sum over the positions p with ids[p] = v of d_out[p, :]
//
// (positions are visited in row-major order; rows of ids absent from the batch get nothing).
// An id outside [0, V) is a ValueError naming the id, its position and V, in the forward and the
// backward pass alike: TF's CPU kernel also refuses it ("indices[1,3] = 7 is not in [0, 5)").
//
// Embedding's variable is "<scope>/embedding" ([V, D]), initialised as tf.get_variable does when
// no initializer is given for a floating-point variable: glorot_uniform with fan_in = V,
// fan_out = D (limit sqrt(6 / (V + D))).
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow {

namespace detail {

/// Throws ValueError unless `id` lies in [0, vocab): "<op>: ids<where> = <id> is outside [0, V)".
template <class I>
void check_embedding_id(I id, Index vocab, const char* op, const std::string& where) {
  static_assert(std::is_integral_v<I> && !std::is_same_v<I, bool>, "embedding ids must be integers");
  if (!label_in_range(id, vocab))
    throw ValueError(concat(op, ": ids", where, " = ", +id, " is outside [0, ", vocab, ") (params has ", vocab,
                            " rows, one per id)"));
}

/// Checks every id of an [B, T] id matrix against `vocab`.
template <class Derived>
void check_embedding_ids(const Eigen::DenseBase<Derived>& ids, Index vocab, const char* op) {
  for (Index b = 0; b < ids.rows(); ++b)
    for (Index t = 0; t < ids.cols(); ++t)
      if (!label_in_range(ids.derived().coeff(b, t), vocab))
        check_embedding_id(ids.derived().coeff(b, t), vocab, op, concat("[", b, ", ", t, "]"));
}

/// Checks every id of an [N] id vector against `vocab`.
template <class I>
void check_embedding_ids(const std::vector<I>& ids, Index vocab, const char* op) {
  for (std::size_t n = 0; n < ids.size(); ++n)
    if (!label_in_range(ids[n], vocab)) check_embedding_id(ids[n], vocab, op, concat("[", n, "]"));
}

}  // namespace detail

/// tf.nn.embedding_lookup(params, ids) for ids [batch, time] (any Eigen matrix of integers, e.g.
/// Eigen::MatrixXi): the [batch, time, D] tensor of the rows of params [V, D] the ids select.
/// ValueError for an id outside [0, V), naming it, its position and V.
template <class T, class Derived>
Tensor3<T> embedding_lookup(const Matrix<T>& params, const Eigen::DenseBase<Derived>& ids) {
  static_assert(std::is_integral_v<typename Derived::Scalar>, "embedding_lookup: ids must be integers");
  const Index V = params.rows(), D = params.cols(), B = ids.rows(), time = ids.cols();
  detail::check_embedding_ids(ids, V, "embedding_lookup");
  Tensor3<T> out(B, time, D);
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < time; ++t) {
      const Index id = static_cast<Index>(ids.derived().coeff(b, t));
      Eigen::Map<RowVector<T>>(out.data() + (b * time + t) * D, D) = params.row(id);
    }
  return out;
}

/// tf.nn.embedding_lookup(params, ids) for ids [N] (a std::vector of integers): [N, D].
template <class T, class I>
Matrix<T> embedding_lookup(const Matrix<T>& params, const std::vector<I>& ids) {
  static_assert(std::is_integral_v<I>, "embedding_lookup: ids must be integers");
  detail::check_embedding_ids(ids, params.rows(), "embedding_lookup");
  Matrix<T> out(static_cast<Index>(ids.size()), params.cols());
  for (std::size_t n = 0; n < ids.size(); ++n) out.row(static_cast<Index>(n)) = params.row(static_cast<Index>(ids[n]));
  return out;
}

/// The gradient of embedding_lookup for ids [batch, time]: adds d_outputs[b, t, :] into
/// d_params[ids[b, t], :] for every position (repeated ids accumulate). d_params is [V, D] (a
/// variable's `grad`); d_outputs [batch, time, D]. ShapeError for other shapes, ValueError for an id
/// outside [0, V).
template <class T, class Derived>
void embedding_lookup_backward(Matrix<T>& d_params, const Eigen::DenseBase<Derived>& ids, const Tensor3<T>& d_outputs) {
  static_assert(std::is_integral_v<typename Derived::Scalar>, "embedding_lookup_backward: ids must be integers");
  const Index V = d_params.rows(), D = d_params.cols(), B = ids.rows(), time = ids.cols();
  if (d_outputs.dimension(0) != B || d_outputs.dimension(1) != time || d_outputs.dimension(2) != D)
    throw ShapeError(detail::concat("embedding_lookup_backward: d_outputs is [", d_outputs.dimension(0), ", ",
                                    d_outputs.dimension(1), ", ", d_outputs.dimension(2), "], expected [", B, ", ",
                                    time, ", ", D, "] (ids [", B, ", ", time, "], params [", V, ", ", D, "])"));
  detail::check_embedding_ids(ids, V, "embedding_lookup_backward");
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < time; ++t) {
      const Index id = static_cast<Index>(ids.derived().coeff(b, t));
      d_params.row(id) += Eigen::Map<const RowVector<T>>(d_outputs.data() + (b * time + t) * D, D);
    }
}

/// The gradient of embedding_lookup for ids [N]: adds d_outputs[n, :] ([N, D]) into
/// d_params[ids[n], :].
template <class T, class I>
void embedding_lookup_backward(Matrix<T>& d_params, const std::vector<I>& ids, const Matrix<T>& d_outputs) {
  static_assert(std::is_integral_v<I>, "embedding_lookup_backward: ids must be integers");
  if (d_outputs.rows() != static_cast<Index>(ids.size()) || d_outputs.cols() != d_params.cols())
    throw ShapeError(detail::concat("embedding_lookup_backward: d_outputs is [", d_outputs.rows(), ", ",
                                    d_outputs.cols(), "], expected [", ids.size(), ", ", d_params.cols(), "] (",
                                    ids.size(), " ids, params [", d_params.rows(), ", ", d_params.cols(), "])"));
  detail::check_embedding_ids(ids, d_params.rows(), "embedding_lookup_backward");
  for (std::size_t n = 0; n < ids.size(); ++n)
    d_params.row(static_cast<Index>(ids[n])) += d_outputs.row(static_cast<Index>(n));
}

/// An embedding table that owns its variable: params [vocab_size, dim], named "embedding" by
/// default (TF: `tf.get_variable("embedding", [vocab_size, dim])`, glorot_uniform).
template <class T>
class Embedding {
 public:
  /// The scalar type: float or double.
  using Scalar = T;

  /// params [vocab_size, dim] drawn glorot_uniform from `rng` (tf.get_variable's default for a
  /// floating-point variable). ValueError unless both sizes are positive.
  Embedding(Index vocab_size, Index dim, Rng& rng, std::string name = "embedding") : name_(std::move(name)) {
    detail::check_scalar<T>();
    if (vocab_size <= 0 || dim <= 0)
      throw ValueError(detail::concat(name_, ": sizes must be positive, given vocab_size=", vocab_size, ", dim=", dim));
    params_ = Parameter<T>(vocab_size, dim);
    params_.init_glorot(rng);
  }

  /// From a given table [vocab_size, dim], no Rng.
  template <class P>
  explicit Embedding(const Eigen::MatrixBase<P>& params, std::string name = "embedding") : name_(std::move(name)) {
    detail::check_scalar<T>();
    if (params.rows() <= 0 || params.cols() <= 0)
      throw ShapeError(detail::concat(name_, ": params must be [vocab_size, dim] with positive sizes, given [",
                                      params.rows(), ", ", params.cols(), "]"));
    params_ = detail::matrix_parameter<T>(params);
  }

  /// V: the number of ids (the table's rows).
  Index vocab_size() const { return params_.shape[0]; }
  /// D: the depth of an embedding (the table's columns).
  Index dim() const { return params_.shape[1]; }
  /// The variable's name inside its scope: "embedding" unless named.
  const std::string& name() const { return name_; }
  /// The table [vocab_size, dim].
  Parameter<T>& params() { return params_; }
  /// The table (const layer).
  const Parameter<T>& params() const { return params_; }

  /// embedding_lookup(params, ids) for ids [batch, time]: [batch, time, dim].
  template <class Derived>
  Tensor3<T> operator()(const Eigen::DenseBase<Derived>& ids) const {
    check(false);
    return embedding_lookup(params_.value, ids);
  }

  /// embedding_lookup(params, ids) for ids [N]: [N, dim].
  template <class I>
  Matrix<T> operator()(const std::vector<I>& ids) const {
    check(false);
    return embedding_lookup(params_.value, ids);
  }

  /// Adds the gradient of the lookup of ids [batch, time] into params().grad, given
  /// d_outputs [batch, time, dim].
  template <class Derived>
  void backward(const Eigen::DenseBase<Derived>& ids, const Tensor3<T>& d_outputs) {
    check(true);
    embedding_lookup_backward(params_.grad, ids, d_outputs);
  }

  /// Adds the gradient of the lookup of ids [N] into params().grad, given d_outputs [N, dim].
  template <class I>
  void backward(const std::vector<I>& ids, const Matrix<T>& d_outputs) {
    check(true);
    embedding_lookup_backward(params_.grad, ids, d_outputs);
  }

  /// Calls f(name, Parameter<T>&) for the table: "<scope>/<name>" ("embedding" with an empty scope).
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    f(detail::join_scope(scope, name_), params_);
  }

  /// Sets the gradient to zero.
  void zero_grad() { params_.zero_grad(); }

 private:
  /// The shape set at construction; a matrix of another shape written into the value (or the
  /// gradient, in backward) is a ShapeError naming the variable.
  void check(bool with_grad) const {
    detail::check_parameter(params_, params_.shape[0], params_.shape[1], name_, name_.c_str(), with_grad);
  }

  std::string name_;
  Parameter<T> params_;
};

}  // namespace cellflow
