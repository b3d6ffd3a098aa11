// dynamic_rnn: tf.nn.dynamic_rnn for any cell (a single cell or a MultiRNNCell), forward and
// backward through time.
//
// Semantics (TF1): inputs [batch, time, depth] (time_major: [time, batch, depth]); with
// sequence_length, example b runs steps 0..len_b-1, its outputs past len_b are exactly 0 and its
// state is carried through unchanged, so the final state is the state after step len_b-1 (the
// initial state for len_b = 0). The initial state defaults to the cell's zero state.
// Backward uses the same selects: padded steps receive no gradient and contribute none.
#pragma once

#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/rnn/lengths.hpp"

namespace cellflow {

/// Options of dynamic_rnn, named as TF's arguments.
struct RNNOptions {
  /// Per-example lengths in [0, time]; none means every example runs all steps.
  std::optional<std::vector<Index>> sequence_length;
  /// Inputs and outputs are [time, batch, depth] instead of [batch, time, depth].
  bool time_major = false;
  /// Keep the per-step activations that dynamic_rnn_backward needs. Without them the forward
  /// pass keeps only two state slots per layer (inference).
  bool training = true;
};

/// What dynamic_rnn returns: outputs, final state, and the tape for dynamic_rnn_backward.
template <class Cell>
struct RNNResult {
  using T = typename Cell::Scalar;
  using State = typename Cell::State;

  Tensor3<T> outputs;  ///< [batch, time, output_size] ([time, batch, output_size] if time_major)
  State final_state;   ///< per example, the state after its last valid step

  /// Everything backward needs: the cell's per-step buffers and the time-major inputs.
  struct Tape {
    typename Cell::Tape cell;
    Matrix<T> inputs;  // [time*batch, depth], time-major
    Matrix<T> d_outputs, d_inputs;  // backward buffers, time-major, reused across calls
    std::optional<std::vector<Index>> lengths;
    Index time = 0, batch = 0;
    bool time_major = false, training = false;
  } tape;
};

/// Gradients dynamic_rnn_backward returns (variable gradients are accumulated into the cell).
template <class Cell>
struct RNNGradients {
  Tensor3<typename Cell::Scalar> d_inputs;   ///< same layout as the inputs
  typename Cell::State d_initial_state;      ///< gradient of the initial state
};

namespace detail {

template <class T>
void to_time_major(const Tensor3<T>& in, bool time_major, Matrix<T>& X) {
  const Index d0 = in.dimension(0), d1 = in.dimension(1), depth = in.dimension(2);
  X.resize(d0 * d1, depth);
  if (time_major || d0 == 1 || d1 == 1) {  // already [time*batch, depth] in memory
    if (X.size()) std::memcpy(X.data(), in.data(), sizeof(T) * static_cast<std::size_t>(X.size()));
    return;
  }
  const Index batch = d0, time = d1;
  for (Index b = 0; b < batch; ++b)
    for (Index t = 0; t < time; ++t)
      std::memcpy(X.row(t * batch + b).data(), in.data() + (b * time + t) * depth, sizeof(T) * depth);
}

template <class T>
void from_time_major(const Matrix<T>& X, Index time, Index batch, bool time_major, Tensor3<T>& out) {
  const Index depth = X.cols();
  if (time_major) {
    out.resize(time, batch, depth);
    if (X.size()) std::memcpy(out.data(), X.data(), sizeof(T) * static_cast<std::size_t>(X.size()));
    return;
  }
  out.resize(batch, time, depth);
  for (Index b = 0; b < batch; ++b)
    for (Index t = 0; t < time; ++t)
      std::memcpy(out.data() + (b * time + t) * depth, X.row(t * batch + b).data(), sizeof(T) * depth);
}

template <class Cell>
void dynamic_rnn_impl(RNNResult<Cell>& r, const Cell& cell, const Tensor3<typename Cell::Scalar>& inputs,
                      const typename Cell::State* initial_state, const RNNOptions& opts) {
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
  const Index steps = checked_steps(opts.sequence_length, batch, time, "dynamic_rnn");
  if (initial_state) cell.check_state(*initial_state, batch, "dynamic_rnn: initial_state");

  auto& tp = r.tape;
  tp.time = time;
  tp.batch = batch;
  tp.time_major = opts.time_major;
  tp.training = opts.training;
  tp.lengths = opts.sequence_length;
  to_time_major(inputs, opts.time_major, tp.inputs);
  Matrix<typename Cell::Scalar> Y;
  const auto* lengths = tp.lengths ? &*tp.lengths : nullptr;
  if (initial_state) {
    cell.forward_sequence(tp.cell, tp.inputs, time, batch, steps, *initial_state, lengths, Y, opts.training);
  } else {
    cell.forward_sequence(tp.cell, tp.inputs, time, batch, steps, cell.zero_state(batch), lengths, Y, opts.training);
  }
  from_time_major(Y, time, batch, opts.time_major, r.outputs);
  r.final_state = cell.final_state(tp.cell);
  if (!opts.training) tp.inputs.resize(0, 0);
}

}  // namespace detail

/// tf.nn.dynamic_rnn(cell, inputs, sequence_length, time_major) from the cell's zero state.
template <class Cell>
RNNResult<Cell> dynamic_rnn(const Cell& cell, const Tensor3<typename Cell::Scalar>& inputs,
                            const RNNOptions& options = {}) {
  RNNResult<Cell> r;
  detail::dynamic_rnn_impl(r, cell, inputs, nullptr, options);
  return r;
}

/// tf.nn.dynamic_rnn(cell, inputs, initial_state=..., sequence_length, time_major).
template <class Cell>
RNNResult<Cell> dynamic_rnn(const Cell& cell, const Tensor3<typename Cell::Scalar>& inputs,
                            const typename Cell::State& initial_state, const RNNOptions& options = {}) {
  RNNResult<Cell> r;
  detail::dynamic_rnn_impl(r, cell, inputs, &initial_state, options);
  return r;
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
template <class Cell>
RNNGradients<Cell> dynamic_rnn_backward(Cell& cell, RNNResult<Cell>& result,
                                        const Tensor3<typename Cell::Scalar>* d_outputs,
                                        const typename Cell::State* d_final_state = nullptr) {
  using T = typename Cell::Scalar;
  auto& tp = result.tape;
  if (!tp.training)
    throw Error("dynamic_rnn_backward: the forward pass ran with training = false and kept no activations");
  if (tp.inputs.cols() != cell.input_depth())
    throw ShapeError(detail::concat("dynamic_rnn_backward: the result has input depth ", tp.inputs.cols(), ", ",
                                    cell.cell_name(), " expects ", cell.input_depth(), " (a different cell?)"));
  Matrix<T>& dY = tp.d_outputs;
  if (d_outputs) {
    for (int k = 0; k < 3; ++k) {
      if (d_outputs->dimension(k) != result.outputs.dimension(k))
        throw ShapeError(detail::concat("dynamic_rnn_backward: d_outputs is [", d_outputs->dimension(0), ", ",
                                        d_outputs->dimension(1), ", ", d_outputs->dimension(2),
                                        "], the outputs are [", result.outputs.dimension(0), ", ",
                                        result.outputs.dimension(1), ", ", result.outputs.dimension(2), "]"));
    }
    detail::to_time_major(*d_outputs, tp.time_major, dY);
  }
  if (d_final_state) cell.check_state(*d_final_state, tp.batch, "dynamic_rnn_backward: d_final_state");
  RNNGradients<Cell> g;
  Matrix<T>& dX = tp.d_inputs;
  cell.backward_sequence(tp.cell, tp.inputs, tp.lengths ? &*tp.lengths : nullptr, d_outputs ? &dY : nullptr,
                         d_final_state, &dX, g.d_initial_state);
  detail::from_time_major(dX, tp.time, tp.batch, tp.time_major, g.d_inputs);
  return g;
}

}  // namespace cellflow
