// in_top_k (metrics/in_top_k.hpp) and mean_of: k <= 0, k >= classes, ties, non-finite rows,
// targets out of range of any integer type (unsigned ones compared as unsigned), and the target
// count. TF's goldens are in test_tf_goldens.cpp.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include "support/test_util.hpp"

namespace test_in_top_k {

using namespace cellflow_test;
using Catch::Matchers::Contains;

TEST_CASE("in_top_k edge cases: k <= 0, k >= classes, negative targets, -Inf", "[in_top_k][head]") {
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

TEST_CASE("in_top_k rejects a target count that differs from the batch", "[in_top_k][errors]") {
  cf::Matrix<float> p = cf::Matrix<float>::Zero(3, 4);
  REQUIRE_THROWS_WITH(cf::in_top_k(p, std::vector<int>{0}, 1),
                      Contains("1 targets for predictions [3, 4]; expected 3"));
}

TEMPLATE_TEST_CASE("in_top_k takes targets of any integer type", "[in_top_k]", std::uint8_t, std::int8_t, std::uint16_t,
                   std::int32_t, std::uint64_t) {
  using Label = TestType;
  cf::Matrix<float> p(3, 4);
  p << 0.1f, 0.5f, 0.2f, 0.3f,  //
      0.4f, 0.3f, 0.2f, 0.1f,   //
      0.2f, 0.2f, 0.6f, 0.0f;
  const std::vector<Label> t{1, 1, 2};
  CHECK(cf::in_top_k(p, t, 1) == std::vector<bool>{true, false, true});
  CHECK(cf::in_top_k(p, t, 2) == std::vector<bool>{true, true, true});
  const std::vector<Label> out_of_range{4, 3, 100};
  CHECK(cf::in_top_k(p, out_of_range, 4) == std::vector<bool>{false, true, false});
}

TEST_CASE("in_top_k: unsigned targets at or above 2^63 are out of range, not negative", "[in_top_k]") {
  cf::Matrix<double> p = cf::Matrix<double>::Zero(4, 3);  // all tied: any valid target is in the top 1
  const std::uint64_t two63 = std::uint64_t(1) << 63, max = std::numeric_limits<std::uint64_t>::max();
  CHECK(cf::in_top_k(p, std::vector<std::uint64_t>{two63, max, 2, two63 + 1}, 1) ==
        std::vector<bool>{false, false, true, false});
  CHECK(cf::in_top_k(p, std::vector<std::uint64_t>{max, 0, max - 2, 1}, 3) ==
        std::vector<bool>{false, true, false, true});
  CHECK(cf::in_top_k(p, std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 0, -1, 2}, 3) ==
        std::vector<bool>{false, true, false, true});
}

}  // namespace test_in_top_k
