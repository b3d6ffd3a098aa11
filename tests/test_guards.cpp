// Numerical guards: clip_by_global_norm against TensorFlow's own test values and its NaN rule,
// and the errors a diverged loss or gradient produces, with a constructed blow-up.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "support/test_util.hpp"

namespace test_guards {

using namespace cellflow_test;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("clip_by_global_norm matches TensorFlow's testClipByGlobalNorm", "[guards]", float, double) {
  using T = TestType;
  // TF: t0 = [[-2, 0, 0], [4, 0, 0]], t1 = [1, -2], clip_norm 4: global norm sqrt(25) = 5,
  // answers t0 * 4/5 = [[-1.6, 0, 0], [3.2, 0, 0]], t1 * 4/5 = [0.8, -1.6].
  cf::Parameter<T> a(2, 3), b(2);
  a.grad << T(-2), T(0), T(0), T(4), T(0), T(0);
  b.grad << T(1), T(-2);
  cf::VariableList<T> vars;
  vars.add_one("t0", a).add_one("t1", b);
  const double norm = cf::clip_by_global_norm(vars, T(4));
  CHECK(norm == Approx(5.0).epsilon(1e-12));
  const T tol = std::is_same<T, float>::value ? T(1e-6) : T(1e-14);
  CHECK(std::abs(a.grad(0, 0) - T(-1.6)) <= tol);
  CHECK(std::abs(a.grad(1, 0) - T(3.2)) <= tol);
  CHECK(a.grad(0, 1) == T(0));
  CHECK(std::abs(b.grad(0, 0) - T(0.8)) <= tol);
  CHECK(std::abs(b.grad(0, 1) - T(-1.6)) <= tol);

  SECTION("below the clip norm the gradients keep their size") {
    const double n2 = cf::clip_by_global_norm(vars, T(10));
    CHECK(n2 == Approx(4.0).epsilon(1e-6));
    CHECK(std::abs(a.grad(1, 0) - T(3.2)) <= tol);
  }
  SECTION("a non-finite global norm makes every gradient NaN, as in TF") {
    b.grad(0, 1) = std::numeric_limits<T>::infinity();
    const double n3 = cf::clip_by_global_norm(vars, T(4));
    CHECK(std::isinf(n3));
    CHECK(a.grad.array().isNaN().all());
    CHECK(b.grad.array().isNaN().all());
  }
  SECTION("clip_norm must be positive and finite") {
    CHECK_THROWS_AS(cf::clip_by_global_norm(vars, T(0)), cf::ValueError);
    CHECK_THROWS_AS(cf::clip_by_global_norm(vars, T(-1)), cf::ValueError);
    CHECK_THROWS_WITH(cf::clip_by_global_norm(vars, std::numeric_limits<T>::infinity()),
                      Contains("clip_norm must be positive and finite"));
  }
}

TEST_CASE("clip_by_global_norm takes clip_norm of any arithmetic type, converted to T", "[guards]") {
  cf::Rng rng(9);
  auto clipped = [&](auto clip_norm) {
    cf::Parameter<float> p(3, 4);
    p.grad = random_matrix<float>(3, 4, rng, -5.f, 5.f);
    cf::VariableList<float> vars;
    vars.add_one("p", p);
    cf::clip_by_global_norm(vars, clip_norm);
    return cf::Matrix<float>(p.grad);
  };
  const cf::Rng start = rng;
  const cf::Matrix<float> with_float = clipped(5.0f);
  rng = start;
  CHECK(bitwise_equal(clipped(5.0), with_float));  // a double literal on a float model
  rng = start;
  CHECK(bitwise_equal(clipped(5), with_float));
  rng = start;
  CHECK(bitwise_equal(clipped(5L), with_float));
  // A value that is finite as given but not in the gradients' type is refused too.
  CHECK_THROWS_MATCHES(clipped(1e300), cf::ValueError,
                       what_contains<cf::ValueError>("clip_norm must be positive and finite, given 1e+300"));
  CHECK_THROWS_AS(clipped(-2), cf::ValueError);
  CHECK_THROWS_AS(clipped(std::numeric_limits<double>::quiet_NaN()), cf::ValueError);
}

TEST_CASE("a blown-up model is caught at the loss and at the named gradient", "[guards]") {
  cf::Rng rng(4);
  cf::BasicLSTMCell<float> cell(3, 5, rng);
  cf::Dense<float> dense(5, 4, rng);
  cf::VariableList<float> vars;
  vars.add(cell, "rnn").add(dense);
  const auto x = random_tensor<float>(2, 6, 3, rng);
  const std::vector<int> y = {1, 3};

  auto step = [&](long long k) {
    vars.zero_grad();
    auto r = cf::dynamic_rnn(cell, x);
    const cf::Matrix<float> logits = dense(r.final_state.h);
    const auto xent = cf::sparse_softmax_cross_entropy_with_logits(y, logits);
    cf::check_finite_loss(xent.mean(), k);
    cf::LSTMStateTuple<float> d_state{cf::Matrix<float>::Zero(2, 5),
                                      dense.backward(r.final_state.h, xent.mean_gradient())};
    cf::dynamic_rnn_backward(cell, r, nullptr, &d_state);
    cf::check_finite_gradients(vars, k);
  };
  CHECK_NOTHROW(step(1));

  SECTION("an infinite head weight: the loss is not finite") {
    vars.at("dense/kernel").value->setConstant(std::numeric_limits<float>::infinity());
    CHECK_THROWS_AS(step(7), cf::NumericError);
    CHECK_THROWS_WITH(step(7), Contains("step 7: the loss is"));
  }
  SECTION("a NaN in a recurrent weight: the loss, then the gradients, are caught") {
    (*vars.at("rnn/basic_lstm_cell/kernel").value)(4, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(step(3), Contains("step 3: the loss is nan"));
  }
  SECTION("an infinite gradient entry is named with its variable and position") {
    CHECK_NOTHROW(step(2));
    (*vars.at("rnn/basic_lstm_cell/bias").grad)(0, 6) = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(cf::check_finite_gradients(vars, 2),
                      Contains("step 2: the gradient of 'rnn/basic_lstm_cell/bias' is -inf at [6]"));
    const auto e = cf::first_non_finite_gradient(vars);
    REQUIRE(e);
    CHECK(e->variable == "rnn/basic_lstm_cell/bias");
    CHECK(e->position == std::vector<Index>{6});
    (*vars.at("rnn/basic_lstm_cell/bias").grad)(0, 6) = 0;
    (*vars.at("dense/kernel").grad)(3, 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(cf::check_finite_gradients(vars, 9), Contains("'dense/kernel' is nan at [3, 1]"));
  }
}

}  // namespace test_guards
