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
// The whole state (hyper-parameters, step, beta powers, m and v slots) can be exported with
// state() and put back with restore_state(), e.g. through a checkpoint (io/checkpoint.hpp): an
// optimizer restored from the state of another continues bitwise as the other would have.
#pragma once

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow {

/// Everything an AdamOptimizer holds, as state() exports it and restore_state() takes it back.
/// `m[k]` and `v[k]` are the slots of variable k of the VariableList (in list order, same
/// rows x cols as its value); both are empty before the first step.
template <class T>
struct AdamState {
  T learning_rate = T(0.001), beta1 = T(0.9), beta2 = T(0.999), epsilon = T(1e-8);
  T beta1_power = T(0.9), beta2_power = T(0.999);  ///< the powers the next step will use
  long long step = 0;                              ///< steps applied so far
  std::vector<Matrix<T>> m, v;
};

template <class T>
class AdamOptimizer {
 public:
  explicit AdamOptimizer(T learning_rate = T(0.001), T beta1 = T(0.9), T beta2 = T(0.999), T epsilon = T(1e-8))
      : lr_(learning_rate), beta1_(beta1), beta2_(beta2), eps_(epsilon), beta1_power_(beta1), beta2_power_(beta2) {
    detail::check_scalar<T>();
    if (!(beta1 >= T(0) && beta1 < T(1)) || !(beta2 >= T(0) && beta2 < T(1)))
      throw ValueError(detail::concat("AdamOptimizer: beta1 and beta2 must be in [0, 1), given ", beta1, ", ", beta2));
    if (!(epsilon >= T(0))) throw ValueError(detail::concat("AdamOptimizer: epsilon must be >= 0, given ", epsilon));
  }

  /// One step over every variable of the list, using the gradients stored in it. The first call
  /// creates the m and v slots (zeros); later calls must pass a list of the same shapes, in the
  /// same order (slots are keyed by position, as the list order is fixed by the model).
  void apply_gradients(VariableList<T>& vars) {
    init_or_check(vars);
    const T alpha = lr_ * std::sqrt(T(1) - beta2_power_) / (T(1) - beta1_power_);
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
    beta1_power_ *= beta1_;
    beta2_power_ *= beta2_;
    ++step_;
  }

  T learning_rate() const { return lr_; }
  void set_learning_rate(T lr) { lr_ = lr; }
  T beta1() const { return beta1_; }
  T beta2() const { return beta2_; }
  T epsilon() const { return eps_; }
  /// beta1^(t+1) and beta2^(t+1) after t steps: the powers the next step will use.
  T beta1_power() const { return beta1_power_; }
  T beta2_power() const { return beta2_power_; }
  /// Steps applied so far.
  long long step() const { return step_; }
  /// The slots of variable k (in list order); empty before the first step.
  const std::vector<Matrix<T>>& m_slots() const { return m_; }
  const std::vector<Matrix<T>>& v_slots() const { return v_; }

  /// A copy of the whole state: hyper-parameters, step, beta powers, m and v slots.
  AdamState<T> state() const {
    AdamState<T> s;
    s.learning_rate = lr_;
    s.beta1 = beta1_;
    s.beta2 = beta2_;
    s.epsilon = eps_;
    s.beta1_power = beta1_power_;
    s.beta2_power = beta2_power_;
    s.step = step_;
    s.m = m_;
    s.v = v_;
    return s;
  }

  /// Throws ValueError (naming `op` and the field) unless `s` is a state restore_state accepts:
  /// beta1, beta2 and both beta powers in [0, 1), epsilon >= 0, step >= 0, as many m as v slots
  /// with m[k] and v[k] of the same shape, no v value below 0 (NaN is let through, as training
  /// can produce it). The slots are checked against a VariableList on the next apply_gradients.
  static void check_state(const AdamState<T>& s, const std::string& op = "AdamOptimizer::restore_state") {
    const auto in_unit = [](T x) { return x >= T(0) && x < T(1); };
    if (!in_unit(s.beta1) || !in_unit(s.beta2))
      throw ValueError(detail::concat(op, ": beta1 and beta2 must be in [0, 1), given ", s.beta1, ", ", s.beta2));
    if (!(s.epsilon >= T(0))) throw ValueError(detail::concat(op, ": epsilon must be >= 0, given ", s.epsilon));
    if (!in_unit(s.beta1_power) || !in_unit(s.beta2_power))
      throw ValueError(detail::concat(op, ": beta1_power and beta2_power must be in [0, 1), given ", s.beta1_power,
                                      ", ", s.beta2_power));
    if (s.step < 0) throw ValueError(detail::concat(op, ": step must be >= 0, given ", s.step));
    if (s.m.size() != s.v.size())
      throw ValueError(detail::concat(op, ": ", s.m.size(), " m slots but ", s.v.size(), " v slots"));
    for (std::size_t k = 0; k < s.m.size(); ++k) {
      if (s.m[k].rows() != s.v[k].rows() || s.m[k].cols() != s.v[k].cols())
        throw ValueError(detail::concat(op, ": slot ", k, ": m is ", s.m[k].rows(), "x", s.m[k].cols(), " but v is ",
                                        s.v[k].rows(), "x", s.v[k].cols()));
      const T* v = s.v[k].data();
      for (Index i = 0; i < s.v[k].size(); ++i)
        if (v[i] < T(0)) throw ValueError(detail::concat(op, ": slot ", k, ": v[", i, "] = ", v[i], " is negative"));
    }
  }

  /// Replaces the whole state, hyper-parameters included, with `s` (checked by check_state
  /// first; on error nothing changes). The next apply_gradients then does exactly what the
  /// optimizer that exported `s` would have done. Change the learning rate afterwards with
  /// set_learning_rate if wanted.
  void restore_state(AdamState<T> s) {
    check_state(s);
    lr_ = s.learning_rate;
    beta1_ = s.beta1;
    beta2_ = s.beta2;
    eps_ = s.epsilon;
    beta1_power_ = s.beta1_power;
    beta2_power_ = s.beta2_power;
    step_ = s.step;
    m_ = std::move(s.m);
    v_ = std::move(s.v);
  }

 private:
  void init_or_check(const VariableList<T>& vars) {
    if (m_.empty() && step_ == 0) {
      for (const auto& var : vars) {
        m_.push_back(Matrix<T>::Zero(var.value->rows(), var.value->cols()));
        v_.push_back(Matrix<T>::Zero(var.value->rows(), var.value->cols()));
      }
      return;
    }
    if (vars.size() != m_.size())
      throw ShapeError(detail::concat("AdamOptimizer::apply_gradients: the optimizer holds slots for ", m_.size(),
                                      " variables, given ", vars.size()));
    for (std::size_t k = 0; k < vars.size(); ++k)
      if (vars[k].value->rows() != m_[k].rows() || vars[k].value->cols() != m_[k].cols())
        throw ShapeError(detail::concat("AdamOptimizer::apply_gradients: variable ", k, " ('", vars[k].name, "') is ",
                                        shape_string(vars[k].shape), ", its slots were made for ", m_[k].rows(), "x",
                                        m_[k].cols()));
  }

  T lr_, beta1_, beta2_, eps_;
  T beta1_power_, beta2_power_;
  long long step_ = 0;
  std::vector<Matrix<T>> m_, v_;
};

}  // namespace cellflow
