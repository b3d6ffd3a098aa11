// MomentumOptimizer: tf.train.MomentumOptimizer (TF 1.15), the ApplyMomentum kernel. With
// learning rate lr, momentum mu and the slot a ("momentum", zeros at the first step), each step
// does, element by element and in this order of operations:
//
//   a   <- a * mu + g
//   var <- var - a * lr                           (use_nesterov = false)
//   var <- var - (g * lr + (a * mu) * lr)         (use_nesterov = true; a already updated)
//
// All in T, as TF computes in the variable's type (the hyper-parameters are cast to it).
//
// Its state (optimizers/optimizer.hpp, slot_optimizer.hpp), kind "momentum": scalars
// "learning_rate" (finite, >= 0) and "momentum" (in [0, 1]); counters "use_nesterov" (0 or 1)
// and "step"; the slot "momentum" of every variable (TF's slot name: optimizer.get_slot(var,
// "momentum")) after the first step. Saved and resumed through checkpoints like Adam.
#pragma once

#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "cellflow/core/types.hpp"
#include "cellflow/optimizers/optimizer.hpp"
#include "cellflow/optimizers/slot_optimizer.hpp"

namespace cellflow {

template <class T>
/// tf.train.MomentumOptimizer (see the top of this header): an accumulator ("momentum" slot) per
/// variable, plain or Nesterov.
class MomentumOptimizer : public SlotOptimizer<T> {
 public:
  /// TF1's MomentumOptimizer(learning_rate, momentum, use_nesterov = False) (momentum has no
  /// default in TF either). Numbers of any arithmetic type, converted to T. ValueError unless
  /// learning_rate is finite and >= 0 and momentum is in [0, 1] (NaN and infinities refused).
  template <class L, class M, std::enable_if_t<std::is_arithmetic_v<L> && std::is_arithmetic_v<M>, int> = 0>
  MomentumOptimizer(L learning_rate, M momentum, bool use_nesterov = false)
      : SlotOptimizer<T>(detail::finite_nonnegative<T>(learning_rate, "MomentumOptimizer", "the learning rate")),
        momentum_(detail::closed_unit_interval<T>(momentum, "MomentumOptimizer", "momentum")),
        nesterov_(use_nesterov) {}

  /// "momentum".
  std::string kind() const override { return "momentum"; }
  /// The momentum mu.
  T momentum() const { return momentum_; }
  /// Whether the update is Nesterov's.
  bool use_nesterov() const { return nesterov_; }

 protected:
  const char* type_name() const override { return "MomentumOptimizer"; }
  std::map<std::string, T> scalars() const override { return {{"learning_rate", this->lr_}, {"momentum", momentum_}}; }
  std::map<std::string, ScalarRange> scalar_ranges() const override {
    return {{"learning_rate", ScalarRange::nonnegative}, {"momentum", ScalarRange::unit}};
  }
  std::map<std::string, long long> flags() const override { return {{"use_nesterov", nesterov_ ? 1 : 0}}; }
  std::vector<std::string> slot_names_for(const std::map<std::string, long long>&) const override {
    return {"momentum"};
  }
  T slot_initial_value(const std::string&) const override { return T(0); }
  void assign_hyper(const OptimizerState<T>& s) override {
    this->lr_ = s.scalars.at("learning_rate");
    momentum_ = s.scalars.at("momentum");
    nesterov_ = s.counters.at("use_nesterov") != 0;
  }
  void update(T* var, const T* g, Index n, T* const* slots) const override {
    T* a = slots[0];
    const T lr = this->lr_, mu = momentum_;
    if (nesterov_) {
      for (Index i = 0; i < n; ++i) {
        a[i] = a[i] * mu + g[i];
        var[i] -= g[i] * lr + a[i] * mu * lr;
      }
    } else {
      for (Index i = 0; i < n; ++i) {
        a[i] = a[i] * mu + g[i];
        var[i] -= a[i] * lr;
      }
    }
  }

 private:
  T momentum_;
  bool nesterov_;
};

}  // namespace cellflow
