// AdagradOptimizer: tf.train.AdagradOptimizer (TF 1.15), the ApplyAdagrad kernel (update_slots
// on). With learning rate lr and the slot acc ("accumulator", every value starting at
// initial_accumulator_value), each step does, element by element and in this order:
//
//   acc <- acc + g * g
//   var <- var - (g * lr) * (1 / sqrt(acc))
//
// All in T, as TF computes in the variable's type. (TF's kernel takes 1 / sqrt through Eigen's
// rsqrt; on CPUs where Eigen vectorises float rsqrt approximately, TF's float results can differ
// from these in the last bit; doubles are exact either way.)
//
// Its state (optimizers/optimizer.hpp, slot_optimizer.hpp), kind "adagrad": scalars
// "learning_rate" (finite, >= 0) and "initial_accumulator_value" (finite, > 0); counter "step";
// the slot "accumulator" of every variable (TF's slot name) after the first step. Saved and
// resumed through checkpoints like Adam.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "cellflow/core/types.hpp"
#include "cellflow/optimizers/optimizer.hpp"
#include "cellflow/optimizers/slot_optimizer.hpp"

namespace cellflow {

template <class T>
/// tf.train.AdagradOptimizer (see the top of this header): a running sum of squared gradients
/// ("accumulator" slot) per variable.
class AdagradOptimizer : public SlotOptimizer<T> {
 public:
  /// TF1's AdagradOptimizer(learning_rate, initial_accumulator_value = 0.1). Numbers of any
  /// arithmetic type, converted to T. ValueError unless learning_rate is finite and >= 0 and
  /// initial_accumulator_value is finite and > 0 (TF refuses values <= 0 too).
  template <class L, class A = double, std::enable_if_t<std::is_arithmetic_v<L> && std::is_arithmetic_v<A>, int> = 0>
  explicit AdagradOptimizer(L learning_rate, A initial_accumulator_value = 0.1)
      : SlotOptimizer<T>(detail::finite_nonnegative<T>(learning_rate, "AdagradOptimizer", "the learning rate")),
        initial_(
            detail::finite_positive<T>(initial_accumulator_value, "AdagradOptimizer", "initial_accumulator_value")) {}

  /// "adagrad".
  std::string kind() const override { return "adagrad"; }
  /// The value every accumulator starts at.
  T initial_accumulator_value() const { return initial_; }

 protected:
  const char* type_name() const override { return "AdagradOptimizer"; }
  std::map<std::string, T> scalars() const override {
    return {{"learning_rate", this->lr_}, {"initial_accumulator_value", initial_}};
  }
  std::map<std::string, ScalarRange> scalar_ranges() const override {
    return {{"learning_rate", ScalarRange::nonnegative}, {"initial_accumulator_value", ScalarRange::positive}};
  }
  std::vector<std::string> slot_names_for(const std::map<std::string, long long>&) const override {
    return {"accumulator"};
  }
  T slot_initial_value(const std::string&) const override { return initial_; }
  bool slot_nonnegative(const std::string&) const override { return true; }
  void assign_hyper(const OptimizerState<T>& s) override {
    this->lr_ = s.scalars.at("learning_rate");
    initial_ = s.scalars.at("initial_accumulator_value");
  }
  void update(T* var, const T* g, Index n, T* const* slots) const override {
    T* acc = slots[0];
    const T lr = this->lr_;
    for (Index i = 0; i < n; ++i) {
      acc[i] += g[i] * g[i];
      var[i] -= (g[i] * lr) * (T(1) / std::sqrt(acc[i]));
    }
  }

 private:
  T initial_;
};

}  // namespace cellflow
