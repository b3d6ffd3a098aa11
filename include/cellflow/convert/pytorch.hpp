// PyTorch nn.LSTM / nn.GRU / nn.RNN weights <-> cellflow (TensorFlow 1.x) variables, both directions.
//
// PyTorch layout of layer l (state_dict keys with the suffix _l<l>), H = hidden_size:
//   nn.LSTM: weight_ih [4H, D], weight_hh [4H, P], bias_ih [4H], bias_hh [4H], rows in gate
//            order i | f | g | o; with proj_size P also weight_hr [P, H] (else P = H).
//   nn.GRU:  weight_ih [3H, D], weight_hh [3H, H], bias_ih [3H], bias_hh [3H], rows r | z | n.
//   nn.RNN:  weight_ih [H, D], weight_hh [H, H], bias_ih [H], bias_hh [H]: h = act(x W_ih^T + b_ih
//            + h W_hh^T + b_hh), act = tanh or relu (the module's `nonlinearity`).
// cellflow/TF1: LSTM kernel [D + P, 4U] columns i | j | f | o (j is PyTorch's g), bias [4U]
// without forget_bias, projection/kernel [U, P]; GRU reset after (CudnnCompatibleGRUCell):
// gates/kernel [D + U, 2U] columns r | u (u is PyTorch's z), gates/bias [2U],
// candidate/{input,hidden}_projection/{kernel,bias}.
//
// Import: kernel = [weight_ih; weight_hh]^T with the gate blocks reordered; TF's single LSTM bias
// = bias_ih + (bias_hh - forget_bias on the f block), because TF adds forget_bias at run time;
// GRU gates/bias = bias_ih + bias_hh on r | z; the n biases stay apart (input / hidden projection).
// BasicRNNCell (nn.RNN): kernel = [weight_ih; weight_hh]^T, bias = bias_ih + bias_hh; the cell's
// activation must be the module's nonlinearity (not in the state_dict: build both alike).
// Export: bias_ih = TF's bias (reordered), bias_hh = forget_bias on the f block and 0 elsewhere
// (GRU: 0 on r | z, the hidden projection bias on n). So cellflow -> PyTorch -> cellflow is
// bitwise exact; PyTorch -> cellflow -> PyTorch keeps bias_ih + bias_hh, not the split.
// Gradients export differently: d bias_ih = d bias_hh = d (summed bias).
// docs/converters.md has the tables and the reasoning.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cellflow/cells/gru_cell.hpp"
#include "cellflow/cells/lstm_cell.hpp"
#include "cellflow/convert/common.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/rnn/multi_rnn_cell.hpp"

namespace cellflow::convert {

/// One layer of a PyTorch nn.LSTM. 1-D tensors are 1 x n matrices. Empty bias_ih and bias_hh
/// mean bias=False (zeros); weight_hr is empty unless proj_size > 0.
template <class T>
struct PyTorchLSTMLayer {
  /// [4H, D], [4H, P], [4H], [4H] and [P, H] (P = proj_size, else H); gate rows i | f | g | o.
  Matrix<T> weight_ih, weight_hh, bias_ih, bias_hh, weight_hr;
};

/// One layer of a PyTorch nn.GRU. Empty bias_ih and bias_hh mean bias=False (zeros).
template <class T>
struct PyTorchGRULayer {
  Matrix<T> weight_ih, weight_hh, bias_ih, bias_hh;  ///< [3H, D], [3H, H], [3H] and [3H]; gate rows r | z | n
};

/// One layer of a PyTorch nn.RNN (nonlinearity 'tanh' or 'relu'). Empty biases mean bias=False.
template <class T>
struct PyTorchRNNLayer {
  Matrix<T> weight_ih, weight_hh, bias_ih, bias_hh;  ///< [H, D], [H, H], [H] and [H]
};

/// A PyTorch state_dict: "weight_ih_l0", "bias_hh_l1", ... -> tensor (1-D as 1 x n).
template <class T>
using StateDict = std::map<std::string, Matrix<T>>;

namespace detail {

/// TF LSTM gate block k (i, j, f, o) is PyTorch (and Keras) block kLSTMFromTorch[k] (i, f, g, o).
/// The permutation swaps the middle two, so it is its own inverse.
constexpr Index kLSTMFromTorch[4] = {0, 2, 1, 3};

/// Checks a bias pair: both 1 x n, or both empty (bias=False). Returns whether they are present.
template <class T>
bool check_bias_pair(const std::string& op, const std::string& ih_name, const Matrix<T>& ih, const std::string& hh_name,
                     const Matrix<T>& hh, Index n) {
  if (ih.size() == 0 && hh.size() == 0) return false;
  expect_vector(op, ih_name, ih, n);
  expect_vector(op, hh_name, hh, n);
  return true;
}

template <class T>
Index torch_units(const std::string& op, const std::string& name, const Matrix<T>& w, Index gates, const char* layout) {
  if (w.rows() <= 0 || w.rows() % gates != 0 || w.cols() <= 0)
    throw ShapeError(detail::concat(op, ": ", name, " expected ", layout, " (", gates,
                                    " gate blocks of hidden_size rows), given ", given_shape(w, false)));
  return w.rows() / gates;
}

}  // namespace detail

// ---- one layer ----

/// PyTorch nn.LSTM layer -> TF1 LSTM variables for a cell whose forget_bias is `forget_bias`
/// (BasicLSTMCell/LSTMCell default 1.0). `suffix` is appended to tensor names in messages
/// (e.g. "_l0").
template <class T>
LSTMWeights<T> lstm_from_pytorch(const PyTorchLSTMLayer<T>& p, T forget_bias, const std::string& suffix = "") {
  const std::string op = "lstm_from_pytorch";
  const Index H = detail::torch_units(op, "weight_ih" + suffix, p.weight_ih, 4, "[4*hidden_size, input_size]");
  const Index D = p.weight_ih.cols();
  const bool proj = p.weight_hr.size() > 0;
  const Index P = proj ? p.weight_hr.rows() : H;
  if (proj) detail::expect_shape(op, "weight_hr" + suffix, p.weight_hr, P, H);
  detail::expect_shape(op, "weight_hh" + suffix, p.weight_hh, 4 * H, P);
  const bool bias = detail::check_bias_pair(op, "bias_ih" + suffix, p.bias_ih, "bias_hh" + suffix, p.bias_hh, 4 * H);
  LSTMWeights<T> w;
  w.kernel.resize(D + P, 4 * H);
  w.bias.setZero(1, 4 * H);
  for (Index k = 0; k < 4; ++k) {
    const Index src = detail::kLSTMFromTorch[k] * H;
    w.kernel.block(0, k * H, D, H) = p.weight_ih.middleRows(src, H).transpose();
    w.kernel.block(D, k * H, P, H) = p.weight_hh.middleRows(src, H).transpose();
    if (bias) {
      const T shift = k == 2 ? forget_bias : T(0);
      for (Index j = 0; j < H; ++j) w.bias(0, k * H + j) = p.bias_ih(0, src + j) + (p.bias_hh(0, src + j) - shift);
    } else if (k == 2) {
      w.bias.middleCols(2 * H, H).setConstant(-forget_bias);
    }
  }
  if (proj) w.projection = p.weight_hr.transpose();
  return w;
}

namespace detail {

template <class T>
void check_lstm_weights(const std::string& op, const LSTMWeights<T>& w, Index& D, Index& H, Index& P) {
  if (w.kernel.cols() <= 0 || w.kernel.cols() % 4 != 0)
    throw ShapeError(
        detail::concat(op, ": kernel expected [input_depth + h, 4*num_units], given ", given_shape(w.kernel, false)));
  H = w.kernel.cols() / 4;
  const bool proj = w.projection.size() > 0;
  P = proj ? w.projection.cols() : H;
  if (proj) expect_shape(op, "projection/kernel", w.projection, H, P);
  if (w.kernel.rows() <= P)
    throw ShapeError(detail::concat(op, ": kernel expected [input_depth + ", P, ", ", 4 * H,
                                    "] with input_depth >= 1, given ", given_shape(w.kernel, false)));
  D = w.kernel.rows() - P;
  expect_vector(op, "bias", w.bias, 4 * H);
}

template <class T>
PyTorchLSTMLayer<T> lstm_to_pytorch_impl(const std::string& op, const LSTMWeights<T>& w, T forget_bias, bool grads) {
  Index D = 0, H = 0, P = 0;
  check_lstm_weights(op, w, D, H, P);
  PyTorchLSTMLayer<T> p;
  p.weight_ih.resize(4 * H, D);
  p.weight_hh.resize(4 * H, P);
  p.bias_ih.resize(1, 4 * H);
  p.bias_hh.setZero(1, 4 * H);
  for (Index k = 0; k < 4; ++k) {
    const Index dst = kLSTMFromTorch[k] * H;
    p.weight_ih.middleRows(dst, H) = w.kernel.block(0, k * H, D, H).transpose();
    p.weight_hh.middleRows(dst, H) = w.kernel.block(D, k * H, P, H).transpose();
    p.bias_ih.middleCols(dst, H) = w.bias.middleCols(k * H, H);
    if (grads)
      p.bias_hh.middleCols(dst, H) = w.bias.middleCols(k * H, H);
    else if (k == 2)
      p.bias_hh.middleCols(dst, H).setConstant(forget_bias);
  }
  if (w.projection.size() > 0) p.weight_hr = w.projection.transpose();
  return p;
}

}  // namespace detail

/// TF1 LSTM variables of a cell with `forget_bias` -> PyTorch nn.LSTM layer: bias_ih = TF's bias,
/// bias_hh = forget_bias on the f block (0 elsewhere), so lstm_from_pytorch gives back the
/// variables bitwise.
template <class T>
PyTorchLSTMLayer<T> lstm_to_pytorch(const LSTMWeights<T>& w, T forget_bias) {
  return detail::lstm_to_pytorch_impl("lstm_to_pytorch", w, forget_bias, false);
}

/// Gradients of TF1 LSTM variables -> gradients of the PyTorch parameters (bias_ih and bias_hh
/// both receive the gradient of the summed bias).
template <class T>
PyTorchLSTMLayer<T> lstm_gradients_to_pytorch(const LSTMWeights<T>& grads) {
  return detail::lstm_to_pytorch_impl("lstm_gradients_to_pytorch", grads, T(0), true);
}

/// PyTorch nn.GRU layer -> variables of a reset-after CudnnCompatibleGRUCell.
template <class T>
GRUResetAfterWeights<T> gru_from_pytorch(const PyTorchGRULayer<T>& p, const std::string& suffix = "") {
  const std::string op = "gru_from_pytorch";
  const Index H = detail::torch_units(op, "weight_ih" + suffix, p.weight_ih, 3, "[3*hidden_size, input_size]");
  const Index D = p.weight_ih.cols();
  detail::expect_shape(op, "weight_hh" + suffix, p.weight_hh, 3 * H, H);
  const bool bias = detail::check_bias_pair(op, "bias_ih" + suffix, p.bias_ih, "bias_hh" + suffix, p.bias_hh, 3 * H);
  GRUResetAfterWeights<T> w;
  w.gates_kernel.resize(D + H, 2 * H);
  w.gates_kernel.topRows(D) = p.weight_ih.topRows(2 * H).transpose();  // r | z -> r | u
  w.gates_kernel.bottomRows(H) = p.weight_hh.topRows(2 * H).transpose();
  w.candidate_input_kernel = p.weight_ih.bottomRows(H).transpose();
  w.candidate_hidden_kernel = p.weight_hh.bottomRows(H).transpose();
  if (bias) {
    w.gates_bias = p.bias_ih.leftCols(2 * H) + p.bias_hh.leftCols(2 * H);
    w.candidate_input_bias = p.bias_ih.rightCols(H);
    w.candidate_hidden_bias = p.bias_hh.rightCols(H);
  } else {
    w.gates_bias.setZero(1, 2 * H);
    w.candidate_input_bias.setZero(1, H);
    w.candidate_hidden_bias.setZero(1, H);
  }
  return w;
}

namespace detail {

template <class T>
void check_gru_after(const std::string& op, const GRUResetAfterWeights<T>& w, Index& D, Index& H) {
  if (w.candidate_hidden_kernel.rows() <= 0 || w.candidate_hidden_kernel.rows() != w.candidate_hidden_kernel.cols())
    throw ShapeError(detail::concat(op, ": candidate/hidden_projection/kernel expected [num_units, num_units], given ",
                                    given_shape(w.candidate_hidden_kernel, false)));
  H = w.candidate_hidden_kernel.rows();
  if (w.candidate_input_kernel.rows() <= 0 || w.candidate_input_kernel.cols() != H)
    throw ShapeError(detail::concat(op, ": candidate/input_projection/kernel expected [input_depth, ", H, "], given ",
                                    given_shape(w.candidate_input_kernel, false)));
  D = w.candidate_input_kernel.rows();
  expect_shape(op, "gates/kernel", w.gates_kernel, D + H, 2 * H);
  expect_vector(op, "gates/bias", w.gates_bias, 2 * H);
  expect_vector(op, "candidate/input_projection/bias", w.candidate_input_bias, H);
  expect_vector(op, "candidate/hidden_projection/bias", w.candidate_hidden_bias, H);
}

template <class T>
PyTorchGRULayer<T> gru_to_pytorch_impl(const std::string& op, const GRUResetAfterWeights<T>& w, bool grads) {
  Index D = 0, H = 0;
  check_gru_after(op, w, D, H);
  PyTorchGRULayer<T> p;
  p.weight_ih.resize(3 * H, D);
  p.weight_hh.resize(3 * H, H);
  p.weight_ih.topRows(2 * H) = w.gates_kernel.topRows(D).transpose();
  p.weight_hh.topRows(2 * H) = w.gates_kernel.bottomRows(H).transpose();
  p.weight_ih.bottomRows(H) = w.candidate_input_kernel.transpose();
  p.weight_hh.bottomRows(H) = w.candidate_hidden_kernel.transpose();
  p.bias_ih.resize(1, 3 * H);
  p.bias_hh.resize(1, 3 * H);
  p.bias_ih.leftCols(2 * H) = w.gates_bias;
  if (grads)
    p.bias_hh.leftCols(2 * H) = w.gates_bias;
  else
    p.bias_hh.leftCols(2 * H).setZero();
  p.bias_ih.rightCols(H) = w.candidate_input_bias;
  p.bias_hh.rightCols(H) = w.candidate_hidden_bias;
  return p;
}

}  // namespace detail

/// CudnnCompatibleGRUCell variables -> PyTorch nn.GRU layer (bias_hh is 0 on r | z), so
/// gru_from_pytorch gives back the variables bitwise.
template <class T>
PyTorchGRULayer<T> gru_to_pytorch(const GRUResetAfterWeights<T>& w) {
  return detail::gru_to_pytorch_impl("gru_to_pytorch", w, false);
}

/// Gradients of CudnnCompatibleGRUCell variables -> gradients of the PyTorch parameters.
template <class T>
PyTorchGRULayer<T> gru_gradients_to_pytorch(const GRUResetAfterWeights<T>& grads) {
  return detail::gru_to_pytorch_impl("gru_gradients_to_pytorch", grads, true);
}

/// PyTorch nn.RNN layer -> BasicRNNCell variables: kernel [D + H, H] = [weight_ih; weight_hh]^T,
/// bias = bias_ih + bias_hh.
template <class T>
BasicRNNWeights<T> rnn_from_pytorch(const PyTorchRNNLayer<T>& p, const std::string& suffix = "") {
  const std::string op = "rnn_from_pytorch";
  const Index H = detail::torch_units(op, "weight_ih" + suffix, p.weight_ih, 1, "[hidden_size, input_size]");
  const Index D = p.weight_ih.cols();
  detail::expect_shape(op, "weight_hh" + suffix, p.weight_hh, H, H);
  const bool bias = detail::check_bias_pair(op, "bias_ih" + suffix, p.bias_ih, "bias_hh" + suffix, p.bias_hh, H);
  BasicRNNWeights<T> w;
  w.kernel.resize(D + H, H);
  w.kernel.topRows(D) = p.weight_ih.transpose();
  w.kernel.bottomRows(H) = p.weight_hh.transpose();
  if (bias)
    w.bias = p.bias_ih + p.bias_hh;
  else
    w.bias.setZero(1, H);
  return w;
}

namespace detail {

template <class T>
PyTorchRNNLayer<T> rnn_to_pytorch_impl(const std::string& op, const BasicRNNWeights<T>& w, bool grads) {
  const Index H = w.kernel.cols(), D = w.kernel.rows() - H;
  if (H <= 0 || D <= 0)
    throw ShapeError(detail::concat(op, ": kernel expected [input_depth + num_units, num_units], given ",
                                    given_shape(w.kernel, false)));
  expect_vector(op, "bias", w.bias, H);
  PyTorchRNNLayer<T> p;
  p.weight_ih = w.kernel.topRows(D).transpose();
  p.weight_hh = w.kernel.bottomRows(H).transpose();
  p.bias_ih = w.bias;
  p.bias_hh = grads ? Matrix<T>(w.bias) : Matrix<T>(Matrix<T>::Zero(1, H));
  return p;
}

}  // namespace detail

/// BasicRNNCell variables -> PyTorch nn.RNN layer (bias_hh = 0), so rnn_from_pytorch gives back
/// the variables bitwise.
template <class T>
PyTorchRNNLayer<T> rnn_to_pytorch(const BasicRNNWeights<T>& w) {
  return detail::rnn_to_pytorch_impl("rnn_to_pytorch", w, false);
}

/// Gradients of BasicRNNCell variables -> gradients of the PyTorch parameters (d bias_ih =
/// d bias_hh = d bias).
template <class T>
PyTorchRNNLayer<T> rnn_gradients_to_pytorch(const BasicRNNWeights<T>& grads) {
  return detail::rnn_to_pytorch_impl("rnn_gradients_to_pytorch", grads, true);
}

// ---- whole modules: a single cell (a one-layer module) or a MultiRNNCell ----

namespace detail {

inline std::string torch_key(const char* base, Index l) { return detail::concat(base, "_l", l); }

/// The layers of a model as (cell reference, info) through a callback: a MultiRNNCell's
/// AnyCell layers, or the single cell itself.
template <class T, class F>
void for_each_layer(MultiRNNCell<T>& multi, F&& f) {
  for (Index l = 0; l < multi.num_layers(); ++l) f(l, multi.layer(l));
}
template <class Cell, class F>
void for_each_layer(Cell& cell, F&& f) {
  f(Index(0), cell);
}
template <class T>
Index layer_count(const MultiRNNCell<T>& multi) {
  return multi.num_layers();
}
template <class Cell>
Index layer_count(const Cell&) {
  return 1;
}

template <class T>
std::string torch_kind_error(const std::string& op, Index l, const LayerInfo<T>& info) {
  if (info.kind == LayerKind::gru)
    return detail::concat(
        op, ": layer ", l, " is ", info.name,
        ", TF1's reset-before GRUCell; PyTorch's nn.GRU applies the reset after the recurrent matmul: "
        "build the layer as CudnnCompatibleGRUCell(depth, units, rng)");
  if (info.kind == LayerKind::lstm_peephole)
    return detail::concat(op, ": layer ", l, " is ", info.name,
                          " with peepholes, which PyTorch's nn.LSTM does not have");
  return detail::concat(op, ": layer ", l, " is ", info.name,
                        ", which has no PyTorch nn.LSTM/nn.GRU/nn.RNN counterpart");
}

/// Whether the layer is one of a PyTorch module: an LSTM without peepholes, a reset-after GRU, or a
/// BasicRNNCell.
template <class T>
bool torch_kind(const LayerInfo<T>& info) {
  return info.kind == LayerKind::lstm || info.kind == LayerKind::gru_reset_after || info.kind == LayerKind::rnn;
}

/// ValueError unless the layer's activation is one PyTorch has: tanh for nn.LSTM and nn.GRU,
/// tanh or relu (the module's nonlinearity) for nn.RNN.
template <class T>
void check_torch_activation(const std::string& op, Index l, const LayerInfo<T>& info) {
  if (info.kind == LayerKind::rnn && info.activation == "custom")
    throw ValueError(detail::concat(op, ": layer ", l, " is ", info.name,
                                    " with a user-supplied activation; PyTorch's nn.RNN computes tanh or relu"));
  if (info.kind != LayerKind::rnn && info.activation != "tanh")
    throw ValueError(detail::concat(op, ": layer ", l, " is ", info.name, " with activation ", info.activation,
                                    "; PyTorch's nn.LSTM and nn.GRU compute tanh only"));
}

/// Whether layer kinds (LSTM vs GRU) and sizes are uniform, as one PyTorch module needs.
template <class T>
void check_uniform(const std::string& op, const std::vector<LayerInfo<T>>& infos) {
  for (std::size_t l = 1; l < infos.size(); ++l) {
    const auto& a = infos[0];
    const auto& b = infos[l];
    if (a.kind != b.kind)
      throw ValueError(detail::concat(op, ": one PyTorch module is all nn.LSTM, all nn.GRU or all nn.RNN layers; ",
                                      "layer 0 is ", a.name, ", layer ", l, " is ", b.name));
    if (a.activation != b.activation)
      throw ValueError(detail::concat(op, ": a PyTorch nn.RNN has one nonlinearity; layer 0 has activation ",
                                      a.activation, ", layer ", l, " has ", b.activation));
    if (a.num_units != b.num_units)
      throw ValueError(detail::concat(op, ": a PyTorch module has one hidden_size; layer 0 has num_units ", a.num_units,
                                      ", layer ", l, " has ", b.num_units));
    if (a.projection != b.projection || a.output_size != b.output_size)
      throw ValueError(detail::concat(op, ": a PyTorch module has one proj_size; layer 0 outputs ", a.output_size,
                                      (a.projection ? " (num_proj)" : ""), ", layer ", l, " outputs ", b.output_size,
                                      (b.projection ? " (num_proj)" : "")));
  }
}

/// The key of a state_dict entry that no layer claimed, explained.
inline std::string unexpected_key(const std::string& op, const std::string& key, Index layers) {
  if (key.find("_reverse") != std::string::npos)
    return detail::concat(
        op, ": '", key,
        "' belongs to a bidirectional module, which cellflow does not convert (no bidirectional_dynamic_rnn)");
  const auto at = key.rfind("_l");
  if (at != std::string::npos && at + 2 < key.size() &&
      key.find_first_not_of("0123456789", at + 2) == std::string::npos) {
    const std::string digits = key.substr(at + 2);
    if (digits.size() < 10 && std::stol(digits) >= layers)
      return detail::concat(op, ": the state_dict has '", key, "' (layer ", digits, "), but the model has ", layers,
                            layers == 1 ? " layer" : " layers");
  }
  return detail::concat(op, ": unexpected state_dict entry '", key, "'");
}

template <class T>
const Matrix<T>& require_key(const std::string& op, const StateDict<T>& sd, const std::string& key,
                             const std::string& context) {
  const auto it = sd.find(key);
  if (it == sd.end()) throw ValueError(detail::concat(op, ": the state_dict has no '", key, "' (", context, ")"));
  return it->second;
}

template <class T, class Cell>
void plan_torch_layer(const std::string& op, Cell& cell, Index l, const StateDict<T>& sd, bool has_bias,
                      std::set<std::string>& used, std::vector<Write<T>>& writes) {
  const LayerInfo<T> info = layer_info(cell);
  const std::string ctx = detail::concat("layer ", l, ", ", info.name);
  const bool lstm = info.kind == LayerKind::lstm, rnn = info.kind == LayerKind::rnn;
  if (!torch_kind(info)) throw ValueError(torch_kind_error(op, l, info));
  check_torch_activation(op, l, info);
  const Index G = lstm ? 4 : rnn ? 1 : 3, H = info.num_units, D = info.input_depth;
  const Index P = lstm ? info.output_size : H;
  auto take = [&](const char* base, Index rows, Index cols, bool one_d) {
    const std::string key = torch_key(base, l);
    const Matrix<T>& m = require_key(op, sd, key, ctx);
    used.insert(key);
    const std::string what = detail::concat(key, " (", ctx, ")");
    if (one_d)
      expect_vector(op, what, m, cols);
    else
      expect_shape(op, what, m, rows, cols);
    return m;
  };
  auto source = [&](const std::string& suffix) {
    return detail::concat("the state_dict of layer ", l, " (", suffix, ")");
  };
  CellVariables<T> cv(cell);
  if (lstm) {
    PyTorchLSTMLayer<T> p;
    p.weight_ih = take("weight_ih", G * H, D, false);
    p.weight_hh = take("weight_hh", G * H, P, false);
    if (info.projection) p.weight_hr = take("weight_hr", P, H, false);
    if (has_bias) {
      p.bias_ih = take("bias_ih", 1, G * H, true);
      p.bias_hh = take("bias_hh", 1, G * H, true);
    }
    plan_writes<T>(op, info.name, cv, named(lstm_from_pytorch(p, info.forget_bias, detail::concat("_l", l))), source,
                   writes);
  } else if (rnn) {
    PyTorchRNNLayer<T> p;
    p.weight_ih = take("weight_ih", H, D, false);
    p.weight_hh = take("weight_hh", H, H, false);
    if (has_bias) {
      p.bias_ih = take("bias_ih", 1, H, true);
      p.bias_hh = take("bias_hh", 1, H, true);
    }
    plan_writes<T>(op, info.name, cv, named(rnn_from_pytorch(p, detail::concat("_l", l))), source, writes);
  } else {
    PyTorchGRULayer<T> p;
    p.weight_ih = take("weight_ih", G * H, D, false);
    p.weight_hh = take("weight_hh", G * H, H, false);
    if (has_bias) {
      p.bias_ih = take("bias_ih", 1, G * H, true);
      p.bias_hh = take("bias_hh", 1, G * H, true);
    }
    plan_writes<T>(op, info.name, cv, named(gru_from_pytorch(p, detail::concat("_l", l))), source, writes);
  }
}

}  // namespace detail

/// Loads a PyTorch nn.LSTM, nn.GRU or nn.RNN state_dict into `model`: a MultiRNNCell (layer l
/// from the keys ending in _l<l>) or a single cell (a one-layer module). LSTM layers must be
/// BasicLSTMCell/LSTMCell without peepholes (with num_proj for proj_size; each cell's own
/// forget_bias is subtracted) with activation tanh, GRU layers CudnnCompatibleGRUCells, nn.RNN
/// layers BasicRNNCells whose activation is the module's nonlinearity (tanh or relu: the
/// state_dict does not say which, so the cells must be built with it). Every tensor's shape is checked
/// against the cell (ShapeError naming the key, the expected and the given shape); missing,
/// unexpected or bidirectional keys are ValueErrors. On any error the model is unchanged.
template <class Model, class T = typename Model::Scalar>
void load_pytorch_state_dict(Model& model, const StateDict<T>& sd) {
  const std::string op = "load_pytorch_state_dict";
  const Index layers = detail::layer_count(model);
  bool has_bias = false;
  for (const auto& kv : sd)
    if (kv.first.compare(0, 5, "bias_") == 0) has_bias = true;
  std::set<std::string> used;
  std::vector<detail::Write<T>> writes;
  detail::for_each_layer(
      model, [&](Index l, auto& cell) { detail::plan_torch_layer<T>(op, cell, l, sd, has_bias, used, writes); });
  for (const auto& kv : sd)
    if (!used.count(kv.first)) throw ValueError(detail::unexpected_key(op, kv.first, layers));
  detail::apply_writes(writes);
}

namespace detail {

template <class Model, class T = typename Model::Scalar>
StateDict<T> export_torch(const std::string& op, Model& model, Field field) {
  std::vector<LayerInfo<T>> infos;
  for_each_layer(model, [&](Index l, auto& cell) {
    infos.push_back(layer_info(cell));
    const auto& info = infos.back();
    if (!torch_kind(info)) throw ValueError(torch_kind_error(op, l, info));
    check_torch_activation(op, l, info);
  });
  check_uniform(op, infos);
  StateDict<T> sd;
  for_each_layer(model, [&](Index l, auto& cell) {
    const auto& info = infos[static_cast<std::size_t>(l)];
    auto put = [&](const char* base, Matrix<T> m) { sd[torch_key(base, l)] = std::move(m); };
    if (info.kind == LayerKind::lstm) {
      const auto w = lstm_weights(cell, field);
      auto p = field == Field::value ? lstm_to_pytorch(w, info.forget_bias) : lstm_gradients_to_pytorch(w);
      put("weight_ih", std::move(p.weight_ih));
      put("weight_hh", std::move(p.weight_hh));
      put("bias_ih", std::move(p.bias_ih));
      put("bias_hh", std::move(p.bias_hh));
      if (info.projection) put("weight_hr", std::move(p.weight_hr));
    } else if (info.kind == LayerKind::rnn) {
      const auto w = basic_rnn_weights(cell, field);
      auto p = field == Field::value ? rnn_to_pytorch(w) : rnn_gradients_to_pytorch(w);
      put("weight_ih", std::move(p.weight_ih));
      put("weight_hh", std::move(p.weight_hh));
      put("bias_ih", std::move(p.bias_ih));
      put("bias_hh", std::move(p.bias_hh));
    } else {
      const auto w = gru_reset_after_weights(cell, field);
      auto p = field == Field::value ? gru_to_pytorch(w) : gru_gradients_to_pytorch(w);
      put("weight_ih", std::move(p.weight_ih));
      put("weight_hh", std::move(p.weight_hh));
      put("bias_ih", std::move(p.bias_ih));
      put("bias_hh", std::move(p.bias_hh));
    }
  });
  return sd;
}

}  // namespace detail

/// The state_dict of the PyTorch nn.LSTM / nn.GRU / nn.RNN equal to `model` (a MultiRNNCell or a
/// single cell): keys weight_ih_l<l>, weight_hh_l<l>, bias_ih_l<l>, bias_hh_l<l> (and
/// weight_hr_l<l> with num_proj). Needs what one PyTorch module can express: all layers LSTM (no
/// peepholes, tanh), all reset-after GRU (tanh) or all BasicRNNCell with one activation (tanh or
/// relu: build the nn.RNN with that nonlinearity), one num_units and one num_proj; otherwise
/// ValueError.
template <class Model, class T = typename Model::Scalar>
StateDict<T> pytorch_state_dict(Model& model) {
  return detail::export_torch("pytorch_state_dict", model, Field::value);
}

/// The gradients accumulated in `model`'s variables, as the gradients of the PyTorch parameters
/// (same keys as pytorch_state_dict).
template <class Model, class T = typename Model::Scalar>
StateDict<T> pytorch_gradients(Model& model) {
  return detail::export_torch("pytorch_gradients", model, Field::grad);
}

}  // namespace cellflow::convert
