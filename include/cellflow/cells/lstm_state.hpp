// LSTMStateTuple: the (c, h) state of the LSTM cells, c first as in TensorFlow.
#pragma once

#include "cellflow/cells/state.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

/// State of an LSTM-kind cell for a batch: c [batch, num_units] and h [batch, output size].
/// The order (c, h) is TensorFlow's: TF's `state[1]` is `state.h`.
template <class T>
struct LSTMStateTuple {
  Matrix<T> c;  ///< [batch, num_units]: the cell state
  Matrix<T> h;  ///< [batch, output size] (num_proj with a projection, else num_units): the output
};

/// The part of a state a dense head reads: h. For a GRU the state is h itself.
template <class T>
const Matrix<T>& output_of(const LSTMStateTuple<T>& s) {
  return s.h;
}
template <class T>
/// The part of a GRU-kind state a dense head reads: the state h itself.
const Matrix<T>& output_of(const Matrix<T>& h) {
  return h;
}

// ---- cell contract: the state operations (cells/state.hpp) ----

/// The state operations of state.hpp for (c, h).
template <class T>
Index state_batch(const LSTMStateTuple<T>& s) {
  return s.h.rows();
}
template <class T>
/// c and h of examples [b0, b0 + n).
LSTMStateTuple<T> state_rows(const LSTMStateTuple<T>& s, Index b0, Index n) {
  return LSTMStateTuple<T>{s.c.middleRows(b0, n), s.h.middleRows(b0, n)};
}
template <class T>
/// Writes src's c and h into examples [b0, b0 + its batch) of `dst`.
void set_state_rows(LSTMStateTuple<T>& dst, Index b0, const LSTMStateTuple<T>& src) {
  set_state_rows(dst.c, b0, src.c);
  set_state_rows(dst.h, b0, src.h);
}

}  // namespace cellflow
