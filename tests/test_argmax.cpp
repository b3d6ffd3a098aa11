// argmax (metrics/argmax.hpp): the first maximum on ties, the first NaN of a row, any Eigen
// expression, agreement with in_top_k(k = 1) on rows without ties, and the empty cases.
#include <catch2/catch.hpp>

#include <limits>
#include <vector>

#include "support/test_util.hpp"

namespace test_argmax {

using namespace cellflow_test;
using Catch::Matchers::Contains;

TEST_CASE("argmax: each row's largest value, the first one on a tie", "[argmax]") {
  cf::Matrix<float> p(4, 3);
  p << 0.1f, 0.5f, 0.2f,  //
      0.3f, 0.3f, 0.3f,   //
      -1.f, -3.f, -2.f,   //
      0.f, 2.f, 2.f;
  CHECK(cf::argmax(p) == std::vector<Index>{1, 0, 0, 1});
  CHECK(cf::argmax(p.row(3)) == std::vector<Index>{1});  // any expression
  CHECK(cf::argmax(-p) == std::vector<Index>{0, 0, 1, 0});
  p(2, 1) = std::numeric_limits<float>::infinity();
  p(0, 0) = -std::numeric_limits<float>::infinity();
  CHECK(cf::argmax(p) == std::vector<Index>{1, 0, 1, 1});
}

TEST_CASE("argmax: a row with a NaN gives its first NaN, as numpy does", "[argmax]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  cf::Matrix<double> p(3, 4);
  p << 0.1, 9.0, nan, nan,  //
      nan, 1.0, 2.0, 3.0,   //
      1.0, 2.0, 3.0, nan;
  CHECK(cf::argmax(p) == std::vector<Index>{2, 0, 3});
}

TEST_CASE("argmax agrees with in_top_k(k = 1) on random rows", "[argmax][in_top_k]") {
  cf::Rng rng(12);
  const cf::Matrix<float> p = random_matrix<float>(50, 10, rng);
  const std::vector<Index> best = cf::argmax(p);
  CHECK(cf::in_top_k(p, best, 1) == std::vector<bool>(50, true));
  for (Index b = 0; b < 50; ++b) {
    Index j;
    p.row(b).maxCoeff(&j);
    CHECK(best[std::size_t(b)] == j);
  }
}

TEST_CASE("argmax of no rows is empty, of rows without classes, an error", "[argmax][errors]") {
  CHECK(cf::argmax(cf::Matrix<float>(0, 3)).empty());
  CHECK_THROWS_MATCHES(cf::argmax(cf::Matrix<float>(2, 0)), cf::ShapeError,
                       what_contains<cf::ShapeError>("argmax: the scores are [2, 0]: no class to choose"));
}

}  // namespace test_argmax
