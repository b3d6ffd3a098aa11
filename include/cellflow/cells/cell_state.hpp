// CellState: the state of one layer of a MultiRNNCell, whichever kind of cell the layer is.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "cellflow/cells/lstm_state.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

/// One layer's state: an LSTMStateTuple (c, h) for LSTM kinds, a plain h for a GRU. `h()` is the
/// part a head reads, so TF's `states[-1][1]` is `states.back().h()`.
template <class T>
class CellState {
 public:
  CellState() = default;
  CellState(LSTMStateTuple<T> s) : v_(std::move(s)) {}  // NOLINT: implicit by design
  CellState(Matrix<T> h) : v_(std::move(h)) {}          // NOLINT: implicit by design

  bool is_lstm() const { return std::holds_alternative<LSTMStateTuple<T>>(v_); }

  /// h: the layer's output-side state (both kinds).
  const Matrix<T>& h() const { return is_lstm() ? std::get<LSTMStateTuple<T>>(v_).h : std::get<Matrix<T>>(v_); }
  Matrix<T>& h() { return is_lstm() ? std::get<LSTMStateTuple<T>>(v_).h : std::get<Matrix<T>>(v_); }

  /// c: the cell state of an LSTM layer; throws ValueError for a GRU layer (it has none).
  const Matrix<T>& c() const { return lstm("c()").c; }
  Matrix<T>& c() { return lstm("c()").c; }

  /// The typed state: get<LSTMStateTuple<T>>() or get<Matrix<T>>().
  template <class S>
  const S& get() const {
    if (!std::holds_alternative<S>(v_)) throw ValueError("CellState::get: " + mismatch());
    return std::get<S>(v_);
  }
  template <class S>
  S& get() {
    if (!std::holds_alternative<S>(v_)) throw ValueError("CellState::get: " + mismatch());
    return std::get<S>(v_);
  }

  std::string kind() const { return is_lstm() ? "LSTM state (c, h)" : "GRU state h"; }

 private:
  const LSTMStateTuple<T>& lstm(const char* what) const {
    if (!is_lstm())
      throw ValueError(std::string("CellState::") + what + ": this layer holds a GRU state h, which has no c");
    return std::get<LSTMStateTuple<T>>(v_);
  }
  LSTMStateTuple<T>& lstm(const char* what) {
    if (!is_lstm())
      throw ValueError(std::string("CellState::") + what + ": this layer holds a GRU state h, which has no c");
    return std::get<LSTMStateTuple<T>>(v_);
  }
  std::string mismatch() const { return "the state held is a " + kind() + ", a different type was asked for"; }

  std::variant<Matrix<T>, LSTMStateTuple<T>> v_;
};

template <class T>
const Matrix<T>& output_of(const CellState<T>& s) {
  return s.h();
}

}  // namespace cellflow
