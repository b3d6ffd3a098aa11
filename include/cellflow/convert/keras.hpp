// Keras LSTM / GRU / SimpleRNN weights <-> cellflow (TensorFlow 1.x) variables.
//
// Keras layout (layer.get_weights() order), U = units:
//   LSTM:                   kernel [D, 4U], recurrent_kernel [U, 4U], bias [4U]; columns
//                           i | f | c | o. Keras has no run-time forget bias (unit_forget_bias
//                           only initialises the bias), so TF's f bias = Keras f bias - forget_bias.
//   GRU(reset_after=True):  kernel [D, 3U], recurrent_kernel [U, 3U], bias [2, 3U] (row 0 for the
//                           input, row 1 for the recurrent products); columns z | r | h.
//                           Same equations as a reset-after CudnnCompatibleGRUCell.
//   GRU(reset_after=False): same kernels, bias [3U]; same equations as TF1's GRUCell.
//   SimpleRNN:              kernel [D, U], recurrent_kernel [U, U], bias [U]:
//                           h = act(x kernel + h recurrent_kernel + bias), TF1's BasicRNNCell with
//                           kernel [D + U, U] = [kernel; recurrent_kernel] (the same activation).
// cellflow/TF1: LSTM kernel [D + U, 4U] columns i | j | f | o (j is Keras's c), GRU gate columns
// r | u (u is Keras's z). use_bias=False is an empty bias matrix (zeros).
// docs/converters.md has the tables.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "cellflow/convert/common.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/rnn/multi_rnn_cell.hpp"

namespace cellflow::convert {

/// A Keras LSTM layer's weights. 1-D bias as a 1 x 4U matrix; empty for use_bias=False.
template <class T>
struct KerasLSTMWeights {
  Matrix<T> kernel, recurrent_kernel, bias;  ///< [D, 4U], [U, 4U] and [4U]; gate columns i | f | c | o
};

/// A Keras GRU layer's weights: bias 2 x 3U with reset_after=True, 1 x 3U with reset_after=False,
/// empty for use_bias=False.
template <class T>
struct KerasGRUWeights {
  Matrix<T> kernel, recurrent_kernel, bias;  ///< [D, 3U], [U, 3U] and bias as above; gate columns z | r | h
};

/// A Keras SimpleRNN layer's weights. Bias 1 x U; empty for use_bias=False.
template <class T>
struct KerasSimpleRNNWeights {
  Matrix<T> kernel, recurrent_kernel, bias;  ///< [D, U], [U, U] and [U]
};

namespace detail {

/// Keras LSTM gate block of TF block k (i, j, f, o <- i, f, c, o); its own inverse.
constexpr Index kLSTMFromKeras[4] = {0, 2, 1, 3};
/// Keras GRU gate block of TF gate block k (r, u <- z, r, h): r is Keras block 1, u block 0.
constexpr Index kGRUFromKeras[2] = {1, 0};

template <class T>
Index keras_units(const std::string& op, const Matrix<T>& recurrent, Index gates) {
  if (recurrent.rows() <= 0 || recurrent.cols() != gates * recurrent.rows())
    throw ShapeError(detail::concat(op, ": recurrent_kernel expected [units, ", gates, "*units], given ",
                                    given_shape(recurrent, false)));
  return recurrent.rows();
}

template <class T>
Index keras_depth(const std::string& op, const Matrix<T>& kernel, Index gates, Index U) {
  if (kernel.rows() <= 0 || kernel.cols() != gates * U)
    throw ShapeError(
        detail::concat(op, ": kernel expected [input_dim, ", gates * U, "], given ", given_shape(kernel, false)));
  return kernel.rows();
}

}  // namespace detail

/// Keras LSTM -> TF1 LSTM variables for a cell whose forget_bias is `forget_bias`.
template <class T>
LSTMWeights<T> lstm_from_keras(const KerasLSTMWeights<T>& k, T forget_bias) {
  const std::string op = "lstm_from_keras";
  const Index U = detail::keras_units(op, k.recurrent_kernel, 4);
  const Index D = detail::keras_depth(op, k.kernel, 4, U);
  const bool bias = k.bias.size() > 0;
  if (bias) detail::expect_vector(op, "bias", k.bias, 4 * U);
  LSTMWeights<T> w;
  w.kernel.resize(D + U, 4 * U);
  w.bias.setZero(1, 4 * U);
  for (Index g = 0; g < 4; ++g) {
    const Index src = detail::kLSTMFromKeras[g] * U;
    w.kernel.block(0, g * U, D, U) = k.kernel.middleCols(src, U);
    w.kernel.block(D, g * U, U, U) = k.recurrent_kernel.middleCols(src, U);
    if (bias) w.bias.middleCols(g * U, U) = k.bias.middleCols(src, U);
  }
  w.bias.middleCols(2 * U, U).array() -= forget_bias;
  return w;
}

/// TF1 LSTM variables of a cell with `forget_bias` -> Keras LSTM (the f bias gets forget_bias
/// added). For gradients pass forget_bias = 0 (the mapping is then exactly linear).
template <class T>
KerasLSTMWeights<T> lstm_to_keras(const LSTMWeights<T>& w, T forget_bias) {
  const std::string op = "lstm_to_keras";
  if (w.projection.size() > 0)
    throw ValueError(
        detail::concat(op, ": the weights have a projection/kernel (num_proj), which a Keras LSTM does not have"));
  if (w.kernel.cols() <= 0 || w.kernel.cols() % 4 != 0 || w.kernel.rows() <= w.kernel.cols() / 4)
    throw ShapeError(detail::concat(op, ": kernel expected [input_depth + num_units, 4*num_units], given ",
                                    detail::given_shape(w.kernel, false)));
  const Index U = w.kernel.cols() / 4, D = w.kernel.rows() - U;
  detail::expect_vector(op, "bias", w.bias, 4 * U);
  KerasLSTMWeights<T> k;
  k.kernel.resize(D, 4 * U);
  k.recurrent_kernel.resize(U, 4 * U);
  k.bias.resize(1, 4 * U);
  for (Index g = 0; g < 4; ++g) {
    const Index dst = detail::kLSTMFromKeras[g] * U;
    k.kernel.middleCols(dst, U) = w.kernel.block(0, g * U, D, U);
    k.recurrent_kernel.middleCols(dst, U) = w.kernel.block(D, g * U, U, U);
    k.bias.middleCols(dst, U) = w.bias.middleCols(g * U, U);
  }
  k.bias.middleCols(1 * U, U).array() += forget_bias;  // Keras f block
  return k;
}

/// Keras GRU(reset_after=True) -> CudnnCompatibleGRUCell variables (bias [2, 3U] or empty).
template <class T>
GRUResetAfterWeights<T> gru_reset_after_from_keras(const KerasGRUWeights<T>& k) {
  const std::string op = "gru_reset_after_from_keras";
  const Index U = detail::keras_units(op, k.recurrent_kernel, 3);
  const Index D = detail::keras_depth(op, k.kernel, 3, U);
  const bool bias = k.bias.size() > 0;
  if (bias && (k.bias.rows() != 2 || k.bias.cols() != 3 * U))
    throw ShapeError(detail::concat(op, ": bias expected [2, ", 3 * U,
                                    "] (Keras GRU reset_after=True: input and recurrent biases), given ",
                                    detail::given_shape(k.bias, true)));
  GRUResetAfterWeights<T> w;
  w.gates_kernel.resize(D + U, 2 * U);
  w.gates_bias.setZero(1, 2 * U);
  for (Index g = 0; g < 2; ++g) {
    const Index src = detail::kGRUFromKeras[g] * U;
    w.gates_kernel.block(0, g * U, D, U) = k.kernel.middleCols(src, U);
    w.gates_kernel.block(D, g * U, U, U) = k.recurrent_kernel.middleCols(src, U);
    if (bias) w.gates_bias.middleCols(g * U, U) = k.bias.block(0, src, 1, U) + k.bias.block(1, src, 1, U);
  }
  w.candidate_input_kernel = k.kernel.rightCols(U);
  w.candidate_hidden_kernel = k.recurrent_kernel.rightCols(U);
  if (bias) {
    w.candidate_input_bias = k.bias.block(0, 2 * U, 1, U);
    w.candidate_hidden_bias = k.bias.block(1, 2 * U, 1, U);
  } else {
    w.candidate_input_bias.setZero(1, U);
    w.candidate_hidden_bias.setZero(1, U);
  }
  return w;
}

/// Keras GRU(reset_after=False) -> TF1 GRUCell variables (bias [3U] or empty).
template <class T>
GRUWeights<T> gru_from_keras(const KerasGRUWeights<T>& k) {
  const std::string op = "gru_from_keras";
  const Index U = detail::keras_units(op, k.recurrent_kernel, 3);
  const Index D = detail::keras_depth(op, k.kernel, 3, U);
  const bool bias = k.bias.size() > 0;
  if (bias && (k.bias.rows() != 1 || k.bias.cols() != 3 * U))
    throw ShapeError(detail::concat(
        op, ": bias expected [", 3 * U, "] (Keras GRU reset_after=False), given ", detail::given_shape(k.bias, true),
        k.bias.rows() == 2 ? ": a [2, 3*units] bias is reset_after=True, use gru_reset_after_from_keras" : ""));
  GRUWeights<T> w;
  w.gates_kernel.resize(D + U, 2 * U);
  w.gates_bias.setZero(1, 2 * U);
  for (Index g = 0; g < 2; ++g) {
    const Index src = detail::kGRUFromKeras[g] * U;
    w.gates_kernel.block(0, g * U, D, U) = k.kernel.middleCols(src, U);
    w.gates_kernel.block(D, g * U, U, U) = k.recurrent_kernel.middleCols(src, U);
    if (bias) w.gates_bias.middleCols(g * U, U) = k.bias.middleCols(src, U);
  }
  w.candidate_kernel.resize(D + U, U);
  w.candidate_kernel.topRows(D) = k.kernel.rightCols(U);
  w.candidate_kernel.bottomRows(U) = k.recurrent_kernel.rightCols(U);
  w.candidate_bias = bias ? Matrix<T>(k.bias.rightCols(U)) : Matrix<T>::Zero(1, U);
  return w;
}

namespace detail {

template <class T>
void keras_gru_kernels(const std::string& op, const Matrix<T>& gates_kernel, const Matrix<T>& gates_bias, Index D,
                       Index U, KerasGRUWeights<T>& k) {
  expect_shape(op, "gates/kernel", gates_kernel, D + U, 2 * U);
  expect_vector(op, "gates/bias", gates_bias, 2 * U);
  k.kernel.resize(D, 3 * U);
  k.recurrent_kernel.resize(U, 3 * U);
  for (Index g = 0; g < 2; ++g) {
    const Index dst = kGRUFromKeras[g] * U;
    k.kernel.middleCols(dst, U) = gates_kernel.block(0, g * U, D, U);
    k.recurrent_kernel.middleCols(dst, U) = gates_kernel.block(D, g * U, U, U);
  }
}

}  // namespace detail

/// TF1 GRUCell variables -> Keras GRU(reset_after=False). The mapping is linear and one to one,
/// so it also converts gradients.
template <class T>
KerasGRUWeights<T> gru_to_keras(const GRUWeights<T>& w) {
  const std::string op = "gru_to_keras";
  const Index U = w.candidate_kernel.cols();
  if (U <= 0 || w.candidate_kernel.rows() <= U)
    throw ShapeError(detail::concat(op, ": candidate/kernel expected [input_depth + num_units, num_units], given ",
                                    detail::given_shape(w.candidate_kernel, false)));
  const Index D = w.candidate_kernel.rows() - U;
  detail::expect_vector(op, "candidate/bias", w.candidate_bias, U);
  KerasGRUWeights<T> k;
  detail::keras_gru_kernels(op, w.gates_kernel, w.gates_bias, D, U, k);
  k.kernel.rightCols(U) = w.candidate_kernel.topRows(D);
  k.recurrent_kernel.rightCols(U) = w.candidate_kernel.bottomRows(U);
  k.bias.resize(1, 3 * U);
  for (Index g = 0; g < 2; ++g) k.bias.middleCols(detail::kGRUFromKeras[g] * U, U) = w.gates_bias.middleCols(g * U, U);
  k.bias.rightCols(U) = w.candidate_bias;
  return k;
}

namespace detail {

template <class T>
KerasGRUWeights<T> gru_after_to_keras(const std::string& op, const GRUResetAfterWeights<T>& w, bool grads) {
  const Index U = w.candidate_hidden_kernel.rows();
  if (U <= 0 || w.candidate_hidden_kernel.cols() != U)
    throw ShapeError(detail::concat(op, ": candidate/hidden_projection/kernel expected [num_units, num_units], given ",
                                    given_shape(w.candidate_hidden_kernel, false)));
  if (w.candidate_input_kernel.rows() <= 0 || w.candidate_input_kernel.cols() != U)
    throw ShapeError(detail::concat(op, ": candidate/input_projection/kernel expected [input_depth, ", U, "], given ",
                                    given_shape(w.candidate_input_kernel, false)));
  const Index D = w.candidate_input_kernel.rows();
  expect_vector(op, "candidate/input_projection/bias", w.candidate_input_bias, U);
  expect_vector(op, "candidate/hidden_projection/bias", w.candidate_hidden_bias, U);
  KerasGRUWeights<T> k;
  keras_gru_kernels(op, w.gates_kernel, w.gates_bias, D, U, k);
  k.kernel.rightCols(U) = w.candidate_input_kernel;
  k.recurrent_kernel.rightCols(U) = w.candidate_hidden_kernel;
  k.bias.setZero(2, 3 * U);
  for (Index g = 0; g < 2; ++g) {
    const Index dst = kGRUFromKeras[g] * U;
    k.bias.block(0, dst, 1, U) = w.gates_bias.middleCols(g * U, U);
    if (grads) k.bias.block(1, dst, 1, U) = w.gates_bias.middleCols(g * U, U);
  }
  k.bias.block(0, 2 * U, 1, U) = w.candidate_input_bias;
  k.bias.block(1, 2 * U, 1, U) = w.candidate_hidden_bias;
  return k;
}

}  // namespace detail

/// CudnnCompatibleGRUCell variables -> Keras GRU(reset_after=True); the recurrent z | r biases are
/// 0 (the gate biases are summed in TF's layout), so gru_reset_after_from_keras gives them back
/// bitwise.
template <class T>
KerasGRUWeights<T> gru_to_keras(const GRUResetAfterWeights<T>& w) {
  return detail::gru_after_to_keras("gru_to_keras", w, false);
}

/// Gradients of CudnnCompatibleGRUCell variables -> gradients of the Keras GRU(reset_after=True)
/// weights (both bias rows receive the gate-bias gradient).
template <class T>
KerasGRUWeights<T> gru_gradients_to_keras(const GRUResetAfterWeights<T>& grads) {
  return detail::gru_after_to_keras("gru_gradients_to_keras", grads, true);
}

// ---- into cells ----

/// Keras SimpleRNN weights -> BasicRNNCell variables: kernel = [kernel; recurrent_kernel], the bias
/// as it is (zeros for use_bias=False).
template <class T>
BasicRNNWeights<T> simple_rnn_from_keras(const KerasSimpleRNNWeights<T>& k) {
  const std::string op = "simple_rnn_from_keras";
  const Index U = detail::keras_units(op, k.recurrent_kernel, 1);
  const Index D = detail::keras_depth(op, k.kernel, 1, U);
  BasicRNNWeights<T> w;
  w.kernel.resize(D + U, U);
  w.kernel.topRows(D) = k.kernel;
  w.kernel.bottomRows(U) = k.recurrent_kernel;
  if (k.bias.size() == 0) {
    w.bias.setZero(1, U);
  } else {
    detail::expect_vector(op, "bias", k.bias, U);
    w.bias = k.bias;
  }
  return w;
}

/// BasicRNNCell variables (or their gradients) -> Keras SimpleRNN weights (build the layer with the
/// cell's activation).
template <class T>
KerasSimpleRNNWeights<T> simple_rnn_to_keras(const BasicRNNWeights<T>& w) {
  const std::string op = "simple_rnn_to_keras";
  const Index U = w.kernel.cols(), D = w.kernel.rows() - U;
  if (U <= 0 || D <= 0)
    throw ShapeError(detail::concat(op, ": kernel expected [input_depth + num_units, num_units], given ",
                                    detail::given_shape(w.kernel, false)));
  detail::expect_vector(op, "bias", w.bias, U);
  return KerasSimpleRNNWeights<T>{w.kernel.topRows(D), w.kernel.bottomRows(U), w.bias};
}

namespace detail {

template <class T, class Cell>
void plan_keras_layer(const std::string& op, Cell& cell, const std::string& where, const KerasSimpleRNNWeights<T>& k,
                      std::vector<Write<T>>& writes) {
  const LayerInfo<T> info = layer_info(cell);
  if (info.kind != LayerKind::rnn)
    throw ValueError(
        detail::concat(op, ": ", where, info.name, " cannot take Keras SimpleRNN weights: it is not a BasicRNNCell"));
  const Index D = info.input_depth, U = info.num_units;
  const std::string ctx = detail::concat(" (", where, info.name, ")");
  expect_shape(op, "kernel" + ctx, k.kernel, D, U);
  expect_shape(op, "recurrent_kernel" + ctx, k.recurrent_kernel, U, U);
  if (k.bias.size() > 0) expect_vector(op, "bias" + ctx, k.bias, U);
  plan_writes<T>(
      op, info.name, CellVariables<T>(cell), named(simple_rnn_from_keras(k)),
      [&](const std::string& s) { return detail::concat("the Keras weights (", s, ")"); }, writes);
}

template <class T, class Cell>
void plan_keras_layer(const std::string& op, Cell& cell, const std::string& where, const KerasLSTMWeights<T>& k,
                      std::vector<Write<T>>& writes) {
  const LayerInfo<T> info = layer_info(cell);
  if (info.kind != LayerKind::lstm || info.projection)
    throw ValueError(detail::concat(op, ": ", where, info.name, " cannot take Keras LSTM weights: ",
                                    info.kind == LayerKind::lstm_peephole ? "Keras LSTM has no peepholes"
                                    : info.projection                     ? "Keras LSTM has no projection (num_proj)"
                                                                          : "it is not an LSTM cell"));
  const Index D = info.input_depth, U = info.num_units;
  const std::string ctx = detail::concat(" (", where, info.name, ")");
  expect_shape(op, "kernel" + ctx, k.kernel, D, 4 * U);
  expect_shape(op, "recurrent_kernel" + ctx, k.recurrent_kernel, U, 4 * U);
  if (k.bias.size() > 0) expect_vector(op, "bias" + ctx, k.bias, 4 * U);
  plan_writes<T>(
      op, info.name, CellVariables<T>(cell), named(lstm_from_keras(k, info.forget_bias)),
      [&](const std::string& s) { return detail::concat("the Keras weights (", s, ")"); }, writes);
}

template <class T, class Cell>
void plan_keras_layer(const std::string& op, Cell& cell, const std::string& where, const KerasGRUWeights<T>& k,
                      std::vector<Write<T>>& writes) {
  const LayerInfo<T> info = layer_info(cell);
  if (info.kind != LayerKind::gru && info.kind != LayerKind::gru_reset_after)
    throw ValueError(
        detail::concat(op, ": ", where, info.name, " cannot take Keras GRU weights: it is not a GRU cell"));
  const bool after = info.kind == LayerKind::gru_reset_after;
  const Index D = info.input_depth, U = info.num_units;
  const std::string ctx = detail::concat(" (", where, info.name, ")");
  expect_shape(op, "kernel" + ctx, k.kernel, D, 3 * U);
  expect_shape(op, "recurrent_kernel" + ctx, k.recurrent_kernel, U, 3 * U);
  if (k.bias.size() > 0) {
    if (k.bias.rows() == 2 && !after)
      throw ValueError(detail::concat(op, ": a bias [2, ", k.bias.cols(), "] is Keras GRU(reset_after=True), but ",
                                      where, info.name,
                                      " is the reset-before TF1 GRUCell: build it as a CudnnCompatibleGRUCell"));
    if (k.bias.rows() == 1 && after)
      throw ValueError(detail::concat(op, ": a bias [", k.bias.cols(), "] is Keras GRU(reset_after=False), but ", where,
                                      info.name, " is a CudnnCompatibleGRUCell (reset after): build it as a GRUCell"));
    if (after && k.bias.cols() != 3 * U)
      throw ShapeError(
          detail::concat(op, ": bias", ctx, " expected [2, ", 3 * U, "], given ", given_shape(k.bias, true)));
    if (!after) expect_vector(op, "bias" + ctx, k.bias, 3 * U);
  }
  auto source = [&](const std::string& s) { return detail::concat("the Keras weights (", s, ")"); };
  if (after)
    plan_writes<T>(op, info.name, CellVariables<T>(cell), named(gru_reset_after_from_keras(k)), source, writes);
  else
    plan_writes<T>(op, info.name, CellVariables<T>(cell), named(gru_from_keras(k)), source, writes);
}

}  // namespace detail

/// Loads a Keras LSTM, GRU or SimpleRNN layer's weights into `cell` (a cell, or a MultiRNNCell layer as
/// multi.layer(l)). LSTM cells subtract their own forget_bias; a GRU's variant must match the
/// Keras bias (reset_after=True: [2, 3U]). Shapes are checked against the cell (ShapeError naming
/// the Keras tensor); on any error the cell is unchanged.
template <class Cell, class KerasWeights>
void load_keras(Cell& cell, const KerasWeights& k) {
  using T = typename Cell::Scalar;
  std::vector<detail::Write<T>> writes;
  detail::plan_keras_layer<T>("load_keras", cell, "", k, writes);
  detail::apply_writes(writes);
}

/// Loads one Keras layer per MultiRNNCell layer (a Keras stack of LSTM or GRU layers with
/// return_sequences=True below the top); on any error no layer is changed.
template <class T, class KerasWeights>
void load_keras(MultiRNNCell<T>& multi, const std::vector<KerasWeights>& layers) {
  const std::string op = "load_keras";
  if (static_cast<Index>(layers.size()) != multi.num_layers())
    throw ValueError(
        detail::concat(op, ": ", layers.size(), " Keras layers given, the MultiRNNCell has ", multi.num_layers()));
  std::vector<detail::Write<T>> writes;
  for (Index l = 0; l < multi.num_layers(); ++l)
    detail::plan_keras_layer<T>(op, multi.layer(l), detail::concat("layer ", l, ", "),
                                layers[static_cast<std::size_t>(l)], writes);
  detail::apply_writes(writes);
}

}  // namespace cellflow::convert
