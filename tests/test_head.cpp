// The training head: Adam (TF1's epsilon-hat update), gradient descent, cross-entropy and
// in_top_k edge cases that TF's published tests do not cover.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "support/test_util.hpp"

using namespace cellflow_test;

TEMPLATE_TEST_CASE("Adam follows TF1's update formula over several steps", "[head][adam]", float, double) {
  using T = TestType;
  cf::Rng rng(11);
  cf::Parameter<T> w(3, 4), b(4);
  w.value = random_matrix<T>(3, 4, rng);
  b.value = random_matrix<T>(1, 4, rng);
  cf::VariableList<T> vars;
  vars.add_one("w", w).add_one("b", b);
  const T lr = T(0.01), b1 = T(0.8), b2 = T(0.95), eps = T(0.1);  // a large epsilon shows its form
  cf::AdamOptimizer<T> adam(lr, b1, b2, eps);

  // Independent reference in long double, TF's equations written out.
  std::vector<std::vector<long double>> var(2), m(2), v(2);
  for (int k = 0; k < 2; ++k)
    for (cf::Index i = 0; i < vars[k].size(); ++i) {
      var[k].push_back(vars[k].value->data()[i]);
      m[k].push_back(0);
      v[k].push_back(0);
    }
  long double p1 = b1, p2 = b2;
  for (int step = 1; step <= 5; ++step) {
    for (int k = 0; k < 2; ++k)
      *vars[static_cast<std::size_t>(k)].grad =
          random_matrix<T>(vars[k].value->rows(), vars[k].value->cols(), rng, T(-2), T(2));
    adam.apply_gradients(vars);
    const long double alpha = (long double)lr * std::sqrt(1.0L - p2) / (1.0L - p1);
    for (int k = 0; k < 2; ++k)
      for (std::size_t i = 0; i < var[k].size(); ++i) {
        const long double g = vars[static_cast<std::size_t>(k)].grad->data()[i];
        m[k][i] += (g - m[k][i]) * (1.0L - b1);
        v[k][i] += (g * g - v[k][i]) * (1.0L - b2);
        var[k][i] -= m[k][i] * alpha / (std::sqrt(v[k][i]) + (long double)eps);
      }
    p1 *= b1;
    p2 *= b2;
    const double tol = sizeof(T) == 4 ? 2e-6 : 1e-13;
    for (int k = 0; k < 2; ++k)
      for (std::size_t i = 0; i < var[k].size(); ++i)
        REQUIRE(std::abs(double(vars[static_cast<std::size_t>(k)].value->data()[i]) - double(var[k][i])) <= tol);
    REQUIRE(adam.step() == step);
    REQUIRE(double(adam.beta1_power()) == Approx(double(p1)).epsilon(1e-6));
    REQUIRE(double(adam.beta2_power()) == Approx(double(p2)).epsilon(1e-6));
  }
}

TEST_CASE("Adam's epsilon is TF's epsilon hat, not Kingma and Ba's bias-corrected form", "[head][adam]") {
  cf::Parameter<double> w(1);
  w.value(0, 0) = 1.0;
  w.grad(0, 0) = 0.5;
  cf::VariableList<double> vars;
  vars.add_one("w", w);
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1.0;
  cf::AdamOptimizer<double> adam(lr, b1, b2, eps);
  adam.apply_gradients(vars);
  // Step 1: m = 0.05, v = 0.00025; TF: 1 - lr*sqrt(1-b2)/(1-b1) * m/(sqrt(v)+eps).
  const double m = 0.05, v = 0.00025;
  const double tf = 1.0 - lr * std::sqrt(1 - b2) / (1 - b1) * m / (std::sqrt(v) + eps);
  const double kingma = 1.0 - lr * (m / (1 - b1)) / (std::sqrt(v / (1 - b2)) + eps);
  REQUIRE(w.value(0, 0) == Approx(tf).epsilon(1e-14));
  REQUIRE(std::abs(tf - kingma) > 1e-3);  // the two forms are far apart with a large epsilon
}

TEST_CASE("Adam in float keeps TF's float32 running beta powers", "[head][adam]") {
  cf::Parameter<float> w(2);
  cf::VariableList<float> vars;
  vars.add_one("w", w);
  cf::AdamOptimizer<float> adam;
  float p1 = 0.9f, p2 = 0.999f;
  for (int t = 0; t < 50; ++t) {
    w.grad.setConstant(0.1f);
    adam.apply_gradients(vars);
    p1 *= 0.9f;
    p2 *= 0.999f;
  }
  REQUIRE(adam.beta1_power() == p1);  // bitwise: repeated float32 multiplication
  REQUIRE(adam.beta2_power() == p2);
}

TEST_CASE("GradientDescentOptimizer subtracts learning_rate * grad", "[head]") {
  cf::Rng rng(12);
  cf::Dense<double> d(3, 2, rng);
  cf::VariableList<double> vars;
  vars.add(d);
  const cf::Matrix<double> k0 = d.kernel().value;
  d.kernel().grad = random_matrix<double>(3, 2, rng);
  d.bias().grad.setConstant(2.0);
  cf::GradientDescentOptimizer<double> sgd(0.5);
  sgd.apply_gradients(vars);
  REQUIRE(max_abs_diff(d.kernel().value, cf::Matrix<double>(k0 - 0.5 * d.kernel().grad)) == 0.0);
  REQUIRE(d.bias().value(0, 1) == -1.0);
  vars.zero_grad();
  REQUIRE(d.kernel().grad.isZero(0));
}

TEMPLATE_TEST_CASE("cross-entropy: stable for huge logits, exact softmax - onehot gradient", "[head][xent]", float,
                   double) {
  using T = TestType;
  cf::Matrix<T> logits(3, 3);
  logits << T(1000), T(0), T(-1000), T(-1000), T(0), T(1000), T(0), T(0), T(0);
  auto x = cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{0, 0, 2}, logits);
  REQUIRE(double(x.loss(0)) == Approx(0.0).margin(1e-6));
  REQUIRE(double(x.loss(1)) == Approx(2000.0).epsilon(1e-6));
  REQUIRE(double(x.loss(2)) == Approx(std::log(3.0)).epsilon(1e-6));
  REQUIRE(double(x.backprop(1, 2)) == Approx(1.0).epsilon(1e-6));
  REQUIRE(double(x.backprop(1, 0)) == Approx(-1.0).epsilon(1e-6));
  REQUIRE(double(x.backprop(2, 2)) == Approx(1.0 / 3 - 1).epsilon(1e-6));
  for (cf::Index b = 0; b < 3; ++b) REQUIRE(double(x.backprop.row(b).sum()) == Approx(0.0).margin(1e-6));
  const cf::Matrix<T> g = x.mean_gradient();
  REQUIRE(double(g(2, 2)) == Approx((1.0 / 3 - 1) / 3).epsilon(1e-6));
  REQUIRE(double(x.mean()) == Approx((2000.0 + std::log(3.0)) / 3).epsilon(1e-6));
}

TEST_CASE("cross-entropy of a +Inf logit is NaN, as in TF", "[head][xent]") {
  cf::Matrix<double> logits(1, 3);
  logits << std::numeric_limits<double>::infinity(), 0, 1;
  auto x = cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{1}, logits);
  REQUIRE(std::isnan(x.loss(0)));
}

TEST_CASE("in_top_k edge cases: k <= 0, k >= classes, negative targets, -Inf", "[head][in_top_k]") {
  cf::Matrix<float> p(2, 3);
  p << 0.1f, 0.5f, 0.2f, 0.3f, 0.3f, 0.3f;
  const std::vector<int> t{0, 2};
  REQUIRE(cf::in_top_k(p, t, 0) == std::vector<bool>{false, false});
  REQUIRE(cf::in_top_k(p, t, -1) == std::vector<bool>{false, false});
  REQUIRE(cf::in_top_k(p, t, 3) == std::vector<bool>{true, true});
  REQUIRE(cf::in_top_k(p, t, 1) == std::vector<bool>{false, true});  // row 1: a three-way tie counts as in
  REQUIRE(cf::in_top_k(p, std::vector<int>{-1, 3}, 3) == std::vector<bool>{false, false});
  p(0, 2) = -std::numeric_limits<float>::infinity();
  REQUIRE(cf::in_top_k(p, t, 3) == std::vector<bool>{false, true});
  REQUIRE(cf::mean_of(cf::in_top_k(p, t, 3)) == 0.5);
  REQUIRE(cf::mean_of({}) == 0.0);
}
