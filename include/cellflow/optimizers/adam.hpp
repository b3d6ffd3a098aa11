// AdamOptimizer with TensorFlow 1.x's exact update (tf.train.AdamOptimizer, ApplyAdam kernel),
// the "epsilon hat" form:
//
//   lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)      both bias corrections folded into lr_t
//   m   += (g - m) * (1 - beta1)
//   v   += (g * g - v) * (1 - beta2)
//   var -= (m * lr_t) / (sqrt(v) + epsilon)             epsilon added to the UNcorrected sqrt(v)
//
// beta1^t and beta2^t are kept as running products in T (TF's beta1_power/beta2_power, starting
// at beta1 and beta2) and advance once per apply_gradients call, after all variables.
//
// Its state (optimizers/optimizer.hpp), kind "adam": scalars "learning_rate", "beta1", "beta2",
// "epsilon", "beta1_power", "beta2_power"; counter "step"; slots "m" and "v" of every variable
// (none before the first step). An optimizer that imports the state of another continues
// bitwise as the other would have (e.g. through a checkpoint, io/checkpoint.hpp).
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/optimizers/optimizer.hpp"

namespace cellflow {

template <class T>
/// tf.train.AdamOptimizer with TF1's update (see the top of this header); its state holds the slots
/// m and v of every variable.
class AdamOptimizer : public Optimizer<T> {
 public:
  /// TF1's AdamOptimizer(learning_rate, beta1, beta2, epsilon), with its defaults. Each argument
  /// may be of any arithmetic type (AdamOptimizer<float>(0.001) takes a double) and is converted
  /// to T. ValueError unless learning_rate and epsilon are finite and >= 0 and beta1 and beta2
  /// are in [0, 1) (NaN and infinities are refused).
  template <class L = T, class B1 = T, class B2 = T, class E = T,
            std::enable_if_t<std::is_arithmetic_v<L> && std::is_arithmetic_v<B1> && std::is_arithmetic_v<B2> &&
                                 std::is_arithmetic_v<E>,
                             int> = 0>
  explicit AdamOptimizer(L learning_rate = L(0.001), B1 beta1 = B1(0.9), B2 beta2 = B2(0.999), E epsilon = E(1e-8))
      : Optimizer<T>(detail::finite_nonnegative<T>(learning_rate, "AdamOptimizer", "the learning rate")),
        beta1_(detail::unit_interval<T>(beta1, "AdamOptimizer", "beta1")),
        beta2_(detail::unit_interval<T>(beta2, "AdamOptimizer", "beta2")),
        eps_(detail::finite_nonnegative<T>(epsilon, "AdamOptimizer", "epsilon")),
        beta1_power_(beta1_),
        beta2_power_(beta2_) {}

  /// One step over every variable of the list, using the gradients stored in it. The first call
  /// creates the m and v slots (zeros) for the list's variables; later calls must pass a list of
  /// the same variables (names and shapes) in the same order. Every gradient and slot is checked
  /// (ShapeError naming the variable) before anything changes.
  void apply_gradients(VariableList<T>& vars) override {
    detail::check_gradients(vars, "AdamOptimizer::apply_gradients");
    init_or_check(vars);
    const T alpha = this->lr_ * std::sqrt(T(1) - beta2_power_) / (T(1) - beta1_power_);
    const T one_minus_b1 = T(1) - beta1_, one_minus_b2 = T(1) - beta2_;
    for (std::size_t k = 0; k < vars.size(); ++k) {
      T* var = vars[k].value->data();
      const T* g = vars[k].grad->data();
      T* m = m_[k].data();
      T* v = v_[k].data();
      const Index n = vars[k].size();
      for (Index i = 0; i < n; ++i) {
        m[i] += (g[i] - m[i]) * one_minus_b1;
        v[i] += (g[i] * g[i] - v[i]) * one_minus_b2;
        var[i] -= (m[i] * alpha) / (std::sqrt(v[i]) + eps_);
      }
    }
    last_lr_t_ = alpha;
    beta1_power_ *= beta1_;
    beta2_power_ *= beta2_;
    ++step_;
  }

  /// "adam".
  std::string kind() const override { return "adam"; }

  /// The decay rate of the first moment m (TF's beta1).
  T beta1() const { return beta1_; }
  /// The decay rate of the second moment v (TF's beta2).
  T beta2() const { return beta2_; }
  /// Added to the uncorrected sqrt(v) (TF1's "epsilon hat").
  T epsilon() const { return eps_; }
  /// beta1^(t+1) and beta2^(t+1) after t steps: the powers the next step will use.
  T beta1_power() const { return beta1_power_; }
  /// beta2^(t+1) after t steps, as beta1_power().
  T beta2_power() const { return beta2_power_; }
  /// Steps applied so far.
  long long step() const { return step_; }
  /// The step size lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t) that this optimizer's last
  /// apply_gradients used (t the step it took, the powers those before it advanced); 0 before
  /// its first step and after import_state.
  T last_lr_t() const { return last_lr_t_; }
  /// The slots of variable k of the list they were made for (in list order); empty before the
  /// first step.
  const std::vector<Matrix<T>>& m_slots() const { return m_; }
  /// The v slots, as m_slots().
  const std::vector<Matrix<T>>& v_slots() const { return v_; }

  /// The state of kind "adam" (top of this header); the slots keyed by the names of `vars`,
  /// which must be the list the slots were made for (ValueError otherwise).
  OptimizerState<T> export_state(const VariableList<T>& vars) const override {
    OptimizerState<T> s;
    s.kind = kind();
    s.scalars = {{"learning_rate", this->lr_},
                 {"beta1", beta1_},
                 {"beta2", beta2_},
                 {"epsilon", eps_},
                 {"beta1_power", beta1_power_},
                 {"beta2_power", beta2_power_}};
    s.counters = {{"step", step_}};
    if (m_.empty()) return s;
    if (m_.size() != vars.size())
      throw ValueError(detail::concat("AdamOptimizer::export_state: the optimizer holds slots for ", m_.size(),
                                      " variables, the list has ", vars.size()));
    for (std::size_t k = 0; k < vars.size(); ++k) {
      const VariableRef<T>& var = vars[k];
      const std::string& made_for = slot_names_[k];
      if (var.name != made_for || var.value == nullptr || var.value->rows() != m_[k].rows() ||
          var.value->cols() != m_[k].cols())
        throw ValueError(detail::concat("AdamOptimizer::export_state: variable ", k, " of the list is '", var.name,
                                        "' ", shape_string(var.shape), ", the optimizer's slots ", k,
                                        " were made for '", made_for, "' (", m_[k].rows(), "x", m_[k].cols(), ")"));
      s.slots[{var.name, "m"}] = OptimizerSlot<T>{var.shape, m_[k]};
      s.slots[{var.name, "v"}] = OptimizerSlot<T>{var.shape, v_[k]};
    }
    return s;
  }

  /// Every reason why `s` is not an Adam state for `vars` (kind "adam"; exactly the six scalars,
  /// learning_rate and epsilon finite and >= 0, beta1, beta2 and the powers in [0, 1); the
  /// counter step >= 0; no slots (then step 0, unless `vars` is empty) or exactly m and v for
  /// every variable of `vars`, with its shape, and no v value below 0 (NaN is let through, as
  /// training can produce it)).
  std::vector<std::string> state_problems(const OptimizerState<T>& s, const VariableList<T>& vars) const override {
    using detail::concat;
    std::vector<std::string> p;
    if (s.kind != kind()) {
      p.push_back(concat("the state is of kind '", s.kind, "', not 'adam'"));
      return p;
    }
    static const char* const names[] = {"learning_rate", "beta1", "beta2", "epsilon", "beta1_power", "beta2_power"};
    for (const char* name : names)
      if (s.scalars.count(name) == 0) p.push_back(concat("the scalar '", name, "' is missing"));
    for (const auto& [name, value] : s.scalars) {
      const bool unit = name == "beta1" || name == "beta2" || name == "beta1_power" || name == "beta2_power";
      const bool nonnegative = name == "learning_rate" || name == "epsilon";
      if (!unit && !nonnegative)
        p.push_back(concat("unknown scalar '", name, "'"));
      else if (unit && !(value >= T(0) && value < T(1)))
        p.push_back(concat("the scalar '", name, "' = ", value, " is not in [0, 1)"));
      else if (nonnegative && !(std::isfinite(value) && value >= T(0)))
        p.push_back(concat("the scalar '", name, "' = ", value, " is not finite and >= 0"));
    }
    long long step = 0;
    if (s.counters.count("step") == 0) p.push_back("the counter 'step' is missing");
    for (const auto& [name, value] : s.counters) {
      if (name != "step")
        p.push_back(concat("unknown counter '", name, "'"));
      else if (value < 0)
        p.push_back(concat("the counter 'step' = ", value, " is negative"));
      else
        step = value;
    }
    if (s.slots.empty()) {
      if (step != 0 && !vars.empty())
        p.push_back(concat("no slots, but ", step, " steps taken: Adam has m and v slots after its first step"));
      return p;
    }
    std::map<std::string, std::size_t> index;
    for (std::size_t k = 0; k < vars.size(); ++k) index.emplace(vars[k].name, k);
    for (const VariableRef<T>& var : vars) {
      for (const char* slot : {"m", "v"}) {
        const OptimizerSlot<T>* found = s.find_slot(var.name, slot);
        if (found == nullptr) {
          p.push_back(concat("the slot '", slot, "' of '", var.name, "' is missing"));
          continue;
        }
        if (found->shape != var.shape || found->value.rows() != var.value->rows() ||
            found->value.cols() != var.value->cols()) {
          p.push_back(concat("the slot '", slot, "' of '", var.name, "' is ", shape_string(found->shape), " (",
                             found->value.rows(), "x", found->value.cols(), "), the variable ", shape_string(var.shape),
                             " (", var.value->rows(), "x", var.value->cols(), ")"));
          continue;
        }
        if (*slot == 'v') {
          const T* x = found->value.data();
          for (Index i = 0; i < found->value.size(); ++i)
            if (x[i] < T(0)) {
              p.push_back(concat("the slot 'v' of '", var.name, "': v[", i, "] = ", x[i], " is negative"));
              break;
            }
        }
      }
    }
    for (const auto& [key, slot] : s.slots) {
      if (key.second != "m" && key.second != "v")
        p.push_back(concat("unknown slot '", key.second, "' of '", key.first, "'"));
      else if (index.count(key.first) == 0)
        p.push_back(concat("the slot '", key.second, "' of '", key.first, "': no variable of that name in the list"));
    }
    return p;
  }

 protected:
  const char* type_name() const override { return "AdamOptimizer"; }

  void assign_state(const OptimizerState<T>& s, const VariableList<T>& vars) override {
    std::vector<Matrix<T>> m, v;
    std::vector<std::string> names;
    if (!s.slots.empty()) {
      for (const VariableRef<T>& var : vars) {
        m.push_back(s.find_slot(var.name, "m")->value);
        v.push_back(s.find_slot(var.name, "v")->value);
        names.push_back(var.name);
      }
    }
    // Nothing below throws.
    this->lr_ = s.scalars.at("learning_rate");
    beta1_ = s.scalars.at("beta1");
    beta2_ = s.scalars.at("beta2");
    eps_ = s.scalars.at("epsilon");
    beta1_power_ = s.scalars.at("beta1_power");
    beta2_power_ = s.scalars.at("beta2_power");
    step_ = s.counters.at("step");
    m_ = std::move(m);
    v_ = std::move(v);
    slot_names_ = std::move(names);
    last_lr_t_ = T(0);
  }

 private:
  void init_or_check(const VariableList<T>& vars) {
    if (m_.empty() && step_ == 0) {
      std::vector<Matrix<T>> m, v;
      std::vector<std::string> names;
      for (const auto& var : vars) {
        m.push_back(Matrix<T>::Zero(var.value->rows(), var.value->cols()));
        v.push_back(Matrix<T>::Zero(var.value->rows(), var.value->cols()));
        names.push_back(var.name);
      }
      m_ = std::move(m);
      v_ = std::move(v);
      slot_names_ = std::move(names);
      return;
    }
    if (vars.size() != m_.size())
      throw ShapeError(detail::concat("AdamOptimizer::apply_gradients: the optimizer holds slots for ", m_.size(),
                                      " variables, given ", vars.size()));
    for (std::size_t k = 0; k < vars.size(); ++k) {
      if (vars[k].value->rows() != m_[k].rows() || vars[k].value->cols() != m_[k].cols())
        throw ShapeError(detail::concat("AdamOptimizer::apply_gradients: variable ", k, " ('", vars[k].name, "') is ",
                                        shape_string(vars[k].shape), ", its slots were made for ", m_[k].rows(), "x",
                                        m_[k].cols()));
      if (vars[k].name != slot_names_[k])
        throw ShapeError(detail::concat("AdamOptimizer::apply_gradients: variable ", k, " is '", vars[k].name,
                                        "', its slots were made for '", slot_names_[k],
                                        "' (the list's variables or their order changed)"));
    }
  }

  T beta1_, beta2_, eps_;
  T beta1_power_, beta2_power_;
  long long step_ = 0;
  std::vector<Matrix<T>> m_, v_;
  std::vector<std::string> slot_names_;  // the variables m_ and v_ were made for, in order
  T last_lr_t_ = T(0);
};

}  // namespace cellflow
