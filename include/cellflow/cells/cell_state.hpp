// CellState: the state of one layer of a MultiRNNCell, whichever kind of cell the layer is: an
// LSTMStateTuple (c, h) or a plain h. A stack's state is a std::vector<CellState<T>>, layer 0
// first; both get the state operations of state.hpp.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cellflow/cells/lstm_state.hpp"
#include "cellflow/cells/state.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

/// One layer's state: an LSTMStateTuple (c, h) for LSTM kinds, a plain h for a GRU. `h()` is the
/// part a head reads, so TF's `states[-1][1]` is `states.back().h()`.
template <class T>
class CellState {
 public:
  /// An empty GRU-kind state (h is a 0 x 0 matrix).
  CellState() = default;
  /// An LSTM layer's state (c, h); implicit, so that an LSTMStateTuple converts.
  CellState(LSTMStateTuple<T> s) : v_(std::move(s)) {}  // NOLINT: implicit by design
  /// A GRU layer's state h [batch, num_units]; implicit, so that a Matrix converts.
  CellState(Matrix<T> h) : v_(std::move(h)) {}  // NOLINT: implicit by design

  /// Whether it holds an LSTMStateTuple (c, h) rather than a plain h.
  bool is_lstm() const { return std::holds_alternative<LSTMStateTuple<T>>(v_); }

  /// h: the layer's output-side state (both kinds).
  const Matrix<T>& h() const { return is_lstm() ? std::get<LSTMStateTuple<T>>(v_).h : std::get<Matrix<T>>(v_); }
  /// h, to change in place (both kinds).
  Matrix<T>& h() { return is_lstm() ? std::get<LSTMStateTuple<T>>(v_).h : std::get<Matrix<T>>(v_); }

  /// c: the cell state of an LSTM layer; throws ValueError for a GRU layer (it has none).
  const Matrix<T>& c() const { return lstm("c()").c; }
  /// c, to change in place; ValueError for a GRU layer.
  Matrix<T>& c() { return lstm("c()").c; }

  /// The typed state: get<LSTMStateTuple<T>>() or get<Matrix<T>>().
  template <class S>
  const S& get() const {
    if (!std::holds_alternative<S>(v_)) throw ValueError("CellState::get: " + mismatch());
    return std::get<S>(v_);
  }
  /// The typed state, to change in place; ValueError when it holds the other type.
  template <class S>
  S& get() {
    if (!std::holds_alternative<S>(v_)) throw ValueError("CellState::get: " + mismatch());
    return std::get<S>(v_);
  }

  /// "LSTM state (c, h)" or "GRU state h", for messages.
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
/// The part of a layer's state a dense head reads: s.h().
const Matrix<T>& output_of(const CellState<T>& s) {
  return s.h();
}

// ---- cell contract: the state operations (cells/state.hpp) ----

/// The state operations of state.hpp for one layer's state, and for a stack's.
template <class T>
Index state_batch(const CellState<T>& s) {
  return s.h().rows();
}
template <class T>
/// The state of examples [b0, b0 + n), of the same kind.
CellState<T> state_rows(const CellState<T>& s, Index b0, Index n) {
  if (s.is_lstm()) return CellState<T>(state_rows(s.template get<LSTMStateTuple<T>>(), b0, n));
  return CellState<T>(state_rows(s.template get<Matrix<T>>(), b0, n));
}
template <class T>
/// Writes `src` into examples [b0, b0 + its batch) of `dst`; ValueError unless both hold the same kind.
void set_state_rows(CellState<T>& dst, Index b0, const CellState<T>& src) {
  if (src.is_lstm())
    set_state_rows(dst.template get<LSTMStateTuple<T>>(), b0, src.template get<LSTMStateTuple<T>>());
  else
    set_state_rows(dst.template get<Matrix<T>>(), b0, src.template get<Matrix<T>>());
}

template <class T>
/// A stack's batch size: that of layer 0 (0 for a stack of no layer).
Index state_batch(const std::vector<CellState<T>>& s) {
  return s.empty() ? 0 : state_batch(s.front());
}
template <class T>
/// A stack's state of examples [b0, b0 + n), layer by layer.
std::vector<CellState<T>> state_rows(const std::vector<CellState<T>>& s, Index b0, Index n) {
  std::vector<CellState<T>> r;
  r.reserve(s.size());
  for (const auto& l : s) r.push_back(state_rows(l, b0, n));
  return r;
}
template <class T>
/// Writes a stack's state into examples [b0, b0 + its batch) of `dst`, layer by layer (`dst` must
/// have at least src's layers; unchecked).
void set_state_rows(std::vector<CellState<T>>& dst, Index b0, const std::vector<CellState<T>>& src) {
  for (std::size_t l = 0; l < src.size(); ++l) set_state_rows(dst[l], b0, src[l]);
}

}  // namespace cellflow
