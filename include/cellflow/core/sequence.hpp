// SequenceArgs: what a run over one sequence needs to know besides its tensors. dynamic_rnn
// fills it once (after validating sequence_length) and hands it down, unchanged, to the stack,
// the erased layers and the scan.
//
// A sequence is held time-major: one row-major [time * batch, depth] matrix whose rows
// t*batch .. t*batch + batch - 1 are step t.
#pragma once

#include <cstddef>

#include "cellflow/core/types.hpp"

namespace cellflow {

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

  /// Whether example b has ended before step t (t >= its length).
  bool ended(Index t, Index b) const { return lengths != nullptr && t >= lengths[static_cast<std::size_t>(b)]; }
};

}  // namespace cellflow
