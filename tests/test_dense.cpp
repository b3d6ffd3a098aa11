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

TEST_CASE("Dense: y = x @ kernel + bias, backward adds x^T dy and sum(dy), returns dy @ kernel^T", "[dense][head]") {
  cf::Rng rng(91);
  cf::Dense<double> dense(4, 3, rng);
  dense.bias().value = random_matrix<double>(1, 3, rng);
  const Mat x = random_matrix<double>(5, 4, rng);
  const Mat y = dense(x);
  REQUIRE(y.rows() == 5);
  REQUIRE(y.cols() == 3);
  for (Index b = 0; b < 5; ++b)
    for (Index j = 0; j < 3; ++j) {
      double expected = dense.bias().value(0, j);
      for (Index i = 0; i < 4; ++i) expected += x(b, i) * dense.kernel().value(i, j);
      CHECK(std::abs(y(b, j) - expected) <= 1e-15);
    }
  const Mat dy = random_matrix<double>(5, 3, rng);
  dense.zero_grad();
  const Mat dx = dense.backward(x, dy);
  CHECK(max_diff(dx, Mat(dy * dense.kernel().value.transpose())) <= 1e-15);
  CHECK(max_diff(dense.kernel().grad, Mat(x.transpose() * dy)) <= 1e-15);
  CHECK(max_diff(dense.bias().grad, Mat(dy.colwise().sum())) <= 1e-15);
  const Mat once = dense.kernel().grad;
  dense.backward(x, dy);  // accumulates
  CHECK(bitwise_equal(dense.kernel().grad, Mat(2.0 * once)));
  CHECK(dense.input_size() == 4);
  CHECK(dense.output_size() == 3);
  CHECK(dense.name() == "dense");
}

TEST_CASE("Dense from a given kernel and bias, without an Rng", "[dense][head]") {
  cf::Rng rng(92);
  cf::Dense<float> original(6, 2, rng, "head");
  original.bias().value = random_matrix<float>(1, 2, rng);
  // The bias as a row, a column or an Eigen vector; the kernel's shape sets the sizes.
  const cf::Dense<float> from_row(original.kernel().value, original.bias().value, "head");
  const cf::Dense<float> from_column(original.kernel().value, original.bias().value.transpose(), "head");
  const cf::Dense<float> from_vector(original.kernel().value, cf::Vector<float>(original.bias().value.transpose()),
                                     "head");
  const cf::Matrix<float> x = random_matrix<float>(3, 6, rng);
  for (const cf::Dense<float>* d : {&from_row, &from_column, &from_vector}) {
    CHECK(d->input_size() == 6);
    CHECK(d->output_size() == 2);
    CHECK(d->name() == "head");
    CHECK(bitwise_equal(d->kernel().value, original.kernel().value));
    CHECK(bitwise_equal(d->bias().value, original.bias().value));
    CHECK(d->bias().shape == std::vector<Index>{2});
    CHECK(d->kernel().shape == std::vector<Index>{6, 2});
    CHECK(bitwise_equal((*d)(x), original(x)));
  }
  // Gradients start at zero and have their values' shapes.
  CHECK(from_row.kernel().grad.isZero(0));
  CHECK(from_row.bias().grad.cols() == 2);
  cf::Dense<float> named(original.kernel().value, original.bias().value);
  cf::VariableList<float> vars;
  vars.add(named, "model");
  CHECK(vars[0].name == "model/dense/kernel");
  CHECK(vars[1].name == "model/dense/bias");
  // A double head from float weights: converted.
  const cf::Dense<double> widened(original.kernel().value, original.bias().value);
  CHECK(widened.kernel().value(1, 1) == static_cast<double>(original.kernel().value(1, 1)));

  CHECK_THROWS_MATCHES(cf::Dense<float>(original.kernel().value, cf::Matrix<float>::Zero(1, 3)), cf::ShapeError,
                       what_contains<cf::ShapeError>("dense: bias has 3 values, the kernel [6, 2] has 2 outputs"));
  CHECK_THROWS_MATCHES(cf::Dense<float>(original.kernel().value, cf::Matrix<float>::Zero(2, 2)), cf::ShapeError,
                       what_contains<cf::ShapeError>("dense: 'bias' must be a vector, given a 2x2 matrix"));
  CHECK_THROWS_MATCHES(
      cf::Dense<float>(cf::Matrix<float>::Zero(0, 2), cf::Matrix<float>::Zero(1, 2)), cf::ShapeError,
      what_contains<cf::ShapeError>("dense: kernel must be [in, out] with positive sizes, given [0, 2]"));
  CHECK_THROWS_AS(cf::Dense<float>(cf::Matrix<float>::Zero(3, 0), cf::Matrix<float>::Zero(1, 0)), cf::ShapeError);
  CHECK_THROWS_AS(cf::Dense<float>(0, 2, rng), cf::ValueError);
  CHECK_THROWS_AS(cf::Dense<float>(2, -1, rng), cf::ValueError);
}

TEST_CASE("Dense: a variable or gradient of the wrong shape is a ShapeError naming it", "[dense][head][errors]") {
  cf::Rng rng(93);
  cf::Dense<double> dense(4, 3, rng);
  cf::VariableList<double> vars;
  vars.add(dense);
  const Mat x = random_matrix<double>(2, 4, rng), dy = random_matrix<double>(2, 3, rng);
  // The kernel sets the sizes; a bias that disagrees is refused at the next use.
  vars["dense/bias"].value->resize(1, 4);
  CHECK_THROWS_MATCHES(
      dense(x), cf::ShapeError,
      what_contains<cf::ShapeError>("dense: variable 'bias' holds a value of [1, 4], expected [1, 3]"));
  CHECK_THROWS_AS(dense.backward(x, dy), cf::ShapeError);
  vars["dense/bias"].value->setZero(1, 3);
  CHECK_NOTHROW(dense(x));
  // Gradients are checked by backward.
  vars["dense/kernel"].grad->resize(3, 4);
  CHECK_NOTHROW(dense(x));
  CHECK_THROWS_MATCHES(
      dense.backward(x, dy), cf::ShapeError,
      what_contains<cf::ShapeError>("dense: the gradient of variable 'kernel' is [3, 4], expected [4, 3]"));
  dense.zero_grad();  // restores the shapes
  CHECK(vars["dense/kernel"].grad->rows() == 4);
  vars["dense/bias"].grad->resize(3, 1);
  CHECK_THROWS_MATCHES(dense.backward(x, dy), cf::ShapeError,
                       what_contains<cf::ShapeError>("the gradient of variable 'bias'"));
  dense.zero_grad();
  CHECK_NOTHROW(dense.backward(x, dy));
  // A kernel of another shape changes the layer's sizes: the input then no longer fits.
  vars["dense/kernel"].value->setZero(5, 3);
  CHECK_THROWS_MATCHES(dense(x), cf::ShapeError,
                       what_contains<cf::ShapeError>("dense forward: input depth 4, kernel expects 5"));
}

TEST_CASE("Dense rejects wrong input and gradient shapes", "[dense][head][errors]") {
  cf::Rng rng(8);
  cf::Dense<float> dense(150, 10, rng);
  REQUIRE_THROWS_WITH(dense(cf::Matrix<float>::Zero(4, 149)),
                      Contains("dense forward: input depth 149, kernel expects 150"));
  REQUIRE_THROWS_WITH(dense.backward(cf::Matrix<float>::Zero(4, 150), cf::Matrix<float>::Zero(4, 9)),
                      Contains("dy expected [4, 10], given [4, 9]"));
}

}  // namespace test_dense
