// One entry point for running any cell over a sequence, forward and backward: a step cell goes
// to the scan (rnn/scan.hpp), a sequence cell (MultiRNNCell, AnyCell, whole-sequence wrappers)
// to its own forward_sequence / backward_sequence. dynamic_rnn, RNNStream, cell_forward and the
// layers of a stack all come through here, so a new cell is run everywhere once it meets the
// contract of cells/cell_traits.hpp, which is checked here with one message per missing member.
//
// X, Y, dX and dY are time-major [time * batch, depth] matrices (core/sequence.hpp).
#pragma once

#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/rnn/scan.hpp"

namespace cellflow {

// ---- cell contract: running any cell over a sequence ----

/// Runs `cell` forward over X: outputs into Y [time * batch, output_size] (zeros past each
/// example's length), everything backward needs into `tape` (when args.training); the final
/// state is then cell.final_state(tape).
template <class Cell>
void run_sequence(const Cell& cell, typename Cell::Tape& tape, const Matrix<typename Cell::Scalar>& X,
                  const SequenceArgs& args, const typename Cell::State& s0, Matrix<typename Cell::Scalar>& Y) {
  if constexpr (detail::is_sequence_cell_v<Cell>) {
    if constexpr (detail::check_sequence_cell<Cell>()) cell.forward_sequence(tape, X, args, s0, Y);
  } else if constexpr (detail::check_step_cell<Cell>()) {
    detail::scan_forward(cell, tape, X, args, s0, Y);
  }
}

/// Backpropagation through a run of run_sequence with args.training (the same `args`): adds
/// the weight gradients into `grads`, writes dX when not null and the initial state's gradient
/// into d_initial. dY and d_final may be null.
template <class Cell>
void run_sequence_backward(const Cell& cell, typename Cell::Tape& tape, const Matrix<typename Cell::Scalar>& X,
                           const SequenceArgs& args, const Matrix<typename Cell::Scalar>* dY,
                           const typename Cell::State* d_final, Matrix<typename Cell::Scalar>* dX,
                           typename Cell::State& d_initial, Gradients<typename Cell::Scalar>& grads) {
  if constexpr (detail::is_sequence_cell_v<Cell>) {
    if constexpr (detail::check_sequence_cell<Cell>())
      cell.backward_sequence(tape, X, args, dY, d_final, dX, d_initial, grads);
  } else if constexpr (detail::check_step_cell<Cell>()) {
    detail::scan_backward(cell, tape, X, args, dY, d_final, dX, d_initial, grads);
  }
}

/// The final state of the run in `tape` written into `state`: through the cell's optional
/// final_state_into (which reuses state's buffers: no allocation once it has the right shape), or
/// by assigning final_state(tape) for a cell without it.
template <class Cell>
void final_state_into(const Cell& cell, const typename Cell::Tape& tape, typename Cell::State& state) {
  if constexpr (detail::has_v<Cell, detail::final_state_into_t>)
    cell.final_state_into(tape, state);
  else
    state = cell.final_state(tape);
}

}  // namespace cellflow
