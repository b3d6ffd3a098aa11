// Row skipping inside a step cell (RNNOptions::skip_ended_rows, SequenceArgs::active): with the
// rows of a run sorted by length, longest first, step t runs only on its first active[t] rows
// (the examples that have not ended). This header holds what the cells share to do so over
// their time-major buffers, whose rows t*B .. t*B + B - 1 are step t:
//
//   ActiveRows           the per-step counts a cell keeps in its tape (empty: every row runs)
//   for_active_rows      the runs of active rows of all steps: one run of steps*B rows without
//                        row skipping (today's one product), else one run per step
//   gather_active_rows   the active rows of a group of steps (or of all steps) packed one after
//                        another, for the weight-gradient products: padded rows are not summed
//
// Products over a run of rows are bitwise the rows of the full product (detail/gemm.hpp sums
// every row of C in the same order whatever the number of rows), so per-step input projections
// and input gradients equal today's bitwise. The weight gradients sum over the packed rows of
// each group of steps (backward_weights: K = the group's active (step, example) pairs, at least
// kWeightGradientRows, instead of its steps * B rows), so they equal today's up to the order of
// the sum.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "cellflow/core/types.hpp"

namespace cellflow::detail {

/// The rows each step of a run computes: empty = all `batch` rows of every step; else
/// count[t] (<= batch) rows 0 .. count[t] - 1 of step t.
struct ActiveRows {
  std::vector<Index> count;  ///< per step, or empty

  /// Copies SequenceArgs::active (null: every row runs) for `steps` steps.
  void assign(const Index* active, Index steps) {
    if (active != nullptr)
      count.assign(active, active + steps);
    else
      count.clear();
  }
  /// Whether rows are skipped at all.
  bool skipping() const { return !count.empty(); }
  /// The rows step t computes, out of `batch`.
  Index at(Index t, Index batch) const { return count.empty() ? batch : count[static_cast<std::size_t>(t)]; }
  /// The number of (step, example) pairs that run over `steps` steps of `batch` rows.
  Index total(Index steps, Index batch) const { return total(0, steps, batch); }
  /// The number of (step, example) pairs that run in steps s0 .. s1 - 1.
  Index total(Index s0, Index s1, Index batch) const {
    if (count.empty()) return (s1 - s0) * batch;
    Index n = 0;
    for (Index t = s0; t < s1; ++t) n += count[static_cast<std::size_t>(t)];
    return n;
  }
};

/// Calls f(first_row, rows) for the runs of active rows of steps 0 .. steps - 1 in a
/// time-major buffer of `batch` rows per step: one run of steps * batch rows without row
/// skipping, else one per step that has any.
template <class F>
void for_active_rows(const ActiveRows& a, Index steps, Index batch, F&& f) {
  if (!a.skipping()) {
    if (steps * batch > 0) f(Index(0), steps * batch);
    return;
  }
  for (Index t = 0; t < steps; ++t) {
    const Index n = a.count[static_cast<std::size_t>(t)];
    if (n > 0) f(t * batch, n);
  }
}

/// The runs of active rows of steps s0 .. s1 - 1, as for_active_rows: one run of (s1 - s0) * batch
/// rows from row s0 * batch without row skipping, else one per step that has any.
template <class F>
void for_active_rows(const ActiveRows& a, Index s0, Index s1, Index batch, F&& f) {
  if (!a.skipping()) {
    if ((s1 - s0) * batch > 0) f(s0 * batch, (s1 - s0) * batch);
    return;
  }
  for (Index t = s0; t < s1; ++t) {
    const Index n = a.count[static_cast<std::size_t>(t)];
    if (n > 0) f(t * batch, n);
  }
}

/// Weight gradients in the backward loop (backward_weights, cells/cell_traits.hpp): a cell adds
/// them for a group of steps once the group holds at least this many rows (steps * batch), so
/// that each product's depth is large enough to run at full speed while the group's rows are
/// still in cache.
constexpr Index kWeightGradientRows = 128;

/// A row-major view of rows of a tape buffer, in place or packed (gather_active_rows).
template <class T>
using RowsView = Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>>;

/// The rows of steps s0 .. s1 - 1 of src (time-major, `batch` rows per step) that the weight
/// gradients sum, as a row-major view: rows s0 * batch .. s1 * batch - 1 in place without row
/// skipping, else the active rows of each step packed one after another into `buf`. `buf` only
/// grows, and at least to kWeightGradientRows + batch rows, the most a backward_weights group
/// holds: once it has held a run's largest group, packing allocates nothing.
template <class T, class Src>
RowsView<T> gather_active_rows(const Src& src, const ActiveRows& a, Index s0, Index s1, Index batch, Matrix<T>& buf) {
  const Index cols = src.cols();
  if (!a.skipping())
    return RowsView<T>(src.derived().data() + s0 * batch * src.outerStride(), (s1 - s0) * batch, cols,
                       Eigen::OuterStride<>(src.outerStride()));
  const Index n = a.total(s0, s1, batch);
  if (buf.rows() < n || buf.cols() != cols) buf.resize(std::max(n, kWeightGradientRows + batch), cols);
  Index k = 0;
  for_active_rows(a, s0, s1, batch, [&](Index r0, Index rows) {
    buf.middleRows(k, rows) = src.middleRows(r0, rows);
    k += rows;
  });
  return RowsView<T>(buf.data(), n, cols, Eigen::OuterStride<>(cols));
}

/// gather_active_rows over all `steps` steps.
template <class T, class Src>
RowsView<T> gather_active_rows(const Src& src, const ActiveRows& a, Index steps, Index batch, Matrix<T>& buf) {
  return gather_active_rows(src, a, Index(0), steps, batch, buf);
}

}  // namespace cellflow::detail
