// The optimizer interface every optimizer implements (AdamOptimizer, GradientDescentOptimizer,
// MomentumOptimizer, RMSPropOptimizer, AdagradOptimizer),
// and an optimizer's whole state as named tensors (OptimizerState), which is what checkpoints
// store: io/checkpoint.hpp saves and restores any optimizer through this interface, without
// knowing its type.
//
//   cellflow::AdamOptimizer<float> adam(0.001);            // any arithmetic type converts
//   cellflow::Optimizer<float>& opt = adam;
//   opt.apply_gradients(vars);
//   cellflow::OptimizerState<float> s = opt.export_state(vars);   // kind, scalars, counters, slots
//   other.import_state(s, vars);                          // checked first: all or nothing
//
// An OptimizerState names everything: scalars ("learning_rate", "beta1", "beta1_power", ...) and
// integer counters ("step") by name, slots by (variable name, slot name) with the variable's
// shape (Adam's "m" and "v"). Since slots are keyed by the variable's name, not its position, a
// state exported with one VariableList imports into a list of the same variables in another
// order. Scalars are kept in T exactly, so an optimizer that imports the state of another
// continues bitwise as the other would have.
#pragma once

#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow {

/// One slot of an optimizer's state: a tensor of the shape of its variable (e.g. Adam's "m").
template <class T>
struct OptimizerSlot {
  std::vector<Index> shape;  ///< the variable's TensorFlow shape ({n} or {rows, cols})
  Matrix<T> value;           ///< laid out as the variable's value (a [n] variable is 1 x n)
};

/// Everything an optimizer holds, by name (see the top of this header). Slots are keyed by
/// (variable name, slot name).
template <class T>
struct OptimizerState {
  std::string kind;                                                       ///< the optimizer's kind(): "adam", ...
  std::map<std::string, T> scalars;                                       ///< e.g. "learning_rate", "beta1_power"
  std::map<std::string, long long> counters;                              ///< e.g. "step"
  std::map<std::pair<std::string, std::string>, OptimizerSlot<T>> slots;  ///< by (variable, slot name)

  /// The slot `slot` of the variable named `variable`, or nullptr.
  const OptimizerSlot<T>* find_slot(const std::string& variable, const std::string& slot) const {
    const auto it = slots.find({variable, slot});
    return it == slots.end() ? nullptr : &it->second;
  }
};

namespace detail {

/// `x` (of any arithmetic type) as a T; ValueError "<op>: <what> must be finite and >= 0, given
/// x" unless the converted value is.
template <class T, class S>
T finite_nonnegative(S x, const std::string& op, const char* what) {
  static_assert(std::is_arithmetic_v<S>, "cellflow: a hyper-parameter must be a number");
  const T v = static_cast<T>(x);
  if (!(std::isfinite(v) && v >= T(0)))
    throw ValueError(concat(op, ": ", what, " must be finite and >= 0, given ", x,
                            std::isfinite(x) && !std::isfinite(v) ? " (too large for this scalar type)" : ""));
  return v;
}

/// `x` as a T in [0, 1); ValueError otherwise.
template <class T, class S>
T unit_interval(S x, const std::string& op, const char* what) {
  static_assert(std::is_arithmetic_v<S>, "cellflow: a hyper-parameter must be a number");
  const T v = static_cast<T>(x);
  if (!(v >= T(0) && v < T(1))) throw ValueError(concat(op, ": ", what, " must be in [0, 1), given ", x));
  return v;
}

/// ShapeError "<op>: variable k ('name') ..." unless every variable of `vars` has a value and a
/// gradient of the same rows x cols: what an optimizer checks before it changes anything.
template <class T>
void check_gradients(const VariableList<T>& vars, const char* op) {
  for (std::size_t k = 0; k < vars.size(); ++k) {
    const VariableRef<T>& v = vars[k];
    if (v.value == nullptr) throw ShapeError(concat(op, ": variable ", k, " ('", v.name, "') has no value"));
    if (v.grad == nullptr)
      throw ShapeError(concat(op, ": variable ", k, " ('", v.name, "') has no gradient (a null grad pointer)"));
    if (v.grad->rows() == v.value->rows() && v.grad->cols() == v.value->cols()) continue;
    if (v.grad->size() == 0)
      throw ShapeError(concat(op, ": variable ", k, " ('", v.name, "') has no gradient: its grad is ", v.grad->rows(),
                              "x", v.grad->cols(), ", its value ", v.value->rows(), "x", v.value->cols(),
                              " (a Parameter made without a gradient?)"));
    throw ShapeError(concat(op, ": variable ", k, " ('", v.name, "') has a gradient of ", v.grad->rows(), "x",
                            v.grad->cols(), " for a value of ", v.value->rows(), "x", v.value->cols()));
  }
}

}  // namespace detail

/// The interface of every optimizer. The learning rate lives here; the rest of an optimizer's
/// state is exported and imported as an OptimizerState.
template <class T>
class Optimizer {
 public:
  /// Virtual: an optimizer may be destroyed through an Optimizer<T>*.
  virtual ~Optimizer() = default;

  /// One step over every variable of `vars`, using the gradients stored in it. Checks every
  /// variable's gradient (present, the value's shape; ShapeError naming the variable) before
  /// anything changes.
  virtual void apply_gradients(VariableList<T>& vars) = 0;

  /// The kind of optimizer, as checkpoints record it: "adam", "gradient_descent", "momentum",
  /// "rmsprop", "adagrad".
  virtual std::string kind() const = 0;

  /// The learning rate, in T.
  T learning_rate() const { return lr_; }
  /// Replaces the learning rate (any arithmetic type, converted to T); ValueError unless it is
  /// finite and >= 0 in T. Nothing else changes.
  template <class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
  void set_learning_rate(S learning_rate) {
    lr_ = detail::finite_nonnegative<T>(learning_rate, detail::concat(type_name(), "::set_learning_rate"),
                                        "the learning rate");
  }

  /// The whole state, by name: hyper-parameters, counters and slots (keyed by the names of
  /// `vars`, the list the optimizer has been stepping). Throws ValueError when the optimizer's
  /// slots were made for another list.
  virtual OptimizerState<T> export_state(const VariableList<T>& vars) const = 0;

  /// Every reason why `state` cannot be imported for `vars` (wrong kind, a missing, unknown or
  /// out-of-range scalar or counter, a missing, unknown or misshapen slot), one line each; empty
  /// when it can.
  virtual std::vector<std::string> state_problems(const OptimizerState<T>& state,
                                                  const VariableList<T>& vars) const = 0;

  /// Throws ValueError "<Type>::check_state: ..." listing every problem of state_problems.
  void check_state(const OptimizerState<T>& state, const VariableList<T>& vars) const {
    throw_problems(state_problems(state, vars), "check_state");
  }

  /// Replaces the whole state, hyper-parameters included, with `state` for the variables `vars`
  /// (slots matched by variable name). Checks first (ValueError "<Type>::import_state: ...", and
  /// then nothing changes): the next apply_gradients(vars) does exactly what the optimizer that
  /// exported `state` would have done.
  void import_state(const OptimizerState<T>& state, const VariableList<T>& vars) {
    throw_problems(state_problems(state, vars), "import_state");
    assign_state(state, vars);
  }

 protected:
  explicit Optimizer(T learning_rate) : lr_(learning_rate) { detail::check_scalar<T>(); }
  Optimizer(const Optimizer&) = default;
  Optimizer& operator=(const Optimizer&) = default;
  Optimizer(Optimizer&&) noexcept = default;
  Optimizer& operator=(Optimizer&&) noexcept = default;

  /// "AdamOptimizer", for messages.
  virtual const char* type_name() const = 0;
  /// Takes `state`, which state_problems has accepted for `vars`. Must change nothing if it
  /// throws (e.g. bad_alloc).
  virtual void assign_state(const OptimizerState<T>& state, const VariableList<T>& vars) = 0;

  T lr_;

 private:
  void throw_problems(const std::vector<std::string>& problems, const char* method) const {
    if (problems.empty()) return;
    std::string msg = detail::concat(type_name(), "::", method, ": the state does not fit");
    if (problems.size() == 1) {
      msg += ": " + problems[0];
    } else {
      msg += detail::concat(" (", problems.size(), " problems):");
      for (const std::string& p : problems) msg += "\n  " + p;
    }
    throw ValueError(msg);
  }
};

}  // namespace cellflow
