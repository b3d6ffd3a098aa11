// The weights API every cell offers (weights(), set_weights(w), a constructor from weights without
// an Rng), checked once for any cell: a cell built from another's weights is that cell bitwise,
// forward and backward; a weight set with one variable of the wrong shape is a ShapeError naming
// that variable, and set_weights then changes nothing (all or nothing).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "support/states.hpp"
#include "support/test_util.hpp"

namespace cellflow_test {

/// One member of a weight set (e.g. &LSTMWeights<T>::bias) and the text an error about it must
/// contain (its TF name, or what the message calls it).
template <class W, class T>
struct WeightField {
  cf::Matrix<T> W::*member;
  std::string named;
};

/// Runs `a` and `b` over the same random sequence, with sequence_length and an initial state,
/// forward and backward, and CHECKs every output, state and gradient bitwise equal.
template <class Cell>
void check_cells_bitwise_equal(Cell& a, Cell& b, cf::Rng& rng) {
  using T = typename Cell::Scalar;
  const Index B = 3, Tn = 4;
  REQUIRE(a.input_depth() == b.input_depth());
  REQUIRE(a.output_size() == b.output_size());
  const auto X = random_tensor<T>(B, Tn, a.input_depth(), rng);
  auto s0 = a.zero_state(B);
  randomize_state(s0, rng);
  cf::RNNOptions opt;
  opt.sequence_length = std::vector<Index>{4, 1, 0};
  auto ra = cf::dynamic_rnn(a, X, s0, opt);
  auto rb = cf::dynamic_rnn(b, X, s0, opt);
  CHECK(bitwise_equal(ra.outputs, rb.outputs));
  CHECK(same_state(ra.final_state, rb.final_state));
  const auto dY = random_tensor<T>(B, Tn, a.output_size(), rng);
  cf::zero_grad(a);
  cf::zero_grad(b);
  const auto ga = cf::dynamic_rnn_backward(a, ra, &dY);
  const auto gb = cf::dynamic_rnn_backward(b, rb, &dY);
  CHECK(bitwise_equal(ga.d_inputs, gb.d_inputs));
  CHECK(same_state(ga.d_initial_state, gb.d_initial_state));
  CHECK(bitwise_equal(variable_grads(a), variable_grads(b)));
}

/// The weights API of `cell` (see the top of this header). `from_weights(w)` builds a cell of the
/// same type and options from `w`; `fields` lists every member of the weight set, used or not
/// (an unused member must be empty, so a non-empty one is refused too).
template <class Cell, class W, class FromWeights>
void check_weights_api(Cell& cell, FromWeights from_weights,
                       const std::vector<WeightField<W, typename Cell::Scalar>>& fields, cf::Rng& rng) {
  using T = typename Cell::Scalar;
  randomize_variables(cell, rng);
  const W w = cell.weights();

  // The same cell, built without an Rng: same variables, same numbers.
  Cell copy = from_weights(w);
  CHECK(copy.cell_name() == cell.cell_name());
  CHECK(bitwise_equal(variable_values(copy), variable_values(cell)));
  check_cells_bitwise_equal(cell, copy, rng);

  // weights() / set_weights(): a round trip into a cell with other values.
  Cell other = from_weights(w);
  randomize_variables(other, rng);
  CHECK_FALSE(bitwise_equal(variable_values(other), variable_values(cell)));
  other.set_weights(w);
  CHECK(bitwise_equal(variable_values(other), variable_values(cell)));
  const W back = other.weights();
  for (const auto& f : fields) {
    INFO("weights()." << f.named);
    CHECK(bitwise_equal(back.*(f.member), w.*(f.member)));
  }

  // One member of the wrong shape: a ShapeError naming it, and nothing changes.
  for (const auto& f : fields) {
    INFO("a wrong shape for " << f.named);
    W bad = w;
    cf::Matrix<T>& m = bad.*(f.member);
    if (m.size() == 0)
      m = cf::Matrix<T>::Ones(1, 2);  // a variable the options do not use
    else if (m.rows() == 1)
      m = cf::Matrix<T>::Ones(2, m.cols());  // a 1-D variable given as a matrix
    else
      m = cf::Matrix<T>::Ones(m.rows(), m.cols() + 1);
    CHECK_THROWS_MATCHES(from_weights(bad), cf::ShapeError, what_contains<cf::ShapeError>(f.named));
    Cell target = from_weights(w);
    randomize_variables(target, rng);
    const auto before = variable_values(target);
    CHECK_THROWS_MATCHES(target.set_weights(bad), cf::ShapeError, what_contains<cf::ShapeError>(f.named));
    CHECK(bitwise_equal(variable_values(target), before));
  }

  // A 1-D variable may be given as a column as well as a row.
  W columns = w;
  for (const auto& f : fields) {
    cf::Matrix<T>& m = columns.*(f.member);
    if (m.rows() == 1) m = m.transpose().eval();
  }
  Cell from_columns = from_weights(columns);
  CHECK(bitwise_equal(variable_values(from_columns), variable_values(cell)));
}

}  // namespace cellflow_test
