// What every state type offers, whatever the cell: its batch size, the state of a slice of its
// examples, and writing such a slice back. dynamic_rnn uses them to split a batch across threads
// (RNNOptions::batch_threads) and RNNStream to check a state.
//
// A plain matrix is the state of GRU-kind cells ([batch, num_units]); LSTMStateTuple
// (lstm_state.hpp) and CellState (cell_state.hpp) add their own overloads beside their
// definitions. A cell with a state type of its own provides these three functions for it, in
// its namespace (they are found by argument-dependent lookup).
#pragma once

#include "cellflow/core/types.hpp"

namespace cellflow {

// ---- cell contract: the state operations ----

/// The number of examples a state holds.
template <class T>
Index state_batch(const Matrix<T>& s) {
  return s.rows();
}

/// The state of examples [b0, b0 + n).
template <class T>
Matrix<T> state_rows(const Matrix<T>& s, Index b0, Index n) {
  return s.middleRows(b0, n);
}

/// Writes `src` (the state of n examples) into examples [b0, b0 + n) of `dst`.
template <class T>
void set_state_rows(Matrix<T>& dst, Index b0, const Matrix<T>& src) {
  dst.middleRows(b0, src.rows()) = src;
}

}  // namespace cellflow
