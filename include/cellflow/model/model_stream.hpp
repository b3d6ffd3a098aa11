// ModelStream: a trained Model serving a batch of independent streams, one time step (or one
// chunk) at a time, with the model's prediction after each: a live sensor per stream, a user per
// row. Built on RNNStream (rnn/stream.hpp), so each stream's predictions equal what
// Model::predict_proba gives for the steps it has taken, bitwise.
//
//   cf::ModelStream<float> streams(model, /*streams=*/2);
//   streams.step(x_t);                   // x_t [2, input_depth]: both streams advance
//   streams.step(x_t, {true, false});    // only stream 0 advances; stream 1 keeps its state
//   cf::Matrix<float> p = streams.predict_proba();   // [2, classes] after the steps so far
//   streams.reset(1);                    // stream 1 starts a new sequence
//
// The model must outlive the stream and not change (train, load) while the stream runs. Many
// streams may share one model, on any threads.
#pragma once

#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/layers/softmax.hpp"
#include "cellflow/metrics/argmax.hpp"
#include "cellflow/model/model.hpp"
#include "cellflow/rnn/stream.hpp"

namespace cellflow {

/// A Model serving independent streams step by step (see the top of this header).
template <class T>
class ModelStream {
 public:
  /// `streams` independent sequences over `model`, each from the zero state.
  explicit ModelStream(const Model<T>& model, Index streams = 1)
      : model_(&model), rnn_(streamable(model).rnn(), streams) {}

  /// `streams` sequences whose recurrent layers multiply with `precision` (Precision::bf16 for a
  /// float model: the weights are packed once, on the first step; RNNStream's rules). The dense
  /// head stays in the model's type.
  ModelStream(const Model<T>& model, Index streams, const PrecisionChoice& precision)
      : model_(&model), rnn_(streamable(model).rnn(), streams, precision) {}

  /// Feeds one time step to every stream: x is [streams, input_depth]. Returns the logits
  /// [streams, classes] after it, valid until the next call.
  template <class Derived>
  const Matrix<T>& step(const Eigen::MatrixBase<Derived>& x) {
    rnn_.step(x);
    return update();
  }

  /// Feeds one time step to the streams whose `active` entry is true; the others keep their
  /// state, step count and prediction (their rows of x are not read). Returns the logits.
  template <class Derived>
  const Matrix<T>& step(const Eigen::MatrixBase<Derived>& x, const std::vector<bool>& active) {
    rnn_.step(x, active);
    return update();
  }

  /// Feeds a chunk [streams, time, input_depth] ([time, streams, depth] when time_major); with
  /// `lengths`, stream b takes only its first lengths[b] steps of it. Returns the logits after
  /// the chunk.
  const Matrix<T>& feed(const Tensor3<T>& chunk, const SequenceLengths& lengths = {}, bool time_major = false) {
    rnn_.feed(chunk, lengths, time_major);
    return update();
  }

  /// The logits [streams, classes] after the steps so far (of the zero state before any).
  const Matrix<T>& logits() {
    if (logits_.rows() != rnn_.batch()) update();
    return logits_;
  }
  /// The class probabilities [streams, classes] after the steps so far.
  Matrix<T> predict_proba() { return softmax(logits()); }
  /// The predicted class of every stream after the steps so far.
  std::vector<Index> predict() { return argmax(logits()); }

  /// Every stream back to the zero state and a step count of 0.
  void reset() {
    rnn_.reset();
    update();
  }
  /// Stream b back to the zero state and a step count of 0; the others are untouched.
  void reset(Index b) {
    rnn_.reset(b);
    update();
  }

  /// Number of streams.
  Index streams() const { return rnn_.batch(); }
  /// Steps stream b has taken since the start or its last reset.
  Index steps(Index b) const { return rnn_.steps(b); }
  /// The recurrent state of every stream (one state per layer, layer 0 first).
  const typename MultiRNNCell<T>::State& state() const { return rnn_.state(); }
  /// The underlying stream of the recurrent stack (its outputs per step, set_state, ...).
  RNNStream<MultiRNNCell<T>>& rnn_stream() { return rnn_; }

 private:
  static const Model<T>& streamable(const Model<T>& model) {
    if (model.bidirectional())
      throw ValueError(
          "ModelStream: a bidirectional model cannot stream: its backward direction reads every sequence "
          "from its end (run the whole sequence with predict or logits)");
    return model;
  }

  const Matrix<T>& update() {
    model_->head().forward_into(rnn_.state().back().h(), logits_);  // no allocation once sized
    return logits_;
  }

  const Model<T>* model_;
  RNNStream<MultiRNNCell<T>> rnn_;
  Matrix<T> logits_;
};

}  // namespace cellflow
