// DropoutWrapper: tf.nn.rnn_cell.DropoutWrapper (TF 1.15) around a step cell.
//
// TF's equations, for one step of the wrapped cell with keep probabilities p_in, p_out, p_state:
//
//   x'           = drop(x, p_in)                     (only when p_in < 1)
//   y, s_new     = cell(x', s)
//   s'           = drop(s_new, p_state)              (only when p_state < 1; every part of the
//                                                     state except an LSTMStateTuple's c: TF's
//                                                     default dropout_state_filter_visitor)
//   y'           = drop(y, p_out)                    (only when p_out < 1)
//   output y', next state s'
//
//   drop(v, p)   = v * (1 / p) * m,  m in {0, 1},  P(m = 1) = p   (inverted dropout: kept values
//                                                                   are scaled so E[drop(v)] = v)
//
// Without variational_recurrent (nn_ops.dropout) every step draws a fresh mask for every element.
// With variational_recurrent TF draws one noise vector per stream (input, state, output) of shape
// [1, width] when the graph runs, and reuses it at every step: the same mask for all steps AND
// for all examples of the batch (TF's code broadcasts the [1, width] noise over the batch). This
// wrapper does exactly that. (Gal & Ghahramani's paper draws one mask per sequence; TF shares it
// across the batch.) TF's variational path divides by p where nn_ops.dropout multiplies by 1/p;
// here both multiply by 1/p (the two differ in the last bit at most).
//
// The new state s' is what the next step reads and what dynamic_rnn returns as the final state;
// the output y' is dropped independently of the state (an LSTM's output h and its state h get
// different masks). The initial state is never dropped. No dropout happens unless the run trains
// (SequenceArgs::training): Model::predict, RNNStream, cell(x, state) and dynamic_rnn with
// training = false run the wrapped cell unchanged, and with every keep probability 1 a training
// run is bitwise the unwrapped cell's.
//
// The masks (cellflow's own rule; TF's random numbers cannot be reproduced): with stream k (0
// input, 1 state, 2 output) of width W, u = keyed_uniform01<T>(3 * seed + k, draw, e, pos) and
// m = (u < p), where draw is SequenceArgs::draw and
//   without variational_recurrent: e = SequenceArgs::example(b) (the example's position in
//                                  the whole batch), pos = t * W + j   (step t, unit j)
//   with variational_recurrent:    e = 0, pos = j                      (shared by batch and steps)
// A mask is thus a pure function of (seed, draw, example, step, unit): the same whatever
// batch_threads is and however the batch is split, and backward reads the very masks its forward
// pass drew (they are kept in the tape: Tape::input_mask, state_mask, output_mask).
//
// The wrapper is itself a step cell (cells/cell_traits.hpp): its step functions call the wrapped
// cell's and apply the masks around them; it adds no variables (TF: the same variable names as
// the wrapped cell). State dropout writes into the wrapped cell's state slots through its
// optional droppable_state / droppable_state_grad members (every built-in step cell has them).
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/cells/step_output.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/detail/active_rows.hpp"
#include "cellflow/rnn/step.hpp"

namespace cellflow {

/// The seed a DropoutWrapper built without one takes: the next value of a process-wide counter
/// (1, 2, 3, ...; thread-safe), so that two wrappers built without seeds drop different units,
/// and a program that builds them in the same order gets the same seeds.
inline std::uint64_t next_dropout_seed() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// ---- cell contract ----

/// Per-sequence buffers of a DropoutWrapper: the wrapped cell's tape and the masks of the run.
template <class Cell>
struct DropoutTape {
  /// The wrapped cell's scalar type.
  using T = typename Cell::Scalar;
  typename Cell::Tape cell;    ///< the wrapped cell's tape
  bool active = false;         ///< the run trains and some keep probability is below 1
  Index batch = 0;             ///< the run's batch (SequenceArgs::batch)
  std::vector<Index> lengths;  ///< the run's sequence lengths (empty: every example runs every step)
  Matrix<T> x;                 ///< the dropped inputs [time * batch, depth] (with input dropout)
  /// The masks (0 or 1): [steps * batch, width], rows t * batch + b; with variational_recurrent
  /// [1, width] for every step and example. Empty for a stream that does not drop.
  Matrix<T> input_mask, state_mask, output_mask;
  Matrix<T> dy;                ///< [batch, output_size]: a step's output gradient through the output mask
  detail::ActiveRows running;  ///< the rows each step computes (SequenceArgs::active, row skipping)
};

// ---- end of cell contract ----

template <class Cell>
/// tf.nn.rnn_cell.DropoutWrapper(cell, input_keep_prob, output_keep_prob, state_keep_prob,
/// variational_recurrent, seed) around a step cell (see the top of this header). Its state is the
/// wrapped cell's; its variables are the wrapped cell's, under the same names.
class DropoutWrapper {
  static_assert(detail::check_cell_types<Cell>() && !detail::is_sequence_cell_v<Cell>,
                "DropoutWrapper wraps a step cell (BasicLSTMCell, LSTMCell, GRUCell, ...): wrap each layer of a "
                "MultiRNNCell rather than the stack");

 public:
  /// The wrapped cell's scalar type.
  using Scalar = typename Cell::Scalar;
  /// The wrapped cell's state type.
  using State = typename Cell::State;
  // ---- cell contract ----
  /// The per-sequence buffers of a run.
  using Tape = DropoutTape<Cell>;
  // ---- end of cell contract ----

  /// Wraps `cell`. Keep probabilities must be in (0, 1] (ValueError otherwise, NaN included; 1
  /// drops nothing). `seed` (below 2^53, so that config() holds it exactly) defaults to
  /// next_dropout_seed(). State dropout (state_keep_prob < 1) needs the cell's droppable_state
  /// members (cells/cell_traits.hpp): ValueError for a cell without them.
  explicit DropoutWrapper(Cell cell, double input_keep_prob = 1.0, double output_keep_prob = 1.0,
                          double state_keep_prob = 1.0, bool variational_recurrent = false,
                          std::optional<std::uint64_t> seed = std::nullopt)
      : cell_(std::move(cell)),
        keep_{checked_keep(input_keep_prob, "input_keep_prob"), checked_keep(state_keep_prob, "state_keep_prob"),
              checked_keep(output_keep_prob, "output_keep_prob")},
        variational_(variational_recurrent),
        seed_(seed ? *seed : next_dropout_seed()) {
    if (seed_ >= (std::uint64_t(1) << 53))
      throw ValueError(detail::concat("DropoutWrapper: seed must be below 2^53, given ", seed_));
    if constexpr (!detail::has_droppable_state_v<Cell>) {
      if (keep_[kState] < Scalar(1))
        throw ValueError(detail::concat("DropoutWrapper: state_keep_prob ", state_keep_prob, " < 1 needs ",
                                        cell_.cell_name(),
                                        " to offer droppable_state and droppable_state_grad (cells/cell_traits.hpp)"));
    }
  }

  /// The wrapped cell.
  const Cell& cell() const { return cell_; }
  /// The wrapped cell, to change its variables.
  Cell& cell() { return cell_; }
  /// The probability of keeping an input unit.
  Scalar input_keep_prob() const { return keep_[kInput]; }
  /// The probability of keeping an output unit.
  Scalar output_keep_prob() const { return keep_[kOutput]; }
  /// The probability of keeping a unit of the state passed to the next step.
  Scalar state_keep_prob() const { return keep_[kState]; }
  /// Whether one mask per stream serves every step (and every example of a batch), as TF.
  bool variational_recurrent() const { return variational_; }
  /// The seed of the masks.
  std::uint64_t seed() const { return seed_; }

  /// The wrapped cell's input depth.
  Index input_depth() const { return cell_.input_depth(); }
  /// The wrapped cell's output size.
  Index output_size() const { return cell_.output_size(); }
  /// "dropout_wrapper(<wrapped cell's name>)", for messages.
  std::string cell_name() const { return "dropout_wrapper(" + cell_.cell_name() + ")"; }
  /// The wrapped cell's variable scope (TF: a DropoutWrapper adds no scope of its own).
  std::string scope_name() const { return scope_name_of(cell_); }
  /// Kind "DropoutWrapper", the wrapped cell's sizes, the options input_keep_prob,
  /// output_keep_prob, state_keep_prob, variational_recurrent (0 or 1) and seed, and the wrapped
  /// cell's config in `wrapped`.
  CellConfig config() const {
    const CellConfig inner = config_of(cell_);
    CellConfig c;
    c.kind = "DropoutWrapper";
    c.input_depth = inner.input_depth;
    c.num_units = inner.num_units;
    c.output_size = inner.output_size;
    c.options["input_keep_prob"] = static_cast<double>(keep_[kInput]);
    c.options["output_keep_prob"] = static_cast<double>(keep_[kOutput]);
    c.options["state_keep_prob"] = static_cast<double>(keep_[kState]);
    c.options["variational_recurrent"] = variational_ ? 1.0 : 0.0;
    c.options["seed"] = static_cast<double>(seed_);
    c.wrapped.push_back(inner);
    return c;
  }

  /// The wrapped cell's zero state.
  State zero_state(Index batch) const { return cell_.zero_state(batch); }
  /// The wrapped cell's check (ShapeError).
  void check_state(const State& s, Index batch, const std::string& what) const { cell_.check_state(s, batch, what); }
  /// The wrapped cell's variables, under the wrapped cell's names.
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    cell_.for_each_variable(scope, std::forward<F>(f));
  }
  /// Sets every variable's gradient to zero.
  void zero_grad() { cellflow::zero_grad(*this); }

  /// One step, TF's `cell(x, state)`: inference, so nothing is dropped.
  StepOutput<Scalar, State> operator()(const Matrix<Scalar>& x, const State& state) const {
    return detail::run_step(*this, x, state);
  }

  // ---- cell contract: step functions (cells/cell_traits.hpp) ----

  /// Draws the run's masks (when it trains), drops the inputs and begins the wrapped cell.
  void forward_begin(Tape& tp, const Matrix<Scalar>& X, const SequenceArgs& a, const State& s0) const {
    tp.active = a.training && (keep_[0] < Scalar(1) || keep_[1] < Scalar(1) || keep_[2] < Scalar(1));
    tp.batch = a.batch;
    tp.running.assign(a.active, a.steps);
    tp.lengths.assign(a.lengths ? a.lengths : nullptr, a.lengths ? a.lengths + a.batch : nullptr);
    tp.input_mask.resize(0, 0);
    tp.state_mask.resize(0, 0);
    tp.output_mask.resize(0, 0);
    if (!tp.active) {
      tp.x.resize(0, 0);
      cell_.forward_begin(tp.cell, X, a, s0);
      return;
    }
    if (keep_[kInput] < Scalar(1)) {
      draw_mask(tp.input_mask, kInput, cell_.input_depth(), a);
      tp.x = X;
      const Index n = a.steps * a.batch;
      apply(tp.x.topRows(n), tp.input_mask, keep_[kInput], 0, a.batch);
    }
    cell_.forward_begin(tp.cell, keep_[kInput] < Scalar(1) ? tp.x : X, a, s0);
    if (keep_[kOutput] < Scalar(1)) draw_mask(tp.output_mask, kOutput, cell_.output_size(), a);
    if constexpr (detail::has_droppable_state_v<Cell>) {
      if (keep_[kState] < Scalar(1)) draw_mask(tp.state_mask, kState, cell_.droppable_state(tp.cell, 0).cols(), a);
    }
  }

  /// The wrapped cell's step t, then the output and the new state (slot t + 1) through their masks.
  void forward_step(Tape& tp, Index t, Scalar* y) const {
    cell_.forward_step(tp.cell, t, y);
    if (!tp.active) return;
    const Index B = tp.batch, n = tp.running.at(t, B);  // the rows that ran (all without row skipping)
    if (keep_[kOutput] < Scalar(1))
      apply(Eigen::Map<Matrix<Scalar>>(y, n, cell_.output_size()), tp.output_mask, keep_[kOutput], t, B);
    if constexpr (detail::has_droppable_state_v<Cell>) {
      if (keep_[kState] < Scalar(1))
        apply(cell_.droppable_state(tp.cell, t + 1).topRows(n), tp.state_mask, keep_[kState], t, B);
    }
  }

  /// Whether the wrapped cell skips the rows of ended examples (cells/cell_traits.hpp); the masks
  /// are keyed by each row's example (SequenceArgs::example), so row order does not change them.
  bool skips_ended_rows() const { return skips_ended_rows_of(cell_); }
  /// Whether the wrapped cell runs Precision::bf16 inference (cells/cell_traits.hpp); the dropout
  /// itself only acts in training, which bf16 never is.
  bool supports_bf16() const { return supports_bf16_of(cell_); }

  /// Example b has ended: the wrapped cell carries its state (the dropped state of its last step).
  void carry_state_row(Tape& tp, Index t, Index b) const { cell_.carry_state_row(tp.cell, t, b); }

  /// The wrapped cell's final state (state dropout included: TF returns the dropped state).
  State final_state(const Tape& tp) const { return cell_.final_state(tp.cell); }
  /// The wrapped cell's final state written into `s`, reusing its buffers.
  void final_state_into(const Tape& tp, State& s) const { cellflow::final_state_into(cell_, tp.cell, s); }

  /// Begins the wrapped cell's backward pass.
  void backward_begin(Tape& tp, const State* d_final) const {
    cell_.backward_begin(tp.cell, d_final);
    if (tp.active && keep_[kOutput] < Scalar(1)) tp.dy.resize(tp.batch, cell_.output_size());
  }

  /// Step t backward: the running state gradient of every example still running and the output
  /// gradient dy through their masks, then the wrapped cell's step.
  void backward_step(Tape& tp, Index t, const Scalar* dy) const {
    const Index B = tp.batch;
    if (tp.active) {
      if constexpr (detail::has_droppable_state_v<Cell>) {
        if (keep_[kState] < Scalar(1)) {
          auto g = cell_.droppable_state_grad(tp.cell);
          const Scalar scale = Scalar(1) / keep_[kState];
          for (Index b = 0; b < B; ++b)
            if (tp.lengths.empty() || t < tp.lengths[static_cast<std::size_t>(b)])  // an ended row passes through
              g.row(b).array() = g.row(b).array() * scale * mask_row(tp.state_mask, t, b, B).array();
        }
      }
      if (keep_[kOutput] < Scalar(1) && dy) {
        tp.dy = Eigen::Map<const Matrix<Scalar>>(dy, B, cell_.output_size());
        apply(tp.dy, tp.output_mask, keep_[kOutput], t, B);
        dy = tp.dy.data();
      }
    }
    cell_.backward_step(tp.cell, t, dy);
  }

  /// Example b had ended: the wrapped cell passes its state gradient through.
  void backward_carry_row(Tape& tp, Index t, Index b) const { cell_.backward_carry_row(tp.cell, t, b); }
  /// The wrapped cell's backward_advance.
  void backward_advance(Tape& tp) const { cell_.backward_advance(tp.cell); }

  /// The wrapped cell's weight gradients (over the dropped inputs it read) and the input gradients
  /// through the input mask.
  void backward_end(Tape& tp, const Matrix<Scalar>& X, Matrix<Scalar>* dX, Gradients<Scalar>& grads) const {
    const bool in = tp.active && keep_[kInput] < Scalar(1);
    cell_.backward_end(tp.cell, in ? tp.x : X, dX, grads);
    if (in && dX) {
      const Index n = variational_ ? dX->rows() : tp.input_mask.rows();
      apply(dX->topRows(n), tp.input_mask, keep_[kInput], 0, tp.batch);
    }
  }

  /// The wrapped cell's backward_weights (optional contract member, cells/cell_traits.hpp), over
  /// the dropped inputs it read; only when the wrapped cell has it. backward_end applies the
  /// input mask to dX once every row is written.
  template <class C = Cell, class = std::enable_if_t<detail::has_backward_weights_v<C>>>
  void backward_weights(Tape& tp, Index t, const Matrix<Scalar>& X, Matrix<Scalar>* dX,
                        Gradients<Scalar>& grads) const {
    const bool in = tp.active && keep_[kInput] < Scalar(1);
    cell_.backward_weights(tp.cell, t, in ? tp.x : X, dX, grads);
  }

  /// The wrapped cell's initial-state gradient.
  State initial_state_grad(const Tape& tp) const { return cell_.initial_state_grad(tp.cell); }

  /// State dropout's part of state slot t, the wrapped cell's (a wrapper of a wrapper drops it
  /// again); only when the wrapped cell has it.
  template <class C = Cell, class = std::enable_if_t<detail::has_droppable_state_v<C>>>
  Eigen::Map<Matrix<Scalar>> droppable_state(Tape& tp, Index t) const {
    return cell_.droppable_state(tp.cell, t);
  }
  /// The wrapped cell's running gradient of that part.
  template <class C = Cell, class = std::enable_if_t<detail::has_droppable_state_v<C>>>
  Eigen::Map<Matrix<Scalar>> droppable_state_grad(Tape& tp) const {
    return cell_.droppable_state_grad(tp.cell);
  }

 private:
  static constexpr int kInput = 0, kState = 1, kOutput = 2;  // the streams, as in the mask rule

  static Scalar checked_keep(double p, const char* what) {
    const Scalar v = static_cast<Scalar>(p);
    if (!(v > Scalar(0) && v <= Scalar(1)))
      throw ValueError(detail::concat("DropoutWrapper: ", what, " must be in (0, 1], given ", p));
    return v;
  }

  /// Draws the 0/1 mask of stream k, width W, for the run `a` (see the top of this header).
  void draw_mask(Matrix<Scalar>& m, int k, Index W, const SequenceArgs& a) const {
    const std::uint64_t s = 3 * seed_ + static_cast<std::uint64_t>(k);
    const Scalar p = keep_[k];
    if (variational_) {
      m.resize(1, W);
      for (Index j = 0; j < W; ++j)
        m(0, j) = keyed_uniform01<Scalar>(s, a.draw, 0, static_cast<std::uint64_t>(j)) < p ? Scalar(1) : Scalar(0);
      return;
    }
    m.resize(a.steps * a.batch, W);
    for (Index t = 0; t < a.steps; ++t)
      for (Index b = 0; b < a.batch; ++b) {
        const auto e = static_cast<std::uint64_t>(a.example(b));
        for (Index j = 0; j < W; ++j)
          m(t * a.batch + b, j) =
              keyed_uniform01<Scalar>(s, a.draw, e, static_cast<std::uint64_t>(t * W + j)) < p ? Scalar(1) : Scalar(0);
      }
  }

  /// Row b of step t of a mask (row 0 of a variational one).
  auto mask_row(const Matrix<Scalar>& m, Index t, Index b, Index B) const {
    return m.row(variational_ ? 0 : t * B + b);
  }

  /// v (rows of steps t0, t0 + 1, ..., B rows each) := v * (1 / p) * mask.
  template <class V>
  void apply(V&& v, const Matrix<Scalar>& m, Scalar p, Index t0, Index B) const {
    const Scalar scale = Scalar(1) / p;
    if (variational_)
      v.array() = (v.array() * scale).rowwise() * m.row(0).array();
    else
      v.array() = v.array() * scale * m.middleRows(t0 * B, v.rows()).array();
  }

  Cell cell_;
  Scalar keep_[3];  // indexed by stream: input, state, output
  bool variational_ = false;
  std::uint64_t seed_ = 0;
};

}  // namespace cellflow
