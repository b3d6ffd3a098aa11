// One time step of any cell, for loops a user writes over time themselves:
//
//   output, new_state = cell(x, state)          cell(x, state): inference, no caches
//   auto s = cf::cell_forward(cell, x, state);  one training step: s.output, s.state, kept for backward
//   auto g = cf::cell_backward(cell, s, &d_output, &d_state);   // g.d_input, g.d_state (of `state`)
//
// cell_backward has the semantics of dynamic_rnn_backward over a sequence of one step: it adds
// the step's weight gradients into the cell's variables and returns the gradients of the step's
// input and of the state it started from, so a loop over steps t = T-1 .. 0 that feeds each
// step's d_state into the step before gives BPTT. Both run the cell's own sequence code with
// one step (rnn/sequence.hpp), so outputs, states and the input and state gradients equal
// dynamic_rnn's bitwise. The weight gradients equal dynamic_rnn_backward's to rounding only:
// dynamic_rnn_backward forms each as one product over all steps, a loop of cell_backward adds one
// product per step, and floating-point sums in another order round differently.
//
// cell_forward is a training step: a DropoutWrapper in the cell drops units, keyed by the step's
// random draw (the `draw` argument, or the next next_random_draw() when it is not given; the
// batch's examples are examples 0 .. batch - 1 and the step is step 0). A loop over the steps of
// a sequence that wants TF's variational_recurrent masks passes the same draw to every step;
// cell_backward reuses the draw of its cell_forward.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cellflow/cells/step_output.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/rnn/sequence.hpp"

namespace cellflow {

/// One training step of a cell: its output and new state, and what cell_backward needs.
template <class Cell>
struct CellStep {
  /// The cell's scalar type.
  using T = typename Cell::Scalar;
  /// The cell's state type.
  using State = typename Cell::State;

  Matrix<T> output;  ///< [batch, output_size]
  State state;       ///< the state after the step

  // ---- internal ----

  /// What cell_backward reads: the input, the cell's one-step tape and the cell that ran it.
  struct Tape {
    Matrix<T> input;
    typename Cell::Tape cell;
    const Cell* producer = nullptr;
    std::uint64_t draw = 0;  // the random draw of the forward step, which backward repeats
  } tape;                    ///< written by cell_forward, read by cell_backward
};

/// The gradients cell_backward returns (the weight gradients go into the cell's variables).
template <class Cell>
struct CellStepGradients {
  Matrix<typename Cell::Scalar> d_input;  ///< [batch, input_depth]
  typename Cell::State d_state;           ///< gradient of the state the step started from
};

namespace detail {

inline SequenceArgs one_step(Index batch, bool training, std::uint64_t draw = 0) {
  SequenceArgs a;
  a.time = a.steps = 1;
  a.batch = batch;
  a.training = training;
  a.draw = draw;
  return a;
}

/// `cell(x, state)` of any cell: a sequence of one step, no training caches.
template <class Cell, class T = typename Cell::Scalar>
StepOutput<T, typename Cell::State> run_step(const Cell& cell, const Matrix<T>& x, const typename Cell::State& state) {
  check_step_input(cell, x, state, cell.cell_name());
  typename Cell::Tape tape;
  StepOutput<T, typename Cell::State> r;
  run_sequence(cell, tape, x, one_step(x.rows(), false), state, r.output);
  r.state = cell.final_state(tape);
  return r;
}

}  // namespace detail

/// One step of `cell` from `state` on x [batch, input_depth], keeping what cell_backward needs;
/// `draw` is the random draw of its dropout masks (unset: next_random_draw(), see the top of this
/// header).
template <class Cell>
CellStep<Cell> cell_forward(const Cell& cell, const Matrix<typename Cell::Scalar>& x, const typename Cell::State& state,
                            std::optional<std::uint64_t> draw = std::nullopt) {
  detail::check_step_input(cell, x, state, "cell_forward");
  CellStep<Cell> s;
  s.tape.input = x;
  s.tape.draw = draw ? *draw : next_random_draw();
  run_sequence(cell, s.tape.cell, s.tape.input, detail::one_step(x.rows(), true, s.tape.draw), state, s.output);
  s.state = cell.final_state(s.tape.cell);
  s.tape.producer = &cell;
  return s;
}

/// The backward pass of one cell_forward step: d_output [batch, output_size] is the gradient
/// reaching the step's output from above, d_state the gradient reaching its new state (from the
/// next step or a head); either may be null. Adds (+=) the weight gradients into the cell's
/// variables; returns the gradients of the input and of the state the step started from.
template <class Cell>
CellStepGradients<Cell> cell_backward(Cell& cell, CellStep<Cell>& step,
                                      const Matrix<typename Cell::Scalar>* d_output = nullptr,
                                      const typename Cell::State* d_state = nullptr) {
  const Index batch = step.tape.input.rows();
  if (step.tape.producer != &cell)
    throw Error(detail::concat("cell_backward: the step was not computed by this ", cell.cell_name(),
                               " object (pass the cell that ran cell_forward)"));
  if (d_output && (d_output->rows() != batch || d_output->cols() != cell.output_size()))
    throw ShapeError(detail::concat("cell_backward: d_output is [", d_output->rows(), ", ", d_output->cols(),
                                    "], the output is [", batch, ", ", cell.output_size(), "]"));
  if (d_state) cell.check_state(*d_state, batch, "cell_backward: d_state");
  CellStepGradients<Cell> g;
  Gradients<typename Cell::Scalar> grads;
  run_sequence_backward(cell, step.tape.cell, step.tape.input, detail::one_step(batch, true, step.tape.draw), d_output,
                        d_state, &g.d_input, g.d_state, grads);
  return g;
}

}  // namespace cellflow
