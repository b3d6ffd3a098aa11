// An in-memory labelled dataset of images: the unit the IDX loader produces and the batching
// helpers consume. Needs no zlib (only data/idx.hpp does).
#pragma once

#include <type_traits>
#include <vector>

#include "cellflow/core/types.hpp"

namespace cellflow::data {

/// Images and their class labels.
///
/// `images` is [count, rows, cols], row-major, pixel values scaled to [0, 1] (byte / 255). Read
/// as [batch, time, depth] it is exactly `dynamic_rnn`'s input: each image row is one time step.
/// `labels[i]` is the class of image i. The two always have the same length when produced by
/// `load_idx_dataset` or `head`; `gather` and `head` check it for hand-made datasets.
template <class T>
struct Dataset {
  static_assert(std::is_floating_point_v<T>, "cellflow: the scalar type must be float or double");

  Tensor3<T> images;        ///< [count, rows, cols], values in [0, 1]
  std::vector<int> labels;  ///< labels[i]: the class of image i

  /// Number of examples.
  Index size() const { return static_cast<Index>(labels.size()); }
};

}  // namespace cellflow::data
