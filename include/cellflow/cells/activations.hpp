// The gate activations of the built-in cells, computed the same way for every element.
//
// Eigen evaluates an elementwise expression with SIMD packets where a row of the data is aligned
// and with scalar code for the rest, and for double its packet exp (pexp) and std::exp can differ
// in the last bit. A cell's gate block starts at a different alignment in a whole-sequence tape
// than in a stream's (its row index differs), so with Eigen's logistic a double run streamed step
// by step would not equal the whole-sequence run bitwise. sigmoid() below therefore uses one
// formula per scalar type wherever an element lies in memory:
// * float: Eigen's logistic, whose scalar and packet paths are the same algorithm;
// * double: 1 / (1 + std::exp(-x)) for every element (Eigen's scalar path; double is the
//   precision of gradient checks, not of speed).
// tanh needs nothing: Eigen 3.4's float tanh is one algorithm for scalars and packets, and its
// double tanh is scalar only.
#pragma once

#include <cmath>
#include <type_traits>

#include "cellflow/core/types.hpp"

namespace cellflow::detail {

/// 1 / (1 + exp(-x)), TF's sigmoid, on scalars.
template <class T>
struct ScalarSigmoid {
  T operator()(T x) const { return T(1) / (T(1) + std::exp(-x)); }
};

/// The logistic sigmoid of an Eigen array expression (see the top of this header).
template <class Derived>
auto sigmoid(const Eigen::ArrayBase<Derived>& x) {
  using T = typename Derived::Scalar;
  if constexpr (std::is_same_v<T, float>)
    return x.logistic();
  else
    return x.unaryExpr(ScalarSigmoid<T>{});
}

}  // namespace cellflow::detail
