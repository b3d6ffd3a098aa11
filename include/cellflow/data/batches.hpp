// Shuffled minibatches: every example exactly once per epoch, in a seeded random order.
//
// This is the reference program's `shuffle_batch`: each epoch draws a fresh random permutation
// of [0, n) and splits it into n_batches = max(1, n / batch_size) nearly equal parts the way
// numpy's array_split does (the first n % n_batches parts are one longer). So n = 10 with
// batch_size 3 gives batches of 4, 3 and 3, and no example is ever dropped or repeated.
//
// Data-parallel training shards every batch: all ranks draw the same permutation from the same
// seed, and each takes its own contiguous part of every global batch (`epoch(rank, ranks)`, cut
// by `shard` as array_split cuts: the first batch % ranks ranks get one example more). Over an
// epoch the ranks together see every example exactly once.
//
// The permutation is a Fisher-Yates shuffle driven by `Rng::below` (std::shuffle's output is
// implementation-defined), so a seed gives the same batches with every compiler and platform.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/data/dataset.hpp"

namespace cellflow::data {

/// Where rank `rank` of `ranks` starts in a batch of `n` examples, and how many it takes: the
/// batch cut into `ranks` contiguous parts as numpy's array_split cuts it (the first n % ranks
/// parts one longer; a part is empty when n < ranks). ValueError unless 0 <= rank < ranks.
inline std::pair<Index, Index> shard_range(Index n, int rank, int ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks)
    throw ValueError(
        cellflow::detail::concat("shard: rank ", rank, " is outside [0, ", ranks, ") (", ranks, " ranks)"));
  if (n < 0) throw ValueError(cellflow::detail::concat("shard: a batch of ", n, " examples"));
  const Index base = n / ranks, extra = n % ranks, r = rank;
  return {r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

/// Rank `rank`'s part of `batch` (shard_range): together the ranks' parts are the batch, in order.
inline std::vector<Index> shard(const std::vector<Index>& batch, int rank, int ranks) {
  const auto [start, count] = shard_range(static_cast<Index>(batch.size()), rank, ranks);
  return std::vector<Index>(batch.begin() + start, batch.begin() + start + count);
}

/// Epochs of shuffled minibatch indices.
///
///     ShuffleBatches batches(train.size(), 128, /*seed=*/42);
///     for (int e = 0; e < epochs; ++e)
///       for (const auto& idx : batches.epoch()) { gather(train, idx, x, y); ... }
///
/// Each call to `epoch()` draws a new permutation (so consecutive epochs differ) and returns
/// the `num_batches()` batches of one epoch, in order; together they hold every index in
/// [0, n) exactly once. Built from an `Rng&`, it draws from (and advances) that generator,
/// which must outlive it; built from a seed, it owns a generator `Rng(seed)`. The two give the
/// same epochs for the same seed.
class ShuffleBatches {
 public:
  /// Draws its permutations from `rng` (kept by reference).
  ShuffleBatches(Index n, Index batch_size, Rng& rng) : ShuffleBatches(n, batch_size) { external_ = &rng; }

  /// Draws its permutations from its own `Rng(seed)`.
  ShuffleBatches(Index n, Index batch_size, std::uint64_t seed) : ShuffleBatches(n, batch_size) { own_.seed(seed); }

  /// Number of examples n.
  Index size() const { return n_; }
  /// The requested batch size; actual batches are between batch_size and 2 * batch_size - 1 long.
  Index batch_size() const { return batch_size_; }
  /// Batches per epoch: max(1, n / batch_size).
  Index num_batches() const { return num_batches_; }

  /// Length of each batch of an epoch, in order (the same every epoch).
  std::vector<Index> batch_sizes() const {
    std::vector<Index> sizes(static_cast<std::size_t>(num_batches_), n_ / num_batches_);
    for (Index b = 0; b < n_ % num_batches_; ++b) ++sizes[static_cast<std::size_t>(b)];
    return sizes;
  }

  /// A fresh random permutation of [0, n) (Fisher-Yates from the identity).
  std::vector<Index> permutation() {
    std::vector<Index> p(static_cast<std::size_t>(n_));
    std::iota(p.begin(), p.end(), Index(0));
    Rng& r = rng();
    for (std::size_t i = p.size() - 1; i > 0; --i) {
      const auto j = static_cast<std::size_t>(r.below(static_cast<std::uint64_t>(i) + 1));
      std::swap(p[i], p[j]);
    }
    return p;
  }

  /// The batches of the next epoch: a new permutation cut into `batch_sizes()` pieces.
  std::vector<std::vector<Index>> epoch() {
    const std::vector<Index> p = permutation();
    std::vector<std::vector<Index>> batches;
    batches.reserve(static_cast<std::size_t>(num_batches_));
    auto it = p.begin();
    for (const Index len : batch_sizes()) {
      batches.emplace_back(it, it + len);
      it += len;
    }
    return batches;
  }

  /// Data-parallel: rank `rank`'s part (shard) of each batch of the next epoch. Every rank built
  /// with the same n, batch_size and seed draws the same permutation, so the ranks' parts of a
  /// batch are disjoint and together make the batch epoch() gives. ValueError unless
  /// 0 <= rank < ranks.
  std::vector<std::vector<Index>> epoch(int rank, int ranks) {
    shard_range(0, rank, ranks);  // checks rank and ranks before the generator moves
    std::vector<std::vector<Index>> batches = epoch();
    for (auto& b : batches) b = shard(b, rank, ranks);
    return batches;
  }

 private:
  ShuffleBatches(Index n, Index batch_size) : n_(n), batch_size_(batch_size) {
    if (batch_size <= 0)
      throw ValueError(cellflow::detail::concat("ShuffleBatches: batch_size must be positive, got ", batch_size));
    if (n <= 0) throw ValueError(cellflow::detail::concat("ShuffleBatches: need at least one example, got n = ", n));
    num_batches_ = std::max<Index>(1, n / batch_size);
  }

  Rng& rng() { return external_ != nullptr ? *external_ : own_; }

  Index n_ = 0, batch_size_ = 0, num_batches_ = 1;
  Rng* external_ = nullptr;
  Rng own_;
};

namespace detail {

template <class T>
void check_dataset(const Dataset<T>& ds, const char* op) {
  if (ds.images.dimension(0) != ds.size())
    throw ShapeError(cellflow::detail::concat(op, ": the dataset has ", ds.images.dimension(0), " images but ",
                                              ds.size(), " labels"));
  if (ds.has_lengths()) {
    if (static_cast<Index>(ds.lengths.size()) != ds.size())
      throw ShapeError(cellflow::detail::concat(op, ": the dataset has ", ds.size(), " examples but ",
                                                ds.lengths.size(), " lengths (expected one per example, or none)"));
    const Index time = ds.images.dimension(1);
    for (std::size_t k = 0; k < ds.lengths.size(); ++k)
      if (ds.lengths[k] < 0 || ds.lengths[k] > time)
        throw ValueError(cellflow::detail::concat(op, ": lengths[", k, "] = ", ds.lengths[k], " is outside [0, ", time,
                                                  "] (the examples have ", time, " time steps)"));
  }
}

}  // namespace detail

/// Copies the examples `idx` (in that order) of `ds` into `x` ([idx.size(), rows, cols], resized
/// only when its shape differs, so a buffer is reused across batches) and their labels into `y`.
/// An index outside [0, ds.size()) is a ValueError naming its position and value.
template <class T>
void gather(const Dataset<T>& ds, const std::vector<Index>& idx, Tensor3<T>& x, std::vector<int>& y) {
  detail::check_dataset(ds, "gather");
  const Index n = ds.size(), rows = ds.images.dimension(1), cols = ds.images.dimension(2);
  for (std::size_t k = 0; k < idx.size(); ++k)
    if (idx[k] < 0 || idx[k] >= n)
      throw ValueError(cellflow::detail::concat("gather: index ", idx[k], " at position ", k,
                                                " is out of range for a dataset of ", n, " examples"));
  const auto b = static_cast<Index>(idx.size());
  if (x.dimension(0) != b || x.dimension(1) != rows || x.dimension(2) != cols) x.resize(b, rows, cols);
  const Index stride = rows * cols;
  y.resize(idx.size());
  for (std::size_t k = 0; k < idx.size(); ++k) {
    const T* src = ds.images.data() + idx[k] * stride;
    std::copy(src, src + stride, x.data() + static_cast<Index>(k) * stride);
    y[k] = ds.labels[static_cast<std::size_t>(idx[k])];
  }
}

/// As gather above, and the examples' lengths into `lengths` (emptied when `ds` has none).
template <class T>
void gather(const Dataset<T>& ds, const std::vector<Index>& idx, Tensor3<T>& x, std::vector<int>& y,
            std::vector<Index>& lengths) {
  gather(ds, idx, x, y);
  lengths.clear();
  if (ds.has_lengths())
    for (const Index i : idx) lengths.push_back(ds.lengths[static_cast<std::size_t>(i)]);
}

/// The first `n` examples of `ds` (a copy). `n` must be in [0, ds.size()]: unlike a Python
/// slice, asking for more than there is is a ValueError rather than a silent clamp.
template <class T>
Dataset<T> head(const Dataset<T>& ds, Index n) {
  detail::check_dataset(ds, "head");
  if (n < 0 || n > ds.size())
    throw ValueError(cellflow::detail::concat("head: cannot take ", n, " examples of a dataset of ", ds.size()));
  Dataset<T> out;
  const Index rows = ds.images.dimension(1), cols = ds.images.dimension(2);
  out.images.resize(n, rows, cols);
  std::copy(ds.images.data(), ds.images.data() + n * rows * cols, out.images.data());
  out.labels.assign(ds.labels.begin(), ds.labels.begin() + n);
  if (ds.has_lengths()) out.lengths.assign(ds.lengths.begin(), ds.lengths.begin() + n);
  return out;
}

}  // namespace cellflow::data
