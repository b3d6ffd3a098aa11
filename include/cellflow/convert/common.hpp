// What the weight converters (convert/pytorch.hpp, convert/keras.hpp) share: cellflow's own
// (TensorFlow 1.x) weight sets of one recurrent layer, shape checks with messages that name the
// tensor, gate-block copies, and reading/writing a cell's variables through for_each_variable
// with "validate everything, then assign" semantics.
//
// TF1 layouts (docs/converters.md has the full tables):
//   LSTM (BasicLSTMCell, LSTMCell):  kernel [D + H, 4U] columns i | j | f | o, rows 0..D-1 act
//       on x and rows D.. on h; bias [4U]; projection/kernel [U, P] with num_proj (H = P, else U).
//       forget_bias is added at run time, never stored in bias.
//   GRU reset before (GRUCell):      gates/kernel [D + U, 2U] columns r | u, gates/bias [2U],
//       candidate/kernel [D + U, U], candidate/bias [U].
//   GRU reset after (CudnnCompatibleGRUCell): gates/kernel
//       [D + U, 2U] r | u, gates/bias [2U], candidate/input_projection/kernel [D, U],
//       candidate/hidden_projection/kernel [U, U], candidate/input_projection/bias [U],
//       candidate/hidden_projection/bias [U].
// A 1-D tensor [n] is a 1 x n matrix everywhere (cellflow's storage of TF 1-D variables).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "cellflow/cells/basic_rnn_cell.hpp"
#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/cells/gru_cell.hpp"
#include "cellflow/cells/lstm_cell.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow::convert {

/// The variables of one TF1 LSTM layer (BasicLSTMCell or LSTMCell): the cell's own weight set
/// (cells/lstm_cell.hpp). The converters fill kernel, bias and, with num_proj, projection.
template <class T>
using LSTMWeights = cellflow::LSTMWeights<T>;

/// The variables of one TF1 GRUCell (reset before the candidate matmul).
template <class T>
using GRUWeights = cellflow::GRUWeights<T>;

/// The variables of one reset-after GRU layer (TF1 CudnnCompatibleGRUCell).
template <class T>
using GRUResetAfterWeights = cellflow::CudnnCompatibleGRUWeights<T>;

/// Which of a variable's two matrices a cell reader returns.
enum class Field { value, grad };

namespace detail {

using cellflow::detail::concat;

/// "[16, 3]", or "[16]" for a 1 x 16 matrix when the expected tensor is 1-D.
template <class T>
std::string given_shape(const Matrix<T>& m, bool one_d) {
  if (one_d && m.rows() == 1) return concat("[", m.cols(), "]");
  return concat("[", m.rows(), ", ", m.cols(), "]");
}

/// Throws ShapeError "<op>: <tensor> expected [rows, cols], given [r, c]" unless m is rows x cols.
template <class T>
void expect_shape(const std::string& op, const std::string& tensor, const Matrix<T>& m, Index rows, Index cols) {
  if (m.rows() != rows || m.cols() != cols)
    throw ShapeError(concat(op, ": ", tensor, " expected [", rows, ", ", cols, "], given ", given_shape(m, false)));
}

/// Throws ShapeError unless m is the 1-D tensor [n], stored as a 1 x n matrix.
template <class T>
void expect_vector(const std::string& op, const std::string& tensor, const Matrix<T>& m, Index n) {
  if (m.rows() != 1 || m.cols() != n)
    throw ShapeError(concat(op, ": ", tensor, " expected [", n, "] (a 1 x ", n, " matrix), given ",
                            given_shape(m, true), m.rows() == 1 ? "" : concat(" (", m.rows(), " x ", m.cols(), ")")));
}

/// One planned write of a load: a cell variable, its TF name, and the new value. A load builds
/// every write first (validating shapes), then applies them all, so a failed load changes nothing.
template <class T>
struct Write {
  Parameter<T>* target;
  std::string name;
  Matrix<T> value;
};

/// The variables of one cell (a single cell or an AnyCell layer), keyed by their name without the
/// cell's own scope: "kernel", "gates/bias", "candidate/input_projection/kernel", ...
template <class T>
class CellVariables {
 public:
  /// Names are "<cell scope>/<suffix>" when visited with an empty scope; the scope is dropped.
  template <class Cell>
  explicit CellVariables(Cell& cell) {
    cell.for_each_variable("", [&](const std::string& name, Parameter<T>& p) {
      const auto slash = name.find('/');
      vars_.emplace_back(slash == std::string::npos ? name : name.substr(slash + 1), &p);
    });
  }

  Parameter<T>* find(const std::string& suffix) const {
    for (const auto& v : vars_)
      if (v.first == suffix) return v.second;
    return nullptr;
  }
  bool has(const std::string& suffix) const { return find(suffix) != nullptr; }
  const std::vector<std::pair<std::string, Parameter<T>*>>& all() const { return vars_; }

  /// The variable's value or gradient; throws ValueError if the cell has no such variable.
  const Matrix<T>& get(const std::string& op, const std::string& suffix, Field field) const {
    Parameter<T>* p = find(suffix);
    if (!p) throw ValueError(concat(op, ": the cell has no variable '", suffix, "'"));
    return field == Field::value ? p->value : p->grad;
  }

 private:
  std::vector<std::pair<std::string, Parameter<T>*>> vars_;
};

/// Plans writing `named` (suffix, value) into the cell's variables: every variable of the cell must
/// be given exactly once with its exact shape (ShapeError naming `source(suffix)`, the tensor the
/// value came from), and nothing else may be given.
template <class T, class Source>
void plan_writes(const std::string& op, const std::string& cell_label, const CellVariables<T>& cv,
                 std::vector<std::pair<std::string, Matrix<T>>> named, Source&& source, std::vector<Write<T>>& out) {
  for (const auto& [suffix, p] : cv.all()) {
    bool found = false;
    for (auto& nv : named) {
      if (nv.first != suffix) continue;
      found = true;
      if (nv.second.rows() != p->value.rows() || nv.second.cols() != p->value.cols())
        throw ShapeError(concat(op, ": ", source(suffix), " gives ", cell_label, " variable '", suffix, "' the shape ",
                                given_shape(nv.second, p->shape.size() == 1), ", the cell expects ",
                                shape_string(p->shape)));
      out.push_back(Write<T>{p, suffix, std::move(nv.second)});
    }
    if (!found)
      throw ValueError(
          concat(op, ": ", cell_label, " has a variable '", suffix, "' that the converted weights do not provide"));
  }
  for (const auto& nv : named)
    if (!cv.has(nv.first))
      throw ValueError(concat(op, ": the converted weights have '", nv.first, "', which ", cell_label, " does not"));
}

template <class T>
void apply_writes(std::vector<Write<T>>& writes) {
  for (auto& w : writes) w.target->value = std::move(w.value);
}

template <class T>
std::vector<std::pair<std::string, Matrix<T>>> named(const LSTMWeights<T>& w) {
  std::vector<std::pair<std::string, Matrix<T>>> n{{"kernel", w.kernel}, {"bias", w.bias}};
  if (w.w_f_diag.size() > 0) n.emplace_back("w_f_diag", w.w_f_diag);
  if (w.w_i_diag.size() > 0) n.emplace_back("w_i_diag", w.w_i_diag);
  if (w.w_o_diag.size() > 0) n.emplace_back("w_o_diag", w.w_o_diag);
  if (w.projection.size() > 0) n.emplace_back("projection/kernel", w.projection);
  return n;
}
template <class T>
std::vector<std::pair<std::string, Matrix<T>>> named(const BasicRNNWeights<T>& w) {
  return {{"kernel", w.kernel}, {"bias", w.bias}};
}
template <class T>
std::vector<std::pair<std::string, Matrix<T>>> named(const GRUWeights<T>& w) {
  return {{"gates/kernel", w.gates_kernel},
          {"gates/bias", w.gates_bias},
          {"candidate/kernel", w.candidate_kernel},
          {"candidate/bias", w.candidate_bias}};
}
template <class T>
std::vector<std::pair<std::string, Matrix<T>>> named(const GRUResetAfterWeights<T>& w) {
  return {{"gates/kernel", w.gates_kernel},
          {"gates/bias", w.gates_bias},
          {"candidate/input_projection/kernel", w.candidate_input_kernel},
          {"candidate/hidden_projection/kernel", w.candidate_hidden_kernel},
          {"candidate/input_projection/bias", w.candidate_input_bias},
          {"candidate/hidden_projection/bias", w.candidate_hidden_bias}};
}

/// What a converter needs to know about a layer, whatever its static type.
enum class LayerKind { lstm, lstm_peephole, gru, gru_reset_after, rnn, unknown };

template <class T>
struct LayerInfo {
  LayerKind kind = LayerKind::unknown;
  T forget_bias = T(0);
  Index input_depth = 0, num_units = 0, output_size = 0;
  bool projection = false;
  std::string name;                 // cell_name()
  std::string activation = "tanh";  // the cell's `activation` option: "tanh", "relu" or "custom"
  std::string config_kind;          // CellConfig::kind
};

/// A layer's LayerInfo from its CellConfig (cells/cell_traits.hpp): any cell, an AnyCell layer
/// included, describes itself, so no converter needs to know the layer's static type. A wrapper
/// is described by the cell it wraps (its variables are that cell's).
template <class Cell>
LayerInfo<typename Cell::Scalar> layer_info(const Cell& cell) {
  using T = typename Cell::Scalar;
  CellConfig c = config_of(cell);
  while (!c.wrapped.empty()) {  // a wrapper (DropoutWrapper) holds its wrapped cell's variables
    CellConfig inner = c.wrapped.front();
    c = std::move(inner);
  }
  LayerInfo<T> i;
  i.name = cell.cell_name();
  i.input_depth = c.input_depth;
  i.num_units = c.num_units;
  i.output_size = c.output_size;
  i.config_kind = c.kind;
  const double act = c.get("activation", 0);
  i.activation = act == 0 ? "tanh" : act == 1 ? "relu" : "custom";
  if (c.kind == "BasicLSTMCell" || c.kind == "LSTMCell") {
    i.kind = c.has("use_peepholes") ? LayerKind::lstm_peephole : LayerKind::lstm;
    i.forget_bias = static_cast<T>(c.get("forget_bias", 1.0));
    i.projection = c.has("num_proj");
  } else if (c.kind == "GRUCell") {
    i.kind = LayerKind::gru;
  } else if (c.kind == "CudnnCompatibleGRUCell") {
    i.kind = LayerKind::gru_reset_after;
  } else if (c.kind == "BasicRNNCell") {
    i.kind = LayerKind::rnn;
  }
  return i;
}

}  // namespace detail

// ---- reading a cell's variables (values or gradients) as weight sets ----

/// The LSTM variables of an LSTM cell (BasicLSTMCell, LSTMCell, or an AnyCell layer holding
/// one): values, or gradients with Field::grad.
template <class Cell, class T = typename Cell::Scalar>
LSTMWeights<T> lstm_weights(Cell& cell, Field field = Field::value) {
  const std::string op = "lstm_weights";
  detail::CellVariables<T> cv(cell);
  LSTMWeights<T> w;
  w.kernel = cv.get(op, "kernel", field);
  w.bias = cv.get(op, "bias", field);
  if (cv.has("projection/kernel")) w.projection = cv.get(op, "projection/kernel", field);
  return w;
}

/// The variables of a BasicRNNCell (or an AnyCell layer holding one).
template <class Cell, class T = typename Cell::Scalar>
BasicRNNWeights<T> basic_rnn_weights(Cell& cell, Field field = Field::value) {
  const std::string op = "basic_rnn_weights";
  detail::CellVariables<T> cv(cell);
  return BasicRNNWeights<T>{cv.get(op, "kernel", field), cv.get(op, "bias", field)};
}

/// The variables of a reset-before GRUCell (or an AnyCell layer holding one).
template <class Cell, class T = typename Cell::Scalar>
GRUWeights<T> gru_weights(Cell& cell, Field field = Field::value) {
  const std::string op = "gru_weights";
  detail::CellVariables<T> cv(cell);
  return GRUWeights<T>{cv.get(op, "gates/kernel", field), cv.get(op, "gates/bias", field),
                       cv.get(op, "candidate/kernel", field), cv.get(op, "candidate/bias", field)};
}

/// The variables of a CudnnCompatibleGRUCell (or an AnyCell layer holding one).
template <class Cell, class T = typename Cell::Scalar>
GRUResetAfterWeights<T> gru_reset_after_weights(Cell& cell, Field field = Field::value) {
  const std::string op = "gru_reset_after_weights";
  detail::CellVariables<T> cv(cell);
  return GRUResetAfterWeights<T>{cv.get(op, "gates/kernel", field),
                                 cv.get(op, "gates/bias", field),
                                 cv.get(op, "candidate/input_projection/kernel", field),
                                 cv.get(op, "candidate/hidden_projection/kernel", field),
                                 cv.get(op, "candidate/input_projection/bias", field),
                                 cv.get(op, "candidate/hidden_projection/bias", field)};
}

// ---- writing weight sets into a cell ----

/// Assigns a weight set to every variable of `cell` (a cell or an AnyCell layer). Every variable
/// of the cell must be given with its exact shape and nothing else; otherwise ShapeError or
/// ValueError and the cell is unchanged.
template <class Cell, class Weights>
void assign_weights(Cell& cell, const Weights& w) {
  using T = typename Cell::Scalar;
  detail::CellVariables<T> cv(cell);
  std::vector<detail::Write<T>> writes;
  detail::plan_writes<T>(
      "assign_weights", cell.cell_name(), cv, detail::named(w), [](const std::string& s) { return "'" + s + "'"; },
      writes);
  detail::apply_writes(writes);
}

}  // namespace cellflow::convert
