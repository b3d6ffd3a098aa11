// sparse_softmax_cross_entropy_with_logits (losses/sparse_softmax_cross_entropy.hpp): stability
// for huge logits, the exact softmax - onehot gradient, TF's NaN for an infinite logit, and the
// labels it refuses (of any integer type, unsigned ones compared as unsigned). TF's goldens are in
// test_tf_goldens.cpp, the float64 reference in test_reference.cpp, its gradient check in
// test_gradcheck.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "support/test_util.hpp"

namespace test_losses {

using namespace cellflow_test;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("cross-entropy: stable for huge logits, exact softmax - onehot gradient", "[losses][xent][head]",
                   float, double) {
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

TEST_CASE("cross-entropy of a +Inf logit is NaN, as in TF", "[losses][xent][head]") {
  cf::Matrix<double> logits(1, 3);
  logits << std::numeric_limits<double>::infinity(), 0, 1;
  auto x = cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{1}, logits);
  REQUIRE(std::isnan(x.loss(0)));
}

TEST_CASE("sparse softmax cross-entropy rejects bad labels", "[losses][errors]") {
  cf::Matrix<float> logits = cf::Matrix<float>::Zero(3, 10);
  REQUIRE_THROWS_WITH(cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{1, 2}, logits),
                      Contains("2 labels for logits [3, 10]; expected 3"));
  REQUIRE_THROWS_MATCHES(cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{1, 10, 2}, logits),
                         cf::ValueError, Catch::Matchers::Predicate<cf::ValueError>([](const cf::ValueError& e) {
                           return std::string(e.what()).find("labels[1] = 10 is outside the valid range [0, 10)") !=
                                  std::string::npos;
                         }));
  REQUIRE_THROWS_AS(cf::sparse_softmax_cross_entropy_with_logits(std::vector<long>{1, 2, -1}, logits), cf::ValueError);
}

TEMPLATE_TEST_CASE("cross-entropy takes labels of any integer type", "[losses][xent]", std::uint8_t, std::int8_t,
                   std::uint16_t, std::uint32_t, std::int64_t, std::uint64_t) {
  using Label = TestType;
  cf::Rng rng(81);
  const cf::Matrix<double> logits = random_matrix<double>(4, 5, rng, -3.0, 3.0);
  const std::vector<int> reference{4, 0, 2, 1};
  const std::vector<Label> labels(reference.begin(), reference.end());
  const auto expected = cf::sparse_softmax_cross_entropy_with_logits(reference, logits);
  const auto got = cf::sparse_softmax_cross_entropy_with_logits(labels, logits);
  CHECK(bitwise_equal(cf::Matrix<double>(got.loss), cf::Matrix<double>(expected.loss)));
  CHECK(bitwise_equal(got.backprop, expected.backprop));
  CHECK(got.backprop(0, 4) < 0);                 // the label's column gets softmax - 1
  const std::vector<Label> too_big{4, 5, 0, 1};  // 5 classes: label 5 is out of range
  CHECK_THROWS_MATCHES(cf::sparse_softmax_cross_entropy_with_logits(too_big, logits), cf::ValueError,
                       what_contains<cf::ValueError>("labels[1] = 5 is outside the valid range [0, 5)"));
}

TEST_CASE("cross-entropy refuses unsigned labels at or above 2^63 (not turned negative)", "[losses][xent][errors]") {
  const cf::Matrix<float> logits = cf::Matrix<float>::Zero(3, 10);
  const std::uint64_t two63 = std::uint64_t(1) << 63, max = std::numeric_limits<std::uint64_t>::max();
  CHECK_THROWS_MATCHES(
      cf::sparse_softmax_cross_entropy_with_logits(std::vector<std::uint64_t>{1, two63, 2}, logits), cf::ValueError,
      what_contains<cf::ValueError>("labels[1] = 9223372036854775808 is outside the valid range [0, 10)"));
  CHECK_THROWS_MATCHES(
      cf::sparse_softmax_cross_entropy_with_logits(std::vector<std::uint64_t>{1, 2, max}, logits), cf::ValueError,
      what_contains<cf::ValueError>("labels[2] = 18446744073709551615 is outside the valid range [0, 10)"));
  CHECK_THROWS_AS(cf::sparse_softmax_cross_entropy_with_logits(std::vector<std::uint64_t>{two63 + 3, 0, 0}, logits),
                  cf::ValueError);
  CHECK_THROWS_AS(cf::sparse_softmax_cross_entropy_with_logits(std::vector<unsigned long long>{0, 0, max - 1}, logits),
                  cf::ValueError);
  CHECK_THROWS_AS(cf::sparse_softmax_cross_entropy_with_logits(std::vector<std::uint8_t>{0, 255, 0}, logits),
                  cf::ValueError);
  CHECK_THROWS_AS(cf::sparse_softmax_cross_entropy_with_logits(std::vector<std::int8_t>{0, -128, 0}, logits),
                  cf::ValueError);
  CHECK(cf::sparse_softmax_cross_entropy_with_logits(std::vector<std::uint64_t>{9, 0, 3}, logits).loss.size() == 3);
}

TEST_CASE("softmax: rows sum to 1, stable for huge logits, equal to the loss's backprop + onehot, row-invariant",
          "[losses][softmax]") {
  cf::Matrix<double> l(3, 4);
  l << 1, 2, 3, 4,             //
      1000, 1001, 1002, 1003,  // exp would overflow without subtracting the maximum
      -5, -5, -5, -5;
  const cf::Matrix<double> p = cf::softmax(l);
  for (Index b = 0; b < 3; ++b) CHECK(p.row(b).sum() == Approx(1.0).epsilon(1e-15));
  // shift invariance: rows 0 and 1 are the same up to +999
  CHECK(max_diff(cf::Matrix<double>(p.row(0)), cf::Matrix<double>(p.row(1))) < 1e-15);
  CHECK(p(2, 0) == 0.25);
  // numpy: softmax([1, 2, 3, 4])
  CHECK(p(0, 3) == Approx(0.6439142598879722).epsilon(1e-15));
  // the loss's backprop is softmax - onehot
  const auto xent = cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{0, 1, 2}, l);
  CHECK(xent.backprop(0, 1) == Approx(p(0, 1)).epsilon(1e-15));
  CHECK(xent.backprop(0, 0) == Approx(p(0, 0) - 1).epsilon(1e-15));
  // each row as computed alone, wherever it sits (every row offset modulo the SIMD width)
  cf::Rng rng(4);
  const cf::Matrix<float> many = random_matrix<float>(17, 3, rng, -3.0f, 3.0f);
  const cf::Matrix<float> all = cf::softmax(many);
  for (Index b = 0; b < many.rows(); ++b) {
    INFO("row " << b);
    CHECK(bitwise_equal(cf::Matrix<float>(all.row(b)), cf::softmax(cf::Matrix<float>(many.row(b)))));
  }
  CHECK(cf::softmax(cf::Matrix<float>(2, 0)).size() == 0);
}

}  // namespace test_losses
