// LSTMStateTuple: the (c, h) state of BasicLSTMCell and LSTMCell, c first as in TensorFlow.
#pragma once

#include "cellflow/core/types.hpp"

namespace cellflow {

/// State of an LSTM-kind cell for a batch: c [batch, num_units] and h [batch, output size].
/// The order (c, h) is TensorFlow's: TF's `state[1]` is `state.h` here.
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

}  // namespace cellflow
