// TensorFlow's `output, new_state = cell(x, state)` for a step cell: one step, no training
// caches. It runs the cell's step functions exactly as the scan runs a sequence of length one,
// so its result equals dynamic_rnn's first step bitwise.
#pragma once

#include <string>

#include "cellflow/core/error.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

/// Result of one step: the output [batch, output_size] and the new state.
template <class T, class State>
struct StepOutput {
  Matrix<T> output;  ///< [batch, output_size]
  State state;       ///< the state after the step
};

namespace detail {

/// Throws ShapeError unless x is [batch, input_depth] and state is a state for that batch.
template <class Cell, class T>
void check_step_input(const Cell& cell, const Matrix<T>& x, const typename Cell::State& state, const std::string& op) {
  if (x.cols() != cell.input_depth())
    throw ShapeError(concat(op, ": input depth ", x.cols(), ", kernel expects ", cell.input_depth(), " (x is [",
                            x.rows(), ", ", x.cols(), "])"));
  cell.check_state(state, x.rows(), op);
}

/// One step of a step cell, inference only (see the top of this header).
template <class Cell, class T = typename Cell::Scalar>
StepOutput<T, typename Cell::State> call_step_cell(const Cell& cell, const Matrix<T>& x,
                                                   const typename Cell::State& state) {
  check_step_input(cell, x, state, cell.cell_name());
  SequenceArgs args;
  args.time = args.steps = 1;
  args.batch = x.rows();
  typename Cell::Tape tape;
  StepOutput<T, typename Cell::State> r;
  r.output.resize(x.rows(), cell.output_size());
  cell.forward_begin(tape, x, args, state);
  cell.forward_step(tape, 0, r.output.data());
  r.state = cell.final_state(tape);
  return r;
}

}  // namespace detail
}  // namespace cellflow
