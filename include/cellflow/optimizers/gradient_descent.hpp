// GradientDescentOptimizer: tf.train.GradientDescentOptimizer, var -= learning_rate * grad.
//
// Its state (optimizers/optimizer.hpp), kind "gradient_descent": the scalar "learning_rate";
// no counters, no slots.
#pragma once

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/optimizers/optimizer.hpp"

namespace cellflow {

template <class T>
/// tf.train.GradientDescentOptimizer: var -= learning_rate * grad; no slots, no counters.
class GradientDescentOptimizer : public Optimizer<T> {
 public:
  /// TF1's GradientDescentOptimizer(learning_rate); any arithmetic type, converted to T.
  /// ValueError unless it is finite and >= 0.
  template <class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
  explicit GradientDescentOptimizer(S learning_rate)
      : Optimizer<T>(detail::finite_nonnegative<T>(learning_rate, "GradientDescentOptimizer", "the learning rate")) {}

  /// var -= learning_rate * grad for every variable of the list, after checking every gradient
  /// (ShapeError naming the variable; nothing changes then).
  void apply_gradients(VariableList<T>& vars) override {
    detail::check_gradients(vars, "GradientDescentOptimizer::apply_gradients");
    for (auto& v : vars) v.value->noalias() -= *v.grad * this->lr_;
  }

  /// "gradient_descent".
  std::string kind() const override { return "gradient_descent"; }

  /// The state of kind "gradient_descent": the learning rate.
  OptimizerState<T> export_state(const VariableList<T>& /*vars*/) const override {
    OptimizerState<T> s;
    s.kind = kind();
    s.scalars = {{"learning_rate", this->lr_}};
    return s;
  }

  /// Every reason why `s` is not a gradient-descent state: another kind, the learning rate
  /// missing, not finite or negative, any other scalar, any counter or slot.
  std::vector<std::string> state_problems(const OptimizerState<T>& s, const VariableList<T>& /*vars*/) const override {
    using detail::concat;
    std::vector<std::string> p;
    if (s.kind != kind()) {
      p.push_back(concat("the state is of kind '", s.kind, "', not 'gradient_descent'"));
      return p;
    }
    if (s.scalars.count("learning_rate") == 0) p.push_back("the scalar 'learning_rate' is missing");
    for (const auto& [name, value] : s.scalars) {
      if (name != "learning_rate")
        p.push_back(concat("unknown scalar '", name, "'"));
      else if (!(std::isfinite(value) && value >= T(0)))
        p.push_back(concat("the scalar 'learning_rate' = ", value, " is not finite and >= 0"));
    }
    for (const auto& c : s.counters) p.push_back(concat("unknown counter '", c.first, "'"));
    for (const auto& slot : s.slots)
      p.push_back(concat("unknown slot '", slot.first.second, "' of '", slot.first.first, "'"));
    return p;
  }

 protected:
  const char* type_name() const override { return "GradientDescentOptimizer"; }
  void assign_state(const OptimizerState<T>& s, const VariableList<T>& /*vars*/) override {
    this->lr_ = s.scalars.at("learning_rate");
  }
};

}  // namespace cellflow
