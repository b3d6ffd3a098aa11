// An in-memory labelled dataset of images: the unit the IDX loader produces and the batching
// helpers consume. Needs no zlib (only data/idx.hpp does).
#pragma once

#include <type_traits>
#include <vector>

#include "cellflow/core/types.hpp"

namespace cellflow::data {

/// Labelled sequences: inputs [count, time, depth], a class per example and, optionally, each
/// example's length.
///
/// `images` is [count, time, depth], row-major: exactly `dynamic_rnn`'s input. For MNIST (from
/// `load_idx_dataset`) it is [count, rows, cols] with pixel values scaled to [0, 1] (byte / 255):
/// each image row is one time step; for any other data it is whatever sequences were put there
/// (`cf::pad_sequences` makes one from sequences of different lengths).
/// `labels[i]` is the class of example i. `lengths` is empty when every example runs all `time`
/// steps, or holds one length per example in [0, time] (dynamic_rnn's sequence_length; steps past
/// it are never read). `gather`, `head` and `fit` check that the sizes agree.
///
///     auto batch = cf::pad_sequences(sequences);
///     cf::data::Dataset<float> train{batch.inputs, labels, batch.lengths};
template <class T>
struct Dataset {
  static_assert(std::is_floating_point_v<T>, "cellflow: the scalar type must be float or double");

  Tensor3<T> images;           ///< [count, time, depth] inputs (named for MNIST's images)
  std::vector<int> labels;     ///< the class of each example
  std::vector<Index> lengths;  ///< each example's steps, or empty: all `time` steps

  /// Number of examples.
  Index size() const { return static_cast<Index>(labels.size()); }
  /// Whether the examples have lengths of their own (`lengths` is not empty).
  bool has_lengths() const { return !lengths.empty(); }
};

}  // namespace cellflow::data
