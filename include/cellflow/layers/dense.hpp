// Dense: tf.layers.dense(inputs, units) without activation: y = x @ kernel + bias.
//
// On [batch, time, depth] inputs (the outputs of dynamic_rnn) TF1's dense is a tensordot over
// the last axis: y[b, t, :] = x[b, t, :] @ kernel + bias, the same variables for every step. Its
// gradients sum over every (b, t):
//
//   d kernel += sum_{b,t} x[b,t,:]^T dy[b,t,:],   d bias += sum_{b,t} dy[b,t,:],
//   dx[b,t,:] = dy[b,t,:] @ kernel^T.
//
// A row-major [batch, time, depth] tensor is a [batch * time, depth] matrix in memory, so each of
// these is ONE matrix product over all batch * time rows (no loop over steps).
#pragma once

#include <string>
#include <utility>

#include "cellflow/core/error.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/detail/gemm.hpp"

namespace cellflow {

/// Fully connected layer. kernel [in, out] (glorot_uniform), bias [out] (zeros); variables
/// "<name>/kernel" and "<name>/bias" with name "dense" by default, as in TF.
template <class T>
class Dense {
 public:
  /// The scalar type: float or double.
  using Scalar = T;

  /// TF: tf.layers.dense(inputs, out) for inputs of depth `in`: kernel [in, out] drawn glorot_uniform
  /// from `rng`, bias [out] zero. ValueError unless both sizes are positive.
  Dense(Index in, Index out, Rng& rng, std::string name = "dense") : name_(std::move(name)) {
    detail::check_scalar<T>();
    if (in <= 0 || out <= 0)
      throw ValueError(detail::concat(name_, ": sizes must be positive, given in=", in, ", out=", out));
    kernel_ = Parameter<T>(in, out);
    bias_ = Parameter<T>(out);
    kernel_.init_glorot(rng);
  }

  /// From given weights, no Rng: kernel [in, out] and bias [out] (a row or a column vector).
  template <class K, class B>
  Dense(const Eigen::MatrixBase<K>& kernel, const Eigen::MatrixBase<B>& bias, std::string name = "dense")
      : name_(std::move(name)) {
    detail::check_scalar<T>();
    if (kernel.rows() <= 0 || kernel.cols() <= 0)
      throw ShapeError(detail::concat(name_, ": kernel must be [in, out] with positive sizes, given [", kernel.rows(),
                                      ", ", kernel.cols(), "]"));
    kernel_ = detail::matrix_parameter<T>(kernel);
    bias_ = detail::vector_parameter<T>(bias, name_, "bias");
    if (bias_.size() != kernel.cols())
      throw ShapeError(detail::concat(name_, ": bias has ", bias_.size(), " values, the kernel [", kernel.rows(), ", ",
                                      kernel.cols(), "] has ", kernel.cols(), " outputs"));
  }

  /// `in`: the depth of x (the kernel's rows).
  Index input_size() const { return kernel_.value.rows(); }
  /// `out`: the depth of y (the kernel's columns).
  Index output_size() const { return kernel_.value.cols(); }
  /// The layer's variable scope: "dense" unless named.
  const std::string& name() const { return name_; }
  /// "<name>/kernel" [in, out].
  Parameter<T>& kernel() { return kernel_; }
  /// "<name>/bias" [out].
  Parameter<T>& bias() { return bias_; }
  /// "<name>/kernel" (const layer).
  const Parameter<T>& kernel() const { return kernel_; }
  /// "<name>/bias" (const layer).
  const Parameter<T>& bias() const { return bias_; }

  /// y [batch, out] = x [batch, in] @ kernel + bias.
  Matrix<T> operator()(const Matrix<T>& x) const {
    Matrix<T> y;
    forward_into(x, y);
    return y;
  }

  /// The same into `y`, resized only when its shape differs: a loop that keeps `y` (a stream's
  /// logits, step after step) allocates nothing. `y` must not be `x` (ValueError).
  void forward_into(const Matrix<T>& x, Matrix<T>& y) const {
    check_input(x.cols(), "forward", false);
    if (&x == &y) throw ValueError(detail::concat(name_, " forward_into: y must be another matrix than x"));
    if (y.rows() != x.rows() || y.cols() != output_size()) y.resize(x.rows(), output_size());
    forward_rows(x, y);
  }

  /// TF: tf.layers.dense on inputs [batch, time, in]: y [batch, time, out], every step through the
  /// same kernel and bias, as one product over the batch * time rows.
  Tensor3<T> operator()(const Tensor3<T>& x) const {
    Tensor3<T> y;
    forward_into(x, y);
    return y;
  }

  /// The same into `y` (resized only when its shape differs). `y` must not be `x` (ValueError).
  void forward_into(const Tensor3<T>& x, Tensor3<T>& y) const {
    check_input(x.dimension(2), "forward", false);
    if (&x == &y) throw ValueError(detail::concat(name_, " forward_into: y must be another tensor than x"));
    const Index B = x.dimension(0), time = x.dimension(1);
    if (y.dimension(0) != B || y.dimension(1) != time || y.dimension(2) != output_size())
      y.resize(B, time, output_size());
    forward_rows(rows_of(x), rows_of(y));
  }

  /// Accumulates d kernel += x^T dy and d bias += sum_rows dy; returns d x = dy @ kernel^T.
  Matrix<T> backward(const Matrix<T>& x, const Matrix<T>& dy) {
    check_input(x.cols(), "backward", true);
    if (dy.rows() != x.rows() || dy.cols() != output_size())
      throw ShapeError(detail::concat(name_, " backward: dy expected [", x.rows(), ", ", output_size(), "], given [",
                                      dy.rows(), ", ", dy.cols(), "]"));
    Matrix<T> dx(x.rows(), input_size());
    backward_rows(x, dy, dx);
    return dx;
  }

  /// The backward pass on [batch, time, ...] tensors: adds d kernel += sum over (b, t) of
  /// x[b,t]^T dy[b,t] and d bias += sum of dy[b,t] (one product over all batch * time rows);
  /// returns dx [batch, time, in] = dy @ kernel^T.
  Tensor3<T> backward(const Tensor3<T>& x, const Tensor3<T>& dy) {
    check_input(x.dimension(2), "backward", true);
    if (dy.dimension(0) != x.dimension(0) || dy.dimension(1) != x.dimension(1) || dy.dimension(2) != output_size())
      throw ShapeError(detail::concat(name_, " backward: dy expected [", x.dimension(0), ", ", x.dimension(1), ", ",
                                      output_size(), "], given [", dy.dimension(0), ", ", dy.dimension(1), ", ",
                                      dy.dimension(2), "]"));
    Tensor3<T> dx(x.dimension(0), x.dimension(1), input_size());
    auto dx_rows = rows_of(dx);
    backward_rows(rows_of(x), rows_of(dy), dx_rows);
    return dx;
  }

  /// Calls f(name, Parameter<T>&) for the kernel, then the bias: "<scope>/<name>/kernel" and
  /// "<scope>/<name>/bias" ("dense/kernel" with an empty scope).
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = detail::join_scope(scope, name_);
    f(s + "/kernel", kernel_);
    f(s + "/bias", bias_);
  }

  /// Sets both gradients to zero.
  void zero_grad() {
    kernel_.zero_grad();
    bias_.zero_grad();
  }

 private:
  /// The kernel's shape sets the layer's sizes; the bias (and, in backward, both gradients) must
  /// agree with it, whatever was written into them.
  void check_input(Index depth, const char* what, bool with_grad) const {
    const Index in = kernel_.value.rows(), out = kernel_.value.cols();
    detail::check_parameter(kernel_, in, out, name_, "kernel", with_grad);
    detail::check_parameter(bias_, 1, out, name_, "bias", with_grad);
    if (depth != input_size())
      throw ShapeError(detail::concat(name_, " ", what, ": input depth ", depth, ", kernel expects ", input_size()));
  }

  /// A row-major [batch, time, depth] tensor seen as its [batch * time, depth] matrix of rows.
  static Eigen::Map<Matrix<T>> rows_of(Tensor3<T>& x) {
    return {x.data(), x.dimension(0) * x.dimension(1), x.dimension(2)};
  }
  /// The same, read-only.
  static Eigen::Map<const Matrix<T>> rows_of(const Tensor3<T>& x) {
    return {x.data(), x.dimension(0) * x.dimension(1), x.dimension(2)};
  }

  /// y = x @ kernel + bias for checked shapes.
  template <class X, class Y>
  void forward_rows(const X& x, Y&& y) const {
    detail::matmul(y, x, kernel_.value);  // cellflow's product: each row's sum is the same for any batch size
    y.rowwise() += bias_.value.row(0);
  }

  /// d kernel += x^T dy, d bias += sum_rows dy, dx = dy @ kernel^T for checked shapes.
  template <class X, class DY, class DX>
  void backward_rows(const X& x, const DY& dy, DX& dx) {
    kernel_.grad.noalias() += x.transpose() * dy;
    bias_.grad.row(0) += dy.colwise().sum();
    dx.noalias() = dy * kernel_.value.transpose();
  }

  std::string name_;
  Parameter<T> kernel_, bias_;
};

}  // namespace cellflow
