// GRUCell and CudnnCompatibleGRUCell: TensorFlow 1.x's two GRU cells. They share the gates and
// the state update (detail::GRUCore) and differ in where the reset gate acts on h.
//
// GRUCell: tf.nn.rnn_cell.GRUCell, reset BEFORE the candidate matmul.
//
//   r, u = split_2(sigmoid([x, h_prev] @ gates/kernel + gates/bias))   r = reset, u = update
//   c~   = act([x, r * h_prev] @ candidate/kernel + candidate/bias)   act: tanh by default
//   h    = u * h_prev + (1 - u) * c~                                   output h, state h
//
//   act is TF's `activation` argument (cells/activations.hpp): tanh, relu or a user's function;
//   the gates' sigmoid never changes.
//
//   Variable scope "gru_cell"; variables in TF's creation order: gates/kernel [D+U, 2U],
//   gates/bias [2U] (initialised to 1.0), candidate/kernel [D+U, U], candidate/bias [U] (zeros).
//
// CudnnCompatibleGRUCell: tf.contrib.cudnn_rnn.CudnnCompatibleGRUCell, the cuDNN / PyTorch
// nn.GRU / Keras GRU(reset_after=True) equations: r acts AFTER the recurrent matmul, which has a
// bias of its own.
//
//   r, u = split_2(sigmoid([x, h_prev] @ gates/kernel + gates/bias))
//   c~   = tanh(x @ candidate/input_projection/kernel + candidate/input_projection/bias
//               + r * (h_prev @ candidate/hidden_projection/kernel + candidate/hidden_projection/bias))
//   h    = u * h_prev + (1 - u) * c~
//
//   Variable scope "cudnn_compatible_gru_cell" (the name TF's CudnnGRUSaveable writes canonical
//   cuDNN weights under); variables in TF's creation order: gates/kernel [D+U, 2U], gates/bias
//   [2U] (1.0), candidate/input_projection/kernel [D, U], candidate/hidden_projection/kernel
//   [U, U], candidate/input_projection/bias [U] (zeros), candidate/hidden_projection/bias [U]
//   (zeros).
//
// Kernels are glorot_uniform with the fans of their own shape, drawn in creation order. Gate
// columns are r | u in both (PyTorch's r | z, Keras's z | r: see docs/converters.md). Both are
// step cells (cells/cell_traits.hpp).
#pragma once

#include <string>
#include <utility>

#include "cellflow/cells/activations.hpp"
#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/cells/state.hpp"
#include "cellflow/cells/step_output.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/detail/active_rows.hpp"
#include "cellflow/detail/bf16_tape.hpp"
#include "cellflow/detail/gemm.hpp"
#include "cellflow/detail/gru_gates.hpp"

namespace cellflow {

/// The variables of a GRUCell, TF layout (1-D variables as 1 x n rows).
template <class T>
struct GRUWeights {
  Matrix<T> gates_kernel;      ///< [D + U, 2U], columns r | u
  Matrix<T> gates_bias;        ///< 1 x 2U
  Matrix<T> candidate_kernel;  ///< [D + U, U]
  Matrix<T> candidate_bias;    ///< 1 x U
};

/// The variables of a CudnnCompatibleGRUCell, TF layout.
template <class T>
struct CudnnCompatibleGRUWeights {
  Matrix<T> gates_kernel;             ///< [D + U, 2U], columns r | u
  Matrix<T> gates_bias;               ///< 1 x 2U (input and recurrent gate biases summed)
  Matrix<T> candidate_input_kernel;   ///< [D, U]
  Matrix<T> candidate_hidden_kernel;  ///< [U, U]
  Matrix<T> candidate_input_bias;     ///< 1 x U
  Matrix<T> candidate_hidden_bias;    ///< 1 x U (multiplied by r with the hidden projection)
};

// ---- cell contract ----

/// Per-sequence buffers of a GRU cell.
template <class T>
struct GRUTape {
  Index time = 0, batch = 0, steps = 0;  ///< the run's sizes (SequenceArgs), set by forward_begin
  /// The run keeps every step (SequenceArgs::training). Without it h holds two state slots, used
  /// in turn, and rh one step (B rows).
  bool training = false;
  /// [steps*B, 3U] (B rows without training): per step the input projections, then r | u | candidate
  Matrix<T> z;
  const Matrix<T>* x = nullptr;  ///< the run's input rows [steps*B, D], during the forward pass
  Matrix<T> h;                   ///< state slots [(steps+1)*B, U]: slot t holds the state before step t
  /// [steps*B, U] GRUCell: r * h_prev, the candidate's recurrent input;
  /// CudnnCompatibleGRUCell: h_prev @ hidden_projection/kernel + its bias.
  Matrix<T> rh;
  Matrix<T> c_raw;  ///< [steps*B, U] GRUCell: the candidate before its activation (only with a user's activation)
  Matrix<T> dz;     ///< [steps*B, 3U] gradients of the pre-activations
  Matrix<T> dhh;    ///< [steps*B, U] CudnnCompatibleGRUCell: gradient of the hidden projection
  /// [B, U] running gradients: of h after the step (next) and before it (prev), dh_sum = dh_next +
  /// the step's output gradient, drh (GRUCell) the gradient of r * h_prev.
  Matrix<T> dh_next, dh_prev, dh_sum, drh;
  /// Transposed kernels for the backward products, row-major: gates/kernel and the candidate's
  /// recurrent kernel (GRUCell: candidate/kernel; CudnnCompatibleGRUCell: the hidden projection).
  Matrix<T> gates_t, cand_t;
  Matrix<T> in_t;             ///< CudnnCompatibleGRUCell: transposed input projection kernel [U, D]
  detail::ActiveRows active;  ///< the rows each step computes (SequenceArgs::active)
  /// Backward: the steps from this one on have had their weight gradients summed into wgrads
  /// (backward_weights); `steps` until then.
  Index weights_from = 0;
  /// The weight gradients backward_weights sums, added to the pass's gradients by backward_end.
  Gradients<T> wgrads = Gradients<T>::buffered();
  /// With row skipping: the active rows of X, h_prev, dz, rh and dhh, packed.
  Matrix<T> pk_x, pk_h, pk_dz, pk_rh, pk_dhh;
  /// Precision::bf16 inference (detail/bf16_tape.hpp): the gates kernel's input and recurrent
  /// parts, then the candidate's (GRUCell: candidate/kernel's two parts; CudnnCompatibleGRUCell:
  /// the input projection and the hidden projection kernels), as bfloat16.
  detail::Bf16TapeWeights<4> bf16;
};

// ---- end of cell contract ----

namespace detail {

/// What both GRU cells share: the gates r | u, the state h and its update
/// h = u * h_prev + (1 - u) * c~, the step functions that do not depend on the candidate, and the
/// members every cell has (Derived is the cell: GRUCell or CudnnCompatibleGRUCell).
template <class T, class Derived>
class GRUCore {
 public:
  /// The scalar type: float or double.
  using Scalar = T;
  /// h [batch, num_units]: a GRU's state is its output.
  using State = Matrix<T>;
  // ---- cell contract ----
  /// The per-sequence buffers of a run.
  using Tape = GRUTape<T>;
  // ---- end of cell contract ----

  /// D: the features of each input step.
  Index input_depth() const { return depth_; }
  /// U: the width of h and of each gate.
  Index num_units() const { return units_; }
  /// The output's width: num_units (the output is h).
  Index output_size() const { return units_; }
  /// "gru_cell(num_units=U)" or "cudnn_compatible_gru_cell(num_units=U)", for messages.
  std::string cell_name() const { return concat(scope_, "(num_units=", units_, ")"); }
  /// The variable scope: "gru_cell" or "cudnn_compatible_gru_cell".
  const std::string& scope_name() const { return scope_; }

  /// The all-zero state h [batch, num_units].
  State zero_state(Index batch) const { return State::Zero(batch, units_); }

  /// Throws ShapeError (starting with `what`) unless `s` is [batch, num_units].
  void check_state(const State& s, Index batch, const std::string& what) const {
    if (s.rows() != batch || s.cols() != units_)
      throw ShapeError(concat(what, ": ", cell_name(), " state expected h [", batch, ", ", units_, "], given [",
                              s.rows(), ", ", s.cols(), "]"));
  }

  /// "<scope>/gates/kernel" [D + U, 2U]: columns r | u, rows 0..D-1 act on x, rows D.. on h.
  Parameter<T>& gates_kernel() { return gates_kernel_; }
  /// "<scope>/gates/bias" [2U] (1.0 in a cell built from an Rng).
  Parameter<T>& gates_bias() { return gates_bias_; }
  /// "<scope>/gates/kernel" (const cell).
  const Parameter<T>& gates_kernel() const { return gates_kernel_; }
  /// "<scope>/gates/bias" (const cell).
  const Parameter<T>& gates_bias() const { return gates_bias_; }

  /// TF's class name, the sizes and, unless tanh, the candidate's "activation" (GRUCell only).
  CellConfig config() const {
    CellConfig c;
    c.kind = kind_;
    c.input_depth = depth_;
    c.num_units = c.output_size = units_;
    if (!act_.is_default()) c.options["activation"] = act_.code();
    return c;
  }

  /// The candidate's activation (tanh unless given; always tanh in a CudnnCompatibleGRUCell).
  const Activation<T>& activation() const { return act_; }

  /// Sets every variable's gradient to zero.
  void zero_grad() {
    static_cast<Derived&>(*this).for_each_variable("", [](const std::string&, Parameter<T>& p) { p.zero_grad(); });
  }

  /// One step, TF's `cell(x, state)`: returns the output and the new state.
  StepOutput<T, State> operator()(const Matrix<T>& x, const State& state) const {
    return call_step_cell(static_cast<const Derived&>(*this), x, state);
  }

  // ---- cell contract: the step functions both GRU cells share (cells/cell_traits.hpp) ----

  /// Runs only the rows of examples that have not ended when SequenceArgs::active says so
  /// (optional contract member, cells/cell_traits.hpp).
  bool skips_ended_rows() const { return true; }
  /// Runs Precision::bf16 inference (optional contract member, cells/cell_traits.hpp): the four
  /// kernel products in bf16, biases, gates and state in float.
  bool supports_bf16() const { return true; }

  /// Example b has ended: row b of state slot t + 1 := row b of slot t.
  void carry_state_row(Tape& tp, Index t, Index b) const {
    tp.h.row(slot(tp, t + 1) * tp.batch + b) = tp.h.row(slot(tp, t) * tp.batch + b);
  }

  /// The state in slot `steps`: after the last step run.
  State final_state(const Tape& tp) const { return tp.h.middleRows(slot(tp, tp.steps) * tp.batch, tp.batch); }
  /// final_state written into `s`, reusing its buffer (no allocation when it is [batch, num_units]).
  void final_state_into(const Tape& tp, State& s) const {
    s = tp.h.middleRows(slot(tp, tp.steps) * tp.batch, tp.batch);
  }

  /// The slot-t state gradient becomes the running one.
  void backward_advance(Tape& tp) const { tp.dh_next.swap(tp.dh_prev); }

  /// The gradient of the state in slot 0, once every step has gone backward.
  State initial_state_grad(const Tape& tp) const { return tp.dh_next; }

  /// The weight gradients and input gradients of the steps from t on, summed once they hold
  /// detail::kWeightGradientRows rows, while those rows are still in cache (optional contract
  /// member, cells/cell_traits.hpp; the scan calls it after every step, t = 0 last). The weight
  /// gradients go to the tape's buffers, added to `grads` by backward_end in one addition each.
  void backward_weights(Tape& tp, Index t, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>&) const {
    // A group's rows: with row skipping only the rows that ran, packed (a product per step could
    // have a depth of a few rows).
    if (t > 0 && tp.active.total(t, tp.weights_from, tp.batch) < kWeightGradientRows) return;
    if (tp.weights_from == tp.steps && dX) dX->setZero(tp.time * tp.batch, depth_);
    static_cast<const Derived&>(*this).weights_steps(tp, t, tp.weights_from, X, dX, tp.wgrads);
    tp.weights_from = t;
  }

  /// State dropout's part of state slot t (optional contract member, cells/cell_traits.hpp): all
  /// of h, [batch, num_units].
  Eigen::Map<Matrix<T>> droppable_state(Tape& tp, Index t) const {
    return Eigen::Map<Matrix<T>>(tp.h.data() + slot(tp, t) * tp.batch * units_, tp.batch, units_);
  }
  /// The running gradient of h (optional contract member): the gradient of slot t + 1 before
  /// backward_step(tp, t).
  Eigen::Map<Matrix<T>> droppable_state_grad(Tape& tp) const {
    return Eigen::Map<Matrix<T>>(tp.dh_next.data(), tp.batch, units_);
  }

 protected:
  GRUCore(std::string kind, std::string scope, Index input_depth, Index num_units, Activation<T> activation = {})
      : kind_(std::move(kind)),
        scope_(std::move(scope)),
        depth_(input_depth),
        units_(num_units),
        act_(std::move(activation)) {
    check_scalar<T>();
    if (input_depth <= 0 || num_units <= 0)
      throw ValueError(concat(scope_, ": input_depth and num_units must be positive, given input_depth=", input_depth,
                              ", num_units=", num_units));
    gates_kernel_ = Parameter<T>(depth_ + units_, 2 * units_);
    gates_bias_ = Parameter<T>(2 * units_);
    gates_bias_.value.setConstant(T(1));  // TF1: gates bias starts at 1.0 (do not reset/update at first)
  }

  /// The sizes of a cell built from given weights: U from the gates kernel [D + U, 2U].
  static std::pair<Index, Index> sizes_from(const std::string& scope, const Matrix<T>& gates_kernel) {
    if (gates_kernel.cols() <= 0 || gates_kernel.cols() % 2 != 0 || gates_kernel.rows() <= gates_kernel.cols() / 2)
      throw ShapeError(concat(scope, ": gates/kernel [", gates_kernel.rows(), ", ", gates_kernel.cols(),
                              "] must be [input_depth + num_units, 2 * num_units] with input_depth >= 1"));
    const Index U = gates_kernel.cols() / 2;
    return {gates_kernel.rows() - U, U};
  }

  /// The scope of this cell's variables under `scope`, and its two gate variables.
  std::string variable_scope(const std::string& scope) const { return join_scope(scope, scope_); }
  template <class F>
  void visit_gates(const std::string& s, F& f) {
    f(s + "/gates/kernel", gates_kernel_);
    f(s + "/gates/bias", gates_bias_);
  }

  /// Checks and assigns the gate variables of a weight set (before the candidate's: the caller
  /// validates everything first).
  void check_gates(const std::string& op, const Parameter<T>& k, const Parameter<T>& b) const {
    check_parameter(k, depth_ + units_, 2 * units_, op, "gates/kernel", false);
    check_parameter(b, 1, 2 * units_, op, "gates/bias", false);
  }

  void check_gate_variables(bool with_grad) const {
    check_parameter(gates_kernel_, depth_ + units_, 2 * units_, scope_, "gates/kernel", with_grad);
    check_parameter(gates_bias_, 1, 2 * units_, scope_, "gates/bias", with_grad);
  }

  /// forward_begin's shared part: the tape's sizes and s0; X (time-major rows) is read step by
  /// step. Returns false when there is no step to run.
  bool begin_gates(Tape& tp, const Matrix<T>& X, const SequenceArgs& a, const State& s0) const {
    const Index U = units_;
    tp.time = a.time;
    tp.batch = a.batch;
    tp.steps = a.steps;
    tp.training = a.training;
    tp.active.assign(a.active, a.steps);
    tp.z.resize((a.training ? a.steps : 1) * a.batch, 3 * U);
    tp.h.resize((a.training ? a.steps + 1 : 2) * a.batch, U);
    tp.rh.resize(a.training ? a.steps * a.batch : a.batch, U);
    tp.h.topRows(a.batch) = s0;
    tp.x = &X;
    return a.steps > 0;
  }

  /// Step t's input projection into z's columns [col, col + w): x_t @ kernel + bias (rows of the
  /// step still running), written and then read again while in cache; each row's sums are those
  /// of a whole-sequence product (the matrix kernel's rows are independent).
  template <class K, class V>
  void step_input(Tape& tp, Index t, Index col, Index w, const K& kernel, const V& bias, int bf16_slot) const {
    const Index B = tp.batch, n = tp.active.at(t, B);
    auto z = tp.z.block(zrow(tp, t), col, n, w);
    matmul_or_bf16(z, tp.x->middleRows(t * B, n), kernel, tp.bf16.get(bf16_slot), tp.bf16.kernel);
    z.rowwise() += bias;
  }

  /// Whether the steps run the float passes of detail/gru_gates.hpp (float, tanh candidate)
  /// rather than Eigen expressions.
  bool fused() const {
    if constexpr (std::is_same_v<T, float>)
      return act_.kind() == ActivationKind::tanh;
    else
      return false;
  }

  /// Step t's gates in place: z[:, :2U] := sigmoid(x_t @ W_x + b + h_prev @ W_h) = r | u; and, when
  /// rh is not null, its rows [n, U] := r * h_prev (GRUCell's candidate input).
  void step_gates(Tape& tp, Index t, T* rh) const {
    const Index B = tp.batch, U = units_, n = tp.active.at(t, B);
    auto g = tp.z.block(zrow(tp, t), 0, n, 2 * U);
    const auto hp = tp.h.middleRows(slot(tp, t) * B, n);
    step_input(tp, t, 0, 2 * U, gates_kernel_.value.topRows(depth_), gates_bias_.value.row(0), 0);
    matmul_or_bf16(g, hp, gates_kernel_.value.bottomRows(U), tp.bf16.get(1), tp.bf16.kernel, true);
    if constexpr (std::is_same_v<T, float>) {
      if (fused()) {  // one pass per row (detail/gru_gates.hpp)
        for (Index r = 0; r < n; ++r) {
          T* z = tp.z.row(zrow(tp, t) + r).data();
          gru_gates_row({z, z + U, hp.row(r).data(), rh ? rh + r * U : nullptr}, U);
        }
        return;
      }
    }
    g.array() = sigmoid(g.array());
    if (rh) Eigen::Map<Matrix<T>>(rh, n, U).array() = g.leftCols(U).array() * hp.array();
  }

  /// Fused steps (fused()): c~ := tanh(c~ [+ r * hh]) in z's last U columns (hh: rows [n, U],
  /// CudnnCompatibleGRUCell's hidden projection, or null), then step_update's h and output, in one
  /// pass per row.
  void step_candidate_update(Tape& tp, Index t, T* y, const T* hh) const {
    if constexpr (std::is_same_v<T, float>) {
      const Index B = tp.batch, U = units_, n = tp.active.at(t, B);
      const Index prev = slot(tp, t) * B, next = slot(tp, t + 1) * B;
      for (Index r = 0; r < n; ++r) {
        T* z = tp.z.row(zrow(tp, t) + r).data();
        gru_update_row({z + 2 * U, hh ? z : nullptr, hh ? hh + r * U : nullptr, z + U, tp.h.row(prev + r).data(),
                        tp.h.row(next + r).data(), y + r * U},
                       U);
      }
    } else {
      (void)tp, (void)t, (void)y, (void)hh;
      eigen_assert(false && "step_candidate_update is for float cells");
    }
  }

  /// Step t's new state h = u * h_prev + (1 - u) * c~ (c~ in z's last U columns), and the output.
  void step_update(Tape& tp, Index t, T* y) const {
    const Index B = tp.batch, U = units_, n = tp.active.at(t, B);
    const auto hp = tp.h.middleRows(slot(tp, t) * B, n).array();
    const auto u = tp.z.block(zrow(tp, t), U, n, U).array();
    const auto c = tp.z.block(zrow(tp, t), 2 * U, n, U).array();
    auto hn = tp.h.middleRows(slot(tp, t + 1) * B, n);
    hn.array() = u * hp + (T(1) - u) * c;
    Eigen::Map<Matrix<T>>(y, n, U) = hn;
  }

  /// backward_begin's shared part: buffers, the transposed gates kernel, the running gradient.
  void begin_backward(Tape& tp, const State* d_final) const {
    const Index B = tp.batch, U = units_;
    tp.dz.resize(tp.steps * B, 3 * U);
    tp.dh_prev.resize(B, U);
    tp.dh_sum.resize(B, U);
    tp.gates_t = gates_kernel_.value.transpose();
    tp.weights_from = tp.steps;
    tp.wgrads.begin();
    if (d_final)
      tp.dh_next = *d_final;
    else
      tp.dh_next.setZero(B, U);
  }

  /// backward_step's shared start: dh = running gradient + dy; du, dc~ and the u part of dh_prev.
  void backward_update(Tape& tp, Index t, const T* dy) const {
    const Index B = tp.batch, U = units_, row = t * B, n = tp.active.at(t, B);
    if constexpr (std::is_same_v<T, float>) {
      if (fused()) {  // one pass per row (detail/gru_gates.hpp)
        for (Index r = 0; r < n; ++r) {
          const T* z = tp.z.row(row + r).data();
          T* dz = tp.dz.row(row + r).data();
          gru_backward_update_row({tp.dh_next.row(r).data(), dy ? dy + r * U : nullptr, tp.h.row(row + r).data(), z + U,
                                   z + 2 * U, dz + U, dz + 2 * U, tp.dh_prev.row(r).data()},
                                  U);
        }
        return;
      }
    }
    tp.dh_sum.topRows(n) = tp.dh_next.topRows(n);
    if (dy) tp.dh_sum.topRows(n) += Eigen::Map<const Matrix<T>>(dy, n, U);
    const auto dh = tp.dh_sum.topRows(n).array();
    const auto h = tp.h.middleRows(row, n).array();  // h_prev of step t
    const auto u = tp.z.block(row, U, n, U).array();
    const auto c = tp.z.block(row, 2 * U, n, U).array();
    tp.dz.block(row, U, n, U).array() = dh * (h - c) * u * (T(1) - u);
    act_.visit([&](auto act) {
      tp.dz.block(row, 2 * U, n, U).array() =
          dh * (T(1) - u) * act.derivative(c, [&] { return tp.c_raw.middleRows(row, n).array(); });
    });
    tp.dh_prev.topRows(n).array() = dh * u;
  }

  /// backward_step's shared end: dh_prev += [dr | du] @ W_h^T of the gates.
  void backward_gates(Tape& tp, Index t) const {
    const Index B = tp.batch, U = units_, n = tp.active.at(t, B);
    matmul(tp.dh_prev.topRows(n), tp.dz.block(t * B, 0, n, 2 * U), tp.gates_t.rightCols(U), true);
  }

  /// backward_end's shared part: with backward_weights begun, the steps before it and the sum of
  /// its buffers; else (a caller other than the scan) whole-sequence products.
  void end_weights(Tape& tp, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>& grads) const {
    if (tp.weights_from < tp.steps) {
      backward_weights(tp, 0, X, dX, grads);
      tp.wgrads.add_to(grads);
      return;
    }
    if (dX) dX->setZero(tp.time * tp.batch, depth_);
    static_cast<const Derived&>(*this).weights_steps(tp, 0, tp.steps, X, dX, grads);
  }

  /// weights_steps' shared part, steps s0 .. s1 - 1 (the rows that ran): dX's rows := [dr | du]
  /// W_x^T of the gates + dc~ cand_t (cand_t: the candidate's input kernel transposed, [U, D]).
  template <class K>
  void input_grad_steps(Tape& tp, Index s0, Index s1, Matrix<T>& dX, const K& cand_t) const {
    const Index U = units_;
    for_active_rows(tp.active, s0, s1, tp.batch, [&](Index r0, Index k) {
      matmul(dX.middleRows(r0, k), tp.dz.block(r0, 0, k, 2 * U), tp.gates_t.leftCols(depth_));
      matmul(dX.middleRows(r0, k), tp.dz.block(r0, 2 * U, k, U), cand_t, true);
    });
  }

  /// The gates' weight gradients from rows of x, h_prev and their [dr | du] (weights_steps).
  template <class V, class G>
  void gates_weight_grads(const V& x, const V& h, const G& dg, Gradients<T>& grads) const {
    Matrix<T>& gk = grads[gates_kernel_];
    matmul_tn(gk.topRows(depth_), x, dg, true);
    matmul_tn(gk.bottomRows(units_), h, dg, true);
    grads[gates_bias_].row(0) += dg.colwise().sum();
  }

  static Index slot(const Tape& tp, Index t) { return tp.training ? t : t % 2; }
  /// Step t's first row of z: t * B, or 0 without training (z then holds one step).
  static Index zrow(const Tape& tp, Index t) { return tp.training ? t * tp.batch : 0; }

  std::string kind_, scope_;
  Index depth_ = 0, units_ = 0;
  Activation<T> act_;
  Parameter<T> gates_kernel_, gates_bias_;
};

}  // namespace detail

/// tf.nn.rnn_cell.GRUCell (variable scope "gru_cell"): reset before the candidate matmul.
/// State: h [batch, num_units].
template <class T>
class GRUCell : public detail::GRUCore<T, GRUCell<T>> {
  using Core = detail::GRUCore<T, GRUCell<T>>;
  using Core::depth_;
  using Core::gates_kernel_;
  using Core::units_;

 public:
  using typename Core::State;
  using typename Core::Tape;

  /// TF1 GRUCell(num_units, activation): the candidate's activation is tanh unless given
  /// (cells/activations.hpp); the input depth is given because variables are built eagerly.
  GRUCell(Index input_depth, Index num_units, Rng& rng, Activation<T> activation = {})
      : Core("GRUCell", "gru_cell", input_depth, num_units, std::move(activation)) {
    make_candidate();
    gates_kernel_.init_glorot(rng);
    cand_kernel_.init_glorot(rng);
  }

  /// From given weights, no Rng: the sizes follow from gates/kernel [D + U, 2U].
  explicit GRUCell(const GRUWeights<T>& w, Activation<T> activation = {})
      : Core("GRUCell", "gru_cell", Core::sizes_from("gru_cell", w.gates_kernel).first,
             Core::sizes_from("gru_cell", w.gates_kernel).second, std::move(activation)) {
    make_candidate();
    set_weights(w);
  }

  /// "gru_cell/candidate/kernel" [D + U, U]: rows 0..D-1 act on x, rows D.. on r * h_prev.
  Parameter<T>& candidate_kernel() { return cand_kernel_; }
  /// "gru_cell/candidate/bias" [U].
  Parameter<T>& candidate_bias() { return cand_bias_; }
  /// "gru_cell/candidate/kernel" (const cell).
  const Parameter<T>& candidate_kernel() const { return cand_kernel_; }
  /// "gru_cell/candidate/bias" (const cell).
  const Parameter<T>& candidate_bias() const { return cand_bias_; }

  /// A copy of the variables' values.
  GRUWeights<T> weights() const {
    return GRUWeights<T>{gates_kernel_.value, this->gates_bias_.value, cand_kernel_.value, cand_bias_.value};
  }

  /// Replaces every variable's value; each must have its exact shape (ShapeError, nothing changes).
  void set_weights(const GRUWeights<T>& w) {
    const std::string op = detail::concat(this->cell_name(), " set_weights");
    const auto gk = detail::matrix_parameter<T>(w.gates_kernel), ck = detail::matrix_parameter<T>(w.candidate_kernel);
    const auto gb = detail::vector_parameter<T>(w.gates_bias, op, "gates/bias");
    const auto cb = detail::vector_parameter<T>(w.candidate_bias, op, "candidate/bias");
    this->check_gates(op, gk, gb);
    detail::check_parameter(ck, depth_ + units_, units_, op, "candidate/kernel", false);
    detail::check_parameter(cb, 1, units_, op, "candidate/bias", false);
    gates_kernel_.value = gk.value;
    this->gates_bias_.value = gb.value;
    cand_kernel_.value = ck.value;
    cand_bias_.value = cb.value;
  }

  /// Calls f(name, Parameter<T>&) for gates/kernel, gates/bias, candidate/kernel and candidate/bias
  /// (TF's creation order), named "<scope>/gru_cell/..." ("gru_cell/gates/kernel" with an empty scope).
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = this->variable_scope(scope);
    this->visit_gates(s, f);
    f(s + "/candidate/kernel", cand_kernel_);
    f(s + "/candidate/bias", cand_bias_);
  }

  // ---- cell contract: step functions (cells/cell_traits.hpp) ----

  /// Sizes the tape for `a` and puts s0 in state slot 0; the steps read X.
  void forward_begin(Tape& tp, const Matrix<T>& X, const SequenceArgs& a, const State& s0) const {
    check_variables(false);
    if (tp.bf16.template begin<T>(a, *this))
      tp.bf16.pack(this->gates_kernel_.value.topRows(depth_), this->gates_kernel_.value.bottomRows(units_),
                   cand_kernel_.value.topRows(depth_), cand_kernel_.value.bottomRows(units_));
    if (!this->begin_gates(tp, X, a, s0)) return;
    if (this->act_.is_custom()) tp.c_raw.resize(a.steps * a.batch, units_);
  }

  /// Step t: r | u, then c~ = tanh(x W_cx + (r * h_prev) W_ch + b_c), the new h into slot t + 1 and
  /// the output rows [batch, num_units] to y.
  void forward_step(Tape& tp, Index t, T* y) const {
    const Index B = tp.batch, U = units_, n = tp.active.at(t, B);
    auto rh = tp.rh.middleRows(tp.training ? t * B : 0, n);
    this->step_gates(tp, t, rh.data());
    this->step_input(tp, t, 2 * U, U, cand_kernel_.value.topRows(depth_), cand_bias_.value.row(0), 2);
    auto c = tp.z.block(Core::zrow(tp, t), 2 * U, n, U);
    detail::matmul_or_bf16(c, rh, cand_kernel_.value.bottomRows(U), tp.bf16.get(3), tp.bf16.kernel, true);
    if (this->fused()) {
      this->step_candidate_update(tp, t, y, nullptr);
      return;
    }
    this->act_.visit([&](auto act) {
      if constexpr (decltype(act)::keeps_input) tp.c_raw.middleRows(t * B, n) = c;
      c.array() = act.value(c.array());
    });
    this->step_update(tp, t, y);
  }

  /// Sizes the gradient buffers and transposes the kernels; the running state gradient := *d_final,
  /// or zero when it is null.
  void backward_begin(Tape& tp, const State* d_final) const {
    check_variables(true);
    this->begin_backward(tp, d_final);
    tp.drh.resize(tp.batch, units_);
    tp.cand_t = cand_kernel_.value.transpose();
  }

  /// Step t: the gradients of r, u and c~ and the state gradient of slot t (dy: the step's output
  /// gradient rows, or null).
  void backward_step(Tape& tp, Index t, const T* dy) const {
    const Index B = tp.batch, U = units_, row = t * B, n = tp.active.at(t, B);
    this->backward_update(tp, t, dy);
    detail::matmul(tp.drh.topRows(n), tp.dz.block(row, 2 * U, n, U), tp.cand_t.rightCols(U));
    if constexpr (std::is_same_v<T, float>) {
      if (this->fused()) {  // one pass per row (detail/gru_gates.hpp)
        for (Index r = 0; r < n; ++r)
          detail::gru_backward_reset_row({tp.drh.row(r).data(), tp.h.row(row + r).data(), tp.z.row(row + r).data(),
                                          tp.dz.row(row + r).data(), tp.dh_prev.row(r).data(), nullptr},
                                         U);
        this->backward_gates(tp, t);
        return;
      }
    }
    const auto h = tp.h.middleRows(row, n).array();  // h_prev of step t
    const auto r = tp.z.block(row, 0, n, U).array();
    tp.dz.block(row, 0, n, U).array() = tp.drh.topRows(n).array() * h * r * (T(1) - r);
    tp.dh_prev.topRows(n).array() += tp.drh.topRows(n).array() * r;
    this->backward_gates(tp, t);
  }

  /// Example b had ended by step t: its state gradient passes through unchanged and its step-t
  /// gradients are zeroed.
  void backward_carry_row(Tape& tp, Index t, Index b) const {
    tp.dh_prev.row(b) = tp.dh_next.row(b);
    tp.dz.row(t * tp.batch + b).setZero();
  }

  /// Adds the weight gradients of all steps into `grads` and, when dX is not null, writes the input
  /// gradients [time * batch, D] into it (zero past `steps`).
  void backward_end(Tape& tp, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>& grads) const {
    this->end_weights(tp, X, dX, grads);
  }

 private:
  friend Core;

  /// The products of steps s0 .. s1 - 1 (the rows that ran, packed when rows are skipped): their
  /// rows of dX (zero before), and their terms of every weight gradient added to `grads`.
  void weights_steps(Tape& tp, Index s0, Index s1, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>& grads) const {
    const Index U = units_, B = tp.batch;
    const detail::ActiveRows& act = tp.active;
    if (act.total(s0, s1, B) == 0) return;
    if (dX) this->input_grad_steps(tp, s0, s1, *dX, tp.cand_t.leftCols(depth_));
    const auto x = detail::gather_active_rows(X, act, s0, s1, B, tp.pk_x);
    const auto dz = detail::gather_active_rows(tp.dz, act, s0, s1, B, tp.pk_dz);
    this->gates_weight_grads(x, detail::gather_active_rows(tp.h, act, s0, s1, B, tp.pk_h), dz.leftCols(2 * U), grads);
    const auto dc = dz.rightCols(U);
    Matrix<T>& ck = grads[cand_kernel_];
    detail::matmul_tn(ck.topRows(depth_), x, dc, true);
    detail::matmul_tn(ck.bottomRows(U), detail::gather_active_rows(tp.rh, act, s0, s1, B, tp.pk_rh), dc, true);
    grads[cand_bias_].row(0) += dc.colwise().sum();
  }

  void make_candidate() {
    cand_kernel_ = Parameter<T>(depth_ + units_, units_);
    cand_bias_ = Parameter<T>(units_);
  }

  void check_variables(bool with_grad) const {
    this->check_gate_variables(with_grad);
    detail::check_parameter(cand_kernel_, depth_ + units_, units_, this->scope_, "candidate/kernel", with_grad);
    detail::check_parameter(cand_bias_, 1, units_, this->scope_, "candidate/bias", with_grad);
  }

  Parameter<T> cand_kernel_, cand_bias_;
};

/// tf.contrib.cudnn_rnn.CudnnCompatibleGRUCell (variable scope "cudnn_compatible_gru_cell"):
/// reset after the recurrent matmul, as cuDNN, PyTorch's nn.GRU and Keras GRU(reset_after=True).
/// State: h [batch, num_units].
template <class T>
class CudnnCompatibleGRUCell : public detail::GRUCore<T, CudnnCompatibleGRUCell<T>> {
  using Core = detail::GRUCore<T, CudnnCompatibleGRUCell<T>>;
  using Core::depth_;
  using Core::gates_kernel_;
  using Core::units_;

 public:
  using typename Core::State;
  using typename Core::Tape;

  /// TF: CudnnCompatibleGRUCell(num_units); the input depth is given because variables are built
  /// eagerly, drawing from `rng`.
  CudnnCompatibleGRUCell(Index input_depth, Index num_units, Rng& rng)
      : Core("CudnnCompatibleGRUCell", "cudnn_compatible_gru_cell", input_depth, num_units) {
    make_candidate();
    gates_kernel_.init_glorot(rng);
    in_kernel_.init_glorot(rng);
    hid_kernel_.init_glorot(rng);
  }

  /// From given weights, no Rng: the sizes follow from gates/kernel [D + U, 2U].
  explicit CudnnCompatibleGRUCell(const CudnnCompatibleGRUWeights<T>& w)
      : Core("CudnnCompatibleGRUCell", "cudnn_compatible_gru_cell",
             Core::sizes_from("cudnn_compatible_gru_cell", w.gates_kernel).first,
             Core::sizes_from("cudnn_compatible_gru_cell", w.gates_kernel).second) {
    make_candidate();
    set_weights(w);
  }

  /// "cudnn_compatible_gru_cell/candidate/input_projection/kernel" [D, U].
  Parameter<T>& candidate_input_kernel() { return in_kernel_; }
  /// "cudnn_compatible_gru_cell/candidate/hidden_projection/kernel" [U, U].
  Parameter<T>& candidate_hidden_kernel() { return hid_kernel_; }
  /// "cudnn_compatible_gru_cell/candidate/input_projection/bias" [U].
  Parameter<T>& candidate_input_bias() { return in_bias_; }
  /// "cudnn_compatible_gru_cell/candidate/hidden_projection/bias" [U]: multiplied by r with the
  /// hidden projection.
  Parameter<T>& candidate_hidden_bias() { return hid_bias_; }
  /// candidate/input_projection/kernel (const cell).
  const Parameter<T>& candidate_input_kernel() const { return in_kernel_; }
  /// candidate/hidden_projection/kernel (const cell).
  const Parameter<T>& candidate_hidden_kernel() const { return hid_kernel_; }
  /// candidate/input_projection/bias (const cell).
  const Parameter<T>& candidate_input_bias() const { return in_bias_; }
  /// candidate/hidden_projection/bias (const cell).
  const Parameter<T>& candidate_hidden_bias() const { return hid_bias_; }

  /// A copy of the variables' values.
  CudnnCompatibleGRUWeights<T> weights() const {
    return CudnnCompatibleGRUWeights<T>{gates_kernel_.value, this->gates_bias_.value, in_kernel_.value,
                                        hid_kernel_.value,   in_bias_.value,          hid_bias_.value};
  }

  /// Replaces every variable's value; each must have its exact shape (ShapeError, nothing changes).
  void set_weights(const CudnnCompatibleGRUWeights<T>& w) {
    const std::string op = detail::concat(this->cell_name(), " set_weights");
    const auto gk = detail::matrix_parameter<T>(w.gates_kernel);
    const auto gb = detail::vector_parameter<T>(w.gates_bias, op, "gates/bias");
    const auto ik = detail::matrix_parameter<T>(w.candidate_input_kernel);
    const auto hk = detail::matrix_parameter<T>(w.candidate_hidden_kernel);
    const auto ib = detail::vector_parameter<T>(w.candidate_input_bias, op, "candidate/input_projection/bias");
    const auto hb = detail::vector_parameter<T>(w.candidate_hidden_bias, op, "candidate/hidden_projection/bias");
    this->check_gates(op, gk, gb);
    detail::check_parameter(ik, depth_, units_, op, "candidate/input_projection/kernel", false);
    detail::check_parameter(hk, units_, units_, op, "candidate/hidden_projection/kernel", false);
    detail::check_parameter(ib, 1, units_, op, "candidate/input_projection/bias", false);
    detail::check_parameter(hb, 1, units_, op, "candidate/hidden_projection/bias", false);
    gates_kernel_.value = gk.value;
    this->gates_bias_.value = gb.value;
    in_kernel_.value = ik.value;
    hid_kernel_.value = hk.value;
    in_bias_.value = ib.value;
    hid_bias_.value = hb.value;
  }

  /// Calls f(name, Parameter<T>&) in TF's creation order: gates/kernel, gates/bias,
  /// candidate/input_projection/kernel, candidate/hidden_projection/kernel, then their biases; named
  /// "<scope>/cudnn_compatible_gru_cell/...".
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = this->variable_scope(scope);
    this->visit_gates(s, f);
    f(s + "/candidate/input_projection/kernel", in_kernel_);
    f(s + "/candidate/hidden_projection/kernel", hid_kernel_);
    f(s + "/candidate/input_projection/bias", in_bias_);
    f(s + "/candidate/hidden_projection/bias", hid_bias_);
  }

  // ---- cell contract: step functions (cells/cell_traits.hpp) ----

  /// Sizes the tape for `a` and puts s0 in state slot 0; the steps read X.
  void forward_begin(Tape& tp, const Matrix<T>& X, const SequenceArgs& a, const State& s0) const {
    check_variables(false);
    if (tp.bf16.template begin<T>(a, *this))
      tp.bf16.pack(this->gates_kernel_.value.topRows(depth_), this->gates_kernel_.value.bottomRows(units_),
                   in_kernel_.value, hid_kernel_.value);
    this->begin_gates(tp, X, a, s0);
  }

  /// Step t: r | u, then c~ = tanh(x W_in + b_in + r * (h_prev W_hn + b_hn)), the new h into slot
  /// t + 1 and the output rows [batch, num_units] to y.
  void forward_step(Tape& tp, Index t, T* y) const {
    const Index B = tp.batch, U = units_, n = tp.active.at(t, B);
    this->step_gates(tp, t, nullptr);
    this->step_input(tp, t, 2 * U, U, in_kernel_.value, in_bias_.value.row(0), 2);
    const auto hp = tp.h.middleRows(Core::slot(tp, t) * B, n);
    auto hh = tp.rh.middleRows(tp.training ? t * B : 0, n);
    detail::matmul_or_bf16(hh, hp, hid_kernel_.value, tp.bf16.get(3), tp.bf16.kernel);
    hh.rowwise() += hid_bias_.value.row(0);
    if (this->fused()) {
      this->step_candidate_update(tp, t, y, hh.data());
      return;
    }
    auto c = tp.z.block(Core::zrow(tp, t), 2 * U, n, U);
    c.array() = (c.array() + tp.z.block(Core::zrow(tp, t), 0, n, U).array() * hh.array()).tanh();
    this->step_update(tp, t, y);
  }

  /// Sizes the gradient buffers and transposes the kernels; the running state gradient := *d_final,
  /// or zero when it is null.
  void backward_begin(Tape& tp, const State* d_final) const {
    check_variables(true);
    this->begin_backward(tp, d_final);
    tp.dhh.resize(tp.steps * tp.batch, units_);
    tp.cand_t = hid_kernel_.value.transpose();
    tp.in_t = in_kernel_.value.transpose();
  }

  /// Step t: the gradients of r, u and c~ and the state gradient of slot t (dy: the step's output
  /// gradient rows, or null).
  void backward_step(Tape& tp, Index t, const T* dy) const {
    const Index B = tp.batch, U = units_, row = t * B, n = tp.active.at(t, B);
    this->backward_update(tp, t, dy);
    bool done = false;
    if constexpr (std::is_same_v<T, float>) {
      if (this->fused()) {  // one pass per row (detail/gru_gates.hpp)
        for (Index r = 0; r < n; ++r) {
          T* dz = tp.dz.row(row + r).data();
          detail::gru_backward_reset_row({dz + 2 * U, tp.rh.row(row + r).data(), tp.z.row(row + r).data(), dz, nullptr,
                                          tp.dhh.row(row + r).data()},
                                         U);
        }
        done = true;
      }
    }
    if (!done) {
      const auto r = tp.z.block(row, 0, n, U).array();
      const auto dc = tp.dz.block(row, 2 * U, n, U).array();
      const auto hh = tp.rh.middleRows(row, n).array();
      tp.dhh.middleRows(row, n).array() = dc * r;
      tp.dz.block(row, 0, n, U).array() = dc * hh * r * (T(1) - r);
    }
    detail::matmul(tp.dh_prev.topRows(n), tp.dhh.middleRows(row, n), tp.cand_t, true);
    this->backward_gates(tp, t);
  }

  /// Example b had ended by step t: its state gradient passes through unchanged and its step-t
  /// gradients are zeroed.
  void backward_carry_row(Tape& tp, Index t, Index b) const {
    tp.dh_prev.row(b) = tp.dh_next.row(b);
    tp.dz.row(t * tp.batch + b).setZero();
    tp.dhh.row(t * tp.batch + b).setZero();
  }

  /// Adds the weight gradients of all steps into `grads` and, when dX is not null, writes the input
  /// gradients [time * batch, D] into it (zero past `steps`).
  void backward_end(Tape& tp, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>& grads) const {
    this->end_weights(tp, X, dX, grads);
  }

 private:
  friend Core;

  /// The products of steps s0 .. s1 - 1 (the rows that ran, packed when rows are skipped): their
  /// rows of dX (zero before), and their terms of every weight gradient added to `grads`.
  void weights_steps(Tape& tp, Index s0, Index s1, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>& grads) const {
    const Index U = units_, B = tp.batch;
    const detail::ActiveRows& act = tp.active;
    if (act.total(s0, s1, B) == 0) return;
    if (dX) this->input_grad_steps(tp, s0, s1, *dX, tp.in_t);
    const auto x = detail::gather_active_rows(X, act, s0, s1, B, tp.pk_x);
    const auto h = detail::gather_active_rows(tp.h, act, s0, s1, B, tp.pk_h);
    const auto dz = detail::gather_active_rows(tp.dz, act, s0, s1, B, tp.pk_dz);
    this->gates_weight_grads(x, h, dz.leftCols(2 * U), grads);
    const auto dc = dz.rightCols(U);
    detail::matmul_tn(grads[in_kernel_], x, dc, true);
    grads[in_bias_].row(0) += dc.colwise().sum();
    const auto dhh = detail::gather_active_rows(tp.dhh, act, s0, s1, B, tp.pk_dhh);
    detail::matmul_tn(grads[hid_kernel_], h, dhh, true);
    grads[hid_bias_].row(0) += dhh.colwise().sum();
  }

  void make_candidate() {
    in_kernel_ = Parameter<T>(depth_, units_);
    hid_kernel_ = Parameter<T>(units_, units_);
    in_bias_ = Parameter<T>(units_);
    hid_bias_ = Parameter<T>(units_);
  }

  void check_variables(bool with_grad) const {
    this->check_gate_variables(with_grad);
    const std::string& op = this->scope_;
    detail::check_parameter(in_kernel_, depth_, units_, op, "candidate/input_projection/kernel", with_grad);
    detail::check_parameter(hid_kernel_, units_, units_, op, "candidate/hidden_projection/kernel", with_grad);
    detail::check_parameter(in_bias_, 1, units_, op, "candidate/input_projection/bias", with_grad);
    detail::check_parameter(hid_bias_, 1, units_, op, "candidate/hidden_projection/bias", with_grad);
  }

  Parameter<T> in_kernel_, hid_kernel_, in_bias_, hid_bias_;
};

}  // namespace cellflow
