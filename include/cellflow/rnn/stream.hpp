// Streaming inference: a sequence fed one time step, or one chunk of steps, at a time, with the
// state carried by an explicit stream object between calls (a live audio frame, a sensor sample,
// a token as it arrives).
//
// The outputs equal dynamic_rnn's over the whole sequence bitwise (in the same build): a stream
// runs the very computation dynamic_rnn runs (the same cell code, no training caches), and every
// row of cellflow's matrix products is summed in the same order whatever the number of rows and
// steps in a call. tests/test_stream.cpp checks it for every cell kind and chunking.
//
// A stream holds `batch` independent sequences side by side. Each can be reset on its own
// (reset(b)), and each can sit out steps: step(x, active) and feed(chunk, lengths) advance only
// the streams that have input (as dynamic_rnn's sequence_length: a stream past its length keeps
// its state and outputs zeros), and steps(b) counts each stream's own steps.
//
// Precision: RNNStream(cell, batch, Precision::bf16) runs bf16 inference (core/precision.hpp,
// float cells that support it): the stream packs the cell's weights as bfloat16 on its first
// call and reuses them on every later call (reset() keeps them) -- a bf16 stream reads the
// weights once; call refresh_weights() after changing them. Its outputs equal bf16 dynamic_rnn's
// over the whole sequence bitwise (same kernel, same order of every sum).
//
// Threads: a stream only reads its cell. Any number of streams, on any threads, may share one
// cell, each with its own state; the cell must not be modified (trained, loaded) meanwhile and
// must outlive its streams.
#pragma once

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/cells/state.hpp"
#include "cellflow/core/build_check.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/rnn/batch_split.hpp"
#include "cellflow/rnn/sequence.hpp"

namespace cellflow {

template <class Cell>
/// Streaming inference with `cell` (see the top of this header): step() feeds one time step, feed()
/// a chunk of steps, and the stream carries the state between calls. It keeps a pointer to the
/// cell, which must outlive it and not change while it is used.
class RNNStream {
  static_assert(detail::check_cell<Cell>(), "RNNStream: the type is not a cell (see the messages above)");

 public:
  /// The cell's scalar type.
  using T = typename Cell::Scalar;
  /// The cell's state type.
  using State = typename Cell::State;

  /// `batch` independent sequences, starting from the cell's zero state.
  explicit RNNStream(const Cell& cell, Index batch = 1) : cell_(&cell), batch_(batch) {
    if (batch <= 0) throw ValueError(detail::concat("RNNStream: batch must be positive, given ", batch));
    state_ = cell.zero_state(batch);
    stream_steps_.assign(static_cast<std::size_t>(batch), 0);
  }

  /// `batch` independent sequences from the zero state, multiplying with `precision`
  /// (Precision::bf16, or a PrecisionChoice with its fallback and kernel). The checks of
  /// dynamic_rnn's RNNOptions::precision apply here (ValueError for a double cell or one without
  /// supports_bf16(); UnsupportedCpuError with Bf16Fallback::refuse on a CPU without AVX512-BF16).
  RNNStream(const Cell& cell, Index batch, const PrecisionChoice& precision) : RNNStream(cell, batch) {
    detail::set_precision(cell, precision, prec_, "RNNStream");
  }

  /// Sequences starting from `initial_state` (its batch size, at least 1, sets the stream's).
  RNNStream(const Cell& cell, const State& initial_state) : cell_(&cell) {
    batch_ = state_batch(initial_state);
    if (batch_ <= 0)
      throw ValueError(
          detail::concat("RNNStream: the initial state holds ", batch_, " examples; a stream needs at least one"));
    stream_steps_.assign(static_cast<std::size_t>(batch_), 0);
    set_state(initial_state);
  }

  /// Sequences starting from `initial_state`, multiplying with `precision` (as above).
  RNNStream(const Cell& cell, const State& initial_state, const PrecisionChoice& precision)
      : RNNStream(cell, initial_state) {
    detail::set_precision(cell, precision, prec_, "RNNStream");
  }

  /// Feeds one time step: x is [batch, input_depth]. Returns the output [batch, output_size],
  /// valid until the next call; the state advances by one step.
  template <class Derived>
  const Matrix<T>& step(const Eigen::MatrixBase<Derived>& x) {
    if (x.rows() != batch_ || x.cols() != cell_->input_depth())
      throw ShapeError(detail::concat("RNNStream::step: x is [", x.rows(), ", ", x.cols(), "], ", cell_->cell_name(),
                                      " stream expects [batch, input_depth] = [", batch_, ", ", cell_->input_depth(),
                                      "]"));
    x_ = x;
    run(1, nullptr);
    return y_;
  }

  /// Feeds one time step to the streams whose `active` entry is true (one entry per stream); the
  /// others keep their state and step count, and their output rows are zero (their rows of x are
  /// not read). Returns the output [batch, output_size], valid until the next call.
  template <class Derived>
  const Matrix<T>& step(const Eigen::MatrixBase<Derived>& x, const std::vector<bool>& active) {
    if (static_cast<Index>(active.size()) != batch_)
      throw ShapeError(detail::concat("RNNStream::step: active has ", active.size(), " entries, the stream holds ",
                                      batch_, " sequences"));
    if (x.rows() != batch_ || x.cols() != cell_->input_depth())
      throw ShapeError(detail::concat("RNNStream::step: x is [", x.rows(), ", ", x.cols(), "], ", cell_->cell_name(),
                                      " stream expects [batch, input_depth] = [", batch_, ", ", cell_->input_depth(),
                                      "]"));
    lengths_.resize(static_cast<std::size_t>(batch_));
    for (Index b = 0; b < batch_; ++b)
      lengths_[static_cast<std::size_t>(b)] = active[static_cast<std::size_t>(b)] ? 1 : 0;
    x_ = x;
    for (Index b = 0; b < batch_; ++b)
      if (!active[static_cast<std::size_t>(b)]) x_.row(b).setZero();  // a padded row is zero (SequenceArgs)
    run(1, lengths_.data());
    return y_;
  }

  /// A column-major Eigen::Tensor does not compile, with a message (see dynamic_rnn).
  template <class X, std::enable_if_t<detail::is_col_major_tensor<X>::value, int> = 0>
  const Tensor3<T>& feed(const X&, bool = false) {
    static_assert(detail::dependent_false<X>,
                  "cellflow takes row-major tensors: cellflow::Tensor3<T> = Eigen::Tensor<T, 3, Eigen::RowMajor>. "
                  "Convert a column-major one with `cellflow::Tensor3<T> x = col_major.swap_layout().shuffle("
                  "Eigen::array<int, 3>{2, 1, 0});` (same [batch, time, depth] indices)");
    return chunk_out_;
  }

  /// Feeds a chunk of steps: [batch, time, input_depth], or [time, batch, input_depth] when
  /// time_major. Returns the outputs in the same layout, valid until the next call.
  const Tensor3<T>& feed(const Tensor3<T>& chunk, bool time_major = false) {
    const Index batch = chunk.dimension(time_major ? 1 : 0), time = chunk.dimension(time_major ? 0 : 1);
    if (batch != batch_ || chunk.dimension(2) != cell_->input_depth() || time <= 0)
      throw ShapeError(
          detail::concat("RNNStream::feed: chunk is [", chunk.dimension(0), ", ", chunk.dimension(1), ", ",
                         chunk.dimension(2), "], ", cell_->cell_name(), " stream expects ",
                         time_major ? "[time, batch, depth] = [time >= 1, " : "[batch, time, depth] = [",
                         time_major ? detail::concat(batch_, ", ") : detail::concat(batch_, ", time >= 1, "),
                         cell_->input_depth(), "]"));
    detail::to_time_major(chunk, time_major, 0, batch_, x_);
    run(time, nullptr);
    detail::resize_like(chunk_out_, time, batch_, cell_->output_size(), time_major);
    detail::from_time_major(y_, 0, batch_, time_major, chunk_out_);
    return chunk_out_;
  }

  /// Feeds a chunk in which stream b has lengths[b] valid steps (in [0, time]), as dynamic_rnn's
  /// sequence_length: past its length a stream keeps its state, its outputs are zero and its
  /// inputs are not read; a stream with length 0 does not change at all.
  const Tensor3<T>& feed(const Tensor3<T>& chunk, const SequenceLengths& lengths, bool time_major = false) {
    const Index batch = chunk.dimension(time_major ? 1 : 0), time = chunk.dimension(time_major ? 0 : 1);
    if (!lengths) return feed(chunk, time_major);
    if (batch != batch_ || chunk.dimension(2) != cell_->input_depth() || time <= 0)
      return feed(chunk, time_major);  // the shape error, worded once
    if (static_cast<Index>(lengths->size()) != batch_)
      throw ShapeError(detail::concat("RNNStream::feed: lengths has ", lengths->size(), " entries, the stream holds ",
                                      batch_, " sequences"));
    for (std::size_t b = 0; b < lengths->size(); ++b)
      if ((*lengths)[b] < 0 || (*lengths)[b] > time)
        throw ValueError(detail::concat("RNNStream::feed: lengths[", b, "] = ", (*lengths)[b], " is outside [0, ", time,
                                        "] (the chunk has ", time, " steps)"));
    lengths_ = *lengths;
    detail::to_time_major(chunk, time_major, 0, batch_, x_, lengths_.data());
    run(time, lengths_.data());
    detail::resize_like(chunk_out_, time, batch_, cell_->output_size(), time_major);
    detail::from_time_major(y_, 0, batch_, time_major, chunk_out_);
    return chunk_out_;
  }

  /// The state after the steps fed so far.
  const State& state() const { return state_; }

  /// Replaces the state (same batch size), e.g. to resume a stream saved earlier.
  void set_state(const State& s) {
    cell_->check_state(s, batch_, "RNNStream::set_state");
    state_ = s;
  }

  /// Packs the cell's weights again on the next call (a bf16 stream reads them once, on its first
  /// call): after the cell's weights changed. Does nothing for an fp32 stream, which reads them
  /// every step.
  void refresh_weights() { packed_ = false; }

  /// The precision the stream multiplies with.
  Precision precision() const { return prec_.precision; }
  /// The kernel of its bf16 products (meaningful when precision() is bf16).
  Bf16Kernel bf16_kernel() const { return prec_.bf16_kernel; }

  /// Every stream back to the zero state, every step count to 0 (bf16 weights stay packed).
  void reset() {
    state_ = cell_->zero_state(batch_);
    steps_ = 0;
    std::fill(stream_steps_.begin(), stream_steps_.end(), Index(0));
  }

  /// Stream b alone back to the zero state and a step count of 0 (a new sequence starts there);
  /// the other streams are untouched. ValueError for b outside [0, batch).
  void reset(Index b) {
    check_stream(b, "reset");
    set_state_rows(state_, b, cell_->zero_state(1));
    stream_steps_[static_cast<std::size_t>(b)] = 0;
  }

  /// Number of independent sequences the stream holds.
  Index batch() const { return batch_; }
  /// Time steps fed since construction or reset() (calls' steps, whichever streams took them).
  Index steps() const { return steps_; }
  /// The steps stream b has taken since construction or its last reset.
  Index steps(Index b) const {
    check_stream(b, "steps");
    return stream_steps_[static_cast<std::size_t>(b)];
  }

 private:
  void check_stream(Index b, const char* what) const {
    if (b < 0 || b >= batch_)
      throw ValueError(detail::concat("RNNStream::", what, ": stream ", b, " is outside [0, ", batch_, ")"));
  }

  void run(Index time, const Index* lengths) {
    detail::warn_if_unoptimized();
    SequenceArgs args;
    args.precision = prec_.precision;
    args.bf16_kernel = prec_.bf16_kernel;
    args.weights_unchanged = packed_;
    args.time = args.steps = time;
    args.batch = batch_;
    if (lengths) {
      args.lengths = lengths;
      args.steps = *std::max_element(lengths, lengths + batch_);
    }
    if (args.steps == 0) {  // no stream takes a step: nothing changes, the outputs are zero
      y_.setZero(time * batch_, cell_->output_size());
    } else {
      run_sequence(*cell_, tape_, x_, args, state_, y_);
      final_state_into(*cell_, tape_, state_);
      packed_ = prec_.precision == Precision::bf16;
    }
    steps_ += time;
    for (Index b = 0; b < batch_; ++b) stream_steps_[static_cast<std::size_t>(b)] += lengths ? lengths[b] : time;
  }

  const Cell* cell_;
  Index batch_ = 0, steps_ = 0;
  SequenceArgs prec_;                // precision and bf16 kernel (set_precision), training false
  bool packed_ = false;              // the tape holds the bf16 weights of the first call
  std::vector<Index> stream_steps_;  // per stream: steps since its reset
  std::vector<Index> lengths_;       // the valid steps of the last masked call
  State state_;
  typename Cell::Tape tape_;  // inference buffers, reused by every call
  Matrix<T> x_, y_;           // time-major inputs and outputs of the last call
  Tensor3<T> chunk_out_;
};

}  // namespace cellflow
