// The optimizers (optimizers/adam.hpp, optimizers/gradient_descent.hpp): Adam against TF1's update
// formula (epsilon-hat, float32 running beta powers), gradient descent, and the variable lists
// Adam refuses. TF's own Adam golden is in test_tf_goldens.cpp, Adam's state in checkpoints in
// test_checkpoint.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "support/test_util.hpp"

namespace test_optimizers {

using namespace cellflow_test;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("Adam follows TF1's update formula over several steps", "[optimizers][adam][head]", float, double) {
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

TEST_CASE("Adam's epsilon is TF's epsilon hat, not Kingma and Ba's bias-corrected form", "[optimizers][adam][head]") {
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

TEST_CASE("Adam in float keeps TF's float32 running beta powers", "[optimizers][adam][head]") {
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

TEST_CASE("GradientDescentOptimizer subtracts learning_rate * grad", "[optimizers][head]") {
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

TEST_CASE("Adam refuses a variable list that does not match its slots", "[optimizers][errors]") {
  cf::Rng rng(10);
  cf::Dense<float> a(3, 2, rng), b(3, 4, rng, "other");
  cf::VariableList<float> va, vb, vab;
  va.add(a);
  vb.add(b);
  vab.add(a).add(b);
  cf::AdamOptimizer<float> adam;
  adam.apply_gradients(va);
  REQUIRE_THROWS_WITH(adam.apply_gradients(vb), Contains("'other/kernel'"));
  REQUIRE_THROWS_WITH(adam.apply_gradients(vab), Contains("slots for 2 variables, given 4"));
  REQUIRE_THROWS_AS(cf::AdamOptimizer<float>(0.001f, 1.0f), cf::ValueError);
}

}  // namespace test_optimizers
