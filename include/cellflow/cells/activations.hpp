// The activations of the built-in cells.
//
// 1. The gate sigmoid, computed the same way for every element.
//
// Eigen evaluates an elementwise expression with SIMD packets where a row of the data is aligned
// and with scalar code for the rest, and for double its packet exp (pexp) and std::exp can differ
// in the last bit. A cell's gate block starts at a different alignment in a whole-sequence tape
// than in a stream's (its row index differs), so with Eigen's logistic a double run streamed step
// by step would not equal the whole-sequence run bitwise. sigmoid() below therefore uses one
// formula per scalar type wherever an element lies in memory:
// * float: Eigen's logistic, whose scalar and packet paths are the same algorithm;
// * double: 1 / (1 + std::exp(-x)) for every element (Eigen's scalar path; double is the
//   precision of gradient checks, not of speed).
// tanh needs nothing: Eigen 3.4's float tanh is one algorithm for scalars and packets, and its
// double tanh is scalar only.
//
// 2. Activation<T>: TF's `activation` argument of BasicRNNCell, BasicLSTMCell, LSTMCell and
// GRUCell (the nonlinearity of the candidate and, in an LSTM, of c in h = o * act(c); gate
// sigmoids never change). Built in: tanh (TF's default) and relu,
//
//   tanh(x), derivative 1 - tanh(x)^2        relu(x) = max(x, 0), derivative 1 if x > 0 else 0
//
// both differentiated from their output y (1 - y^2, y > 0), so a cell keeps nothing more for
// them. A user-supplied activation is a pair of scalar functions (value f(x), derivative f'(x) of
// the input x); a cell with one keeps the pre-activation of every step for backward.
//
// Cost: a cell asks its activation once per step (visit(), a switch) and runs the step's
// elementwise pass with the chosen operation inlined: the built-ins cost nothing per element
// beyond their arithmetic, and the tanh pass is the very expression the cells computed before
// activations existed (bitwise the same results). A user's functions are called through
// std::function, once per element.
//
// CellConfig records the activation under the option "activation" with code 0 (tanh; not
// written, as it is the default), 1 (relu) or -1 (a user's functions, which no text can hold:
// make_cell and load_model refuse it, and Model::save refuses to write such an architecture).
#pragma once

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {
namespace detail {

/// 1 / (1 + exp(-x)), TF's sigmoid, on scalars.
template <class T>
struct ScalarSigmoid {
  T operator()(T x) const { return T(1) / (T(1) + std::exp(-x)); }
};

/// The logistic sigmoid of an Eigen array expression (see the top of this header).
template <class Derived>
auto sigmoid(const Eigen::ArrayBase<Derived>& x) {
  using T = typename Derived::Scalar;
  if constexpr (std::is_same_v<T, float>)
    return x.logistic();
  else
    return x.unaryExpr(ScalarSigmoid<T>{});
}

/// tanh as an operation on Eigen arrays: value(x), and derivative(y, x) from the output y.
struct TanhOp {
  static constexpr bool keeps_input = false;  ///< backward needs only the output
  template <class X>
  auto value(const X& x) const {
    return x.tanh();
  }
  template <class Y, class GetX>
  auto derivative(const Y& y, GetX&&) const {
    using T = typename Y::Scalar;
    return T(1) - y.square();
  }
};

/// relu as an operation on Eigen arrays; its derivative is 1 where the output is > 0, else 0.
struct ReluOp {
  static constexpr bool keeps_input = false;
  template <class X>
  auto value(const X& x) const {
    using T = typename X::Scalar;
    return x.max(T(0));
  }
  template <class Y, class GetX>
  auto derivative(const Y& y, GetX&&) const {
    using T = typename Y::Scalar;
    return (y > T(0)).template cast<T>();
  }
};

/// A user's activation: scalar functions, the derivative taken at the kept input x.
template <class T>
struct CustomOp {
  static constexpr bool keeps_input = true;  ///< backward needs the pre-activation x
  const std::function<T(T)>* f;
  const std::function<T(T)>* df;
  template <class X>
  auto value(const X& x) const {
    return x.unaryExpr(std::cref(*f));
  }
  template <class Y, class GetX>
  auto derivative(const Y&, GetX&& get_x) const {
    return get_x().unaryExpr(std::cref(*df));
  }
};

}  // namespace detail

/// Which activation an Activation is; the value is the code CellConfig records ("activation").
enum class ActivationKind { tanh = 0, relu = 1, custom = -1 };

/// TF's `activation` argument of a cell (see the top of this header): tanh (the default), relu,
/// or a user's pair of scalar functions. Copies share a user's functions, which must be safe to
/// call from several threads at once (batch_threads) and must not change.
template <class T>
class Activation {
 public:
  /// A scalar function T -> T.
  using Function = std::function<T(T)>;

  /// tanh, TF's default.
  Activation() = default;
  /// tanh(x).
  static Activation tanh() { return Activation(); }
  /// relu(x) = max(x, 0); derivative 0 at x <= 0 (as tf.nn.relu's gradient).
  static Activation relu() {
    Activation a;
    a.kind_ = ActivationKind::relu;
    return a;
  }
  /// A user's activation: value(x) and its derivative d value / dx at the same x (both
  /// non-empty, else ValueError). `name` is for messages. The cell keeps every step's input x
  /// for backward, and calls the functions once per element.
  Activation(Function value, Function derivative, std::string name = "custom")
      : kind_(ActivationKind::custom), name_(std::move(name)) {
    if (!value || !derivative)
      throw ValueError(detail::concat("Activation '", name_, "': the value and the derivative must both be given"));
    fns_ = std::make_shared<const std::pair<Function, Function>>(std::move(value), std::move(derivative));
  }

  /// The built-in activation of CellConfig's code (0 tanh, 1 relu); ValueError for any other code
  /// (-1: a user's functions, which a configuration cannot hold). `where` starts the message.
  static Activation from_code(double code, const std::string& where) {
    if (code == 0) return tanh();
    if (code == 1) return relu();
    if (code == -1)
      throw ValueError(detail::concat(where, ": the cell had a user-supplied activation, which a configuration ",
                                      "cannot hold; build the cell in code with its Activation"));
    throw ValueError(detail::concat(where, ": unknown activation code ", code, " (0 = tanh, 1 = relu)"));
  }

  /// tanh, relu or custom.
  ActivationKind kind() const { return kind_; }
  /// Whether this is a user's pair of functions.
  bool is_custom() const { return kind_ == ActivationKind::custom; }
  /// Whether this is tanh (the default, which CellConfig does not record).
  bool is_default() const { return kind_ == ActivationKind::tanh; }
  /// The code CellConfig records: 0 tanh, 1 relu, -1 custom.
  double code() const { return static_cast<double>(static_cast<int>(kind_)); }
  /// "tanh", "relu", or the user's name.
  std::string name() const {
    return kind_ == ActivationKind::tanh ? "tanh" : kind_ == ActivationKind::relu ? "relu" : name_;
  }

  /// The activation of one scalar.
  T operator()(T x) const {
    if (kind_ == ActivationKind::tanh) return std::tanh(x);
    if (kind_ == ActivationKind::relu) return x > T(0) ? x : T(0);
    return fns_->first(x);
  }
  /// Its derivative at x.
  T derivative(T x) const {
    if (kind_ == ActivationKind::tanh) {
      const T y = std::tanh(x);
      return T(1) - y * y;
    }
    if (kind_ == ActivationKind::relu) return x > T(0) ? T(1) : T(0);
    return fns_->second(x);
  }

  /// Calls f(op) once with the operation on Eigen arrays (detail::TanhOp, detail::ReluOp or
  /// detail::CustomOp<T>): a cell runs a step's elementwise pass inside f, so the built-ins are
  /// inlined (one switch per call, not per element).
  template <class F>
  void visit(F&& f) const {
    switch (kind_) {
      case ActivationKind::tanh:
        f(detail::TanhOp{});
        break;
      case ActivationKind::relu:
        f(detail::ReluOp{});
        break;
      default:
        f(detail::CustomOp<T>{&fns_->first, &fns_->second});
        break;
    }
  }

 private:
  ActivationKind kind_ = ActivationKind::tanh;
  std::string name_;
  std::shared_ptr<const std::pair<Function, Function>> fns_;
};

}  // namespace cellflow
