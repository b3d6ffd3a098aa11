// Small helpers shared by cellflow's tests: random data, fixture tensors as matrices, and
// comparisons (bitwise, and numpy.allclose-style with the worst element reported).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cellflow/cellflow.hpp"
#include "support/fixture.hpp"

namespace cellflow_test {

namespace cf = cellflow;
using cf::Index;

inline std::string fixture_path(const std::string& file) { return std::string(CELLFLOW_FIXTURE_DIR) + "/" + file; }

inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}
inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// A rows x cols matrix of the given values, row-major (REQUIREs rows * cols of them).
template <class T>
cf::Matrix<T> mat(Index rows, Index cols, const std::vector<double>& values) {
  REQUIRE(static_cast<std::size_t>(rows * cols) == values.size());
  cf::Matrix<T> m(rows, cols);
  for (Index k = 0; k < m.size(); ++k) m.data()[k] = static_cast<T>(values[static_cast<std::size_t>(k)]);
  return m;
}

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

/// Step t of a [batch, time, depth] tensor: the [batch, depth] matrix a single step reads.
template <class T>
cf::Matrix<T> step_input(const cf::Tensor3<T>& x, Index t) {
  cf::Matrix<T> m(x.dimension(0), x.dimension(2));
  for (Index b = 0; b < m.rows(); ++b)
    for (Index d = 0; d < m.cols(); ++d) m(b, d) = x(b, t, d);
  return m;
}

/// [d0, d1, d2] -> [d1, d0, d2]: batch-major <-> time-major, done by hand.
template <class T>
cf::Tensor3<T> swap01(const cf::Tensor3<T>& x) {
  cf::Tensor3<T> y(x.dimension(1), x.dimension(0), x.dimension(2));
  for (Index a = 0; a < x.dimension(0); ++a)
    for (Index b = 0; b < x.dimension(1); ++b)
      for (Index d = 0; d < x.dimension(2); ++d) y(b, a, d) = x(a, b, d);
  return y;
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

/// Layer l of a [layers, batch, n] fixture tensor (PyTorch's h_n layout) as a batch x n matrix.
template <class T>
cf::Matrix<T> layer_of(const FixtureTensor& t, Index l) {
  REQUIRE(t.shape.size() == 3);
  const Index B = t.shape[1], n = t.shape[2];
  cf::Matrix<T> m(B, n);
  for (Index k = 0; k < m.size(); ++k) m.data()[k] = static_cast<T>(t.values[static_cast<std::size_t>(l * B * n + k)]);
  return m;
}

/// The cases of tests/fixtures/framework_reference.txt (real PyTorch modules and Keras layouts,
/// written by generate_framework_fixtures.py), loaded once.
inline const std::map<std::string, FixtureCase>& framework_cases() {
  static const auto cases = load_fixture_file(fixture_path("framework_reference.txt"));
  return cases;
}

/// Tolerances against the float64 framework fixtures. double: the values are printed with %.17g,
/// so only summation order differs (a few dozen flops per value): 1e-12 relative, floored at
/// 1e-12. float: weights and inputs rounded to 24 bits and float arithmetic over <= 5 steps and 2
/// layers: rtol 2e-4, atol 2e-5.
template <class T>
struct FrameworkTol;
template <>
struct FrameworkTol<double> {
  static constexpr double rtol = 1e-12, atol = 1e-12;
};
template <>
struct FrameworkTol<float> {
  static constexpr double rtol = 2e-4, atol = 2e-5;
};

template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
  double d = 0;
  for (Index k = 0; k < a.size(); ++k) d = std::max(d, std::abs(double(a.data()[k]) - double(b.data()[k])));
  return d;
}

/// A float result `f` against the double run `d` of the same (float-rounded) weights: the worst
/// difference within `rel` of the largest magnitude of `d` (float's epsilon is 1.2e-7; a wrong
/// gate, sign or operand gives differences of the order of the values). For the float cells'
/// one-pass gate arithmetic, checked against the double Eigen expressions.
template <class F, class D>
void check_float_matches_double(const F& f, const D& d, const std::string& what, double rel = 1e-5) {
  INFO(what);
  REQUIRE(f.size() == d.size());
  double scale = 0, worst = 0;
  for (Index k = 0; k < d.size(); ++k) scale = std::max(scale, std::abs(d.data()[k]));
  for (Index k = 0; k < d.size(); ++k)
    worst = std::max(worst, std::abs(static_cast<double>(f.data()[k]) - d.data()[k]));
  INFO("worst difference " << worst << " of a largest magnitude " << scale);
  REQUIRE(scale > 0);
  CHECK(worst <= rel * scale);
}

/// The largest |a - b|, or infinity when the shapes differ.
template <class T>
double max_diff(const cf::Matrix<T>& a, const cf::Matrix<T>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return std::numeric_limits<double>::infinity();
  return max_abs_diff(a, b);
}
template <class T>
double max_diff(const cf::Tensor3<T>& a, const cf::Tensor3<T>& b) {
  if (a.dimensions() != b.dimensions()) return std::numeric_limits<double>::infinity();
  return max_abs_diff(a, b);
}

/// The largest |element|.
template <class A>
double max_abs(const A& a) {
  double m = 0;
  for (Index k = 0; k < a.size(); ++k) m = std::max(m, std::abs(double(a.data()[k])));
  return m;
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

/// CHECKs |actual - expected| <= atol + rtol |expected| elementwise (sizes must match), reporting
/// the worst element.
template <class A>
void check_close(const std::string& what, const A& actual, const std::vector<double>& expected, double rtol,
                 double atol) {
  INFO(what);
  REQUIRE(static_cast<std::size_t>(actual.size()) == expected.size());
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t k = 0; k < expected.size(); ++k) {
    const double d = std::abs(double(actual.data()[k]) - expected[k]) / (atol + rtol * std::abs(expected[k]));
    if (!(d <= worst)) {
      worst = d;
      at = k;
    }
  }
  INFO("worst element #" << at << ": got " << double(actual.data()[at]) << ", expected " << expected[at]
                         << " (|diff| / allowed = " << worst << ")");
  CHECK(worst <= 1.0);
}

/// The message of the `E` that f() throws; FAILs when it throws nothing or another type.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("threw another exception type: " << e.what());
  }
  FAIL("did not throw");
  return {};
}

/// An exception matcher: `E` whose what() contains `text`, for CHECK_THROWS_MATCHES(expr, E, ...).
template <class E>
Catch::Matchers::Generic::PredicateMatcher<E> what_contains(const std::string& text) {
  return Catch::Matchers::Predicate<E>(
      [text](const E& e) { return std::string(e.what()).find(text) != std::string::npos; },
      "what() contains \"" + text + "\"");
}

/// The values of a matrix, row-major, as doubles (an expectation for check_close).
template <class T>
std::vector<double> values_of(const cf::Matrix<T>& m) {
  return std::vector<double>(m.data(), m.data() + m.size());
}

/// Same shape and the same bits in every element (so NaN equals nothing and -0 is not +0).
template <class T>
bool bitwise_equal(const cf::Matrix<T>& a, const cf::Matrix<T>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  return a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0;
}
template <class T>
bool bitwise_equal(const cf::Tensor3<T>& a, const cf::Tensor3<T>& b) {
  if (a.dimensions() != b.dimensions()) return false;
  return a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0;
}
template <class T>
bool bitwise_equal(const std::vector<cf::Matrix<T>>& a, const std::vector<cf::Matrix<T>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k)
    if (!bitwise_equal(a[k], b[k])) return false;
  return true;
}

}  // namespace cellflow_test
