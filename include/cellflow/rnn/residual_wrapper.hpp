// ResidualWrapper: TensorFlow 1.x's tf.nn.rnn_cell.ResidualWrapper, a cell whose output is its
// input plus the wrapped cell's output.
//
//   y_t, s_t = cell(x_t, s_{t-1})
//   output   = x_t + y_t,  state = s_t          (TF's default residual_fn: inputs + outputs)
//
// The wrapped cell's input depth and output size must therefore be equal (TF asserts that the
// shapes are compatible; here a ShapeError at construction). The wrapper adds no variable scope
// and no variable: its variables are the wrapped cell's, named exactly as without it (TF calls
// the cell with the wrapper's own scope). Backward: the output gradient reaches the wrapped cell
// unchanged, and the input gradient is the cell's plus the output gradient.
//
// With sequence_length, an example's outputs past its length are exactly 0, as dynamic_rnn's
// select makes them in TF: the input is added only on the steps that ran, and only those steps
// pass their output gradient to the input gradient.
//
// It is a sequence cell (cells/cell_traits.hpp): it runs the wrapped cell (a step cell, a
// MultiRNNCell, an AnyCell, another wrapper) over the whole sequence through run_sequence and adds
// the input rows, element by element, so a stream still equals the whole-sequence run bitwise.
// Wrapping a cell whose state is a Matrix or an LSTMStateTuple gives a cell that can be a layer of
// a MultiRNNCell (through AnyCell).
#pragma once

#include <string>
#include <utility>

#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/cells/step_output.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/rnn/sequence.hpp"
#include "cellflow/rnn/step.hpp"

namespace cellflow {

// ---- cell contract ----

/// Per-sequence buffers of a ResidualWrapper: the wrapped cell's tape.
template <class Cell>
struct ResidualTape {
  typename Cell::Tape cell;  ///< the wrapped cell's buffers
};

// ---- end of cell contract ----

/// tf.nn.rnn_cell.ResidualWrapper(cell): output = input + cell output, state = cell state (see the
/// top of this header). `Cell` is any cell whose input depth equals its output size.
template <class Cell>
class ResidualWrapper {
  static_assert(detail::check_cell<Cell>(), "ResidualWrapper: the wrapped type is not a cell (see the messages above)");

 public:
  /// The wrapped cell's scalar type.
  using Scalar = typename Cell::Scalar;
  /// The wrapped cell's state.
  using State = typename Cell::State;
  // ---- cell contract ----
  /// The per-sequence buffers of a run.
  using Tape = ResidualTape<Cell>;
  // ---- end of cell contract ----

  /// Wraps `cell`; ShapeError unless its input depth equals its output size.
  explicit ResidualWrapper(Cell cell) : cell_(std::move(cell)) {
    if (cell_.input_depth() != cell_.output_size())
      throw ShapeError(detail::concat("ResidualWrapper: the wrapped ", cell_.cell_name(), " reads ",
                                      cell_.input_depth(), " features and outputs ", cell_.output_size(),
                                      "; the residual connection adds the input to the output, so they must be equal"));
  }

  /// The wrapped cell.
  Cell& cell() { return cell_; }
  /// The wrapped cell (const wrapper).
  const Cell& cell() const { return cell_; }

  /// The wrapped cell's input depth (= its output size).
  Index input_depth() const { return cell_.input_depth(); }
  /// The wrapped cell's output size.
  Index output_size() const { return cell_.output_size(); }
  /// "residual_wrapper(<the wrapped cell's name>)", for messages.
  std::string cell_name() const { return "residual_wrapper(" + cell_.cell_name() + ")"; }
  /// The wrapped cell's variable scope: the wrapper adds none.
  std::string scope_name() const { return scope_name_of(cell_); }

  /// kind "ResidualWrapper" with the wrapped cell's sizes and options; the wrapped cell's own
  /// config is wrapped_config(). A model's architecture text cannot rebuild a wrapper yet
  /// (load_model reports the kind as unknown; load_weights loads such a model by variable name).
  CellConfig config() const {
    CellConfig c = config_of(cell_);
    c.kind = "ResidualWrapper";
    return c;
  }
  /// The wrapped cell's CellConfig.
  CellConfig wrapped_config() const { return config_of(cell_); }
  /// Whether the wrapped cell skips the rows of ended examples (cells/cell_traits.hpp); the
  /// residual sum already touches only the rows that ran.
  bool skips_ended_rows() const { return skips_ended_rows_of(cell_); }
  /// Whether the wrapped cell runs Precision::bf16 inference (cells/cell_traits.hpp); the
  /// residual sum stays in float.
  bool supports_bf16() const { return supports_bf16_of(cell_); }

  /// The wrapped cell's zero state.
  State zero_state(Index batch) const { return cell_.zero_state(batch); }
  /// The wrapped cell's check (ShapeError starting with `what`).
  void check_state(const State& s, Index batch, const std::string& what) const { cell_.check_state(s, batch, what); }

  /// Calls f(name, Parameter&) for each variable of the wrapped cell, named as without the
  /// wrapper (TF: the wrapper adds no scope).
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    cell_.for_each_variable(scope, std::forward<F>(f));
  }

  /// Sets the gradient of every variable of the wrapped cell to zero.
  void zero_grad() { cellflow::zero_grad(cell_); }

  /// One step, TF's `cell(x, state)`: x + the wrapped cell's output, and its new state.
  StepOutput<Scalar, State> operator()(const Matrix<Scalar>& x, const State& state) const {
    return detail::run_step(*this, x, state);
  }

  // ---- cell contract: sequence functions (cells/cell_traits.hpp) ----

  /// Runs the wrapped cell over X into Y, then adds X to the rows of the steps that ran.
  void forward_sequence(Tape& tp, const Matrix<Scalar>& X, const SequenceArgs& args, const State& s0,
                        Matrix<Scalar>& Y) const {
    run_sequence(cell_, tp.cell, X, args, s0, Y);
    add_valid_rows(Y, X, args);
  }

  /// The wrapped cell's final state.
  State final_state(const Tape& tp) const { return cell_.final_state(tp.cell); }
  /// The wrapped cell's final state written into `s`, reusing its buffers.
  void final_state_into(const Tape& tp, State& s) const { cellflow::final_state_into(cell_, tp.cell, s); }

  /// The wrapped cell's backward pass with the same output gradient; then dX += dY on the steps
  /// that ran.
  void backward_sequence(Tape& tp, const Matrix<Scalar>& X, const SequenceArgs& args, const Matrix<Scalar>* dY,
                         const State* d_final, Matrix<Scalar>* dX, State& d_initial, Gradients<Scalar>& grads) const {
    run_sequence_backward(cell_, tp.cell, X, args, dY, d_final, dX, d_initial, grads);
    if (dX && dY) add_valid_rows(*dX, *dY, args);
  }

 private:
  /// dst.row(r) += src.row(r) for every row of a step that ran (t < steps, example not ended).
  static void add_valid_rows(Matrix<Scalar>& dst, const Matrix<Scalar>& src, const SequenceArgs& args) {
    const Index B = args.batch;
    if (!args.lengths) {
      dst.topRows(args.steps * B) += src.topRows(args.steps * B);
      return;
    }
    for (Index t = 0; t < args.steps; ++t)
      for (Index b = 0; b < B; ++b)
        if (!args.ended(t, b)) dst.row(t * B + b) += src.row(t * B + b);
  }

  Cell cell_;
};

}  // namespace cellflow
