// One time step by hand (rnn/step.hpp, cells/step_output.hpp): TF's `output, state = cell(x,
// state)` for every kind, and cell_forward / cell_backward, the training step and its backward
// pass for loops over time written by hand (their semantics, accumulation and errors). That a
// loop of cell_forward / cell_backward gives dynamic_rnn's numbers is checked for every cell kind
// by test_cell_contract.cpp.
#include <catch2/catch.hpp>

#include <string>
#include <type_traits>
#include <vector>

#include "support/cell_kinds.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_cell_step {

using namespace cellflow_test;
using Mat = cf::Matrix<double>;

TEMPLATE_TEST_CASE("cell(x, state) is dynamic_rnn's first step, and cell_forward's", "[cell_step]", float, double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(71);
    const Index B = 4;
    const auto X = random_tensor<T>(B, 3, kKindsDepth, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    const auto step = cell(step_input(X, 0), s0);
    REQUIRE(step.output.rows() == B);
    REQUIRE(step.output.cols() == cell.output_size());
    const auto r = cf::dynamic_rnn(cell, X, s0);
    bool same_outputs = true;
    for (Index b = 0; b < B; ++b)
      for (Index k = 0; k < cell.output_size(); ++k)
        same_outputs = same_outputs && step.output(b, k) == r.outputs(b, 0, k);
    CHECK(same_outputs);
    // One step of dynamic_rnn: the same state.
    cf::Tensor3<T> first(B, 1, kKindsDepth);
    for (Index b = 0; b < B; ++b)
      for (Index d = 0; d < kKindsDepth; ++d) first(b, 0, d) = X(b, 0, d);
    CHECK(same_state(step.state, cf::dynamic_rnn(cell, first, s0).final_state));
    // cell_forward computes the same step, keeping its tape.
    const auto trained = cf::cell_forward(cell, step_input(X, 0), s0);
    CHECK(bitwise_equal(trained.output, step.output));
    CHECK(same_state(trained.state, step.state));
    CHECK(trained.tape.producer == &cell);
    CHECK(bitwise_equal(trained.tape.input, step_input(X, 0)));
  });
}

TEST_CASE("cell_backward: one step's gradients, accumulated into the cell", "[cell_step]") {
  cf::Rng rng(72);
  cf::GRUCell<double> gru(3, 4, rng);
  randomize_variables(gru, rng);
  const Mat x = random_matrix<double>(2, 3, rng);
  const Mat h0 = random_matrix<double>(2, 4, rng);
  auto step = cf::cell_forward(gru, x, h0);
  const Mat d_out = random_matrix<double>(2, 4, rng);
  const Mat d_state = random_matrix<double>(2, 4, rng);

  // The step is dynamic_rnn over one time step.
  cf::Tensor3<double> X(2, 1, 3);
  for (Index b = 0; b < 2; ++b)
    for (Index d = 0; d < 3; ++d) X(b, 0, d) = x(b, d);
  cf::Tensor3<double> dY(2, 1, 4);
  for (Index b = 0; b < 2; ++b)
    for (Index k = 0; k < 4; ++k) dY(b, 0, k) = d_out(b, k);
  auto r = cf::dynamic_rnn(gru, X, h0);
  gru.zero_grad();
  const auto g_seq = cf::dynamic_rnn_backward(gru, r, &dY, &d_state);
  const auto grads_seq = variable_grads(gru);

  gru.zero_grad();
  const auto g = cf::cell_backward(gru, step, &d_out, &d_state);
  CHECK(g.d_input.rows() == 2);
  CHECK(g.d_input.cols() == 3);
  bool same_d_input = true;
  for (Index b = 0; b < 2; ++b)
    for (Index d = 0; d < 3; ++d) same_d_input = same_d_input && g.d_input(b, d) == g_seq.d_inputs(b, 0, d);
  CHECK(same_d_input);
  CHECK(bitwise_equal(g.d_state, g_seq.d_initial_state));
  CHECK(bitwise_equal(variable_grads(gru), grads_seq));  // one step: the same sums

  // Backward accumulates: a second call adds the same gradients again.
  cf::cell_backward(gru, step, &d_out, &d_state);
  const auto twice = variable_grads(gru);
  for (std::size_t k = 0; k < twice.size(); ++k) CHECK((twice[k].array() == 2.0 * grads_seq[k].array()).all());

  // Without upstream gradients every gradient is zero.
  gru.zero_grad();
  const auto none = cf::cell_backward(gru, step);
  CHECK(none.d_input.isZero(0));
  CHECK(none.d_state.isZero(0));
  for (const auto& m : variable_grads(gru)) CHECK(m.isZero(0));
  // d_output alone, d_state alone: the two paths add up to both together.
  gru.zero_grad();
  const auto only_out = cf::cell_backward(gru, step, &d_out, nullptr);
  const auto only_state = cf::cell_backward(gru, step, nullptr, &d_state);
  CHECK(max_diff(Mat(only_out.d_input + only_state.d_input), g.d_input) <= 1e-14);
  CHECK(max_diff(Mat(only_out.d_state + only_state.d_state), g.d_state) <= 1e-14);
}

TEST_CASE("cell_forward and cell_backward check their arguments", "[cell_step][errors]") {
  using Catch::Matchers::Contains;
  cf::Rng rng(73);
  cf::BasicLSTMCell<float> cell(3, 2, rng), other(3, 2, rng);
  const cf::Matrix<float> x = random_matrix<float>(4, 3, rng);
  CHECK_THROWS_MATCHES(cf::cell_forward(cell, cf::Matrix<float>::Zero(4, 5), cell.zero_state(4)), cf::ShapeError,
                       what_contains<cf::ShapeError>("cell_forward: input depth 5, kernel expects 3"));
  CHECK_THROWS_AS(cf::cell_forward(cell, x, cell.zero_state(3)), cf::ShapeError);
  auto step = cf::cell_forward(cell, x, cell.zero_state(4));
  CHECK_THROWS_MATCHES(
      cf::cell_backward(other, step), cf::Error,
      what_contains<cf::Error>("cell_backward: the step was not computed by this basic_lstm_cell(num_units=2) object"));
  const cf::Matrix<float> wrong = cf::Matrix<float>::Zero(4, 3);
  CHECK_THROWS_MATCHES(cf::cell_backward(cell, step, &wrong), cf::ShapeError,
                       what_contains<cf::ShapeError>("cell_backward: d_output is [4, 3], the output is [4, 2]"));
  const auto d_state = cell.zero_state(5);
  CHECK_THROWS_WITH(cf::cell_backward(cell, step, nullptr, &d_state), Contains("cell_backward: d_state"));
  CHECK_NOTHROW(cf::cell_backward(cell, step));
}

TEST_CASE("a single step rejects a wrong input depth or state", "[cell_step][errors]") {
  cf::Rng rng(5);
  cf::LSTMCell<float> cell(28, 4, rng);
  REQUIRE_THROWS_WITH(cell(cf::Matrix<float>::Zero(2, 27), cell.zero_state(2)),
                      Catch::Matchers::Contains("lstm_cell(num_units=4): input depth 27, kernel expects 28"));
  REQUIRE_THROWS_AS(cell(cf::Matrix<float>::Zero(2, 28), cell.zero_state(3)), cf::ShapeError);
}

}  // namespace test_cell_step
