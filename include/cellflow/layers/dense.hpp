// Dense: tf.layers.dense(inputs, units) without activation: y = x @ kernel + bias.
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
    check_input(x, "forward", false);
    if (&x == &y) throw ValueError(detail::concat(name_, " forward_into: y must be another matrix than x"));
    if (y.rows() != x.rows() || y.cols() != output_size()) y.resize(x.rows(), output_size());
    detail::matmul(y, x, kernel_.value);  // cellflow's product: each row's sum is the same for any batch size
    y.rowwise() += bias_.value.row(0);
  }

  /// Accumulates d kernel += x^T dy and d bias += sum_rows dy; returns d x = dy @ kernel^T.
  Matrix<T> backward(const Matrix<T>& x, const Matrix<T>& dy) {
    check_input(x, "backward", true);
    if (dy.rows() != x.rows() || dy.cols() != output_size())
      throw ShapeError(detail::concat(name_, " backward: dy expected [", x.rows(), ", ", output_size(), "], given [",
                                      dy.rows(), ", ", dy.cols(), "]"));
    kernel_.grad.noalias() += x.transpose() * dy;
    bias_.grad.row(0) += dy.colwise().sum();
    Matrix<T> dx(x.rows(), input_size());
    dx.noalias() = dy * kernel_.value.transpose();
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
  void check_input(const Matrix<T>& x, const char* what, bool with_grad) const {
    const Index in = kernel_.value.rows(), out = kernel_.value.cols();
    detail::check_parameter(kernel_, in, out, name_, "kernel", with_grad);
    detail::check_parameter(bias_, 1, out, name_, "bias", with_grad);
    if (x.cols() != input_size())
      throw ShapeError(detail::concat(name_, " ", what, ": input depth ", x.cols(), ", kernel expects ", input_size()));
  }

  std::string name_;
  Parameter<T> kernel_, bias_;
};

}  // namespace cellflow
