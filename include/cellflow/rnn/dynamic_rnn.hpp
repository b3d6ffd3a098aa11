// dynamic_rnn: tf.nn.dynamic_rnn for any cell (a single cell or a MultiRNNCell), forward and
// backward through time.
//
// Semantics (TF1): inputs [batch, time, depth] (time_major: [time, batch, depth]); with
// sequence_length, example b runs steps 0..len_b-1, its outputs past len_b are exactly 0 and its
// state is carried through unchanged, so the final state is the state after step len_b-1 (the
// initial state for len_b = 0). The initial state defaults to the cell's zero state.
// Backward uses the same selects: padded steps receive no gradient and contribute none.
#pragma once

#include <algorithm>
#include <cstring>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/rnn/lengths.hpp"
#include "cellflow/rnn/state_rows.hpp"

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
  /// Split the batch into this many contiguous slices, each run on its own OpenMP thread with
  /// single-threaded matrix products and no barrier per time step; backward sums the slices'
  /// weight gradients once. Results equal the unsplit run up to float rounding. Without OpenMP
  /// (-fopenmp) the slices run one after another.
  int batch_threads = 1;
};

/// What dynamic_rnn returns: outputs, final state, and the tape for dynamic_rnn_backward.
template <class Cell>
struct RNNResult {
  using T = typename Cell::Scalar;
  using State = typename Cell::State;

  Tensor3<T> outputs;  ///< [batch, time, output_size] ([time, batch, output_size] if time_major)
  State final_state;   ///< per example, the state after its last valid step

  /// One contiguous slice of the batch: its cell buffers and time-major inputs and outputs.
  struct Slice {
    typename Cell::Tape cell;
    Matrix<T> inputs;               // [time*n, depth]
    Matrix<T> outputs;              // [time*n, output_size]
    Matrix<T> d_outputs, d_inputs;  // backward buffers
    std::optional<std::vector<Index>> lengths;
    Index b0 = 0, n = 0, steps = 0;
  };
  /// Everything backward needs, reused by dynamic_rnn_into across calls.
  struct Tape {
    std::vector<Slice> slices;
    std::vector<Cell> replicas;      // gradient accumulators of slices 1.. (batch_threads > 1)
    const Cell* producer = nullptr;  // the cell whose forward pass filled the tape
    Index time = 0, batch = 0;
    bool time_major = false, training = false;
  } tape;
};

/// Gradients dynamic_rnn_backward returns (variable gradients are accumulated into the cell).
template <class Cell>
struct RNNGradients {
  Tensor3<typename Cell::Scalar> d_inputs;  ///< same layout as the inputs
  typename Cell::State d_initial_state;     ///< gradient of the initial state
};

namespace detail {

/// Examples [b0, b0 + n) of `in` as a time-major [time*n, depth] matrix.
template <class T>
void to_time_major(const Tensor3<T>& in, bool time_major, Index b0, Index n, Matrix<T>& X) {
  const Index batch = in.dimension(time_major ? 1 : 0), time = in.dimension(time_major ? 0 : 1);
  const Index depth = in.dimension(2);
  X.resize(time * n, depth);
  if (X.size() == 0) return;
  if (time_major && b0 == 0 && n == batch) {  // already [time*batch, depth] in memory
    std::memcpy(X.data(), in.data(), sizeof(T) * static_cast<std::size_t>(X.size()));
    return;
  }
  for (Index t = 0; t < time; ++t)
    for (Index b = 0; b < n; ++b) {
      const Index src = time_major ? (t * batch + b0 + b) : ((b0 + b) * time + t);
      std::memcpy(X.row(t * n + b).data(), in.data() + src * depth, sizeof(T) * static_cast<std::size_t>(depth));
    }
}

/// Writes the time-major [time*n, depth] X into examples [b0, b0 + n) of `out` (already sized).
template <class T>
void from_time_major(const Matrix<T>& X, Index b0, Index n, bool time_major, Tensor3<T>& out) {
  const Index batch = out.dimension(time_major ? 1 : 0), time = out.dimension(time_major ? 0 : 1);
  const Index depth = X.cols();
  if (X.size() == 0) return;
  if (time_major && b0 == 0 && n == batch) {
    std::memcpy(out.data(), X.data(), sizeof(T) * static_cast<std::size_t>(X.size()));
    return;
  }
  for (Index t = 0; t < time; ++t)
    for (Index b = 0; b < n; ++b) {
      const Index dst = time_major ? (t * batch + b0 + b) : ((b0 + b) * time + t);
      std::memcpy(out.data() + dst * depth, X.row(t * n + b).data(), sizeof(T) * static_cast<std::size_t>(depth));
    }
}

template <class T>
void resize_like(Tensor3<T>& t, Index time, Index batch, Index depth, bool time_major) {
  const Index d0 = time_major ? time : batch, d1 = time_major ? batch : time;
  if (t.dimension(0) != d0 || t.dimension(1) != d1 || t.dimension(2) != depth) t.resize(d0, d1, depth);
}

/// Runs body(p) for p in [0, n): on n OpenMP threads when available. The first exception is
/// rethrown after all slices finished.
template <class Body>
void for_each_slice(Index n, Body&& body) {
  if (n == 1) {
    body(Index(0));
    return;
  }
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n));
#ifdef _OPENMP
#pragma omp parallel for num_threads(static_cast <int>(n)) schedule(static, 1)
#endif
  for (Index p = 0; p < n; ++p) {
    try {
      body(p);
    } catch (...) {
      errors[static_cast<std::size_t>(p)] = std::current_exception();
    }
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
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
  checked_steps(opts.sequence_length, batch, time, "dynamic_rnn");
  if (initial_state) cell.check_state(*initial_state, batch, "dynamic_rnn: initial_state");
  if (opts.batch_threads < 1)
    throw ValueError(concat("dynamic_rnn: batch_threads must be >= 1, given ", opts.batch_threads));

  auto& tp = r.tape;
  tp.producer = nullptr;  // set again once the forward pass completed
  tp.time = time;
  tp.batch = batch;
  tp.time_major = opts.time_major;
  tp.training = opts.training;
  const Index P = std::min<Index>(opts.batch_threads, batch);
  tp.slices.resize(static_cast<std::size_t>(P));
  for (Index p = 0; p < P; ++p) {
    auto& s = tp.slices[static_cast<std::size_t>(p)];
    s.b0 = batch * p / P;
    s.n = batch * (p + 1) / P - s.b0;
    if (opts.sequence_length) {
      s.lengths = std::vector<Index>(opts.sequence_length->begin() + s.b0, opts.sequence_length->begin() + s.b0 + s.n);
      s.steps = *std::max_element(s.lengths->begin(), s.lengths->end());
    } else {
      s.lengths.reset();
      s.steps = time;
    }
  }
  resize_like(r.outputs, time, batch, cell.output_size(), opts.time_major);
  const bool whole = P == 1;
  for_each_slice(P, [&](Index p) {
    auto& s = tp.slices[static_cast<std::size_t>(p)];
    to_time_major(inputs, opts.time_major, s.b0, s.n, s.inputs);
    const auto* lengths = s.lengths ? &*s.lengths : nullptr;
    if (initial_state && whole)
      cell.forward_sequence(s.cell, s.inputs, time, s.n, s.steps, *initial_state, lengths, s.outputs, opts.training);
    else if (initial_state)
      cell.forward_sequence(s.cell, s.inputs, time, s.n, s.steps, rows_of(*initial_state, s.b0, s.n), lengths,
                            s.outputs, opts.training);
    else
      cell.forward_sequence(s.cell, s.inputs, time, s.n, s.steps, cell.zero_state(s.n), lengths, s.outputs,
                            opts.training);
    from_time_major(s.outputs, s.b0, s.n, opts.time_major, r.outputs);
  });
  if (whole) {
    r.final_state = cell.final_state(tp.slices[0].cell);
  } else {
    r.final_state = cell.zero_state(batch);
    for (const auto& s : tp.slices) set_rows(r.final_state, s.b0, cell.final_state(s.cell));
  }
  tp.producer = &cell;
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
  if (d_final_state) cell.check_state(*d_final_state, tp.batch, "dynamic_rnn_backward: d_final_state");

  const Index P = static_cast<Index>(tp.slices.size());
  const bool whole = P == 1;
  // Slices 1.. accumulate into replicas of the cell (same weights, zeroed gradients), summed
  // into the cell once at the end: no two threads ever write the same gradient.
  VariableList<T> main_vars;
  std::vector<VariableList<T>> replica_vars;
  if (!whole) {
    while (static_cast<Index>(tp.replicas.size()) < P - 1) tp.replicas.push_back(cell);
    main_vars.add(cell);
    replica_vars.resize(static_cast<std::size_t>(P - 1));
    for (Index p = 0; p + 1 < P; ++p) {
      auto& rv = replica_vars[static_cast<std::size_t>(p)];
      rv.add(tp.replicas[static_cast<std::size_t>(p)]);
      bool same = rv.size() == main_vars.size();
      for (std::size_t k = 0; same && k < rv.size(); ++k) same = rv[k].shape == main_vars[k].shape;
      if (!same) {  // a reused result that served another architecture: start a fresh replica
        tp.replicas[static_cast<std::size_t>(p)] = cell;
        rv = VariableList<T>();
        rv.add(tp.replicas[static_cast<std::size_t>(p)]);
      }
      for (std::size_t k = 0; k < rv.size(); ++k) {
        *rv[k].value = *main_vars[k].value;
        rv[k].grad->setZero();
      }
    }
  }
  RNNGradients<Cell> g;
  detail::resize_like(g.d_inputs, tp.time, tp.batch, cell.input_depth(), tp.time_major);
  std::vector<typename Cell::State> d_initial(static_cast<std::size_t>(P));
  detail::for_each_slice(P, [&](Index p) {
    auto& s = tp.slices[static_cast<std::size_t>(p)];
    Cell& c = p == 0 ? cell : tp.replicas[static_cast<std::size_t>(p - 1)];
    if (d_outputs) detail::to_time_major(*d_outputs, tp.time_major, s.b0, s.n, s.d_outputs);
    const auto* lengths = s.lengths ? &*s.lengths : nullptr;
    if (d_final_state && !whole) {
      const auto d_final = detail::rows_of(*d_final_state, s.b0, s.n);
      c.backward_sequence(s.cell, s.inputs, lengths, d_outputs ? &s.d_outputs : nullptr, &d_final, &s.d_inputs,
                          d_initial[static_cast<std::size_t>(p)]);
    } else {
      c.backward_sequence(s.cell, s.inputs, lengths, d_outputs ? &s.d_outputs : nullptr, d_final_state, &s.d_inputs,
                          d_initial[static_cast<std::size_t>(p)]);
    }
    detail::from_time_major(s.d_inputs, s.b0, s.n, tp.time_major, g.d_inputs);
  });
  for (std::size_t p = 0; p < replica_vars.size(); ++p)
    for (std::size_t k = 0; k < main_vars.size(); ++k) *main_vars[k].grad += *replica_vars[p][k].grad;
  if (whole) {
    g.d_initial_state = std::move(d_initial[0]);
  } else {
    g.d_initial_state = cell.zero_state(tp.batch);
    for (Index p = 0; p < P; ++p)
      detail::set_rows(g.d_initial_state, tp.slices[static_cast<std::size_t>(p)].b0,
                       d_initial[static_cast<std::size_t>(p)]);
  }
  return g;
}

}  // namespace cellflow
