// LSTMStateTuple: the (c, h) state of the LSTM cells, c first as in TensorFlow.
#pragma once

#include "cellflow/cells/state.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

/// State of an LSTM-kind cell for a batch: c [batch, num_units] and h [batch, output size].
/// The order (c, h) is TensorFlow's: TF's `state[1]` is `state.h`.
template <class T>
struct LSTMStateTuple {
  Matrix<T> c;
  Matrix<T> h;
};

/// The part of a state a dense head reads: h. For a GRU the state is h itself.
template <class T>
const Matrix<T>& output_of(const LSTMStateTuple<T>& s) {
  return s.h;
}
template <class T>
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
LSTMStateTuple<T> state_rows(const LSTMStateTuple<T>& s, Index b0, Index n) {
  return LSTMStateTuple<T>{s.c.middleRows(b0, n), s.h.middleRows(b0, n)};
}
template <class T>
void set_state_rows(LSTMStateTuple<T>& dst, Index b0, const LSTMStateTuple<T>& src) {
  set_state_rows(dst.c, b0, src.c);
  set_state_rows(dst.h, b0, src.h);
}

}  // namespace cellflow
