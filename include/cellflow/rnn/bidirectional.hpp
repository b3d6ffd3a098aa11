// bidirectional_dynamic_rnn: tf.nn.bidirectional_dynamic_rnn (TF 1.15, python/ops/rnn.py) for any
// two cells, forward and backward through time.
//
// Semantics. Inputs x [batch, time, depth] (time_major: [time, batch, depth]), lengths L_b (or
// L_b = time for every b without sequence_length). Write rev_L for TF's reverse_sequence along
// the time axis: for example b,
//
//   rev_L(x)[b, t] = x[b, L_b - 1 - t]   for t < L_b,      rev_L(x)[b, t] = x[b, t]   for t >= L_b
//
// (without sequence_length TF reverses the whole time axis, which is rev_L with every L_b = time).
// Then, with dynamic_rnn's semantics for each direction (rnn/dynamic_rnn.hpp),
//
//   (y_fw, s_fw) = dynamic_rnn(cell_fw, x, L, initial_state_fw)          variable scope .../fw
//   (z,    s_bw) = dynamic_rnn(cell_bw, rev_L(x), L, initial_state_bw)   variable scope .../bw
//   y_bw         = rev_L(z)
//
// and TF returns the outputs (y_fw, y_bw) and the final states (s_fw, s_bw): y_bw[b, t] is the
// backward cell's output after it has read x[b, L_b - 1] down to x[b, t], and s_bw is its state
// after reading x[b, 0]. Past an example's length both outputs are exactly 0 (dynamic_rnn writes
// zeros there and rev_L leaves those positions in place). Users concatenate the outputs as
// tf.concat(outputs, 2): concat_outputs(result) here.
//
// Gradients. rev_L is a permutation of time steps (its own inverse), so
//
//   dL/dx = d_fw(x) + rev_L(d_bw(rev_L(x)))
//
// where d_fw is dynamic_rnn's backward pass of the forward cell given dL/dy_fw, and d_bw that of
// the backward cell given rev_L(dL/dy_bw). Padded steps receive no gradient and contribute none in
// either direction, whatever the inputs or d_outputs hold there (NaN included): dynamic_rnn never
// reads those rows, and rev_L never moves them.
//
// Variable names: TF opens `scope` (default "bidirectional_rnn"), then "fw" and "bw", and the
// forward cell creates its variables first: "bidirectional_rnn/fw/lstm_cell/kernel", ...,
// "bidirectional_rnn/bw/gru_cell/gates/kernel", ... add_bidirectional(vars, cell_fw, cell_bw) adds
// both cells under exactly these names (equivalently vars.add(cell_fw, "bidirectional_rnn/fw")
// .add(cell_bw, "bidirectional_rnn/bw")).
//
// Threads. The directions are independent: with OpenMP and more than one thread available,
// bidirectional_dynamic_rnn and its backward pass run them on two threads at once
// (BidirectionalOptions::concurrent_directions, default on). Each direction is the same
// computation on either path, so the results are bitwise identical whether the directions run
// concurrently or one after the other. batch_threads = n splits each direction's batch as in
// dynamic_rnn; when the OpenMP runtime cannot open a nested team of n threads inside the two
// direction threads (nesting disabled, the default of most runtimes), the directions run one
// after the other, each with its n slice threads, rather than concurrently with one thread each.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/rnn/batch_split.hpp"
#include "cellflow/rnn/dynamic_rnn.hpp"

namespace cellflow {

/// Options of bidirectional_dynamic_rnn and stack_bidirectional_dynamic_rnn: dynamic_rnn's
/// RNNOptions (sequence_length, time_major, training, batch_threads; each direction runs with
/// them) and whether the two directions may run on two threads at once.
struct BidirectionalOptions : RNNOptions {
  /// The defaults of RNNOptions, directions concurrent.
  BidirectionalOptions() = default;
  /// The options of an existing RNNOptions, directions concurrent (implicit on purpose: an
  /// RNNOptions can be passed where BidirectionalOptions are expected).
  BidirectionalOptions(const RNNOptions& o) : RNNOptions(o) {}  // NOLINT: implicit by design
  /// Run the forward and backward directions on two OpenMP threads at once when threads are
  /// available (see the top of rnn/bidirectional.hpp); false: forward, then backward. The
  /// results are bitwise the same either way.
  bool concurrent_directions = true;
};

/// What bidirectional_dynamic_rnn returns: TF's outputs (output_fw, output_bw) and output_states
/// (final_state_fw, final_state_bw), and the tape for bidirectional_dynamic_rnn_backward.
template <class CellFw, class CellBw>
struct BidirectionalResult {
  /// The cells' scalar type.
  using T = typename CellFw::Scalar;

  Tensor3<T> output_fw;  ///< [batch, time, cell_fw.output_size] ([time, batch, ...] if time_major)
  /// [batch, time, cell_bw.output_size], in input order: step t holds the backward cell's output
  /// after reading steps L_b - 1 down to t (zero past each example's length)
  Tensor3<T> output_bw;
  typename CellFw::State final_state_fw;  ///< the forward cell's state after step L_b - 1
  typename CellBw::State final_state_bw;  ///< the backward cell's state after reading step 0

  // ---- internal ----

  /// Everything backward needs: each direction's dynamic_rnn result and the lengths.
  struct Tape {
    RNNResult<CellFw> fw;        // dynamic_rnn over the inputs
    RNNResult<CellBw> bw;        // dynamic_rnn over the reversed inputs (outputs in reversed order)
    std::vector<Index> lengths;  // sequence_length, or empty
    bool has_lengths = false, time_major = false, concurrent = false;
    Tensor3<T> reversed;  // scratch: the reversed inputs, then the reversed d_output_bw
  } tape;                 ///< written by bidirectional_dynamic_rnn, read by bidirectional_dynamic_rnn_backward
};

/// Gradients bidirectional_dynamic_rnn_backward returns (variable gradients are accumulated into
/// the cells).
template <class CellFw, class CellBw>
struct BidirectionalGradients {
  Tensor3<typename CellFw::Scalar> d_inputs;  ///< same layout as the inputs: both directions' sum
  typename CellFw::State d_initial_state_fw;  ///< gradient of the forward initial state
  typename CellBw::State d_initial_state_bw;  ///< gradient of the backward initial state
};

namespace detail {

/// TF's reverse_sequence of `in` along its time axis into `out` (resized): example b's steps
/// [0, lengths[b]) reversed, the steps past it copied in place; lengths null: every step reversed.
template <class T>
void reverse_sequence_into(const Tensor3<T>& in, const Index* lengths, bool time_major, Tensor3<T>& out) {
  const Index batch = in.dimension(time_major ? 1 : 0), time = in.dimension(time_major ? 0 : 1);
  const Index depth = in.dimension(2);
  if (out.dimensions() != in.dimensions()) out.resize(in.dimensions());
  const auto bytes = sizeof(T) * static_cast<std::size_t>(depth);
  if (bytes == 0) return;
  for (Index b = 0; b < batch; ++b) {
    const Index len = lengths ? lengths[b] : time;
    for (Index t = 0; t < time; ++t) {
      const Index src_t = t < len ? len - 1 - t : t;
      const Index dst = time_major ? (t * batch + b) : (b * time + t);
      const Index src = time_major ? (src_t * batch + b) : (b * time + src_t);
      std::memcpy(out.data() + dst * depth, in.data() + src * depth, bytes);
    }
  }
}

/// Whether the two directions of a bidirectional run go on two threads (the top of this header).
inline bool directions_concurrent(const BidirectionalOptions& o) {
#ifdef _OPENMP
  if (!o.concurrent_directions || omp_get_max_threads() < 2) return false;
  // Two direction threads need one more active level; their slice teams (batch_threads > 1) another.
  const int levels_needed = omp_get_active_level() + (o.batch_threads > 1 ? 2 : 1);
  return levels_needed <= omp_get_max_active_levels();
#else
  (void)o;
  return false;
#endif
}

/// Runs direction(0) and direction(1): on two threads when `concurrent`, else one after the
/// other. The first exception is rethrown once both finished.
template <class Body>
void run_directions(bool concurrent, Body&& direction) {
  if (concurrent) {
    for_each_slice(2, direction);
  } else {
    direction(Index(0));
    direction(Index(1));
  }
}

/// "[a, b, c]" of a tensor's dimensions, for messages.
template <class T>
std::string dims_string(const Tensor3<T>& t) {
  return concat("[", t.dimension(0), ", ", t.dimension(1), ", ", t.dimension(2), "]");
}

/// The argument checks of bidirectional_dynamic_rnn (also each layer of a stack: `op` names it).
template <class CellFw, class CellBw>
void check_bidirectional_args(const std::string& op, const CellFw& cell_fw, const CellBw& cell_bw,
                              const Tensor3<typename CellFw::Scalar>& inputs, const BidirectionalOptions& opts,
                              const typename CellFw::State* s_fw, const typename CellBw::State* s_bw) {
  const Index batch = inputs.dimension(opts.time_major ? 1 : 0);
  const Index time = inputs.dimension(opts.time_major ? 0 : 1);
  const Index depth = inputs.dimension(2);
  const char* layout = opts.time_major ? "[time, batch, depth]" : "[batch, time, depth]";
  if (batch <= 0 || time <= 0)
    throw ShapeError(concat(op, ": inputs ", layout, " = ", dims_string(inputs),
                            " must have at least one example and one time step"));
  if (depth != cell_fw.input_depth())
    throw ShapeError(concat(op, ": inputs ", layout, " have depth ", depth, ", cell_fw (", cell_fw.cell_name(),
                            ") expects input depth ", cell_fw.input_depth()));
  if (depth != cell_bw.input_depth())
    throw ShapeError(concat(op, ": inputs ", layout, " have depth ", depth, ", cell_bw (", cell_bw.cell_name(),
                            ") expects input depth ", cell_bw.input_depth(),
                            " (both directions read the same inputs)"));
  if (opts.sequence_length) check_lengths(*opts.sequence_length, batch, time, op.c_str());
  if (s_fw) cell_fw.check_state(*s_fw, batch, op + ": initial_state_fw");
  if (s_bw) cell_bw.check_state(*s_bw, batch, op + ": initial_state_bw");
  if (opts.batch_threads < 1) throw ValueError(concat(op, ": batch_threads must be >= 1, given ", opts.batch_threads));
}

template <class CellFw, class CellBw>
void bidirectional_impl(BidirectionalResult<CellFw, CellBw>& r, const CellFw& cell_fw, const CellBw& cell_bw,
                        const Tensor3<typename CellFw::Scalar>& inputs, const BidirectionalOptions& opts,
                        const typename CellFw::State* s_fw, const typename CellBw::State* s_bw,
                        const char* op = "bidirectional_dynamic_rnn") {
  static_assert(check_cell<CellFw>(), "bidirectional_dynamic_rnn: cell_fw is not a cell (see the messages above)");
  static_assert(check_cell<CellBw>(), "bidirectional_dynamic_rnn: cell_bw is not a cell (see the messages above)");
  static_assert(std::is_same_v<typename CellFw::Scalar, typename CellBw::Scalar>,
                "bidirectional_dynamic_rnn: cell_fw and cell_bw must have the same scalar type");
  check_bidirectional_args(op, cell_fw, cell_bw, inputs, opts, s_fw, s_bw);
  auto& tp = r.tape;
  tp.has_lengths = static_cast<bool>(opts.sequence_length);
  tp.lengths = tp.has_lengths ? *opts.sequence_length : std::vector<Index>{};
  tp.time_major = opts.time_major;
  tp.concurrent = directions_concurrent(opts);
  const Index* lengths = tp.has_lengths ? tp.lengths.data() : nullptr;
  const RNNOptions& ro = opts;
  run_directions(tp.concurrent, [&](Index direction) {
    if (direction == 0) {
      dynamic_rnn_into(tp.fw, cell_fw, inputs, ro, s_fw);
      r.output_fw = tp.fw.outputs;
    } else {
      reverse_sequence_into(inputs, lengths, opts.time_major, tp.reversed);
      dynamic_rnn_into(tp.bw, cell_bw, tp.reversed, ro, s_bw);
      reverse_sequence_into(tp.bw.outputs, lengths, opts.time_major, r.output_bw);
    }
  });
  r.final_state_fw = tp.fw.final_state;
  r.final_state_bw = tp.bw.final_state;
}

/// Throws ShapeError unless `d` (a d_output) has the dimensions of `out`.
template <class T>
void check_same_dims(const char* op, const char* what, const Tensor3<T>& d, const Tensor3<T>& out, const char* of) {
  if (d.dimensions() != out.dimensions())
    throw ShapeError(concat(op, ": ", what, " is ", dims_string(d), ", ", of, " is ", dims_string(out)));
}

}  // namespace detail

/// tf.reverse_sequence along the time axis (axis 1, or 0 when time_major): each example's first
/// lengths[b] steps reversed, the steps past its length left in place; without lengths the whole
/// time axis is reversed (tf.reverse). ShapeError / ValueError for lengths that do not fit.
template <class T>
Tensor3<T> reverse_sequence(const Tensor3<T>& input, const SequenceLengths& lengths = {}, bool time_major = false) {
  if (lengths)
    detail::check_lengths(*lengths, input.dimension(time_major ? 1 : 0), input.dimension(time_major ? 0 : 1),
                          "reverse_sequence");
  Tensor3<T> out;
  detail::reverse_sequence_into(input, lengths ? lengths->data() : nullptr, time_major, out);
  return out;
}

/// tf.nn.bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length, initial_state_fw,
/// initial_state_bw, time_major): see the top of this header. A null initial state is the cell's
/// zero state.
template <class CellFw, class CellBw>
BidirectionalResult<CellFw, CellBw> bidirectional_dynamic_rnn(
    const CellFw& cell_fw, const CellBw& cell_bw, const Tensor3<typename CellFw::Scalar>& inputs,
    const BidirectionalOptions& options = {}, const typename CellFw::State* initial_state_fw = nullptr,
    const typename CellBw::State* initial_state_bw = nullptr) {
  BidirectionalResult<CellFw, CellBw> r;
  detail::bidirectional_impl(r, cell_fw, cell_bw, inputs, options, initial_state_fw, initial_state_bw);
  return r;
}

/// tf.nn.bidirectional_dynamic_rnn with both initial states given by reference.
template <class CellFw, class CellBw>
BidirectionalResult<CellFw, CellBw> bidirectional_dynamic_rnn(const CellFw& cell_fw, const CellBw& cell_bw,
                                                              const Tensor3<typename CellFw::Scalar>& inputs,
                                                              const typename CellFw::State& initial_state_fw,
                                                              const typename CellBw::State& initial_state_bw,
                                                              const BidirectionalOptions& options = {}) {
  BidirectionalResult<CellFw, CellBw> r;
  detail::bidirectional_impl(r, cell_fw, cell_bw, inputs, options, &initial_state_fw, &initial_state_bw);
  return r;
}

/// bidirectional_dynamic_rnn into an existing result, reusing its buffers (as dynamic_rnn_into).
template <class CellFw, class CellBw>
void bidirectional_dynamic_rnn_into(BidirectionalResult<CellFw, CellBw>& result, const CellFw& cell_fw,
                                    const CellBw& cell_bw, const Tensor3<typename CellFw::Scalar>& inputs,
                                    const BidirectionalOptions& options = {},
                                    const typename CellFw::State* initial_state_fw = nullptr,
                                    const typename CellBw::State* initial_state_bw = nullptr) {
  detail::bidirectional_impl(result, cell_fw, cell_bw, inputs, options, initial_state_fw, initial_state_bw);
}

/// tf.concat([output_fw, output_bw], 2): [batch, time, fw + bw] (time-major likewise).
template <class T>
Tensor3<T> concat_outputs(const Tensor3<T>& output_fw, const Tensor3<T>& output_bw) {
  if (output_fw.dimension(0) != output_bw.dimension(0) || output_fw.dimension(1) != output_bw.dimension(1))
    throw ShapeError(detail::concat("concat_outputs: output_fw is ", detail::dims_string(output_fw), ", output_bw ",
                                    detail::dims_string(output_bw), " (the first two dimensions must agree)"));
  const Index rows = output_fw.dimension(0) * output_fw.dimension(1);
  const Index a = output_fw.dimension(2), b = output_bw.dimension(2);
  Tensor3<T> out(output_fw.dimension(0), output_fw.dimension(1), a + b);
  for (Index r = 0; r < rows; ++r) {
    std::copy(output_fw.data() + r * a, output_fw.data() + (r + 1) * a, out.data() + r * (a + b));
    std::copy(output_bw.data() + r * b, output_bw.data() + (r + 1) * b, out.data() + r * (a + b) + a);
  }
  return out;
}

/// tf.concat(outputs, 2) of a bidirectional result: [batch, time, fw + bw].
template <class CellFw, class CellBw>
Tensor3<typename CellFw::Scalar> concat_outputs(const BidirectionalResult<CellFw, CellBw>& result) {
  return concat_outputs(result.output_fw, result.output_bw);
}

/// Backpropagation through both directions of a bidirectional_dynamic_rnn result computed with
/// training = true (see the top of this header). d_output_fw, d_output_bw (the outputs' layouts)
/// and the final-state gradients are the upstream gradients; any may be null. Accumulates (+=)
/// into both cells' variable gradients and returns the gradients of the inputs and of both
/// initial states. The cells must be the ones that produced `result`.
template <class CellFw, class CellBw>
BidirectionalGradients<CellFw, CellBw> bidirectional_dynamic_rnn_backward(
    CellFw& cell_fw, CellBw& cell_bw, BidirectionalResult<CellFw, CellBw>& result,
    const Tensor3<typename CellFw::Scalar>* d_output_fw, const Tensor3<typename CellFw::Scalar>* d_output_bw,
    const typename CellFw::State* d_final_state_fw = nullptr,
    const typename CellBw::State* d_final_state_bw = nullptr) {
  constexpr const char* op = "bidirectional_dynamic_rnn_backward";
  auto& tp = result.tape;
  if (!tp.fw.tape.training || !tp.bw.tape.training)
    throw Error(detail::concat(op, ": the forward pass ran with training = false and kept no activations"));
  if (tp.fw.tape.producer != &cell_fw || tp.bw.tape.producer != &cell_bw)
    throw Error(detail::concat(op, ": the result was not computed by these cells (pass the cell_fw (",
                               cell_fw.cell_name(), ") and cell_bw (", cell_bw.cell_name(),
                               ") that ran the forward pass, in that order)"));
  if (d_output_fw) detail::check_same_dims(op, "d_output_fw", *d_output_fw, result.output_fw, "output_fw");
  if (d_output_bw) detail::check_same_dims(op, "d_output_bw", *d_output_bw, result.output_bw, "output_bw");
  const Index batch = tp.fw.tape.split.batch();
  if (d_final_state_fw) cell_fw.check_state(*d_final_state_fw, batch, detail::concat(op, ": d_final_state_fw"));
  if (d_final_state_bw) cell_bw.check_state(*d_final_state_bw, batch, detail::concat(op, ": d_final_state_bw"));

  const Index* lengths = tp.has_lengths ? tp.lengths.data() : nullptr;
  // One object as both cells: its gradients would be written from two threads.
  const bool concurrent = tp.concurrent && static_cast<const void*>(&cell_fw) != static_cast<const void*>(&cell_bw);
  RNNGradients<CellFw> g_fw;
  RNNGradients<CellBw> g_bw;
  Tensor3<typename CellFw::Scalar> d_inputs_bw;
  detail::run_directions(concurrent, [&](Index direction) {
    if (direction == 0) {
      g_fw = dynamic_rnn_backward(cell_fw, tp.fw, d_output_fw, d_final_state_fw);
    } else {
      if (d_output_bw) detail::reverse_sequence_into(*d_output_bw, lengths, tp.time_major, tp.reversed);
      g_bw = dynamic_rnn_backward(cell_bw, tp.bw, d_output_bw ? &tp.reversed : nullptr, d_final_state_bw);
      detail::reverse_sequence_into(g_bw.d_inputs, lengths, tp.time_major, d_inputs_bw);
    }
  });
  BidirectionalGradients<CellFw, CellBw> g;
  g.d_inputs = std::move(g_fw.d_inputs);
  g.d_inputs += d_inputs_bw;
  g.d_initial_state_fw = std::move(g_fw.d_initial_state);
  g.d_initial_state_bw = std::move(g_bw.d_initial_state);
  return g;
}

/// Adds cell_fw's variables under "<scope>/fw" and then cell_bw's under "<scope>/bw", TF's names
/// and creation order for bidirectional_dynamic_rnn(..., scope=scope); TF's default scope is
/// "bidirectional_rnn" (inside tf.variable_scope("encoder"): "encoder/bidirectional_rnn").
template <class T, class CellFw, class CellBw>
VariableList<T>& add_bidirectional(VariableList<T>& vars, CellFw& cell_fw, CellBw& cell_bw,
                                   const std::string& scope = "bidirectional_rnn") {
  vars.add(cell_fw, detail::join_scope(scope, "fw"));
  vars.add(cell_bw, detail::join_scope(scope, "bw"));
  return vars;
}

}  // namespace cellflow
