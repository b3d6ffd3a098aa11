// Row slices of states: a state for examples [b0, b0 + n) of a batch, and writing one back.
// Used to split a batch across threads.
// Also: the batch size of a state.
#pragma once

#include <vector>

#include "cellflow/cells/cell_state.hpp"
#include "cellflow/cells/lstm_state.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {
namespace detail {

template <class T>
Matrix<T> rows_of(const Matrix<T>& s, Index b0, Index n) {
  return s.middleRows(b0, n);
}
template <class T>
LSTMStateTuple<T> rows_of(const LSTMStateTuple<T>& s, Index b0, Index n) {
  return LSTMStateTuple<T>{s.c.middleRows(b0, n), s.h.middleRows(b0, n)};
}
template <class T>
CellState<T> rows_of(const CellState<T>& s, Index b0, Index n) {
  if (s.is_lstm()) return CellState<T>(rows_of(s.template get<LSTMStateTuple<T>>(), b0, n));
  return CellState<T>(rows_of(s.template get<Matrix<T>>(), b0, n));
}
template <class T>
std::vector<CellState<T>> rows_of(const std::vector<CellState<T>>& s, Index b0, Index n) {
  std::vector<CellState<T>> r;
  r.reserve(s.size());
  for (const auto& l : s) r.push_back(rows_of(l, b0, n));
  return r;
}

/// The batch size of a state (its number of rows; 0 for an empty stack state).
template <class T>
Index batch_of_state(const Matrix<T>& s) {
  return s.rows();
}
template <class T>
Index batch_of_state(const LSTMStateTuple<T>& s) {
  return s.h.rows();
}
template <class T>
Index batch_of_state(const CellState<T>& s) {
  return s.h().rows();
}
template <class T>
Index batch_of_state(const std::vector<CellState<T>>& s) {
  return s.empty() ? 0 : batch_of_state(s.front());
}

/// dst rows [b0, b0 + rows of src) := src. dst has the full batch and the same structure.
template <class T>
void set_rows(Matrix<T>& dst, Index b0, const Matrix<T>& src) {
  dst.middleRows(b0, src.rows()) = src;
}
template <class T>
void set_rows(LSTMStateTuple<T>& dst, Index b0, const LSTMStateTuple<T>& src) {
  set_rows(dst.c, b0, src.c);
  set_rows(dst.h, b0, src.h);
}
template <class T>
void set_rows(CellState<T>& dst, Index b0, const CellState<T>& src) {
  if (src.is_lstm())
    set_rows(dst.template get<LSTMStateTuple<T>>(), b0, src.template get<LSTMStateTuple<T>>());
  else
    set_rows(dst.template get<Matrix<T>>(), b0, src.template get<Matrix<T>>());
}
template <class T>
void set_rows(std::vector<CellState<T>>& dst, Index b0, const std::vector<CellState<T>>& src) {
  for (std::size_t l = 0; l < src.size(); ++l) set_rows(dst[l], b0, src[l]);
}

}  // namespace detail
}  // namespace cellflow
