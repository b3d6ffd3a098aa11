// Learning-rate schedules of TF1: tf.train.exponential_decay and tf.train.piecewise_constant
// (TF 1.15), as functions of the global step and as schedule objects callable with the step.
//
// exponential_decay: with the initial rate lr, decay_steps s and decay_rate r, all cast to the
// type T of lr (TF casts them to the learning rate's dtype; a Python float is float32), and the
// step cast to T:
//
//   p = step / s              (in T),  p = floor(p) when staircase
//   decayed = lr * pow(r, p)  (in T)
//
// piecewise_constant: with boundaries b_0 < ... < b_(n-1) and values v_0 ... v_n, the value is
// v_0 for step <= b_0, v_i for b_(i-1) < step <= b_i, and v_n for step > b_(n-1): a step equal to
// a boundary still gets the value before it.
//
// In a TF1 program the decayed rate changes with every step (global_step is incremented by
// minimize), and the update of step k (counting from 0) uses the rate of step k. By hand:
//
//   opt.set_learning_rate(cf::exponential_decay(0.1f, step, 1000, 0.96f, true));
//   opt.apply_gradients(vars);
//
// With cf::fit, the callback PerStepLearningRateScheduler (model/callbacks.hpp) does it:
// `cf::PerStepLearningRateScheduler(cf::ExponentialDecay<float>(0.1, 1000, 0.96))`.
#pragma once

#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

namespace detail {

/// ValueError "<op>: global_step must be >= 0, given x" for a negative step (TF: "Must not be
/// negative").
inline void check_global_step(long long global_step, const char* op) {
  if (global_step < 0) throw ValueError(concat(op, ": global_step must be >= 0, given ", global_step));
}

}  // namespace detail

template <class T>
/// tf.train.exponential_decay as an object: lr * decay_rate^(global_step / decay_steps), in T (top
/// of this header). Callable with the global step.
class ExponentialDecay {
 public:
  /// The schedule of tf.train.exponential_decay(learning_rate, global_step, decay_steps,
  /// decay_rate, staircase). Numbers of any arithmetic type, converted to T. ValueError unless
  /// learning_rate and decay_rate are finite and >= 0 and decay_steps is finite and > 0 in T.
  template <class L, class S, class R,
            std::enable_if_t<std::is_arithmetic_v<L> && std::is_arithmetic_v<S> && std::is_arithmetic_v<R>, int> = 0>
  ExponentialDecay(L learning_rate, S decay_steps, R decay_rate, bool staircase = false)
      : lr_(static_cast<T>(learning_rate)),
        steps_(static_cast<T>(decay_steps)),
        rate_(static_cast<T>(decay_rate)),
        staircase_(staircase) {
    static_assert(std::is_floating_point_v<T>, "cellflow: ExponentialDecay<T> needs a floating-point T");
    using detail::concat;
    if (!(std::isfinite(lr_) && lr_ >= T(0)))
      throw ValueError(concat("exponential_decay: learning_rate must be finite and >= 0, given ", learning_rate));
    if (!(std::isfinite(steps_) && steps_ > T(0)))
      throw ValueError(concat("exponential_decay: decay_steps must be finite and > 0, given ", decay_steps));
    if (!(std::isfinite(rate_) && rate_ >= T(0)))
      throw ValueError(concat("exponential_decay: decay_rate must be finite and >= 0, given ", decay_rate));
  }

  /// The decayed rate at `global_step` (>= 0; ValueError otherwise).
  T operator()(long long global_step) const {
    detail::check_global_step(global_step, "exponential_decay");
    T p = static_cast<T>(global_step) / steps_;
    if (staircase_) p = std::floor(p);
    return lr_ * std::pow(rate_, p);
  }

  /// The initial learning rate.
  T learning_rate() const { return lr_; }
  /// Steps per factor decay_rate.
  T decay_steps() const { return steps_; }
  /// The factor per decay_steps steps.
  T decay_rate() const { return rate_; }
  /// Whether the exponent is floored (the rate changes every decay_steps steps).
  bool staircase() const { return staircase_; }

 private:
  T lr_, steps_, rate_;
  bool staircase_;
};

template <class T>
/// tf.train.piecewise_constant as an object (top of this header). Callable with the global step.
class PiecewiseConstant {
 public:
  /// The schedule of tf.train.piecewise_constant(global_step, boundaries, values). ValueError
  /// unless there is at least one boundary, the boundaries increase strictly (TF's documented
  /// requirement; TF itself fails only at a step where two of its ranges overlap) and there is
  /// one more value than boundaries (TF's check).
  PiecewiseConstant(std::vector<long long> boundaries, std::vector<T> values)
      : boundaries_(std::move(boundaries)), values_(std::move(values)) {
    using detail::concat;
    if (boundaries_.size() + 1 != values_.size())
      throw ValueError(
          concat("piecewise_constant: the length of boundaries should be 1 less than the length of "
                 "values; given ",
                 boundaries_.size(), " boundaries and ", values_.size(), " values"));
    if (boundaries_.empty()) throw ValueError("piecewise_constant: at least one boundary is needed, given none");
    for (std::size_t i = 1; i < boundaries_.size(); ++i)
      if (!(boundaries_[i - 1] < boundaries_[i]))
        throw ValueError(concat("piecewise_constant: the boundaries must increase strictly; boundary ", i - 1, " is ",
                                boundaries_[i - 1], ", boundary ", i, " is ", boundaries_[i]));
  }

  /// values[0] for step <= boundaries[0], values[i] for boundaries[i-1] < step <= boundaries[i],
  /// the last value for step > the last boundary.
  T operator()(long long global_step) const {
    std::size_t i = 0;
    while (i < boundaries_.size() && global_step > boundaries_[i]) ++i;
    return values_[i];
  }

  /// The boundaries, increasing.
  const std::vector<long long>& boundaries() const { return boundaries_; }
  /// The values, one more than the boundaries.
  const std::vector<T>& values() const { return values_; }

 private:
  std::vector<long long> boundaries_;
  std::vector<T> values_;
};

/// tf.train.exponential_decay(learning_rate, global_step, decay_steps, decay_rate, staircase):
/// learning_rate * decay_rate^(global_step / decay_steps), computed in T, the type of
/// learning_rate (pass 0.1f for the float32 arithmetic TF uses for a Python float). ValueError for
/// the arguments ExponentialDecay refuses and for a negative global_step.
template <class T, class S, class R, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
T exponential_decay(T learning_rate, long long global_step, S decay_steps, R decay_rate, bool staircase = false) {
  return ExponentialDecay<T>(learning_rate, decay_steps, decay_rate, staircase)(global_step);
}

/// tf.train.piecewise_constant(global_step, boundaries, values): values[0] while global_step <=
/// boundaries[0], ..., the last value once global_step > the last boundary. ValueError for the
/// arguments PiecewiseConstant refuses.
template <class T>
T piecewise_constant(long long global_step, const std::vector<long long>& boundaries, const std::vector<T>& values) {
  return PiecewiseConstant<T>(boundaries, values)(global_step);
}

/// As above, for braced lists: `piecewise_constant(step, {1000, 2000}, {0.1f, 0.01f, 0.001f})`.
template <class T>
T piecewise_constant(long long global_step, std::initializer_list<long long> boundaries,
                     std::initializer_list<T> values) {
  return PiecewiseConstant<T>(std::vector<long long>(boundaries), std::vector<T>(values))(global_step);
}

}  // namespace cellflow
