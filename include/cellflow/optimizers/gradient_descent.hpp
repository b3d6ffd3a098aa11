// GradientDescentOptimizer: tf.train.GradientDescentOptimizer, var -= learning_rate * grad.
#pragma once

#include "cellflow/core/error.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow {

template <class T>
class GradientDescentOptimizer {
 public:
  explicit GradientDescentOptimizer(T learning_rate) : lr_(learning_rate) { detail::check_scalar<T>(); }

  void apply_gradients(VariableList<T>& vars) {
    for (auto& v : vars) v.value->noalias() -= *v.grad * lr_;
  }

  T learning_rate() const { return lr_; }
  void set_learning_rate(T lr) { lr_ = lr; }

 private:
  T lr_;
};

}  // namespace cellflow
