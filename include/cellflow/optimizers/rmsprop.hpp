// RMSPropOptimizer: tf.train.RMSPropOptimizer (TF 1.15), the ApplyRMSProp and
// ApplyCenteredRMSProp kernels. With learning rate lr, decay rho, momentum mu, epsilon eps and
// the slots ms ("rms"), mom ("momentum") and, when centered, mg ("mg"), each step does, element
// by element and in this order of operations:
//
//   ms  <- ms + (g * g - ms) * (1 - rho)
//   mg  <- mg + (g - mg) * (1 - rho)                         (centered only)
//   d   <- ms + eps,  or  (ms - mg * mg) + eps               (plain, centered)
//   mom <- mom * mu + (g * lr) / sqrt(d)
//   var <- var - mom
//
// which is ms = rho * ms + (1 - rho) * g^2 written as TF's kernel computes it. TF1 starts the
// "rms" slot at ONES (its _create_slots uses a ones initializer), "momentum" and "mg" at zeros;
// so does this class. All in T, as TF computes in the variable's type.
//
// Its state (optimizers/optimizer.hpp, slot_optimizer.hpp), kind "rmsprop": scalars
// "learning_rate" and "epsilon" (finite, >= 0), "decay" and "momentum" (in [0, 1]); counters
// "centered" (0 or 1) and "step"; after the first step the slots "rms", "mg" (centered only) and
// "momentum" of every variable, TF's slot names. Saved and resumed through checkpoints like Adam.
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
/// tf.train.RMSPropOptimizer (see the top of this header), plain or centered, with momentum.
class RMSPropOptimizer : public SlotOptimizer<T> {
 public:
  /// TF1's RMSPropOptimizer(learning_rate, decay = 0.9, momentum = 0.0, epsilon = 1e-10,
  /// centered = False), with its defaults. Numbers of any arithmetic type, converted to T.
  /// ValueError unless learning_rate and epsilon are finite and >= 0 and decay and momentum are
  /// in [0, 1] (NaN and infinities refused).
  template <class L, class D = double, class M = double, class E = double,
            std::enable_if_t<std::is_arithmetic_v<L> && std::is_arithmetic_v<D> && std::is_arithmetic_v<M> &&
                                 std::is_arithmetic_v<E>,
                             int> = 0>
  explicit RMSPropOptimizer(L learning_rate, D decay = 0.9, M momentum = 0.0, E epsilon = 1e-10, bool centered = false)
      : SlotOptimizer<T>(detail::finite_nonnegative<T>(learning_rate, "RMSPropOptimizer", "the learning rate")),
        decay_(detail::closed_unit_interval<T>(decay, "RMSPropOptimizer", "decay")),
        momentum_(detail::closed_unit_interval<T>(momentum, "RMSPropOptimizer", "momentum")),
        eps_(detail::finite_nonnegative<T>(epsilon, "RMSPropOptimizer", "epsilon")),
        centered_(centered) {}

  /// "rmsprop".
  std::string kind() const override { return "rmsprop"; }
  /// The decay rho of the moving averages.
  T decay() const { return decay_; }
  /// The momentum mu.
  T momentum() const { return momentum_; }
  /// Added to the (centered) mean square under the square root.
  T epsilon() const { return eps_; }
  /// Whether the mean square is centered by the mean gradient (the "mg" slot).
  bool centered() const { return centered_; }

 protected:
  const char* type_name() const override { return "RMSPropOptimizer"; }
  std::map<std::string, T> scalars() const override {
    return {{"learning_rate", this->lr_}, {"decay", decay_}, {"momentum", momentum_}, {"epsilon", eps_}};
  }
  std::map<std::string, ScalarRange> scalar_ranges() const override {
    return {{"learning_rate", ScalarRange::nonnegative},
            {"decay", ScalarRange::unit},
            {"momentum", ScalarRange::unit},
            {"epsilon", ScalarRange::nonnegative}};
  }
  std::map<std::string, long long> flags() const override { return {{"centered", centered_ ? 1 : 0}}; }
  std::vector<std::string> slot_names_for(const std::map<std::string, long long>& flags) const override {
    if (flags.at("centered") != 0) return {"rms", "mg", "momentum"};
    return {"rms", "momentum"};
  }
  T slot_initial_value(const std::string& slot) const override { return slot == "rms" ? T(1) : T(0); }
  bool slot_nonnegative(const std::string& slot) const override { return slot == "rms"; }
  void assign_hyper(const OptimizerState<T>& s) override {
    this->lr_ = s.scalars.at("learning_rate");
    decay_ = s.scalars.at("decay");
    momentum_ = s.scalars.at("momentum");
    eps_ = s.scalars.at("epsilon");
    centered_ = s.counters.at("centered") != 0;
  }
  void update(T* var, const T* g, Index n, T* const* slots) const override {
    const T lr = this->lr_, mu = momentum_, eps = eps_, one_minus_rho = T(1) - decay_;
    T* ms = slots[0];
    if (centered_) {
      T* mg = slots[1];
      T* mom = slots[2];
      for (Index i = 0; i < n; ++i) {
        ms[i] += (g[i] * g[i] - ms[i]) * one_minus_rho;
        mg[i] += (g[i] - mg[i]) * one_minus_rho;
        const T denom = (ms[i] - mg[i] * mg[i]) + eps;
        mom[i] = mom[i] * mu + (g[i] * lr) / std::sqrt(denom);
        var[i] -= mom[i];
      }
    } else {
      T* mom = slots[1];
      for (Index i = 0; i < n; ++i) {
        ms[i] += (g[i] * g[i] - ms[i]) * one_minus_rho;
        mom[i] = mom[i] * mu + (g[i] * lr) / std::sqrt(ms[i] + eps);
        var[i] -= mom[i];
      }
    }
  }

 private:
  T decay_, momentum_, eps_;
  bool centered_;
};

}  // namespace cellflow
