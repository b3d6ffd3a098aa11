// Dense: tf.layers.dense(inputs, units) without activation: y = x @ kernel + bias.
#pragma once

#include <string>
#include <utility>

#include "cellflow/core/error.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow {

/// Fully connected layer. kernel [in, out] (glorot_uniform), bias [out] (zeros); variables
/// "<name>/kernel" and "<name>/bias" with name "dense" by default, as in TF.
template <class T>
class Dense {
 public:
  using Scalar = T;

  Dense(Index in, Index out, Rng& rng, std::string name = "dense") : name_(std::move(name)) {
    detail::check_scalar<T>();
    if (in <= 0 || out <= 0)
      throw ValueError(detail::concat(name_, ": sizes must be positive, given in=", in, ", out=", out));
    kernel_ = Parameter<T>(in, out);
    bias_ = Parameter<T>(out);
    kernel_.init_glorot(rng);
  }

  Index input_size() const { return kernel_.value.rows(); }
  Index output_size() const { return kernel_.value.cols(); }
  const std::string& name() const { return name_; }
  Parameter<T>& kernel() { return kernel_; }
  Parameter<T>& bias() { return bias_; }
  const Parameter<T>& kernel() const { return kernel_; }
  const Parameter<T>& bias() const { return bias_; }

  /// y [batch, out] = x [batch, in] @ kernel + bias.
  Matrix<T> operator()(const Matrix<T>& x) const {
    check_input(x, "forward");
    Matrix<T> y(x.rows(), output_size());
    y.noalias() = x * kernel_.value;
    y.rowwise() += bias_.value.row(0);
    return y;
  }

  /// Accumulates d kernel += x^T dy and d bias += sum_rows dy; returns d x = dy @ kernel^T.
  Matrix<T> backward(const Matrix<T>& x, const Matrix<T>& dy) {
    check_input(x, "backward");
    if (dy.rows() != x.rows() || dy.cols() != output_size())
      throw ShapeError(detail::concat(name_, " backward: dy expected [", x.rows(), ", ", output_size(), "], given [",
                                      dy.rows(), ", ", dy.cols(), "]"));
    kernel_.grad.noalias() += x.transpose() * dy;
    bias_.grad.row(0) += dy.colwise().sum();
    Matrix<T> dx(x.rows(), input_size());
    dx.noalias() = dy * kernel_.value.transpose();
    return dx;
  }

  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = detail::join_scope(scope, name_);
    f(s + "/kernel", kernel_);
    f(s + "/bias", bias_);
  }

 private:
  void check_input(const Matrix<T>& x, const char* what) const {
    if (x.cols() != input_size())
      throw ShapeError(detail::concat(name_, " ", what, ": input depth ", x.cols(), ", kernel expects ", input_size()));
  }

  std::string name_;
  Parameter<T> kernel_, bias_;
};

}  // namespace cellflow
