// One step of a cell, TensorFlow's `output, new_state = cell(x, state)`.
#pragma once

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/rnn/scan.hpp"

namespace cellflow {

/// Result of one step: the output [batch, output_size] and the new state.
template <class T, class State>
struct StepOutput {
  Matrix<T> output;
  State state;
};

namespace detail {

/// A step is a sequence of length one: the same code path as dynamic_rnn, no training caches.
template <class Cell, class T = typename Cell::Scalar>
StepOutput<T, typename Cell::State> run_step(const Cell& cell, const Matrix<T>& x, const typename Cell::State& state) {
  const Index batch = x.rows();
  if (x.cols() != cell.input_depth())
    throw ShapeError(concat(cell.cell_name(), ": input depth ", x.cols(), ", kernel expects ", cell.input_depth()));
  cell.check_state(state, batch, cell.cell_name());
  typename Cell::Tape tape;
  StepOutput<T, typename Cell::State> r;
  cell.forward_sequence(tape, x, 1, batch, 1, state, nullptr, r.output, false);
  r.state = cell.final_state(tape);
  return r;
}

}  // namespace detail
}  // namespace cellflow
