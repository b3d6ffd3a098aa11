// stack_bidirectional_dynamic_rnn: tf.contrib.rnn.stack_bidirectional_dynamic_rnn (TF 1.15,
// contrib/rnn/python/ops/rnn.py), forward and backward.
//
// Semantics. Layers i = 0 .. N-1, each a pair (cells_fw[i], cells_bw[i]), all with the same
// sequence_length L and time_major:
//
//   x_0 = inputs
//   (y_fw_i, y_bw_i), (s_fw_i, s_bw_i) = bidirectional_dynamic_rnn(cells_fw[i], cells_bw[i], x_i, L,
//                                            initial_states_fw[i], initial_states_bw[i])
//                                            (variable scope "stack_bidirectional_rnn/cell_<i>")
//   x_{i+1} = concat([y_fw_i, y_bw_i], axis 2)       [batch, time, fw_i.output + bw_i.output]
//
// and TF returns (x_N, (s_fw_0, ..., s_fw_{N-1}), (s_bw_0, ..., s_bw_{N-1})). So layer i > 0 of
// both directions reads the depth fw_{i-1}.output_size + bw_{i-1}.output_size; layer 0's read the
// inputs. Past an example's length every layer's outputs are exactly 0 (rnn/bidirectional.hpp).
//
// Backward runs the layers top-down: the gradient of x_{i+1} splits into the gradients of y_fw_i
// (its first fw_i.output_size features) and y_bw_i (the rest), layer i's bidirectional backward
// pass turns them into the gradient of x_i, and so on down to the inputs.
//
// Variable names "<scope>/cell_<i>/bidirectional_rnn/fw/<cell scope>/..." then ".../bw/...", layer
// by layer (TF's creation order), scope defaulting to "stack_bidirectional_rnn":
// add_stack_bidirectional(vars, cells_fw, cells_bw) adds exactly those.
//
// Each layer's two directions run concurrently as in bidirectional_dynamic_rnn
// (BidirectionalOptions::concurrent_directions); the layers run one after the other.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "cellflow/cells/cell_state.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/rnn/any_cell.hpp"
#include "cellflow/rnn/bidirectional.hpp"

namespace cellflow {

/// What stack_bidirectional_dynamic_rnn returns: the top layer's concatenated outputs and every
/// layer's final states (TF's (outputs, output_state_fw, output_state_bw)), and the tape.
template <class T>
struct StackBidirectionalResult {
  /// [batch, time, fw + bw output sizes of the top layer] ([time, batch, ...] if time_major)
  Tensor3<T> outputs;
  std::vector<CellState<T>> final_states_fw;  ///< layer 0 first: each forward cell's final state
  std::vector<CellState<T>> final_states_bw;  ///< layer 0 first: each backward cell's final state

  // ---- internal ----

  /// Everything backward needs: each layer's bidirectional result.
  struct Tape {
    std::vector<BidirectionalResult<AnyCell<T>, AnyCell<T>>> layers;
  } tape;  ///< written by stack_bidirectional_dynamic_rnn, read by its backward pass
};

/// Gradients stack_bidirectional_dynamic_rnn_backward returns (variable gradients are accumulated
/// into the cells).
template <class T>
struct StackBidirectionalGradients {
  Tensor3<T> d_inputs;                            ///< same layout as the inputs
  std::vector<CellState<T>> d_initial_states_fw;  ///< layer 0 first
  std::vector<CellState<T>> d_initial_states_bw;  ///< layer 0 first
};

namespace detail {

/// T itself, in a context that does not deduce it (so that a nullptr argument is accepted).
template <class T>
struct no_deduce {
  using type = T;
};

/// The checks of a stack that do not depend on the inputs: one backward cell per forward cell,
/// at least one layer, and each layer's input depth equal to the layer below's fw + bw outputs.
template <class T>
void check_stack_bidirectional(const char* op, const std::vector<AnyCell<T>>& cells_fw,
                               const std::vector<AnyCell<T>>& cells_bw) {
  if (cells_fw.empty()) throw ValueError(concat(op, ": cells_fw is empty (one cell per layer is needed)"));
  if (cells_fw.size() != cells_bw.size())
    throw ValueError(concat(op, ": cells_fw has ", cells_fw.size(), " layers, cells_bw has ", cells_bw.size(),
                            " (forward and backward cells must have the same depth)"));
  if (cells_fw[0].input_depth() != cells_bw[0].input_depth())
    throw ShapeError(concat(op, ": cells_fw[0] (", cells_fw[0].cell_name(), ") has input depth ",
                            cells_fw[0].input_depth(), ", cells_bw[0] (", cells_bw[0].cell_name(), ") has ",
                            cells_bw[0].input_depth(), " (both read the inputs)"));
  for (std::size_t i = 1; i < cells_fw.size(); ++i) {
    const Index below = cells_fw[i - 1].output_size() + cells_bw[i - 1].output_size();
    for (const auto* cells : {&cells_fw, &cells_bw}) {
      const AnyCell<T>& c = (*cells)[i];
      if (c.input_depth() != below)
        throw ShapeError(concat(op, ": ", cells == &cells_fw ? "cells_fw[" : "cells_bw[", i, "] (", c.cell_name(),
                                ") has input depth ", c.input_depth(), ", expected ", below, " = cells_fw[", i - 1,
                                "] output ", cells_fw[i - 1].output_size(), " + cells_bw[", i - 1, "] output ",
                                cells_bw[i - 1].output_size(), " (layer ", i,
                                " reads the concatenated [fw, bw] outputs of layer ", i - 1, ")"));
    }
  }
}

/// The gradient of concat([a, b], 2) split back: the first `a` features into da, the rest into db.
template <class T>
void split_features(const Tensor3<T>& d, Index a, Tensor3<T>& da, Tensor3<T>& db) {
  const Index rows = d.dimension(0) * d.dimension(1), n = d.dimension(2), b = n - a;
  da.resize(d.dimension(0), d.dimension(1), a);
  db.resize(d.dimension(0), d.dimension(1), b);
  for (Index r = 0; r < rows; ++r) {
    std::copy(d.data() + r * n, d.data() + r * n + a, da.data() + r * a);
    std::copy(d.data() + r * n + a, d.data() + (r + 1) * n, db.data() + r * b);
  }
}

}  // namespace detail

/// tf.contrib.rnn.stack_bidirectional_dynamic_rnn(cells_fw, cells_bw, inputs, initial_states_fw,
/// initial_states_bw, sequence_length, time_major): see the top of this header. Cells of any kind
/// (an AnyCell holds any cell with an LSTM or GRU kind of state), one forward and one backward cell
/// per layer; initial states, when given, one per layer (null: the zero states).
template <class T>
StackBidirectionalResult<T> stack_bidirectional_dynamic_rnn(
    const std::vector<AnyCell<T>>& cells_fw, const std::vector<AnyCell<T>>& cells_bw, const Tensor3<T>& inputs,
    const BidirectionalOptions& options = {},
    const typename detail::no_deduce<std::vector<CellState<T>>>::type* initial_states_fw = nullptr,
    const typename detail::no_deduce<std::vector<CellState<T>>>::type* initial_states_bw = nullptr) {
  constexpr const char* op = "stack_bidirectional_dynamic_rnn";
  detail::check_stack_bidirectional(op, cells_fw, cells_bw);
  const std::size_t N = cells_fw.size();
  for (const auto* s : {initial_states_fw, initial_states_bw})
    if (s && s->size() != N)
      throw ValueError(detail::concat(op, ": ", s == initial_states_fw ? "initial_states_fw" : "initial_states_bw",
                                      " has ", s->size(), " states, expected one per layer (", N, ")"));
  StackBidirectionalResult<T> r;
  // Made in place: a layer's result is neither copyable nor (for std::vector) noexcept-movable.
  r.tape.layers = std::vector<BidirectionalResult<AnyCell<T>, AnyCell<T>>>(N);
  Tensor3<T> between;  // x_i for i > 0
  for (std::size_t i = 0; i < N; ++i) {
    auto& layer = r.tape.layers[i];
    const std::string layer_op = detail::concat(op, " (layer ", i, ")");
    detail::bidirectional_impl(layer, cells_fw[i], cells_bw[i], i == 0 ? inputs : between, options,
                               initial_states_fw ? &(*initial_states_fw)[i] : nullptr,
                               initial_states_bw ? &(*initial_states_bw)[i] : nullptr, layer_op.c_str());
    (i + 1 == N ? r.outputs : between) = concat_outputs(layer.output_fw, layer.output_bw);
    r.final_states_fw.push_back(layer.final_state_fw);
    r.final_states_bw.push_back(layer.final_state_bw);
  }
  return r;
}

/// Backpropagation through a stack_bidirectional_dynamic_rnn result computed with training =
/// true, top layer first. d_outputs (the outputs' layout) and the per-layer final-state gradients
/// (one per layer when given) may each be null. Accumulates (+=) into every cell's variable
/// gradients; the cells must be the ones that produced `result`.
template <class T>
StackBidirectionalGradients<T> stack_bidirectional_dynamic_rnn_backward(
    std::vector<AnyCell<T>>& cells_fw, std::vector<AnyCell<T>>& cells_bw, StackBidirectionalResult<T>& result,
    const typename detail::no_deduce<Tensor3<T>>::type* d_outputs,
    const typename detail::no_deduce<std::vector<CellState<T>>>::type* d_final_states_fw = nullptr,
    const typename detail::no_deduce<std::vector<CellState<T>>>::type* d_final_states_bw = nullptr) {
  constexpr const char* op = "stack_bidirectional_dynamic_rnn_backward";
  detail::check_stack_bidirectional(op, cells_fw, cells_bw);
  const std::size_t N = cells_fw.size();
  if (result.tape.layers.size() != N)
    throw Error(detail::concat(op, ": the result holds ", result.tape.layers.size(), " layers, the cells ", N,
                               " (pass the cells that ran the forward pass)"));
  for (const auto* s : {d_final_states_fw, d_final_states_bw})
    if (s && s->size() != N)
      throw ValueError(detail::concat(op, ": ", s == d_final_states_fw ? "d_final_states_fw" : "d_final_states_bw",
                                      " has ", s->size(), " states, expected one per layer (", N, ")"));
  if (d_outputs) detail::check_same_dims(op, "d_outputs", *d_outputs, result.outputs, "the outputs");
  StackBidirectionalGradients<T> g;
  g.d_initial_states_fw.resize(N);
  g.d_initial_states_bw.resize(N);
  Tensor3<T> d_fw, d_bw, d_x;  // the gradients of layer i's outputs; of its inputs
  bool has_d = d_outputs != nullptr;
  for (std::size_t i = N; i-- > 0;) {
    auto& layer = result.tape.layers[i];
    if (has_d) detail::split_features(i + 1 == N ? *d_outputs : d_x, cells_fw[i].output_size(), d_fw, d_bw);
    auto gi = bidirectional_dynamic_rnn_backward(
        cells_fw[i], cells_bw[i], layer, has_d ? &d_fw : nullptr, has_d ? &d_bw : nullptr,
        d_final_states_fw ? &(*d_final_states_fw)[i] : nullptr, d_final_states_bw ? &(*d_final_states_bw)[i] : nullptr);
    d_x = std::move(gi.d_inputs);
    has_d = true;
    g.d_initial_states_fw[i] = std::move(gi.d_initial_state_fw);
    g.d_initial_states_bw[i] = std::move(gi.d_initial_state_bw);
  }
  g.d_inputs = std::move(d_x);
  return g;
}

/// Adds every layer's variables, layer 0 first, forward cell then backward cell, under
/// "<scope>/cell_<i>/bidirectional_rnn/fw/..." and ".../bw/...": TF's names and creation order
/// for stack_bidirectional_dynamic_rnn(..., scope=scope) (default "stack_bidirectional_rnn").
/// ValueError unless both lists have the same number of cells.
template <class T>
VariableList<T>& add_stack_bidirectional(VariableList<T>& vars, std::vector<AnyCell<T>>& cells_fw,
                                         std::vector<AnyCell<T>>& cells_bw,
                                         const std::string& scope = "stack_bidirectional_rnn") {
  if (cells_fw.size() != cells_bw.size())
    throw ValueError(detail::concat("add_stack_bidirectional: cells_fw has ", cells_fw.size(), " layers, cells_bw has ",
                                    cells_bw.size()));
  for (std::size_t i = 0; i < cells_fw.size(); ++i)
    add_bidirectional(vars, cells_fw[i], cells_bw[i],
                      detail::join_scope(scope, detail::concat("cell_", i, "/bidirectional_rnn")));
  return vars;
}

}  // namespace cellflow
