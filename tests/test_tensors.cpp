// core/tensors.hpp: make_tensor, pad_sequences, stack_steps, time_step and example_of against
// element-wise expectations, their round trips, a padded batch through dynamic_rnn equal to each
// sequence run alone, and every shape error.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "support/test_util.hpp"

namespace test_tensors {

using namespace cellflow_test;
using Catch::Matchers::Contains;

TEST_CASE("make_tensor: values[b][t][d], converted to T", "[tensors]") {
  const std::vector<std::vector<std::vector<int>>> v{{{1, 2, 3}, {4, 5, 6}}, {{7, 8, 9}, {10, 11, 12}}};
  const cf::Tensor3<float> x = cf::make_tensor<float>(v);
  REQUIRE(x.dimension(0) == 2);
  REQUIRE(x.dimension(1) == 2);
  REQUIRE(x.dimension(2) == 3);
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < 2; ++t)
      for (Index d = 0; d < 3; ++d) CHECK(x(b, t, d) == float(b * 6 + t * 3 + d + 1));
  const cf::Tensor3<double> empty = cf::make_tensor<double>(std::vector<std::vector<std::vector<double>>>{});
  CHECK(empty.size() == 0);
}

TEST_CASE("make_tensor refuses ragged nested vectors, naming the example and step", "[tensors][errors]") {
  CHECK_THROWS_MATCHES(cf::make_tensor<float>(std::vector<std::vector<std::vector<float>>>{{{1}, {2}}, {{3}}}),
                       cf::ShapeError,
                       what_contains<cf::ShapeError>("make_tensor: example 1 has 1 steps, example 0 has 2"));
  CHECK_THROWS_MATCHES(
      cf::make_tensor<float>(std::vector<std::vector<std::vector<float>>>{{{1, 2}, {3, 4}}, {{5, 6}, {7}}}),
      cf::ShapeError, what_contains<cf::ShapeError>("make_tensor: example 1, step 1 has depth 1, expected 2"));
}

TEMPLATE_TEST_CASE("pad_sequences: zeros past each length, the lengths, any matrix type", "[tensors]", float, double) {
  using T = TestType;
  cf::Rng rng(3);
  const std::vector<cf::Matrix<T>> seqs{random_matrix<T>(3, 2, rng), random_matrix<T>(5, 2, rng),
                                        random_matrix<T>(0, 2, rng), random_matrix<T>(1, 2, rng)};
  const auto batch = cf::pad_sequences(seqs);
  REQUIRE(batch.lengths == std::vector<Index>{3, 5, 0, 1});
  REQUIRE(batch.inputs.dimension(0) == 4);
  REQUIRE(batch.inputs.dimension(1) == 5);
  REQUIRE(batch.inputs.dimension(2) == 2);
  for (Index b = 0; b < 4; ++b)
    for (Index t = 0; t < 5; ++t)
      for (Index d = 0; d < 2; ++d)
        CHECK(batch.inputs(b, t, d) == (t < seqs[std::size_t(b)].rows() ? seqs[std::size_t(b)](t, d) : T(0)));
  // Longer than the longest: more padding. Column-major matrices are read by value, not by layout.
  std::vector<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>> col_major{seqs[0], seqs[1]};
  const auto wide = cf::pad_sequences(col_major, 7);
  REQUIRE(wide.inputs.dimension(1) == 7);
  CHECK(wide.inputs(1, 4, 1) == seqs[1](4, 1));
  CHECK(wide.inputs(1, 6, 0) == T(0));
  CHECK(cf::example_of(wide.inputs, 0).topRows(3) == seqs[0]);
}

TEST_CASE("pad_sequences refuses another depth and a time shorter than a sequence", "[tensors][errors]") {
  const std::vector<cf::Matrix<float>> seqs{cf::Matrix<float>::Zero(2, 3), cf::Matrix<float>::Zero(4, 2)};
  CHECK_THROWS_MATCHES(cf::pad_sequences(seqs), cf::ShapeError,
                       what_contains<cf::ShapeError>("pad_sequences: sequence 1 is [4, 2], expected depth 3"));
  const std::vector<cf::Matrix<float>> ok{cf::Matrix<float>::Zero(2, 3), cf::Matrix<float>::Zero(4, 3)};
  CHECK_THROWS_MATCHES(
      cf::pad_sequences(ok, 3), cf::ShapeError,
      what_contains<cf::ShapeError>("pad_sequences: time 3 is shorter than the longest sequence (4 steps)"));
}

TEST_CASE("a padded batch through dynamic_rnn equals each sequence run alone", "[tensors][dynamic_rnn]") {
  cf::Rng rng(8);
  cf::GRUCell<double> cell(2, 3, rng);
  const std::vector<cf::Matrix<double>> seqs{random_matrix<double>(4, 2, rng), random_matrix<double>(2, 2, rng),
                                             random_matrix<double>(6, 2, rng)};
  const auto batch = cf::pad_sequences(seqs);
  cf::RNNOptions opts;
  opts.sequence_length = batch.lengths;
  const auto all = cf::dynamic_rnn(cell, batch.inputs, opts);
  for (std::size_t b = 0; b < seqs.size(); ++b) {
    const auto alone = cf::dynamic_rnn(cell, cf::pad_sequences(std::vector<cf::Matrix<double>>{seqs[b]}).inputs);
    const cf::Matrix<double> together = cf::example_of(all.outputs, Index(b));
    CHECK(max_abs(cf::Matrix<double>(together.topRows(seqs[b].rows()) - cf::example_of(alone.outputs, 0))) == 0.0);
    CHECK(together.bottomRows(6 - seqs[b].rows()).isZero(0));
    CHECK(max_abs(cf::Matrix<double>(all.final_state.row(Index(b)) - alone.final_state)) == 0.0);
  }
}

TEMPLATE_TEST_CASE("stack_steps and time_step are inverse, example_of reads one example", "[tensors]", float, double) {
  using T = TestType;
  cf::Rng rng(5);
  const cf::Tensor3<T> x = random_tensor<T>(3, 4, 2, rng);
  std::vector<cf::Matrix<T>> steps;
  for (Index t = 0; t < 4; ++t) {
    steps.push_back(cf::time_step(x, t));
    CHECK(steps.back() == step_input(x, t));
  }
  const cf::Tensor3<T> back = cf::stack_steps(steps);
  REQUIRE(back.dimension(0) == 3);
  REQUIRE(back.dimension(1) == 4);
  REQUIRE(back.dimension(2) == 2);
  for (Index k = 0; k < x.size(); ++k) CHECK(back.data()[k] == x.data()[k]);
  const cf::Matrix<T> e = cf::example_of(x, 2);
  REQUIRE(e.rows() == 4);
  REQUIRE(e.cols() == 2);
  for (Index t = 0; t < 4; ++t)
    for (Index d = 0; d < 2; ++d) CHECK(e(t, d) == x(2, t, d));
}

TEST_CASE("stack_steps, time_step and example_of refuse what does not fit", "[tensors][errors]") {
  const std::vector<cf::Matrix<float>> steps{cf::Matrix<float>::Zero(2, 3), cf::Matrix<float>::Zero(2, 4)};
  CHECK_THROWS_MATCHES(cf::stack_steps(steps), cf::ShapeError,
                       what_contains<cf::ShapeError>("stack_steps: step 1 is [2, 4], expected [2, 3]"));
  const cf::Tensor3<float> x(2, 3, 4);
  CHECK_THROWS_MATCHES(cf::time_step(x, 3), cf::ValueError,
                       what_contains<cf::ValueError>("time_step: step 3 is outside [0, 3) of a [2, 3, 4] tensor"));
  CHECK_THROWS_AS(cf::time_step(x, -1), cf::ValueError);
  CHECK_THROWS_MATCHES(cf::example_of(x, 2), cf::ValueError,
                       what_contains<cf::ValueError>("example_of: example 2 is outside [0, 2) of a [2, 3, 4] tensor"));
}

TEST_CASE("a column-major Eigen::Tensor converts as dynamic_rnn's message says", "[tensors]") {
  // The advice in dynamic_rnn's static_assert for Eigen's default layout, checked at run time.
  Eigen::Tensor<float, 3> col_major(2, 3, 4);
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < 3; ++t)
      for (Index d = 0; d < 4; ++d) col_major(b, t, d) = float(100 * b + 10 * t + d);
  const cf::Tensor3<float> x = col_major.swap_layout().shuffle(Eigen::array<int, 3>{2, 1, 0});
  REQUIRE(x.dimension(0) == 2);
  REQUIRE(x.dimension(1) == 3);
  REQUIRE(x.dimension(2) == 4);
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < 3; ++t)
      for (Index d = 0; d < 4; ++d) CHECK(x(b, t, d) == col_major(b, t, d));
  STATIC_REQUIRE(cf::detail::is_col_major_tensor<Eigen::Tensor<float, 3>>::value);
  STATIC_REQUIRE_FALSE(cf::detail::is_col_major_tensor<cf::Tensor3<float>>::value);
  STATIC_REQUIRE_FALSE(cf::detail::is_col_major_tensor<cf::Matrix<float>>::value);
}

}  // namespace test_tensors
