// The time loop, written once for every cell. A cell computes steps; this file decides which
// steps run, applies dynamic_rnn's sequence_length semantics (select, never mask-multiply) and
// walks the steps backwards for BPTT. It knows nothing about gates.
//
// Layout: a sequence is time-major, one [time*batch, depth] row-major matrix whose rows
// t*batch .. t*batch+batch-1 hold step t. A cell type provides:
//   Tape                                    per-sequence buffers (inputs projected, activations)
//   forward_begin(tape, X, time, batch, steps, s0, training)   project all inputs in one GEMM
//   forward_step(tape, t, y)                state slot t -> slot t+1, output rows to y
//   carry_state_row(tape, t, b)             slot t+1 row b := slot t row b (a finished example)
//   final_state(tape)                       the state in slot `steps`
//   backward_begin(tape, d_final_state*)    running state gradient := d_final_state or 0
//   backward_step(tape, t, dy*)             gradients of step t, state gradient slot t+1 -> t
//   backward_carry_row(tape, t, b)          finished example: gradient passes through unchanged
//   backward_advance(tape)                  the slot-t gradient becomes the running one
//   backward_end(tape, X, dX*)              weight gradients over all steps, input gradients
//   initial_state_grad(tape)                gradient of the state in slot 0
#pragma once

#include <vector>

#include "cellflow/core/types.hpp"

namespace cellflow {
namespace detail {

/// Runs `steps` (<= time) steps of `cell` over the time-major X [time*batch, depth], writes the
/// outputs to Y [time*batch, output_size] (zeros past each example's length and past `steps`),
/// and leaves the per-step activations in `tape` (all of them when `training`).
template <class Cell, class T>
void scan_forward(const Cell& cell, typename Cell::Tape& tape, const Matrix<T>& X, Index time, Index batch, Index steps,
                  const typename Cell::State& s0, const std::vector<Index>* lengths, Matrix<T>& Y, bool training) {
  const Index out = cell.output_size();
  Y.resize(time * batch, out);
  cell.forward_begin(tape, X, time, batch, steps, s0, training);
  for (Index t = 0; t < steps; ++t) {
    cell.forward_step(tape, t, Y.data() + t * batch * out);
    if (lengths) {
      for (Index b = 0; b < batch; ++b) {
        if (t >= (*lengths)[static_cast<std::size_t>(b)]) {
          cell.carry_state_row(tape, t, b);
          Y.row(t * batch + b).setZero();
        }
      }
    }
  }
  Y.bottomRows((time - steps) * batch).setZero();
}

/// BPTT over a tape filled by scan_forward(training = true). dY (same shape as Y) and
/// d_final_state may each be null (no gradient flows from there). Accumulates into the cell's
/// variable gradients; writes dX [time*batch, depth] when dX is not null.
template <class Cell, class T>
void scan_backward(Cell& cell, typename Cell::Tape& tape, const Matrix<T>& X, const std::vector<Index>* lengths,
                   const Matrix<T>* dY, const typename Cell::State* d_final_state, Matrix<T>* dX) {
  const Index batch = tape.batch;
  const Index out = cell.output_size();
  cell.backward_begin(tape, d_final_state);
  for (Index t = tape.steps - 1; t >= 0; --t) {
    cell.backward_step(tape, t, dY ? dY->data() + t * batch * out : nullptr);
    if (lengths) {
      for (Index b = 0; b < batch; ++b)
        if (t >= (*lengths)[static_cast<std::size_t>(b)]) cell.backward_carry_row(tape, t, b);
    }
    cell.backward_advance(tape);
  }
  cell.backward_end(tape, X, dX);
}

}  // namespace detail
}  // namespace cellflow
