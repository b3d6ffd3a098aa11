// Splitting a batch across threads (RNNOptions::batch_threads): the batch is cut into contiguous
// slices (numpy's array_split sizes), and each slice runs the whole sequence (every layer,
// forward and backward) on its own OpenMP thread, with single-threaded matrix products and no
// barrier per time step.
//
// Gradients: every slice reads the cell's one copy of the weights. Slice 0 adds its weight
// gradients straight into the cell's variables; slices 1.. add theirs into private buffers of
// their own (Gradients::buffered, core/gradients.hpp), summed into the cell once, in slice
// order, after all slices finished. So no two threads ever write the same gradient, no slice
// needs a copy of the weights, and a given number of slices is deterministic. The result equals
// the unsplit run up to the order of that sum (float rounding).
//
// Row skipping (RNNOptions::skip_ended_rows): plan(..., sort = true) orders the examples by
// length, longest first (stable: ties keep their order), and deals them to the slices like
// cards (slice p takes the examples of sorted positions p, p + P, p + 2P, ...), so that every
// slice holds a similar mix of long and short examples, and each slice's rows are sorted too.
// A slice then lists its examples (`rows`, positions in the whole batch), their lengths, and
// per step the number still running (`active`): at step t they are rows 0 .. active[t] - 1.
// The conversions below gather a slice's rows through that list and scatter them back.
//
// Also here: the conversions between the user's [batch, time, depth] tensor (or time-major
// [time, batch, depth]) and a slice's time-major [time * n, depth] matrix, which zero the rows
// past each example's length (core/sequence.hpp: padded rows must be zero).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "cellflow/core/gradients.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {
namespace detail {

/// Runs body(p) for p in [0, n): on n OpenMP threads when available, else one after another.
/// The first exception is rethrown after all slices finished.
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

/// Examples [b0, b0 + n) of `in` as a time-major [time*n, depth] matrix X. With `lengths` (the
/// n examples' lengths), the rows past each example's length are zero whatever `in` holds there.
template <class T>
void to_time_major(const Tensor3<T>& in, bool time_major, Index b0, Index n, Matrix<T>& X,
                   const Index* lengths = nullptr) {
  const Index batch = in.dimension(time_major ? 1 : 0), time = in.dimension(time_major ? 0 : 1);
  const Index depth = in.dimension(2);
  const auto bytes = sizeof(T) * static_cast<std::size_t>(depth);
  X.resize(time * n, depth);
  if (X.size() == 0) return;
  if (time_major && b0 == 0 && n == batch) {  // already [time*batch, depth] in memory
    std::memcpy(X.data(), in.data(), sizeof(T) * static_cast<std::size_t>(X.size()));
    if (lengths)
      for (Index t = 0; t < time; ++t)
        for (Index b = 0; b < n; ++b)
          if (t >= lengths[b]) X.row(t * n + b).setZero();
    return;
  }
  for (Index t = 0; t < time; ++t)
    for (Index b = 0; b < n; ++b) {
      if (lengths && t >= lengths[b]) {
        X.row(t * n + b).setZero();
        continue;
      }
      const Index src = time_major ? (t * batch + b0 + b) : ((b0 + b) * time + t);
      std::memcpy(X.row(t * n + b).data(), in.data() + src * depth, bytes);
    }
}

/// The examples rows[0 .. n) of `in` (positions in the batch) as a time-major [time*n, depth]
/// matrix X, in that order; the rows past each one's length (lengths, in the same order) are zero.
template <class T>
void gather_time_major(const Tensor3<T>& in, bool time_major, const Index* rows, Index n, Matrix<T>& X,
                       const Index* lengths) {
  const Index batch = in.dimension(time_major ? 1 : 0), time = in.dimension(time_major ? 0 : 1);
  const Index depth = in.dimension(2);
  X.resize(time * n, depth);
  if (X.size() == 0) return;
  for (Index t = 0; t < time; ++t)
    for (Index b = 0; b < n; ++b) {
      if (lengths && t >= lengths[b]) {
        X.row(t * n + b).setZero();
        continue;
      }
      const Index src = time_major ? (t * batch + rows[b]) : (rows[b] * time + t);
      std::memcpy(X.row(t * n + b).data(), in.data() + src * depth, sizeof(T) * static_cast<std::size_t>(depth));
    }
}

/// Writes the time-major [time*n, depth] X into examples rows[0 .. n) of `out` (already sized).
template <class T>
void scatter_time_major(const Matrix<T>& X, const Index* rows, Index n, bool time_major, Tensor3<T>& out) {
  const Index batch = out.dimension(time_major ? 1 : 0), time = out.dimension(time_major ? 0 : 1);
  const Index depth = X.cols();
  if (X.size() == 0) return;
  for (Index t = 0; t < time; ++t)
    for (Index b = 0; b < n; ++b) {
      const Index dst = time_major ? (t * batch + rows[b]) : (rows[b] * time + t);
      std::memcpy(out.data() + dst * depth, X.row(t * n + b).data(), sizeof(T) * static_cast<std::size_t>(depth));
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

/// Resizes t to [batch, time, depth] ([time, batch, depth] if time_major) unless it has that shape.
template <class T>
void resize_like(Tensor3<T>& t, Index time, Index batch, Index depth, bool time_major) {
  const Index d0 = time_major ? time : batch, d1 = time_major ? batch : time;
  if (t.dimension(0) != d0 || t.dimension(1) != d1 || t.dimension(2) != depth) t.resize(d0, d1, depth);
}

/// One contiguous slice of a batch: its cell tape, time-major buffers and gradient target.
template <class Cell>
struct BatchSlice {
  using T = typename Cell::Scalar;
  typename Cell::Tape tape;
  Matrix<T> inputs;               // [time*n, depth], padded rows zero
  Matrix<T> outputs;              // [time*n, output_size]
  Matrix<T> d_outputs, d_inputs;  // backward buffers
  Gradients<T> grads;             // slice 0 direct, slices 1.. buffered
  Index b0 = 0, n = 0, steps = 0;
  // Row skipping only (BatchSplit::sorted()): the slice's examples (positions in the batch), in
  // row order, their lengths and, per step, how many of them are still running.
  std::vector<Index> rows, lengths, active;
};

/// A batch cut into slices, kept across calls by dynamic_rnn_into (RNNResult::tape), so that a
/// training loop allocates nothing per step once the sizes are stable.
template <class Cell>
class BatchSplit {
 public:
  using T = typename Cell::Scalar;

  /// Cuts `batch` examples into min(threads, batch) slices. `lengths` (batch entries, already
  /// validated, copied) or null; `steps` is the longest length (or `time`). With `sort` (and
  /// lengths), the examples are ordered by length and dealt to the slices (row skipping, see the
  /// top of this header); otherwise the slices are contiguous.
  void plan(Index time, Index batch, int threads, const std::vector<Index>* lengths, bool sort = false) {
    time_ = time;
    batch_ = batch;
    has_lengths_ = lengths != nullptr;
    if (lengths) lengths_ = *lengths;
    sorted_ = sort && has_lengths_;
    const Index P = std::min<Index>(threads, batch);
    const auto old = slices_.size();
    slices_.resize(static_cast<std::size_t>(P));
    for (std::size_t p = old; p < slices_.size(); ++p)
      if (p > 0) slices_[p].grads = Gradients<T>::buffered();
    if (sorted_) {
      order_.resize(static_cast<std::size_t>(batch));
      for (Index b = 0; b < batch; ++b) order_[static_cast<std::size_t>(b)] = b;
      std::stable_sort(order_.begin(), order_.end(), [&](Index a, Index b) {
        return lengths_[static_cast<std::size_t>(a)] > lengths_[static_cast<std::size_t>(b)];
      });
      for (Index p = 0; p < P; ++p) {
        auto& s = slice(p);
        s.rows.clear();
        s.lengths.clear();
        for (Index k = p; k < batch; k += P) {
          const Index e = order_[static_cast<std::size_t>(k)];
          s.rows.push_back(e);
          s.lengths.push_back(lengths_[static_cast<std::size_t>(e)]);
        }
        s.b0 = 0;
        s.n = static_cast<Index>(s.rows.size());
        s.steps = s.lengths.front();  // the longest: rows are sorted
        s.active.assign(static_cast<std::size_t>(s.steps), 0);
        for (Index b = 0; b < s.n; ++b)
          for (Index t = 0; t < s.lengths[static_cast<std::size_t>(b)]; ++t) ++s.active[static_cast<std::size_t>(t)];
      }
      return;
    }
    for (Index p = 0; p < P; ++p) {
      auto& s = slice(p);
      s.b0 = batch * p / P;
      s.n = batch * (p + 1) / P - s.b0;
      s.steps = time;
      if (has_lengths_) s.steps = *std::max_element(lengths_.begin() + s.b0, lengths_.begin() + s.b0 + s.n);
    }
  }

  Index size() const { return static_cast<Index>(slices_.size()); }
  bool whole() const { return slices_.size() == 1; }
  Index time() const { return time_; }
  Index batch() const { return batch_; }
  BatchSlice<Cell>& slice(Index p) { return slices_[static_cast<std::size_t>(p)]; }
  const BatchSlice<Cell>& slice(Index p) const { return slices_[static_cast<std::size_t>(p)]; }

  /// The lengths of slice p's examples (in its row order), or null without lengths.
  const Index* lengths(Index p) const {
    if (sorted_) return slice(p).lengths.data();
    return has_lengths_ ? lengths_.data() + slice(p).b0 : nullptr;
  }
  /// Whether the rows are sorted by length and dealt (row skipping): slices list their examples
  /// in BatchSlice::rows instead of being the contiguous [b0, b0 + n).
  bool sorted() const { return sorted_; }

  /// The SequenceArgs of slice p, making random draw `draw`.
  SequenceArgs args(Index p, bool training, std::uint64_t draw) const {
    SequenceArgs a;
    a.time = time_;
    a.batch = slice(p).n;
    a.steps = slice(p).steps;
    a.lengths = lengths(p);
    a.training = training;
    a.first_example = slice(p).b0;
    a.draw = draw;
    if (sorted_) {
      a.active = slice(p).active.data();
      a.examples = slice(p).rows.data();
    }
    return a;
  }

  /// Runs body(p, slice) for every slice, on its own thread when there are several.
  template <class Body>
  void run(Body&& body) {
    for_each_slice(size(), [&](Index p) { body(p, slice(p)); });
  }

  /// Before a backward pass: the buffered slices start from zero again.
  void begin_backward() {
    for (auto& s : slices_) s.grads.begin();
  }

  /// After a backward pass: adds slices 1..'s gradients into the cell's variables, in order.
  void reduce_gradients() {
    for (std::size_t p = 1; p < slices_.size(); ++p) slices_[p].grads.add_to_variables();
  }

 private:
  std::vector<BatchSlice<Cell>> slices_;
  std::vector<Index> lengths_;
  std::vector<Index> order_;  // row skipping: the examples by length, longest first
  bool has_lengths_ = false, sorted_ = false;
  Index time_ = 0, batch_ = 0;
};

}  // namespace detail
}  // namespace cellflow
