// tf.clip_by_global_norm over the gradients of a VariableList, in place:
//
//   global_norm = sqrt(sum over every gradient entry g of g^2)
//   g          *= clip_norm * min(1 / global_norm, 1 / clip_norm)
//
// so gradients keep their size (up to an ulp, as in TF) while global_norm <= clip_norm. The sum
// of squares is accumulated in double (TF sums in the gradients' type). As in TF, the norm is the
// one of all the gradients together (not per variable), and a non-finite global norm (an Inf or
// NaN anywhere) makes every gradient entry NaN: the next update then fails loudly instead of quietly applying a
// partly clipped step. Check first with `check_finite_gradients` (train/numeric_guard.hpp) to get
// an error that names the variable instead.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "cellflow/core/error.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow {

/// The global L2 norm of every gradient in the list, accumulated in double.
template <class T>
double global_norm(const VariableList<T>& vars) {
  double sum = 0;
  for (const auto& v : vars) {
    const T* g = v.grad->data();
    for (Index i = 0; i < v.grad->size(); ++i) sum += double(g[i]) * double(g[i]);
  }
  return std::sqrt(sum);
}

/// Scales every gradient by clip_norm * min(1 / global_norm, 1 / clip_norm); returns the global norm
/// before clipping (TF's second return value). clip_norm, of any arithmetic type, is converted to
/// the gradients' type T (`clip_by_global_norm(vars, 5.0)` on a float model is 5.0f) and must be
/// positive and finite there.
template <class T, class N>
double clip_by_global_norm(VariableList<T>& vars, N clip_norm_given) {
  static_assert(std::is_arithmetic_v<N> && !std::is_same_v<N, bool>, "clip_by_global_norm: clip_norm must be a number");
  const T clip_norm = static_cast<T>(clip_norm_given);
  if (!(clip_norm_given > N(0)) || !(clip_norm > T(0)) || !std::isfinite(double(clip_norm)))
    throw ValueError(
        detail::concat("clip_by_global_norm: clip_norm must be positive and finite, given ", clip_norm_given));
  const double norm = global_norm(vars);
  if (!std::isfinite(norm)) {
    for (auto& v : vars) v.grad->setConstant(std::numeric_limits<T>::quiet_NaN());
    return norm;
  }
  // TF's scale, in the gradients' type: clip_norm * min(1 / norm, 1 / clip_norm). It is applied
  // even when norm <= clip_norm, where it is 1 or within an ulp of it, as in TF.
  const T n = static_cast<T>(norm);
  const T scale = clip_norm * std::min(T(1) / n, T(1) / clip_norm);
  for (auto& v : vars) *v.grad *= scale;
  return norm;
}

}  // namespace cellflow
