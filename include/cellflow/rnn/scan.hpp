// The time loop, written once for every step cell. A cell computes steps (cells/cell_traits.hpp
// lists its functions); this file decides which steps run, applies dynamic_rnn's
// sequence_length semantics (select, never mask-multiply) and walks the steps backwards for
// BPTT. It knows nothing about gates.
//
// Layout: a sequence is time-major, one [time*batch, depth] row-major matrix whose rows
// t*batch .. t*batch+batch-1 hold step t (core/sequence.hpp).
#pragma once

#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {
namespace detail {

/// Runs args.steps (<= args.time) steps of `cell` over the time-major X [time*batch, depth],
/// writes the outputs to Y [time*batch, output_size] (zeros past each example's length and past
/// args.steps), and leaves the per-step activations in `tape` (all of them when args.training).
template <class Cell>
void scan_forward(const Cell& cell, typename Cell::Tape& tape, const Matrix<typename Cell::Scalar>& X,
                  const SequenceArgs& args, const typename Cell::State& s0, Matrix<typename Cell::Scalar>& Y) {
  const Index batch = args.batch, out = cell.output_size();
  if (X.rows() != args.time * batch || X.cols() != cell.input_depth())
    throw ShapeError(concat(cell.cell_name(), ": inputs are ", X.rows(), "x", X.cols(), ", expected [time * batch, ",
                            "input_depth] = [", args.time * batch, ", ", cell.input_depth(), "]"));
  Y.resize(args.time * batch, out);
  cell.forward_begin(tape, X, args, s0);
  for (Index t = 0; t < args.steps; ++t) {
    cell.forward_step(tape, t, Y.data() + t * batch * out);
    if (args.lengths) {
      for (Index b = 0; b < batch; ++b) {
        if (args.ended(t, b)) {
          cell.carry_state_row(tape, t, b);
          Y.row(t * batch + b).setZero();
        }
      }
    }
  }
  Y.bottomRows((args.time - args.steps) * batch).setZero();
}

/// BPTT over a tape filled by scan_forward with args.training. dY (same shape as Y) and
/// d_final_state may each be null (no gradient flows from there). Adds the weight gradients
/// into `grads`; writes dX [time*batch, depth] when dX is not null; returns through d_initial
/// the gradient of the initial state.
template <class Cell>
void scan_backward(const Cell& cell, typename Cell::Tape& tape, const Matrix<typename Cell::Scalar>& X,
                   const SequenceArgs& args, const Matrix<typename Cell::Scalar>* dY,
                   const typename Cell::State* d_final_state, Matrix<typename Cell::Scalar>* dX,
                   typename Cell::State& d_initial, Gradients<typename Cell::Scalar>& grads) {
  const Index batch = args.batch, out = cell.output_size();
  cell.backward_begin(tape, d_final_state);
  for (Index t = args.steps - 1; t >= 0; --t) {
    cell.backward_step(tape, t, dY ? dY->data() + t * batch * out : nullptr);
    if (args.observer) args.observer->step_done();
    if (args.lengths) {
      for (Index b = 0; b < batch; ++b)
        if (args.ended(t, b)) cell.backward_carry_row(tape, t, b);
    }
    if constexpr (has_backward_weights_v<Cell>) cell.backward_weights(tape, t, X, dX, grads);
    cell.backward_advance(tape);
  }
  cell.backward_end(tape, X, dX, grads);
  d_initial = cell.initial_state_grad(tape);
}

}  // namespace detail
}  // namespace cellflow
