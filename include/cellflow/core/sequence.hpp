// SequenceArgs: what a run over one sequence needs to know besides its tensors. dynamic_rnn
// fills it once (after validating sequence_length) and hands it down, unchanged, to the stack,
// the erased layers and the scan.
//
// A sequence is held time-major: one row-major [time * batch, depth] matrix whose rows
// t*batch .. t*batch + batch - 1 are step t.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/precision.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

// ---- cell contract ----

/// Told during a backward pass when a layer's weight gradients are final (SequenceArgs::observer):
/// how data-parallel training starts sending a layer's gradients while the layers below it are
/// still computing theirs (train/gradient_hook.hpp).
class BackwardObserver {
 public:
  /// Virtual: an observer may be destroyed through a BackwardObserver*.
  virtual ~BackwardObserver() = default;
  /// Layer `layer` of a stack (0 = the bottom) has finished its backward pass.
  virtual void layer_done(Index layer) = 0;
  /// A time step of a layer's backward pass is done (called every step: keep it cheap); lets
  /// communication started at an earlier layer_done move on. Does nothing by default.
  virtual void step_done() {}
};

/// The shape of one run over a sequence and which steps of it count.
struct SequenceArgs {
  Index time = 0;   ///< time steps held by the inputs and outputs (their rows are time * batch)
  Index batch = 0;  ///< examples run side by side
  Index steps = 0;  ///< steps that actually run: the longest length, or `time` without lengths
  /// `batch` per-example lengths in [0, steps], or null: every example runs all `steps`.
  /// Example b runs steps 0 .. lengths[b] - 1; past that its state is carried through unchanged,
  /// its outputs are exactly 0 and, in backward, it receives and contributes no gradient.
  /// The rows of an input past an example's length must be zero (dynamic_rnn and MultiRNNCell
  /// guarantee it), so that whatever the caller had there cannot reach a weight gradient.
  const Index* lengths = nullptr;
  /// Keep every step's activations for backward. Without it a cell may keep only what the
  /// next step needs (inference).
  bool training = false;
  /// Backward only, or null: a stack (MultiRNNCell) calls observer->layer_done(l) after each of
  /// its layers, the top one first, and the time loop calls observer->step_done() after every
  /// step. dynamic_rnn sets it when the batch runs as one slice (otherwise the layers finish
  /// together, when the slices' gradients are summed).
  BackwardObserver* observer = nullptr;
  /// Position of this run's first example in the whole batch: a slice of a batch split over
  /// threads starts at its offset. Per-example random draws (dropout masks) are keyed by
  /// first_example + b, so they do not depend on how the batch is split.
  Index first_example = 0;
  /// Which draw of random masks (dropout) this run makes (RNNOptions::draw): a run with the same
  /// draw, the same examples and the same seeds drops the same units; backward reads the draw its
  /// forward pass made.
  std::uint64_t draw = 0;

  /// Row skipping (RNNOptions::skip_ended_rows), or null. When set, the rows are sorted by
  /// length, longest first, and `active[t]` (t < steps) is the number of examples still running
  /// at step t: they are rows 0 .. active[t] - 1, and every row from active[t] on has ended. A
  /// cell that skips ended rows (skips_ended_rows(), cells/cell_traits.hpp) computes step t on
  /// those rows only; any other cell may ignore it (the scan carries the ended rows as always).
  const Index* active = nullptr;
  /// The position in the whole batch of each of the `batch` rows, or null: row b is example
  /// first_example + b. dynamic_rnn sets it when it reorders the rows (row skipping), so that
  /// per-example random draws stay keyed by the example, whatever its row.
  const Index* examples = nullptr;

  /// The arithmetic of the products (RNNOptions::precision). With `Precision::bf16` (inference
  /// only: training is false; float cells only) a cell that supports it (supports_bf16(),
  /// cells/cell_traits.hpp) keeps its kernels as bfloat16 in its tape and runs the input
  /// projection and the recurrent products with detail::bf16_gemm; bias, gates and state stay float.
  Precision precision = Precision::fp32;
  /// The kernel of the bf16 products (chosen once by dynamic_rnn or the stream).
  Bf16Kernel bf16_kernel = Bf16Kernel::portable;
  /// The cell's weights are those of the previous run with this tape (RNNStream sets it after its
  /// first call): a bf16 cell reuses the weights it packed then instead of packing them again.
  bool weights_unchanged = false;

  /// Whether example b has ended before step t (t >= its length).
  bool ended(Index t, Index b) const { return lengths != nullptr && t >= lengths[static_cast<std::size_t>(b)]; }
  /// The rows step t computes: active[t] with row skipping, else all `batch` rows.
  Index active_rows(Index t) const { return active != nullptr ? active[static_cast<std::size_t>(t)] : batch; }
  /// The position in the whole batch of row b: the key of its random draws.
  Index example(Index b) const {
    return examples != nullptr ? examples[static_cast<std::size_t>(b)] : first_example + b;
  }
};

// ---- end of cell contract ----

/// RNNOptions::sequence_length: absent (every example runs all steps) or one length per example.
/// Anything that holds integers converts to it: a std::vector of any integer type, an Eigen
/// vector of integers, a braced list; `= std::nullopt` or reset() makes it absent again. It reads
/// like a std::optional<std::vector<Index>> (`if (lengths)`, `*lengths`, `lengths->size()`). A
/// value that does not fit in Index (an unsigned one at or above 2^63) is a ValueError here;
/// dynamic_rnn checks the rest (one length per example, each in [0, time]).
class SequenceLengths {
 public:
  /// Absent: every example runs all steps.
  SequenceLengths() = default;
  // The converting constructors are implicit on purpose: `opts.sequence_length = lengths;`.
  /// Absent, as `opts.sequence_length = std::nullopt;`.
  SequenceLengths(std::nullopt_t) {}
  /// One length per example, as given (dynamic_rnn checks them against the batch and time).
  SequenceLengths(std::vector<Index> lengths) : set_(true), lengths_(std::move(lengths)) {}
  /// A braced list: `opts.sequence_length = {3, 5, 2};`.
  SequenceLengths(std::initializer_list<Index> lengths) : set_(true), lengths_(lengths) {}
  /// A std::vector of another integer type (int, unsigned, std::size_t, ...); ValueError for a
  /// value that does not fit in Index.
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, Index>, int> = 0>
  SequenceLengths(const std::vector<I>& lengths) : set_(true) {
    lengths_.reserve(lengths.size());
    for (std::size_t b = 0; b < lengths.size(); ++b) lengths_.push_back(to_index(lengths[b], b));
  }
  /// A std::optional<std::vector<I>>: absent when it is std::nullopt, else its lengths.
  template <class I>
  SequenceLengths(const std::optional<std::vector<I>>& lengths) {
    if (lengths) *this = SequenceLengths(*lengths);
  }
  /// An Eigen vector of integers (row or column, e.g. Eigen::VectorXi); ShapeError unless it has one
  /// row or one column. A floating-point vector does not compile: cast it first.
  template <class Derived>
  SequenceLengths(const Eigen::DenseBase<Derived>& lengths) : set_(true) {
    static_assert(
        std::is_integral_v<typename Derived::Scalar>,
        "sequence_length takes integers: convert a floating-point vector with .template cast<cellflow::Index>()");
    if (lengths.rows() != 1 && lengths.cols() != 1)
      throw ShapeError(detail::concat("sequence_length: a [", lengths.rows(), ", ", lengths.cols(),
                                      "] matrix given; expected a vector, one length per example"));
    lengths_.reserve(static_cast<std::size_t>(lengths.size()));
    for (Index b = 0; b < lengths.size(); ++b)
      lengths_.push_back(to_index(lengths.derived().coeff(b), static_cast<std::size_t>(b)));
  }

  /// Whether lengths are set (not absent).
  bool has_value() const { return set_; }
  /// Same as has_value(): `if (opts.sequence_length) ...`.
  explicit operator bool() const { return set_; }
  /// The lengths; a ValueError when there are none.
  const std::vector<Index>& value() const {
    if (!set_) throw ValueError("sequence_length: no lengths are set");
    return lengths_;
  }
  /// The lengths, unchecked: an empty vector when absent (value() throws instead).
  const std::vector<Index>& operator*() const { return lengths_; }
  /// The lengths, to change in place; unchecked, and changing them does not make absent lengths
  /// present (assign a vector for that).
  std::vector<Index>& operator*() { return lengths_; }
  /// The lengths' members, as `lengths->size()`; unchecked, like operator*.
  const std::vector<Index>* operator->() const { return &lengths_; }
  /// The lengths' members, to change in place; unchecked, like operator*.
  std::vector<Index>* operator->() { return &lengths_; }
  /// Absent again: every example runs all steps.
  void reset() {
    set_ = false;
    lengths_.clear();
  }

 private:
  template <class I>
  static Index to_index(I value, std::size_t b) {
    if constexpr (std::is_unsigned_v<I>) {
      if (static_cast<std::uintmax_t>(value) > static_cast<std::uintmax_t>(std::numeric_limits<Index>::max()))
        throw ValueError(detail::concat("sequence_length[", b, "] = ", +value, " does not fit in a length"));
    }
    return static_cast<Index>(value);
  }

  bool set_ = false;
  std::vector<Index> lengths_;
};

}  // namespace cellflow
