// dynamic_rnn: tf.nn.dynamic_rnn for any cell (a single cell, a MultiRNNCell, an AnyCell, a
// user's cell), forward and backward through time.
//
// Semantics (TF1): inputs [batch, time, depth] (time_major: [time, batch, depth]); with
// sequence_length, example b runs steps 0..len_b-1, its outputs past len_b are exactly 0 and its
// state is carried through unchanged, so the final state is the state after step len_b-1 (the
// initial state for len_b = 0). The initial state defaults to the cell's zero state.
// Backward uses the same selects: padded steps receive no gradient and contribute none, whatever
// the inputs hold there (NaN and infinities included: padded input rows are never read).
//
// This header checks the arguments once, converts between the user's layout and the time-major
// matrices the cells run on, and hands each batch slice (rnn/batch_split.hpp) to run_sequence
// (rnn/sequence.hpp). It knows neither gates nor the time loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/cells/state.hpp"
#include "cellflow/core/build_check.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/rnn/batch_split.hpp"
#include "cellflow/rnn/sequence.hpp"

namespace cellflow {

/// Options of dynamic_rnn, named as TF's arguments.
struct RNNOptions {
  /// Per-example lengths in [0, time]; none means every example runs all steps. Takes a
  /// std::vector of any integer type, an Eigen integer vector or a braced list
  /// (core/sequence.hpp's SequenceLengths).
  SequenceLengths sequence_length;
  /// Inputs and outputs are [time, batch, depth] instead of [batch, time, depth].
  bool time_major = false;
  /// Keep the per-step activations that dynamic_rnn_backward needs. Without them the forward
  /// pass keeps only two state slots per layer (inference).
  bool training = true;
  /// Split the batch into this many contiguous slices, each run on its own OpenMP thread with
  /// single-threaded matrix products and no barrier per time step; backward sums the slices'
  /// weight gradients once. Results equal the unsplit run up to float rounding. Without OpenMP
  /// (-fopenmp) the slices run one after another.
  int batch_threads = 1;
  /// Which draw of random masks a training run makes (the dropout of DropoutWrapper and
  /// LayerNormBasicLSTMCell; nothing else is random). Unset: the next draw of a process-wide
  /// counter (next_random_draw()), so every call drops other units, and a program that makes the
  /// same calls in the same order drops the same ones, as TF's seeded ops do. Set: the masks
  /// depend only on this value, the examples' positions in the batch and the cells' seeds (not on
  /// batch_threads): fit sets it from the step's index in the whole run, so a resumed run drops
  /// the same units as an uninterrupted one.
  std::optional<std::uint64_t> draw;
  /// With sequence_length, run each step only on the examples that have not ended (row
  /// skipping): the examples are ordered by length inside dynamic_rnn (the outputs, states and
  /// gradients come back in the caller's order), and every GEMM and gate pass of a step, and the
  /// whole-sequence products, skip the ended ones. Outputs, final state, input and initial-state
  /// gradients are bitwise those of `false`; weight gradients equal up to the order of the sum.
  /// Takes effect when the cell skips ended rows (every built-in cell; a stack when all its
  /// layers do: skips_ended_rows_of, cells/cell_traits.hpp). false: every row of every step runs,
  /// as in TF.
  bool skip_ended_rows = true;
  /// The arithmetic of the products: Precision::fp32 (the cell's own type, TF's results; the
  /// default) or, for inference (training = false) of a float model whose cells support it
  /// (supports_bf16(), cells/cell_traits.hpp), Precision::bf16: the kernels stored as bfloat16
  /// (packed once per call), float sums, gates and state in float. Anything else is a ValueError.
  Precision precision = Precision::fp32;
  /// bf16 on a CPU without AVX512-BF16: the portable kernel (default) or UnsupportedCpuError.
  Bf16Fallback bf16_fallback = Bf16Fallback::portable;
  /// The bf16 kernel to run instead of the CPU's best (both give the same sums; for tests and
  /// benchmarks). avx512_bf16 on a CPU without it is an UnsupportedCpuError.
  std::optional<Bf16Kernel> bf16_kernel;
};

/// What dynamic_rnn returns: outputs, final state, and the tape for dynamic_rnn_backward.
template <class Cell>
struct RNNResult {
  /// The cell's scalar type.
  using T = typename Cell::Scalar;
  /// The cell's state type.
  using State = typename Cell::State;

  Tensor3<T> outputs;  ///< [batch, time, output_size] ([time, batch, output_size] if time_major)
  State final_state;   ///< per example, the state after its last valid step

  // ---- internal ----

  /// Everything backward needs, reused by dynamic_rnn_into across calls.
  struct Tape {
    detail::BatchSplit<Cell> split;  // the slices, their tapes and buffers
    const Cell* producer = nullptr;  // the cell whose forward pass filled the tape
    bool time_major = false, training = false;
    std::uint64_t draw = 0;  // the random draw of the forward pass, which backward repeats
  } tape;                    ///< written by dynamic_rnn and dynamic_rnn_into, read by dynamic_rnn_backward
};

/// Gradients dynamic_rnn_backward returns (variable gradients are accumulated into the cell).
template <class Cell>
struct RNNGradients {
  Tensor3<typename Cell::Scalar> d_inputs;  ///< same layout as the inputs
  typename Cell::State d_initial_state;     ///< gradient of the initial state
};

namespace detail {

/// Whether Cell is a stack of layers (has num_layers(), as MultiRNNCell).
template <class Cell, class = void>
struct has_layers : std::false_type {};
template <class Cell>
struct has_layers<Cell, std::void_t<decltype(std::declval<const Cell&>().num_layers())>> : std::true_type {};

/// Checks sequence_length against the batch and time sizes (each length in [0, time]).
inline void check_lengths(const std::vector<Index>& lengths, Index batch, Index time, const char* op) {
  if (static_cast<Index>(lengths.size()) != batch)
    throw ShapeError(
        concat(op, ": sequence_length has ", lengths.size(), " entries, expected one per example (batch ", batch, ")"));
  for (std::size_t b = 0; b < lengths.size(); ++b)
    if (lengths[b] < 0 || lengths[b] > time)
      throw ValueError(concat(op, ": sequence_length[", b, "] = ", lengths[b], " is outside [0, ", time,
                              "] (the inputs have ", time, " time steps)"));
}

/// The rows `rows` (positions in the batch) of state s, in that order.
template <class Cell>
typename Cell::State gather_state(const Cell& cell, const typename Cell::State& s, const std::vector<Index>& rows) {
  auto out = cell.zero_state(static_cast<Index>(rows.size()));
  for (std::size_t b = 0; b < rows.size(); ++b) set_state_rows(out, static_cast<Index>(b), state_rows(s, rows[b], 1));
  return out;
}

/// Row b of `src` into row rows[b] of `dst`, for every b.
template <class State>
void scatter_state(State& dst, const std::vector<Index>& rows, const State& src) {
  for (std::size_t b = 0; b < rows.size(); ++b) set_state_rows(dst, rows[b], state_rows(src, static_cast<Index>(b), 1));
}

template <class Cell>
void dynamic_rnn_impl(RNNResult<Cell>& r, const Cell& cell, const Tensor3<typename Cell::Scalar>& inputs,
                      const typename Cell::State* initial_state, const RNNOptions& opts) {
  static_assert(check_cell<Cell>(), "dynamic_rnn: the type is not a cell (see the messages above)");
  warn_if_unoptimized();
  const Index batch = inputs.dimension(opts.time_major ? 1 : 0);
  const Index time = inputs.dimension(opts.time_major ? 0 : 1);
  const Index depth = inputs.dimension(2);
  const char* layout = opts.time_major ? "[time, batch, depth]" : "[batch, time, depth]";
  if (batch <= 0 || time <= 0)
    throw ShapeError(concat("dynamic_rnn: inputs ", layout, " = [", inputs.dimension(0), ", ", inputs.dimension(1),
                            ", ", depth, "] must have at least one example and one time step"));
  if (depth != cell.input_depth())
    throw ShapeError(concat("dynamic_rnn: inputs ", layout, " have depth ", depth, ", ", cell.cell_name(),
                            " expects input depth ", cell.input_depth()));
  if (opts.sequence_length) check_lengths(*opts.sequence_length, batch, time, "dynamic_rnn");
  if (initial_state) cell.check_state(*initial_state, batch, "dynamic_rnn: initial_state");
  if (opts.batch_threads < 1)
    throw ValueError(concat("dynamic_rnn: batch_threads must be >= 1, given ", opts.batch_threads));
  SequenceArgs prec;  // the precision fields every slice's args take
  prec.training = opts.training;
  set_precision(cell, PrecisionChoice{opts.precision, opts.bf16_fallback, opts.bf16_kernel}, prec, "dynamic_rnn");
  const auto with_precision = [&](SequenceArgs a) {
    a.precision = prec.precision;
    a.bf16_kernel = prec.bf16_kernel;
    return a;
  };

  auto& tp = r.tape;
  tp.producer = nullptr;  // set again once the forward pass completed
  tp.time_major = opts.time_major;
  tp.training = opts.training;
  tp.draw = opts.draw ? *opts.draw : next_random_draw();
  auto& split = tp.split;
  const bool sort = opts.skip_ended_rows && opts.sequence_length.has_value() && skips_ended_rows_of(cell);
  split.plan(time, batch, opts.batch_threads, opts.sequence_length ? &*opts.sequence_length : nullptr, sort);
  resize_like(r.outputs, time, batch, cell.output_size(), opts.time_major);
  if (split.sorted()) {
    // Row skipping: each slice's rows are its examples in length order (rnn/batch_split.hpp).
    split.run([&](Index p, BatchSlice<Cell>& s) {
      gather_time_major(inputs, opts.time_major, s.rows.data(), s.n, s.inputs, split.lengths(p));
      const SequenceArgs args = with_precision(split.args(p, opts.training, tp.draw));
      if (initial_state)
        run_sequence(cell, s.tape, s.inputs, args, gather_state(cell, *initial_state, s.rows), s.outputs);
      else
        run_sequence(cell, s.tape, s.inputs, args, cell.zero_state(s.n), s.outputs);
      scatter_time_major(s.outputs, s.rows.data(), s.n, opts.time_major, r.outputs);
    });
    r.final_state = cell.zero_state(batch);
    for (Index p = 0; p < split.size(); ++p)
      scatter_state(r.final_state, split.slice(p).rows, cell.final_state(split.slice(p).tape));
    tp.producer = &cell;
    return;
  }
  split.run([&](Index p, BatchSlice<Cell>& s) {
    to_time_major(inputs, opts.time_major, s.b0, s.n, s.inputs, split.lengths(p));
    const SequenceArgs args = with_precision(split.args(p, opts.training, tp.draw));
    if (initial_state && split.whole())
      run_sequence(cell, s.tape, s.inputs, args, *initial_state, s.outputs);
    else if (initial_state)
      run_sequence(cell, s.tape, s.inputs, args, state_rows(*initial_state, s.b0, s.n), s.outputs);
    else
      run_sequence(cell, s.tape, s.inputs, args, cell.zero_state(s.n), s.outputs);
    from_time_major(s.outputs, s.b0, s.n, opts.time_major, r.outputs);
  });
  if (split.whole()) {
    r.final_state = cell.final_state(split.slice(0).tape);
  } else {
    r.final_state = cell.zero_state(batch);
    for (Index p = 0; p < split.size(); ++p)
      set_state_rows(r.final_state, split.slice(p).b0, cell.final_state(split.slice(p).tape));
  }
  tp.producer = &cell;
}

}  // namespace detail

/// tf.nn.dynamic_rnn(cell, inputs, initial_state, sequence_length, time_major): runs `cell` over
/// inputs [batch, time, depth] (a row-major Tensor3) from `initial_state`, or from the cell's zero
/// state when it is null.
template <class Cell>
RNNResult<Cell> dynamic_rnn(const Cell& cell, const Tensor3<typename Cell::Scalar>& inputs,
                            const RNNOptions& options = {}, const typename Cell::State* initial_state = nullptr) {
  RNNResult<Cell> r;
  detail::dynamic_rnn_impl(r, cell, inputs, initial_state, options);
  return r;
}

/// tf.nn.dynamic_rnn(cell, inputs, initial_state=..., ...), the initial state by reference.
template <class Cell>
RNNResult<Cell> dynamic_rnn(const Cell& cell, const Tensor3<typename Cell::Scalar>& inputs,
                            const typename Cell::State& initial_state, const RNNOptions& options = {}) {
  RNNResult<Cell> r;
  detail::dynamic_rnn_impl(r, cell, inputs, &initial_state, options);
  return r;
}

/// A column-major Eigen::Tensor (Eigen's default layout) does not compile, with this message
/// rather than Eigen's assertion deep in a conversion.
template <class Cell, class X, class... Rest, std::enable_if_t<detail::is_col_major_tensor<X>::value, int> = 0>
RNNResult<Cell> dynamic_rnn(const Cell&, const X&, Rest&&...) {
  static_assert(detail::dependent_false<X>,
                "cellflow takes row-major tensors: cellflow::Tensor3<T> = Eigen::Tensor<T, 3, Eigen::RowMajor>. "
                "Convert a column-major one with `cellflow::Tensor3<T> x = col_major.swap_layout().shuffle("
                "Eigen::array<int, 3>{2, 1, 0});` (same [batch, time, depth] indices)");
  return {};
}

/// dynamic_rnn into an existing result, reusing its buffers: a training loop that keeps one
/// RNNResult allocates nothing per step once the sizes are stable. `initial_state` may be null.
template <class Cell>
void dynamic_rnn_into(RNNResult<Cell>& result, const Cell& cell, const Tensor3<typename Cell::Scalar>& inputs,
                      const RNNOptions& options = {}, const typename Cell::State* initial_state = nullptr) {
  detail::dynamic_rnn_impl(result, cell, inputs, initial_state, options);
}

/// Backpropagation through time for a dynamic_rnn result computed with training = true.
/// d_outputs (the outputs' layout) and d_final_state are the upstream gradients; either may be
/// null. Accumulates (+=) into the cell's variable gradients and returns the gradients of the
/// inputs and of the initial state. The cell must be the one that produced `result`.
/// `observer`, if given, hears layer_done(l) once for every layer (a MultiRNNCell's, the top one
/// first; layer 0 of any other cell) as soon as that layer's weight gradients are final: during
/// the backward pass when the batch runs as one slice (batch_threads 1), otherwise once the
/// slices' gradients are summed.
template <class Cell>
RNNGradients<Cell> dynamic_rnn_backward(Cell& cell, RNNResult<Cell>& result,
                                        const Tensor3<typename Cell::Scalar>* d_outputs,
                                        const typename Cell::State* d_final_state = nullptr,
                                        BackwardObserver* observer = nullptr) {
  auto& tp = result.tape;
  auto& split = tp.split;
  if (!tp.training)
    throw Error("dynamic_rnn_backward: the forward pass ran with training = false and kept no activations");
  if (tp.producer != &cell)
    throw Error(detail::concat("dynamic_rnn_backward: the result was not computed by this ", cell.cell_name(),
                               " object (pass the cell that ran the forward pass)"));
  if (d_outputs) {
    for (int k = 0; k < 3; ++k) {
      if (d_outputs->dimension(k) != result.outputs.dimension(k))
        throw ShapeError(detail::concat("dynamic_rnn_backward: d_outputs is [", d_outputs->dimension(0), ", ",
                                        d_outputs->dimension(1), ", ", d_outputs->dimension(2), "], the outputs are [",
                                        result.outputs.dimension(0), ", ", result.outputs.dimension(1), ", ",
                                        result.outputs.dimension(2), "]"));
    }
  }
  if (d_final_state) cell.check_state(*d_final_state, split.batch(), "dynamic_rnn_backward: d_final_state");

  RNNGradients<Cell> g;
  detail::resize_like(g.d_inputs, split.time(), split.batch(), cell.input_depth(), tp.time_major);
  std::vector<typename Cell::State> d_initial(static_cast<std::size_t>(split.size()));
  split.begin_backward();
  if (split.sorted()) {
    // Row skipping: the slices' rows are their examples in length order.
    split.run([&](Index p, detail::BatchSlice<Cell>& s) {
      if (d_outputs)
        detail::gather_time_major(*d_outputs, tp.time_major, s.rows.data(), s.n, s.d_outputs, split.lengths(p));
      SequenceArgs args = split.args(p, true, tp.draw);
      if (split.whole()) args.observer = observer;
      const auto* dY = d_outputs ? &s.d_outputs : nullptr;
      auto& d0 = d_initial[static_cast<std::size_t>(p)];
      if (d_final_state) {
        const auto d_final = detail::gather_state(cell, *d_final_state, s.rows);
        run_sequence_backward(cell, s.tape, s.inputs, args, dY, &d_final, &s.d_inputs, d0, s.grads);
      } else {
        run_sequence_backward(cell, s.tape, s.inputs, args, dY, nullptr, &s.d_inputs, d0, s.grads);
      }
      detail::scatter_time_major(s.d_inputs, s.rows.data(), s.n, tp.time_major, g.d_inputs);
    });
  } else {
    split.run([&](Index p, detail::BatchSlice<Cell>& s) {
      if (d_outputs) detail::to_time_major(*d_outputs, tp.time_major, s.b0, s.n, s.d_outputs, split.lengths(p));
      SequenceArgs args = split.args(p, true, tp.draw);
      if (split.whole()) args.observer = observer;
      const auto* dY = d_outputs ? &s.d_outputs : nullptr;
      auto& d0 = d_initial[static_cast<std::size_t>(p)];
      if (d_final_state && !split.whole()) {
        const auto d_final = state_rows(*d_final_state, s.b0, s.n);
        run_sequence_backward(cell, s.tape, s.inputs, args, dY, &d_final, &s.d_inputs, d0, s.grads);
      } else {
        run_sequence_backward(cell, s.tape, s.inputs, args, dY, d_final_state, &s.d_inputs, d0, s.grads);
      }
      detail::from_time_major(s.d_inputs, s.b0, s.n, tp.time_major, g.d_inputs);
    });
  }
  split.reduce_gradients();
  if (observer) {
    constexpr bool stack = detail::has_layers<Cell>::value;
    if (!split.whole() || !stack) {
      Index layers = 1;
      if constexpr (stack) layers = cell.num_layers();
      for (Index l = layers; l-- > 0;) observer->layer_done(l);
    }
  }
  if (split.sorted()) {
    g.d_initial_state = cell.zero_state(split.batch());
    for (Index p = 0; p < split.size(); ++p)
      detail::scatter_state(g.d_initial_state, split.slice(p).rows, d_initial[static_cast<std::size_t>(p)]);
  } else if (split.whole()) {
    g.d_initial_state = std::move(d_initial[0]);
  } else {
    g.d_initial_state = cell.zero_state(split.batch());
    for (Index p = 0; p < split.size(); ++p)
      set_state_rows(g.d_initial_state, split.slice(p).b0, d_initial[static_cast<std::size_t>(p)]);
  }
  return g;
}

}  // namespace cellflow
