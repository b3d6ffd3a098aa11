// LSTMCell and BasicLSTMCell: TensorFlow 1.x's LSTM cells (tf.nn.rnn_cell.LSTMCell,
// tf.nn.rnn_cell.BasicLSTMCell), same equations, variables, layout and defaults.
//
//   z       = [x, h_prev] @ kernel + bias         kernel [D + H, 4U]: rows 0..D-1 act on x
//   i, j, f, o = split_4(z)                       gate order i | j | f | o (TF's)
//   c       = sigmoid(f + forget_bias [+ w_f_diag * c_prev]) * c_prev
//           + sigmoid(i [+ w_i_diag * c_prev]) * act(j)
//   c       = clip(c, -cell_clip, cell_clip)      if cell_clip; the clipped c is the new state
//   m       = sigmoid(o [+ w_o_diag * c]) * act(c)      output peephole sees the new c
//   m       = m @ projection/kernel [U, P]        if num_proj (no bias), then clip by proj_clip
//   output m, state (c, m)                        H = P with a projection, else U
//
// act is TF's `activation` argument (cells/activations.hpp): tanh by default, relu, or a user's
// function; the gates' sigmoids never change. forget_bias is added at run time and never stored in `bias` (TF's
// convention). Variables in TF's creation order: kernel, bias, w_f_diag, w_i_diag, w_o_diag, projection/kernel.
// Defaults: glorot_uniform kernels (fans of the whole [D + H, 4U] matrix), peephole diagonals
// glorot_uniform with fan U, projection glorot_uniform, zero bias.
//
// These are step cells (cells/cell_traits.hpp): the functions below compute one step; the scan
// (rnn/scan.hpp) runs them over time.
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "cellflow/cells/activations.hpp"
#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/cells/lstm_state.hpp"
#include "cellflow/cells/step_output.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/detail/active_rows.hpp"
#include "cellflow/detail/bf16_tape.hpp"
#include "cellflow/detail/gemm.hpp"
#include "cellflow/detail/lstm_gates.hpp"

namespace cellflow {

/// Options of LSTMCell, named as TensorFlow's constructor arguments.
template <class T>
struct LSTMOptions {
  bool use_peepholes = false;     ///< diagonal peephole connections (variables w_f_diag, w_i_diag, w_o_diag)
  std::optional<T> cell_clip;     ///< clip the cell state c to [-cell_clip, cell_clip]
  std::optional<Index> num_proj;  ///< project the output (and h) to num_proj units
  std::optional<T> proj_clip;     ///< clip the projected output; needs num_proj
  T forget_bias = T(1);           ///< added to the forget gate at run time, never stored in bias; finite
  Activation<T> activation;       ///< act of the candidate j and of c in h = o * act(c); tanh by default
};

/// The variables of an LSTM cell, TF layout (1-D variables as 1 x n rows). Those an option does
/// not use are empty: the peephole diagonals without use_peepholes, the projection without num_proj.
template <class T>
struct LSTMWeights {
  Matrix<T> kernel;                        ///< [D + H, 4U], columns i | j | f | o, rows 0..D-1 act on x
  Matrix<T> bias;                          ///< 1 x 4U, without forget_bias
  Matrix<T> projection;                    ///< [U, P] with num_proj
  Matrix<T> w_f_diag, w_i_diag, w_o_diag;  ///< 1 x U each, with use_peepholes
};

// ---- cell contract ----

/// Per-sequence buffers of an LSTM cell. Reused across calls when kept.
template <class T>
struct LSTMTape {
  Index time = 0, batch = 0, steps = 0;  ///< the run's sizes (SequenceArgs), set by forward_begin
  /// The run keeps every step (SequenceArgs::training). Without it c and h hold two state slots,
  /// used in turn, and tanh_c, c_raw, m and r_raw one step (B rows).
  bool training = false;
  /// [steps*B, 4U] (B rows without training): per step x @ W_x + b + h_prev @ W_h, then the
  /// activations i, j, f, o
  Matrix<T> gates;
  const Matrix<T>* x = nullptr;  ///< the run's input rows [steps*B, D], during the forward pass
  Matrix<T> c, h;                ///< state slots: slot t holds the state before step t; [(steps+1)*B, U|H]
  Matrix<T> tanh_c;              ///< [steps*B, U] act(c) of the new c (tanh by default)
  Matrix<T> j_raw;               ///< [steps*B, U] j before its activation (only with a user's activation)
  Matrix<T> c_raw;               ///< [steps*B, U] c before cell_clip (only with cell_clip)
  Matrix<T> m;                   ///< [steps*B, U] output before the projection (only with num_proj)
  Matrix<T> r_raw;               ///< [steps*B, P] projection before proj_clip (only with proj_clip)
  Matrix<T> dgates;              ///< [steps*B, 4U] gradient of the gate pre-activations
  Matrix<T> dr;                  ///< [steps*B, P] gradient of the projection output (only with num_proj)
  /// [B, U] and [B, H] running gradients: of c and h after the step (next) and before it (prev),
  /// dh_sum = dh_next + the step's output gradient, dm the gradient of m (with num_proj).
  Matrix<T> dc_next, dh_next, dc_prev, dh_prev, dh_sum, dm;
  Matrix<T> kernel_t, proj_t;  ///< transposed kernel and projection for the backward products, row-major
  detail::ActiveRows active;   ///< the rows each step computes (SequenceArgs::active)
  /// With row skipping: the active rows of X, h_prev, dgates, c_prev, c, m and dr, packed.
  Matrix<T> pk_x, pk_h, pk_dg, pk_c, pk_cn, pk_m, pk_dr;
  /// Backward: the steps from this one on have had their weight gradients summed into wgrads
  /// (backward_weights); `steps` until then.
  Index weights_from = 0;
  /// The weight gradients backward_weights sums, added to the pass's gradients by backward_end.
  Gradients<T> wgrads = Gradients<T>::buffered();
  /// Precision::bf16 inference (detail/bf16_tape.hpp): the kernel's input and recurrent parts and
  /// the projection (empty without num_proj), as bfloat16.
  detail::Bf16TapeWeights<3> bf16;
};

// ---- end of cell contract ----

namespace detail {

/// The LSTM computation shared by BasicLSTMCell and LSTMCell; they differ in their constructors
/// and in their variable scope name.
template <class T>
class LSTMCore {
 public:
  /// The scalar type: float or double.
  using Scalar = T;
  /// (c, h): c [batch, num_units], h [batch, output_size].
  using State = LSTMStateTuple<T>;
  // ---- cell contract ----
  /// The per-sequence buffers of a run.
  using Tape = LSTMTape<T>;
  // ---- end of cell contract ----

  /// D: the features of each input step.
  Index input_depth() const { return depth_; }
  /// U: the width of c and of each gate.
  Index num_units() const { return units_; }
  /// Width of the output and of h: num_proj if set, else num_units.
  Index output_size() const { return hsize_; }
  /// The options the cell was built with.
  const LSTMOptions<T>& options() const { return opt_; }

  /// The all-zero state of `batch` examples: c [batch, num_units], h [batch, output_size].
  State zero_state(Index batch) const { return State{Matrix<T>::Zero(batch, units_), Matrix<T>::Zero(batch, hsize_)}; }

  /// Throws ShapeError unless `s` is a state for `batch` examples.
  void check_state(const State& s, Index batch, const std::string& what) const {
    if (s.c.rows() != batch || s.c.cols() != units_ || s.h.rows() != batch || s.h.cols() != hsize_)
      throw ShapeError(concat(what, ": ", cell_name(), " state expected c [", batch, ", ", units_, "] and h [", batch,
                              ", ", hsize_, "], given c [", s.c.rows(), ", ", s.c.cols(), "] and h [", s.h.rows(), ", ",
                              s.h.cols(), "]"));
  }

  /// "lstm_cell(num_units=U)" or "basic_lstm_cell(num_units=U)", for messages.
  std::string cell_name() const { return concat(scope_, "(num_units=", units_, ")"); }
  /// The variable scope: "lstm_cell" or "basic_lstm_cell".
  const std::string& scope_name() const { return scope_; }

  /// TF's class and the options that are set.
  CellConfig config() const {
    CellConfig c;
    c.kind = scope_ == "basic_lstm_cell" ? "BasicLSTMCell" : "LSTMCell";
    c.input_depth = depth_;
    c.num_units = units_;
    c.output_size = hsize_;
    c.options["forget_bias"] = static_cast<double>(opt_.forget_bias);
    if (opt_.use_peepholes) c.options["use_peepholes"] = 1;
    if (opt_.cell_clip) c.options["cell_clip"] = static_cast<double>(*opt_.cell_clip);
    if (opt_.num_proj) c.options["num_proj"] = static_cast<double>(*opt_.num_proj);
    if (opt_.proj_clip) c.options["proj_clip"] = static_cast<double>(*opt_.proj_clip);
    if (!opt_.activation.is_default()) c.options["activation"] = opt_.activation.code();
    return c;
  }

  // Variables, TF layout.
  /// "<scope>/kernel" [D + H, 4U]: columns i | j | f | o, rows 0..D-1 act on x, rows D.. on h.
  Parameter<T>& kernel() { return kernel_; }
  /// "<scope>/bias" [4U], without forget_bias.
  Parameter<T>& bias() { return bias_; }
  /// "<scope>/kernel" (const cell).
  const Parameter<T>& kernel() const { return kernel_; }
  /// "<scope>/bias" (const cell).
  const Parameter<T>& bias() const { return bias_; }
  /// "<scope>/w_f_diag" [U], the forget gate's peephole diagonal. The peephole and projection
  /// variables are empty unless enabled (use_peepholes, num_proj).
  Parameter<T>& w_f_diag() { return w_f_; }
  /// "<scope>/w_i_diag" [U], the input gate's peephole diagonal (empty without use_peepholes).
  Parameter<T>& w_i_diag() { return w_i_; }
  /// "<scope>/w_o_diag" [U], the output gate's peephole diagonal, which sees the new c.
  Parameter<T>& w_o_diag() { return w_o_; }
  /// "<scope>/projection/kernel" [U, P] (empty without num_proj); no bias.
  Parameter<T>& projection() { return proj_; }
  /// "<scope>/w_f_diag" (const cell).
  const Parameter<T>& w_f_diag() const { return w_f_; }
  /// "<scope>/w_i_diag" (const cell).
  const Parameter<T>& w_i_diag() const { return w_i_; }
  /// "<scope>/w_o_diag" (const cell).
  const Parameter<T>& w_o_diag() const { return w_o_; }
  /// "<scope>/projection/kernel" (const cell).
  const Parameter<T>& projection() const { return proj_; }

  /// A copy of the variables' values.
  LSTMWeights<T> weights() const {
    LSTMWeights<T> w;
    w.kernel = kernel_.value;
    w.bias = bias_.value;
    if (opt_.num_proj) w.projection = proj_.value;
    if (opt_.use_peepholes) {
      w.w_f_diag = w_f_.value;
      w.w_i_diag = w_i_.value;
      w.w_o_diag = w_o_.value;
    }
    return w;
  }

  /// Replaces every variable's value. Each must have its exact shape (1-D variables may be given
  /// as rows or columns) and unused ones must be empty; otherwise ShapeError and nothing changes.
  void set_weights(const LSTMWeights<T>& w) {
    const std::string op = concat(cell_name(), " set_weights");
    Parameter<T> k = matrix_parameter<T>(w.kernel), b = vector_parameter<T>(w.bias, op, "bias");
    expect(op, "kernel", k, depth_ + hsize_, 4 * units_);
    expect(op, "bias", b, 1, 4 * units_);
    Parameter<T> pf, pi, po, pp;
    if (opt_.use_peepholes) {
      pf = vector_parameter<T>(w.w_f_diag, op, "w_f_diag");
      pi = vector_parameter<T>(w.w_i_diag, op, "w_i_diag");
      po = vector_parameter<T>(w.w_o_diag, op, "w_o_diag");
      expect(op, "w_f_diag", pf, 1, units_);
      expect(op, "w_i_diag", pi, 1, units_);
      expect(op, "w_o_diag", po, 1, units_);
    } else if (w.w_f_diag.size() + w.w_i_diag.size() + w.w_o_diag.size() != 0) {
      throw ShapeError(concat(op, ": peephole weights given, but the cell has no peepholes (use_peepholes = false)"));
    }
    if (opt_.num_proj) {
      pp = matrix_parameter<T>(w.projection);
      expect(op, "projection", pp, units_, hsize_);
    } else if (w.projection.size() != 0) {
      throw ShapeError(concat(op, ": a projection given, but the cell has no num_proj"));
    }
    kernel_.value = k.value;
    bias_.value = b.value;
    if (opt_.use_peepholes) {
      w_f_.value = pf.value;
      w_i_.value = pi.value;
      w_o_.value = po.value;
    }
    if (opt_.num_proj) proj_.value = pp.value;
  }

  /// Calls f(name, Parameter<T>&) for each variable in TF's creation order (kernel, bias, w_f_diag,
  /// w_i_diag, w_o_diag, projection/kernel; only those the options use), named
  /// "<scope>/<scope_name()>/..." ("lstm_cell/kernel" with an empty scope).
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = join_scope(scope, scope_);
    f(s + "/kernel", kernel_);
    f(s + "/bias", bias_);
    if (opt_.use_peepholes) {
      f(s + "/w_f_diag", w_f_);
      f(s + "/w_i_diag", w_i_);
      f(s + "/w_o_diag", w_o_);
    }
    if (opt_.num_proj) f(s + "/projection/kernel", proj_);
  }

  /// Sets every variable's gradient to zero.
  void zero_grad() {
    for_each_variable("", [](const std::string&, Parameter<T>& p) { p.zero_grad(); });
  }

  /// One step, TF's `cell(x, state)`: returns the output and the new state.
  StepOutput<T, State> operator()(const Matrix<T>& x, const State& state) const {
    return call_step_cell(*this, x, state);
  }

  // ---- cell contract: step functions (cells/cell_traits.hpp) ----

  /// Sizes the tape for `a` and puts s0 in state slot 0; X (time-major rows) is read step by step.
  void forward_begin(Tape& tp, const Matrix<T>& X, const SequenceArgs& a, const State& s0) const {
    check_variables(false);
    if (tp.bf16.template begin<T>(a, *this))
      tp.bf16.pack(kernel_.value.topRows(depth_), kernel_.value.bottomRows(hsize_), proj_.value);
    const Index batch = a.batch, steps = a.steps;
    tp.time = a.time;
    tp.batch = batch;
    tp.steps = steps;
    tp.training = a.training;
    tp.active.assign(a.active, steps);
    const Index slots = a.training ? steps + 1 : 2;
    const Index rows = a.training ? steps * batch : batch;
    tp.gates.resize(rows, 4 * units_);
    tp.x = &X;
    tp.c.resize(slots * batch, units_);
    tp.h.resize(slots * batch, hsize_);
    tp.tanh_c.resize(rows, units_);
    if (opt_.cell_clip) tp.c_raw.resize(rows, units_);
    if (opt_.num_proj) tp.m.resize(rows, units_);
    if (opt_.num_proj && opt_.proj_clip) tp.r_raw.resize(rows, hsize_);
    if (opt_.activation.is_custom()) tp.j_raw.resize(rows, units_);
    tp.c.topRows(batch) = s0.c;
    tp.h.topRows(batch) = s0.h;
  }

  /// Runs only the rows of examples that have not ended when SequenceArgs::active says so
  /// (optional contract member, cells/cell_traits.hpp).
  bool skips_ended_rows() const { return true; }

  /// Runs Precision::bf16 inference (optional contract member, cells/cell_traits.hpp): the
  /// kernel and projection products in bf16; bias, peepholes, clips, gates and state in float.
  bool supports_bf16() const { return true; }

  /// Step t: the gates (adding h_prev @ W_h), c and h into slot t + 1, the output rows
  /// [batch, output_size] to y.
  void forward_step(Tape& tp, Index t, T* y) const {
    const Index B = tp.batch, U = units_, n = tp.active.at(t, B);
    const Index prev = slot(tp, t) * B, next = slot(tp, t + 1) * B, row = step_row(tp, t);
    // z = (x_t @ W_x + b) + h_prev @ W_h, the step's rows written and read again while in cache
    // (each row's sums are those of a whole-sequence product: the kernel's rows are independent).
    auto z = tp.gates.middleRows(row, n);
    matmul_or_bf16(z, tp.x->middleRows(t * B, n), kernel_.value.topRows(depth_), tp.bf16.get(0), tp.bf16.kernel);
    z.rowwise() += bias_.value.row(0);
    matmul_or_bf16(z, tp.h.middleRows(prev, n), kernel_.value.bottomRows(hsize_), tp.bf16.get(1), tp.bf16.kernel, true);
    if constexpr (std::is_same_v<T, float>) {
      if (opt_.activation.kind() == ActivationKind::tanh) {  // one pass per row (detail/lstm_gates.hpp)
        const LSTMGateConstants k = gate_constants();
        T* out = opt_.num_proj ? tp.m.data() + row * U : tp.h.data() + next * hsize_;
        for (Index r = 0; r < n; ++r) {
          T* g = z.row(r).data();
          lstm_forward_row({g, g + U, g + 2 * U, g + 3 * U, tp.c.data() + (prev + r) * U, tp.c.data() + (next + r) * U,
                            tp.tanh_c.data() + (row + r) * U, out + r * U, opt_.num_proj ? nullptr : y + r * U,
                            opt_.cell_clip ? tp.c_raw.data() + (row + r) * U : nullptr},
                           k, U);
        }
        if (opt_.num_proj) project(tp, row, next, n, y);
        return;
      }
    }
    // One pass over the gates, in place: z becomes the activations i, j, f, o.
    auto zi = z.leftCols(U).array();
    auto zj = z.middleCols(U, U).array();
    auto zf = z.middleCols(2 * U, U).array();
    auto zo = z.rightCols(U).array();
    const auto cp = tp.c.middleRows(prev, n).array();
    auto cn = tp.c.middleRows(next, n).array();
    auto tc = tp.tanh_c.middleRows(row, n).array();
    if (opt_.use_peepholes) {
      zi += cp.rowwise() * w_i_.value.row(0).array();
      zf += cp.rowwise() * w_f_.value.row(0).array();
    }
    opt_.activation.visit([&](auto act) {
      if constexpr (decltype(act)::keeps_input) tp.j_raw.middleRows(row, n) = zj.matrix();
      zi = sigmoid(zi);
      zj = act.value(zj);
      zf = sigmoid(zf + opt_.forget_bias);
      cn = zf * cp + zi * zj;
      if (opt_.cell_clip) {
        const T cc = *opt_.cell_clip;
        tp.c_raw.middleRows(row, n) = cn.matrix();
        cn = cn.max(-cc).min(cc);
      }
      if (opt_.use_peepholes) zo += cn.rowwise() * w_o_.value.row(0).array();
      zo = sigmoid(zo);
      tc = act.value(cn);
    });
    if (opt_.num_proj) {
      tp.m.middleRows(row, n).array() = zo * tc;
      project(tp, row, next, n, y);
    } else {
      tp.h.middleRows(next, n).array() = zo * tc;
      Eigen::Map<Matrix<T>>(y, n, hsize_) = tp.h.middleRows(next, n);
    }
  }

  /// Example b has ended: row b of state slot t + 1 := row b of slot t.
  void carry_state_row(Tape& tp, Index t, Index b) const {
    const Index prev = slot(tp, t) * tp.batch + b, next = slot(tp, t + 1) * tp.batch + b;
    tp.c.row(next) = tp.c.row(prev);
    tp.h.row(next) = tp.h.row(prev);
  }

  /// The state in slot `steps`: after the last step run.
  State final_state(const Tape& tp) const {
    const Index r = slot(tp, tp.steps) * tp.batch;
    return State{tp.c.middleRows(r, tp.batch), tp.h.middleRows(r, tp.batch)};
  }
  /// final_state written into `s`, reusing its buffers (no allocation when they have the batch's shape).
  void final_state_into(const Tape& tp, State& s) const {
    const Index r = slot(tp, tp.steps) * tp.batch;
    s.c = tp.c.middleRows(r, tp.batch);
    s.h = tp.h.middleRows(r, tp.batch);
  }

  /// Sizes the gradient buffers and transposes the weights; the running state gradient := *d_final,
  /// or zero when it is null.
  void backward_begin(Tape& tp, const State* d_final) const {
    check_variables(true);
    const Index B = tp.batch;
    tp.dgates.resize(tp.steps * B, 4 * units_);
    if (opt_.num_proj) tp.dr.resize(tp.steps * B, hsize_);
    tp.dc_prev.resize(B, units_);
    tp.dh_prev.resize(B, hsize_);
    tp.dh_sum.resize(B, hsize_);
    if (opt_.num_proj) tp.dm.resize(B, units_);
    tp.kernel_t = kernel_.value.transpose();
    if (opt_.num_proj) tp.proj_t = proj_.value.transpose();
    tp.weights_from = tp.steps;
    tp.wgrads.begin();
    if (d_final) {
      tp.dc_next = d_final->c;
      tp.dh_next = d_final->h;
    } else {
      tp.dc_next.setZero(B, units_);
      tp.dh_next.setZero(B, hsize_);
    }
  }

  /// Step t: the gate gradients and the state gradient of slot t (dy: the step's output gradient
  /// rows, or null).
  void backward_step(Tape& tp, Index t, const T* dy) const {
    const Index B = tp.batch, U = units_, n = tp.active.at(t, B);
    const Index row = t * B;
    if constexpr (std::is_same_v<T, float>) {
      if (opt_.activation.kind() == ActivationKind::tanh) {  // one pass per row (detail/lstm_gates.hpp)
        const T* dm = tp.dh_next.data();
        const T* dm2 = dy;
        if (opt_.num_proj) {
          backward_projection(tp, row, n, dy);
          dm = tp.dm.data();
          dm2 = nullptr;
        }
        const LSTMGateConstants k = gate_constants();
        for (Index r = 0; r < n; ++r) {
          const T* g = tp.gates.row(row + r).data();
          T* dg = tp.dgates.row(row + r).data();
          lstm_backward_row(
              {g, g + U, g + 2 * U, g + 3 * U, tp.tanh_c.data() + (row + r) * U, tp.c.data() + (row + r) * U,
               opt_.cell_clip ? tp.c_raw.data() + (row + r) * U : nullptr, dm + r * U, dm2 ? dm2 + r * U : nullptr,
               tp.dc_next.data() + r * U, dg, dg + U, dg + 2 * U, dg + 3 * U, tp.dc_prev.data() + r * U},
              k, U);
        }
        matmul(tp.dh_prev.topRows(n), tp.dgates.middleRows(row, n), tp.kernel_t.rightCols(hsize_));
        return;
      }
    }
    if (opt_.num_proj) {
      backward_projection(tp, row, n, dy);
    } else {
      auto dh_sum = tp.dh_sum.topRows(n);
      dh_sum = tp.dh_next.topRows(n);
      if (dy) dh_sum += Eigen::Map<const Matrix<T>>(dy, n, hsize_);
    }
    const auto dm = (opt_.num_proj ? tp.dm : tp.dh_sum).topRows(n).array();
    const auto g = tp.gates.middleRows(row, n);
    const auto i = g.leftCols(U).array(), j = g.middleCols(U, U).array(), f = g.middleCols(2 * U, U).array(),
               o = g.rightCols(U).array();
    const auto cp = tp.c.middleRows(row, n).array();
    const auto tc = tp.tanh_c.middleRows(row, n).array();
    auto dg = tp.dgates.middleRows(row, n);
    auto di = dg.leftCols(U).array();
    auto dj = dg.middleCols(U, U).array();
    auto df = dg.middleCols(2 * U, U).array();
    auto d_o = dg.rightCols(U).array();
    auto dc = tp.dc_prev.topRows(n).array();  // first the gradient of the new c, then of c_prev
    d_o = dm * tc * o * (T(1) - o);
    opt_.activation.visit([&](auto act) {
      // act'(c) at the new (clipped) c in state slot t + 1; act'(j) at j before its activation.
      dc = tp.dc_next.topRows(n).array() +
           dm * o * act.derivative(tc, [&] { return tp.c.middleRows(row + B, n).array(); });
      if (opt_.use_peepholes) dc += d_o.rowwise() * w_o_.value.row(0).array();
      if (opt_.cell_clip) dc = (tp.c_raw.middleRows(row, n).array().abs() <= *opt_.cell_clip).select(dc, T(0));
      di = dc * j * i * (T(1) - i);
      dj = dc * i * act.derivative(j, [&] { return tp.j_raw.middleRows(row, n).array(); });
    });
    df = dc * cp * f * (T(1) - f);
    dc *= f;
    if (opt_.use_peepholes) dc += di.rowwise() * w_i_.value.row(0).array() + df.rowwise() * w_f_.value.row(0).array();
    matmul(tp.dh_prev.topRows(n), dg, tp.kernel_t.rightCols(hsize_));
  }

  /// Example b had ended by step t: its state gradient passes through unchanged and its step-t gate
  /// (and projection) gradients are zeroed.
  void backward_carry_row(Tape& tp, Index t, Index b) const {
    tp.dc_prev.row(b) = tp.dc_next.row(b);
    tp.dh_prev.row(b) = tp.dh_next.row(b);
    tp.dgates.row(t * tp.batch + b).setZero();
    if (opt_.num_proj) tp.dr.row(t * tp.batch + b).setZero();
  }

  /// The slot-t state gradient becomes the running one.
  void backward_advance(Tape& tp) const {
    tp.dc_next.swap(tp.dc_prev);
    tp.dh_next.swap(tp.dh_prev);
  }

  /// Adds the weight gradients of all steps into `grads` (one product per variable) and, when dX is
  /// not null, writes the input gradients [time * batch, D] into it (zero past `steps`).
  void backward_end(Tape& tp, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>& grads) const {
    if (tp.weights_from < tp.steps) {  // backward_weights has begun: the steps before it remain
      backward_weights(tp, 0, X, dX, grads);
      tp.wgrads.add_to(grads);
      return;
    }
    // Without backward_weights (a caller other than the scan): whole-sequence products.
    if (dX) dX->setZero(tp.time * tp.batch, depth_);
    weights_steps(tp, 0, tp.steps, X, dX, grads);
  }

  /// The weight gradients and input gradients of the steps from t on, summed once they hold
  /// detail::kWeightGradientRows rows, while those rows are still in cache (optional contract
  /// member, cells/cell_traits.hpp; the scan calls it after every step, t = 0 last). The weight
  /// gradients go to the tape's buffers, added to `grads` by backward_end in one addition each.
  void backward_weights(Tape& tp, Index t, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>&) const {
    // A group's rows: with row skipping only the rows that ran, packed (a product per step could
    // have a depth of a few rows).
    if (t > 0 && tp.active.total(t, tp.weights_from, tp.batch) < kWeightGradientRows) return;
    if (tp.weights_from == tp.steps && dX) dX->setZero(tp.time * tp.batch, depth_);
    weights_steps(tp, t, tp.weights_from, X, dX, tp.wgrads);
    tp.weights_from = t;
  }

  /// The gradient of the state in slot 0, once every step has gone backward.
  State initial_state_grad(const Tape& tp) const { return State{tp.dc_next, tp.dh_next}; }

  /// State dropout's part of state slot t (optional contract member, cells/cell_traits.hpp): h
  /// [batch, output_size], never c (TF's default dropout_state_filter_visitor).
  Eigen::Map<Matrix<T>> droppable_state(Tape& tp, Index t) const {
    return Eigen::Map<Matrix<T>>(tp.h.data() + slot(tp, t) * tp.batch * hsize_, tp.batch, hsize_);
  }
  /// The running gradient of h (optional contract member): the gradient of slot t + 1's h before
  /// backward_step(tp, t).
  Eigen::Map<Matrix<T>> droppable_state_grad(Tape& tp) const {
    return Eigen::Map<Matrix<T>>(tp.dh_next.data(), tp.batch, hsize_);
  }

 protected:
  /// A cell of `num_units` reading `input_depth` features, variables drawn from `rng`.
  LSTMCore(std::string scope, Index input_depth, Index num_units, const LSTMOptions<T>& opt, Rng& rng)
      : scope_(std::move(scope)), depth_(input_depth), units_(num_units), opt_(opt) {
    validate();
    kernel_.init_glorot(rng);
    if (opt.use_peepholes) {
      w_f_.init_glorot(rng);
      w_i_.init_glorot(rng);
      w_o_.init_glorot(rng);
    }
    if (opt.num_proj) proj_.init_glorot(rng);
  }

  /// A cell with the given variables: the sizes follow from the kernel's shape and the options.
  LSTMCore(std::string scope, const LSTMWeights<T>& w, const LSTMOptions<T>& opt)
      : scope_(std::move(scope)), opt_(opt) {
    const Index P = opt.num_proj ? *opt.num_proj : 0;
    if (w.kernel.cols() <= 0 || w.kernel.cols() % 4 != 0)
      throw ShapeError(concat(scope_, ": kernel [", w.kernel.rows(), ", ", w.kernel.cols(),
                              "] must have 4 * num_units columns (gates i | j | f | o)"));
    units_ = w.kernel.cols() / 4;
    depth_ = w.kernel.rows() - (opt.num_proj ? P : units_);
    if (depth_ <= 0)
      throw ShapeError(concat(scope_, ": kernel [", w.kernel.rows(), ", ", w.kernel.cols(), "] has ", w.kernel.rows(),
                              " rows, fewer than the ", opt.num_proj ? P : units_,
                              " of h plus at least one input feature ([input_depth + h, 4 * num_units])"));
    validate();
    set_weights(w);
  }

 private:
  /// The products of steps s0 .. s1 - 1 (the rows that ran, packed when rows are skipped):
  /// their rows of dX (zero before), and their terms of every weight gradient added to `grads`.
  void weights_steps(Tape& tp, Index s0, Index s1, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>& grads) const {
    const Index U = units_, B = tp.batch;
    const ActiveRows& act = tp.active;
    if (act.total(s0, s1, B) == 0) return;
    if (dX)
      for_active_rows(act, s0, s1, B, [&](Index r0, Index k) {
        matmul(dX->middleRows(r0, k), tp.dgates.middleRows(r0, k), tp.kernel_t.leftCols(depth_));
      });
    const auto dg = gather_active_rows(tp.dgates, act, s0, s1, B, tp.pk_dg);
    Matrix<T>& dk = grads[kernel_];
    matmul_tn(dk.topRows(depth_), gather_active_rows(X, act, s0, s1, B, tp.pk_x), dg, true);
    matmul_tn(dk.bottomRows(hsize_), gather_active_rows(tp.h, act, s0, s1, B, tp.pk_h), dg, true);
    grads[bias_].row(0) += dg.colwise().sum();
    if (opt_.use_peepholes) {
      // c of slot t (the previous state) for the input and forget gates, slot t + 1 for the output.
      const auto cp = gather_active_rows(tp.c, act, s0, s1, B, tp.pk_c).array();
      const auto cn = gather_active_rows(tp.c.middleRows(B, tp.steps * B), act, s0, s1, B, tp.pk_cn).array();
      grads[w_i_].row(0) += (dg.leftCols(U).array() * cp).matrix().colwise().sum();
      grads[w_f_].row(0) += (dg.middleCols(2 * U, U).array() * cp).matrix().colwise().sum();
      grads[w_o_].row(0) += (dg.rightCols(U).array() * cn).matrix().colwise().sum();
    }
    if (opt_.num_proj)
      matmul_tn(grads[proj_], gather_active_rows(tp.m, act, s0, s1, B, tp.pk_m),
                gather_active_rows(tp.dr, act, s0, s1, B, tp.pk_dr), true);
  }

  /// The fused passes' constants (detail/lstm_gates.hpp).
  LSTMGateConstants gate_constants() const {
    LSTMGateConstants k;
    if constexpr (std::is_same_v<T, float>) {
      if (opt_.use_peepholes) {
        k.w_i = w_i_.value.data();
        k.w_f = w_f_.value.data();
        k.w_o = w_o_.value.data();
      }
      k.forget_bias = opt_.forget_bias;
      k.cell_clip = opt_.cell_clip ? *opt_.cell_clip : T(0);
    }
    return k;
  }

  /// h := m @ projection (clipped with proj_clip) for the step's n rows, and its rows to y.
  void project(Tape& tp, Index row, Index next, Index n, T* y) const {
    auto hn = tp.h.middleRows(next, n);
    matmul_or_bf16(hn, tp.m.middleRows(row, n), proj_.value, tp.bf16.get(2), tp.bf16.kernel);
    if (opt_.proj_clip) {
      const T pc = *opt_.proj_clip;
      tp.r_raw.middleRows(row, n) = hn;
      hn = hn.array().max(-pc).min(pc).matrix();
    }
    Eigen::Map<Matrix<T>>(y, n, hsize_) = hn;
  }

  /// With a projection: dr := dh_next + dy (zero where proj_clip clipped), dm := dr @ projection^T.
  void backward_projection(Tape& tp, Index row, Index n, const T* dy) const {
    auto dr = tp.dr.middleRows(row, n);
    dr = tp.dh_next.topRows(n);
    if (dy) dr += Eigen::Map<const Matrix<T>>(dy, n, hsize_);
    if (opt_.proj_clip) {
      const T pc = *opt_.proj_clip;
      dr = (tp.r_raw.middleRows(row, n).array().abs() <= pc).select(dr.array(), T(0)).matrix();
    }
    matmul(tp.dm.topRows(n), dr, tp.proj_t);
  }

  static Index slot(const Tape& tp, Index t) { return tp.training ? t : t % 2; }
  static Index step_row(const Tape& tp, Index t) { return tp.training ? t * tp.batch : 0; }

  /// Checks the options and sizes, then creates the variables (zero-filled).
  void validate() {
    check_scalar<T>();
    if (depth_ <= 0 || units_ <= 0)
      throw ValueError(concat(scope_, ": input_depth and num_units must be positive, given input_depth=", depth_,
                              ", num_units=", units_));
    if (opt_.num_proj && *opt_.num_proj <= 0)
      throw ValueError(concat(scope_, ": num_proj must be positive, given ", *opt_.num_proj));
    if (opt_.proj_clip && !opt_.num_proj)
      throw ValueError(concat(scope_, ": proj_clip needs num_proj (TensorFlow ignores it silently without one)"));
    if (opt_.cell_clip && !(*opt_.cell_clip >= T(0)))
      throw ValueError(concat(scope_, ": cell_clip must be >= 0, given ", *opt_.cell_clip));
    if (opt_.proj_clip && !(*opt_.proj_clip >= T(0)))
      throw ValueError(concat(scope_, ": proj_clip must be >= 0, given ", *opt_.proj_clip));
    if (!std::isfinite(opt_.forget_bias))
      throw ValueError(concat(scope_, ": forget_bias must be finite, given ", opt_.forget_bias));
    hsize_ = opt_.num_proj ? *opt_.num_proj : units_;
    kernel_ = Parameter<T>(depth_ + hsize_, 4 * units_);
    bias_ = Parameter<T>(4 * units_);
    if (opt_.use_peepholes) {
      w_f_ = Parameter<T>(units_);
      w_i_ = Parameter<T>(units_);
      w_o_ = Parameter<T>(units_);
    } else {
      w_f_ = w_i_ = w_o_ = Parameter<T>(0);
    }
    if (opt_.num_proj) proj_ = Parameter<T>(units_, hsize_);
  }

  static void expect(const std::string& op, const char* name, const Parameter<T>& p, Index rows, Index cols) {
    check_parameter(p, rows, cols, op, name, false);
  }

  /// The variables' values (and gradients) still have the shapes this cell was built with.
  void check_variables(bool with_grad) const {
    const std::string& op = scope_;
    check_parameter(kernel_, depth_ + hsize_, 4 * units_, op, "kernel", with_grad);
    check_parameter(bias_, 1, 4 * units_, op, "bias", with_grad);
    if (opt_.use_peepholes) {
      check_parameter(w_f_, 1, units_, op, "w_f_diag", with_grad);
      check_parameter(w_i_, 1, units_, op, "w_i_diag", with_grad);
      check_parameter(w_o_, 1, units_, op, "w_o_diag", with_grad);
    }
    if (opt_.num_proj) check_parameter(proj_, units_, hsize_, op, "projection/kernel", with_grad);
  }

  std::string scope_;
  Index depth_ = 0, units_ = 0, hsize_ = 0;
  LSTMOptions<T> opt_;
  Parameter<T> kernel_, bias_, w_f_, w_i_, w_o_, proj_;
};

}  // namespace detail

/// tf.nn.rnn_cell.LSTMCell: peepholes, cell clipping and projection. Variable scope "lstm_cell".
template <class T>
class LSTMCell : public detail::LSTMCore<T> {
 public:
  /// TF: LSTMCell(num_units, use_peepholes, cell_clip, num_proj, proj_clip, forget_bias). The input
  /// depth is given here because cellflow builds variables eagerly, drawing from `rng`.
  LSTMCell(Index input_depth, Index num_units, const LSTMOptions<T>& options, Rng& rng)
      : detail::LSTMCore<T>("lstm_cell", input_depth, num_units, options, rng) {}
  /// TF: LSTMCell(num_units) with the default options.
  LSTMCell(Index input_depth, Index num_units, Rng& rng) : LSTMCell(input_depth, num_units, LSTMOptions<T>{}, rng) {}
  /// From given weights (e.g. loaded elsewhere), no Rng: input depth and num_units follow from
  /// the kernel [D + H, 4U] and the options; every variable the options need must be given.
  explicit LSTMCell(const LSTMWeights<T>& weights, const LSTMOptions<T>& options = {})
      : detail::LSTMCore<T>("lstm_cell", weights, options) {}
};

/// tf.nn.rnn_cell.BasicLSTMCell: no peepholes, clipping or projection; forget_bias added at run
/// time. Variable scope "basic_lstm_cell".
template <class T>
class BasicLSTMCell : public detail::LSTMCore<T> {
 public:
  /// TF: BasicLSTMCell(num_units, forget_bias, activation); forget_bias of any arithmetic type,
  /// converted to T; activation tanh unless given (cells/activations.hpp). The input depth is given
  /// because variables are built eagerly, drawing from `rng`.
  template <class F = T, class = std::enable_if_t<std::is_arithmetic_v<F>>>
  BasicLSTMCell(Index input_depth, Index num_units, Rng& rng, F forget_bias = F(1), Activation<T> activation = {})
      : detail::LSTMCore<T>("basic_lstm_cell", input_depth, num_units,
                            make_options(static_cast<T>(forget_bias), std::move(activation)), rng) {}
  /// From given weights (kernel [D + U, 4U] and bias [4U]), no Rng.
  template <class F = T, class = std::enable_if_t<std::is_arithmetic_v<F>>>
  explicit BasicLSTMCell(const LSTMWeights<T>& weights, F forget_bias = F(1), Activation<T> activation = {})
      : detail::LSTMCore<T>("basic_lstm_cell", weights,
                            make_options(static_cast<T>(forget_bias), std::move(activation))) {}
  /// The forget_bias added at run time.
  T forget_bias() const { return this->options().forget_bias; }
  /// The activation of j and of c (tanh unless given).
  const Activation<T>& activation() const { return this->options().activation; }

 private:
  static LSTMOptions<T> make_options(T forget_bias, Activation<T> activation) {
    LSTMOptions<T> o;
    o.forget_bias = forget_bias;
    o.activation = std::move(activation);
    return o;
  }
};

}  // namespace cellflow
