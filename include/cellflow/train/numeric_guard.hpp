// Numerical guards for training loops: find a NaN or infinity in a loss or a gradient before it
// reaches the weights, and say where it is (the step, the variable and the entry).
//
//   const auto xent = sparse_softmax_cross_entropy_with_logits(y, logits);
//   check_finite_loss(xent.mean(), step);               // throws NumericError
//   ... backward ...
//   check_finite_gradients(vars, step);                 // throws NumericError naming the variable
//   clip_by_global_norm(vars, 5.0f);                    // optional (optimizers/clip_by_global_norm.hpp)
//   adam.apply_gradients(vars);
//
// A loop that prefers to skip such a step instead calls `first_non_finite_gradient` and simply
// does not apply it (Model::train_step does so under NonFinitePolicy::skip).
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow {

/// Where a non-finite gradient entry is: the variable's name and the entry's position.
struct NonFiniteEntry {
  std::string variable;         ///< the variable's TF name
  std::vector<Index> position;  ///< {row, col} of a 2-D variable, {i} of a 1-D one
  double value = 0;             ///< the NaN or infinity found
};

/// The first non-finite gradient entry in list order, or nothing when all are finite.
template <class T>
std::optional<NonFiniteEntry> first_non_finite_gradient(const VariableList<T>& vars) {
  for (const auto& v : vars) {
    const T* g = v.grad->data();
    for (Index i = 0; i < v.grad->size(); ++i)
      if (!std::isfinite(g[i])) {
        const Index cols = v.grad->cols();
        NonFiniteEntry e{v.name, v.shape.size() == 1 ? std::vector<Index>{i} : std::vector<Index>{i / cols, i % cols},
                         double(g[i])};
        return e;
      }
  }
  return std::nullopt;
}

namespace detail {
/// "nan" for every NaN (whatever its sign bit), "inf" or "-inf".
inline const char* non_finite_name(double v) { return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"); }
}  // namespace detail

/// Throws NumericError if `loss` is NaN or infinite: "step 12: the loss is nan".
inline void check_finite_loss(double loss, long long step) {
  if (!std::isfinite(loss))
    throw NumericError(detail::concat("step ", step, ": the loss is ", detail::non_finite_name(loss),
                                      " (diverged: lower the learning rate, or clip the gradients)"));
}

/// Throws NumericError naming the step, the variable and the entry of the first non-finite
/// gradient.
template <class T>
void check_finite_gradients(const VariableList<T>& vars, long long step) {
  if (const auto e = first_non_finite_gradient(vars))
    throw NumericError(detail::concat("step ", step, ": the gradient of '", e->variable, "' is ",
                                      detail::non_finite_name(e->value), " at ", shape_string(e->position),
                                      " (diverged: lower the learning rate, or clip the gradients)"));
}

}  // namespace cellflow
