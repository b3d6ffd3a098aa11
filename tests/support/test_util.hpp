// Small helpers shared by cellflow's tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "cellflow/cellflow.hpp"
#include "support/fixture.hpp"

namespace cellflow_test {

namespace cf = cellflow;
using cf::Index;

inline std::string fixture_path(const std::string& file) { return std::string(CELLFLOW_FIXTURE_DIR) + "/" + file; }

template <class T>
cf::Matrix<T> random_matrix(Index rows, Index cols, cf::Rng& rng, T lo = T(-1), T hi = T(1)) {
  cf::Matrix<T> m(rows, cols);
  for (Index k = 0; k < m.size(); ++k) m.data()[k] = rng.uniform<T>(lo, hi);
  return m;
}

template <class T>
cf::Tensor3<T> random_tensor(Index d0, Index d1, Index d2, cf::Rng& rng, T lo = T(-1), T hi = T(1)) {
  cf::Tensor3<T> t(d0, d1, d2);
  for (Index k = 0; k < t.size(); ++k) t.data()[k] = rng.uniform<T>(lo, hi);
  return t;
}

/// A rank-1 fixture tensor becomes a 1 x n matrix (cellflow's storage of TF 1-D variables).
template <class T>
cf::Matrix<T> to_matrix(const FixtureTensor& ft) {
  Index rows = 1, cols = 1;
  if (ft.shape.size() == 1) cols = ft.shape[0];
  if (ft.shape.size() == 2) {
    rows = ft.shape[0];
    cols = ft.shape[1];
  }
  if (ft.shape.size() > 2) throw std::runtime_error("to_matrix: rank > 2");
  cf::Matrix<T> m(rows, cols);
  for (Index k = 0; k < m.size(); ++k) m.data()[k] = static_cast<T>(ft.values[static_cast<std::size_t>(k)]);
  return m;
}

template <class T>
cf::Tensor3<T> to_tensor3(const FixtureTensor& ft) {
  if (ft.shape.size() != 3) throw std::runtime_error("to_tensor3: rank != 3");
  cf::Tensor3<T> t(ft.shape[0], ft.shape[1], ft.shape[2]);
  for (Index k = 0; k < t.size(); ++k) t.data()[k] = static_cast<T>(ft.values[static_cast<std::size_t>(k)]);
  return t;
}

template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
  double d = 0;
  for (Index k = 0; k < a.size(); ++k) d = std::max(d, std::abs(double(a.data()[k]) - double(b.data()[k])));
  return d;
}

/// numpy.allclose: |a - b| <= atol + rtol * |b| elementwise (b is the expectation); sizes must match.
template <class A>
bool allclose(const A& actual, const std::vector<double>& expected, double rtol, double atol) {
  if (static_cast<std::size_t>(actual.size()) != expected.size()) return false;
  for (std::size_t k = 0; k < expected.size(); ++k) {
    const double a = double(actual.data()[k]), e = expected[k];
    if (!(std::abs(a - e) <= atol + rtol * std::abs(e))) return false;
  }
  return true;
}

}  // namespace cellflow_test
