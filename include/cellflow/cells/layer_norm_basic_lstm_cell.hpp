// LayerNormBasicLSTMCell: TensorFlow 1.15's tf.contrib.rnn.LayerNormBasicLSTMCell, a basic LSTM
// with layer normalization of each gate and of the new cell state, and recurrent dropout on the
// candidate (Semeniuta et al., "Recurrent Dropout without Memory Loss"). Same equations,
// variables, layout and defaults; variable scope "layer_norm_basic_lstm_cell".
//
//   z          = [x, h_prev] @ kernel  (+ bias only when layer_norm is off)   kernel [D + U, 4U]
//   i, j, f, o = split_4(z)                          gate order i | j | f | o (TF's)
//   with layer_norm, each of i, j, f, o is replaced by LN_s(.) with its own scope s =
//                "input", "transform", "forget", "output"
//   g          = tanh(j)
//   g          = g * m,  m = 1/keep with probability keep, else 0      (training and keep < 1)
//   c_new      = c_prev * sigmoid(f + forget_bias) + sigmoid(i) * g
//   c_new      = LN_state(c_new)                     with layer_norm (the state keeps the normed c)
//   h_new      = tanh(c_new) * sigmoid(o)
//   output h_new, state (c_new, h_new)
//
// LN_s(v) is tf.contrib.layers.layer_norm over the last axis (the U units of one example):
//   mean = sum_u v_u / U,  var = sum_u (v_u - mean)^2 / U,  inv = gamma_s / sqrt(var + 1e-12)
//   LN_s(v)_u = v_u * inv_u + (beta_s_u - mean * inv_u)      (tf.nn.batch_normalization's form)
// with TF's variance_epsilon 1e-12, gamma_s [U] initialised to norm_gain and beta_s [U] to
// norm_shift.
//
// Variables in TF's creation order: kernel [D + U, 4U], bias [4U] (only when layer_norm is off),
// then input/gamma, input/beta, transform/gamma, transform/beta, forget/gamma, forget/beta,
// output/gamma, output/beta, state/gamma, state/beta (only with layer_norm). Initializers: TF's
// get_variable default, glorot_uniform, for the kernel AND for the bias (the cell names no
// initializer, so unlike BasicLSTMCell's zero bias this one is random: fans 4U and 4U);
// gamma = norm_gain, beta = norm_shift.
//
// Dropout (dropout_keep_prob < 1) is inverted dropout on the candidate g only, never on c or h.
// Where TF drops whenever keep_prob < 1 (a TF1 program feeds keep_prob = 1 at test time), cellflow
// drops only in training runs (SequenceArgs::training): inference (predict, RNNStream, cell(x, s))
// never drops. The mask of example b, step t, unit u is keyed_uniform01(seed, draw, example, t * U
// + u) < keep ? 1/keep : 0 with example = args.first_example + b (core/random.hpp), so it does
// not depend on batch_threads; seed is dropout_prob_seed, or, when it is unset, a seed the
// constructor draws from its Rng (after the weights; recorded in options() and config(), so a
// saved model drops the same units after load_model): two cells never share masks by accident. A
// loop of cell_forward calls (rnn/step.hpp) runs each step as step 0 of draw 0, so it would drop
// the same units at every step: run dropout through dynamic_rnn.
//
// Only TF's default activation, tanh, is supported.
//
// This is a step cell (cells/cell_traits.hpp). The layer norms' statistics are summed in a fixed
// order per row, so a stream equals the whole sequence bitwise; their backward passes are done
// by hand per row, and every weight gradient is formed over the whole sequence in backward_end.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

namespace cellflow {

/// Options of LayerNormBasicLSTMCell, named as TensorFlow's constructor arguments.
template <class T>
struct LayerNormBasicLSTMOptions {
  T forget_bias = T(1);        ///< added to the forget gate at run time (after its layer norm); finite
  bool layer_norm = true;      ///< layer-normalize i, j, f, o and the new c; without it the kernel gets a bias
  T norm_gain = T(1);          ///< initial value of every gamma (used with layer_norm)
  T norm_shift = T(0);         ///< initial value of every beta (used with layer_norm)
  T dropout_keep_prob = T(1);  ///< keep probability of the candidate's recurrent dropout, in (0, 1]
  /// The seed of the dropout masks (TF's dropout_prob_seed). Unset: with dropout, the constructor
  /// draws one from its Rng. An integer below 2^53, so that it survives a model's architecture
  /// text exactly.
  std::optional<std::uint64_t> dropout_prob_seed;
};

// ---- cell contract ----

/// Per-sequence buffers of a LayerNormBasicLSTMCell. Reused across calls when kept.
template <class T>
struct LayerNormBasicLSTMTape {
  Index time = 0, batch = 0, steps = 0;  ///< the run's sizes (SequenceArgs), set by forward_begin
  /// The run keeps every step (SequenceArgs::training). Without it c and h hold two state slots,
  /// used in turn, and the per-step buffers one step (B rows).
  bool training = false;
  bool drop = false;            ///< this run applies dropout (training with keep < 1)
  std::uint64_t draw = 0;       ///< SequenceArgs::draw
  Index first_example = 0;      ///< SequenceArgs::first_example
  std::vector<Index> examples;  ///< SequenceArgs::examples (each row's example), or empty: first_example + row
  detail::ActiveRows active;    ///< the rows each step computes (SequenceArgs::active)
  /// With row skipping: the active rows of X, h_prev, dgates, dnorm, xhat, dstate and chat, packed.
  Matrix<T> pk_x, pk_h, pk_dg, pk_dn, pk_xhat, pk_ds, pk_chat;
  Matrix<T> gates;   ///< [steps*B, 4U]: the projections z, then per step the activations i, g, f, o (g undropped)
  Matrix<T> xhat;    ///< [steps*B, 4U] the normalized gates (v - mean) / sqrt(var + eps) (layer_norm)
  Matrix<T> chat;    ///< [steps*B, U] the normalized new c before gamma and beta (layer_norm)
  Matrix<T> rstd;    ///< [steps*B, 5] 1 / sqrt(var + eps) of i, j, f, o and the new c (layer_norm)
  Matrix<T> mask;    ///< [steps*B, U] the dropout mask, 0 or 1/keep (drop)
  Matrix<T> c, h;    ///< state slots: slot t holds the state before step t; [(steps+1)*B, U]
  Matrix<T> tanh_c;  ///< [steps*B, U] tanh of the new (normed) c
  Matrix<T> dgates;  ///< [steps*B, 4U] gradient of z (before the layer norms)
  Matrix<T> dnorm;   ///< [steps*B, 4U] gradient of the layer norms' outputs (layer_norm)
  Matrix<T> dstate;  ///< [steps*B, U] gradient of the state norm's output (layer_norm)
  /// [B, U] running gradients: of c and h after the step (next) and before it (prev), dh_sum =
  /// dh_next + the step's output gradient.
  Matrix<T> dc_next, dh_next, dc_prev, dh_prev, dh_sum;
  Matrix<T> kernel_t;  ///< transposed kernel for the backward products, row-major
  /// Precision::bf16 inference: the kernel's input and recurrent parts as bfloat16
  /// (detail/bf16_tape.hpp).
  detail::Bf16TapeWeights<2> bf16;
};

// ---- end of cell contract ----

/// tf.contrib.rnn.LayerNormBasicLSTMCell (see the top of this header). Variable scope
/// "layer_norm_basic_lstm_cell"; state LSTMStateTuple (c, h), output h.
template <class T>
class LayerNormBasicLSTMCell {
 public:
  /// The scalar type: float or double.
  using Scalar = T;
  /// (c, h): both [batch, num_units]; c is the layer-normalized cell state.
  using State = LSTMStateTuple<T>;
  // ---- cell contract ----
  /// The per-sequence buffers of a run.
  using Tape = LayerNormBasicLSTMTape<T>;
  // ---- end of cell contract ----

  /// TF's variance_epsilon of tf.contrib.layers.layer_norm.
  static constexpr double kEpsilon = 1e-12;

  /// TF: LayerNormBasicLSTMCell(num_units, forget_bias, activation=tanh, layer_norm, norm_gain,
  /// norm_shift, dropout_keep_prob, dropout_prob_seed). The input depth is given here because
  /// cellflow builds variables eagerly, drawing the kernel (and the bias) from `rng`.
  LayerNormBasicLSTMCell(Index input_depth, Index num_units, const LayerNormBasicLSTMOptions<T>& options, Rng& rng)
      : depth_(input_depth), units_(num_units), opt_(options) {
    validate();
    kernel_.init_glorot(rng);
    if (!opt_.layer_norm) bias_.init_glorot(rng);
    if (opt_.dropout_keep_prob < T(1) && !opt_.dropout_prob_seed) opt_.dropout_prob_seed = rng.next_u64() >> 11;
  }
  /// TF: LayerNormBasicLSTMCell(num_units) with the default options (layer norm on, no dropout).
  LayerNormBasicLSTMCell(Index input_depth, Index num_units, Rng& rng)
      : LayerNormBasicLSTMCell(input_depth, num_units, LayerNormBasicLSTMOptions<T>{}, rng) {}

  /// D: the features of each input step.
  Index input_depth() const { return depth_; }
  /// U: the width of c, h and each gate.
  Index num_units() const { return units_; }
  /// Width of the output: num_units.
  Index output_size() const { return units_; }
  /// The options the cell was built with.
  const LayerNormBasicLSTMOptions<T>& options() const { return opt_; }

  /// The all-zero state of `batch` examples: c and h [batch, num_units].
  State zero_state(Index batch) const { return State{Matrix<T>::Zero(batch, units_), Matrix<T>::Zero(batch, units_)}; }

  /// Throws ShapeError unless `s` is a state for `batch` examples.
  void check_state(const State& s, Index batch, const std::string& what) const {
    if (s.c.rows() != batch || s.c.cols() != units_ || s.h.rows() != batch || s.h.cols() != units_)
      throw ShapeError(detail::concat(what, ": ", cell_name(), " state expected c [", batch, ", ", units_, "] and h [",
                                      batch, ", ", units_, "], given c [", s.c.rows(), ", ", s.c.cols(), "] and h [",
                                      s.h.rows(), ", ", s.h.cols(), "]"));
  }

  /// "layer_norm_basic_lstm_cell(num_units=U)", for messages.
  std::string cell_name() const { return detail::concat(scope_name(), "(num_units=", units_, ")"); }
  /// The variable scope TF gives the cell: "layer_norm_basic_lstm_cell".
  std::string scope_name() const { return "layer_norm_basic_lstm_cell"; }

  /// TF's class and its options (dropout_prob_seed when set or drawn).
  CellConfig config() const {
    CellConfig c;
    c.kind = "LayerNormBasicLSTMCell";
    c.input_depth = depth_;
    c.num_units = c.output_size = units_;
    c.options["forget_bias"] = static_cast<double>(opt_.forget_bias);
    c.options["layer_norm"] = opt_.layer_norm ? 1 : 0;
    c.options["norm_gain"] = static_cast<double>(opt_.norm_gain);
    c.options["norm_shift"] = static_cast<double>(opt_.norm_shift);
    c.options["dropout_keep_prob"] = static_cast<double>(opt_.dropout_keep_prob);
    if (opt_.dropout_prob_seed) c.options["dropout_prob_seed"] = static_cast<double>(*opt_.dropout_prob_seed);
    return c;
  }

  // Variables, TF layout.
  /// "<scope>/kernel" [D + U, 4U]: columns i | j | f | o, rows 0..D-1 act on x, rows D.. on h.
  Parameter<T>& kernel() { return kernel_; }
  /// "<scope>/kernel" (const cell).
  const Parameter<T>& kernel() const { return kernel_; }
  /// "<scope>/bias" [4U]: only without layer_norm (empty with it), without forget_bias.
  Parameter<T>& bias() { return bias_; }
  /// "<scope>/bias" (const cell).
  const Parameter<T>& bias() const { return bias_; }
  /// "<scope>/<s>/gamma" [U] of norm k: 0 input, 1 transform, 2 forget, 3 output (the gates i, j,
  /// f, o), 4 state (the new c). Empty without layer_norm.
  Parameter<T>& gamma(int k) { return gamma_[checked(k)]; }
  /// gamma(k) (const cell).
  const Parameter<T>& gamma(int k) const { return gamma_[checked(k)]; }
  /// "<scope>/<s>/beta" [U] of norm k (as gamma(k)).
  Parameter<T>& beta(int k) { return beta_[checked(k)]; }
  /// beta(k) (const cell).
  const Parameter<T>& beta(int k) const { return beta_[checked(k)]; }
  /// The scope of norm k: "input", "transform", "forget", "output", "state".
  static const char* norm_scope(int k) {
    static const char* const names[5] = {"input", "transform", "forget", "output", "state"};
    return names[checked(k)];
  }

  /// Calls f(name, Parameter<T>&) for each variable in TF's creation order (kernel, [bias], then
  /// gamma and beta of input, transform, forget, output, state with layer_norm), named
  /// "<scope>/layer_norm_basic_lstm_cell/...".
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = detail::join_scope(scope, scope_name());
    f(s + "/kernel", kernel_);
    if (!opt_.layer_norm) f(s + "/bias", bias_);
    if (opt_.layer_norm)
      for (int k = 0; k < 5; ++k) {
        f(s + "/" + norm_scope(k) + "/gamma", gamma_[k]);
        f(s + "/" + norm_scope(k) + "/beta", beta_[k]);
      }
  }

  /// Sets every variable's gradient to zero.
  void zero_grad() {
    for_each_variable("", [](const std::string&, Parameter<T>& p) { p.zero_grad(); });
  }

  /// TF's `output, new_state = cell(x, state)`: one step, inference (no dropout).
  StepOutput<T, State> operator()(const Matrix<T>& x, const State& state) const {
    return detail::call_step_cell(*this, x, state);
  }

  // ---- cell contract: step functions (cells/cell_traits.hpp) ----

  /// Sizes the tape for `a`, puts s0 in state slot 0 and computes x @ W_x (+ b) of all steps in
  /// one product.
  void forward_begin(Tape& tp, const Matrix<T>& X, const SequenceArgs& a, const State& s0) const {
    check_variables(false);
    if (tp.bf16.template begin<T>(a, *this))
      tp.bf16.pack(kernel_.value.topRows(depth_), kernel_.value.bottomRows(units_));
    const Index B = a.batch, steps = a.steps, U = units_;
    tp.time = a.time;
    tp.batch = B;
    tp.steps = steps;
    tp.training = a.training;
    tp.drop = a.training && opt_.dropout_keep_prob < T(1);
    tp.draw = a.draw;
    tp.first_example = a.first_example;
    if (a.examples)
      tp.examples.assign(a.examples, a.examples + B);
    else
      tp.examples.clear();
    tp.active.assign(a.active, steps);
    const Index slots = a.training ? steps + 1 : 2;
    const Index rows = a.training ? steps * B : B;
    tp.gates.resize(steps * B, 4 * U);
    tp.c.resize(slots * B, U);
    tp.h.resize(slots * B, U);
    tp.tanh_c.resize(rows, U);
    if (opt_.layer_norm) {
      tp.xhat.resize(rows, 4 * U);
      tp.chat.resize(rows, U);
      tp.rstd.resize(rows, 5);
    }
    if (tp.drop) tp.mask.resize(rows, U);
    tp.c.topRows(B) = s0.c;
    tp.h.topRows(B) = s0.h;
    // All steps' input projections in one GEMM (one per step with row skipping: only the rows
    // that run); only h_prev @ W_h remains in the loop.
    detail::for_active_rows(tp.active, steps, B, [&](Index r0, Index n) {
      auto z = tp.gates.middleRows(r0, n);
      detail::matmul_or_bf16(z, X.middleRows(r0, n), kernel_.value.topRows(depth_), tp.bf16.get(0), tp.bf16.kernel);
      if (!opt_.layer_norm) z.rowwise() += bias_.value.row(0);
    });
  }

  /// Runs only the rows of examples that have not ended when SequenceArgs::active says so
  /// (optional contract member, cells/cell_traits.hpp); the dropout masks are keyed by each row's
  /// example.
  bool skips_ended_rows() const { return true; }

  /// Runs Precision::bf16 inference (optional contract member, cells/cell_traits.hpp): the
  /// kernel products in bf16; layer normalization, gates and state in float.
  bool supports_bf16() const { return true; }

  /// Step t: the gates (adding h_prev @ W_h), their layer norms, c and h into slot t + 1, the
  /// output rows [batch, num_units] to y.
  void forward_step(Tape& tp, Index t, T* y) const {
    const Index B = tp.batch, U = units_, n = tp.active.at(t, B);
    const Index prev = slot(tp, t) * B, next = slot(tp, t + 1) * B, row = step_row(tp, t);
    auto z = tp.gates.middleRows(t * B, n);
    detail::matmul_or_bf16(z, tp.h.middleRows(prev, n), kernel_.value.bottomRows(U), tp.bf16.get(1), tp.bf16.kernel,
                           true);
    if (opt_.layer_norm)
      for (Index b = 0; b < n; ++b)
        for (int k = 0; k < 4; ++k)
          normalize(&z(b, k * U), &z(b, k * U), &tp.xhat(row + b, k * U), tp.rstd(row + b, k), k);
    if (tp.drop) {
      const T keep = opt_.dropout_keep_prob, scale = T(1) / keep;
      const std::uint64_t seed = opt_.dropout_prob_seed ? *opt_.dropout_prob_seed : 0;
      for (Index b = 0; b < n; ++b) {
        const auto example = static_cast<std::uint64_t>(tp.examples.empty() ? tp.first_example + b
                                                                            : tp.examples[static_cast<std::size_t>(b)]);
        for (Index u = 0; u < U; ++u) {
          const auto position = static_cast<std::uint64_t>(t * U + u);
          tp.mask(row + b, u) = keyed_uniform01<T>(seed, tp.draw, example, position) < keep ? scale : T(0);
        }
      }
    }
    // One pass over the gates, in place: z becomes the activations i, g, f, o.
    auto zi = z.leftCols(U).array();
    auto zj = z.middleCols(U, U).array();
    auto zf = z.middleCols(2 * U, U).array();
    auto zo = z.rightCols(U).array();
    const auto cp = tp.c.middleRows(prev, n).array();
    auto cn = tp.c.middleRows(next, n).array();
    auto tc = tp.tanh_c.middleRows(row, n).array();
    zi = detail::sigmoid(zi);
    zj = zj.tanh();
    zf = detail::sigmoid(zf + opt_.forget_bias);
    zo = detail::sigmoid(zo);
    if (tp.drop)
      cn = cp * zf + zi * (zj * tp.mask.middleRows(row, n).array());
    else
      cn = cp * zf + zi * zj;
    if (opt_.layer_norm)
      for (Index b = 0; b < n; ++b) normalize(&cn(b, 0), &cn(b, 0), &tp.chat(row + b, 0), tp.rstd(row + b, 4), 4);
    tc = cn.tanh();
    tp.h.middleRows(next, n).array() = tc * zo;
    Eigen::Map<Matrix<T>>(y, n, U) = tp.h.middleRows(next, n);
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

  /// Sizes the gradient buffers and transposes the kernel; the running state gradient :=
  /// *d_final, or zero when it is null.
  void backward_begin(Tape& tp, const State* d_final) const {
    check_variables(true);
    const Index B = tp.batch, U = units_;
    tp.dgates.resize(tp.steps * B, 4 * U);
    if (opt_.layer_norm) {
      tp.dnorm.resize(tp.steps * B, 4 * U);
      tp.dstate.resize(tp.steps * B, U);
    }
    tp.dc_prev.resize(B, U);
    tp.dh_prev.resize(B, U);
    tp.dh_sum.resize(B, U);
    tp.kernel_t = kernel_.value.transpose();
    if (d_final) {
      tp.dc_next = d_final->c;
      tp.dh_next = d_final->h;
    } else {
      tp.dc_next.setZero(B, U);
      tp.dh_next.setZero(B, U);
    }
  }

  /// Step t: the gradients of the gates (through their layer norms) and the state gradient of
  /// slot t (dy: the step's output gradient rows, or null).
  void backward_step(Tape& tp, Index t, const T* dy) const {
    const Index B = tp.batch, U = units_, n = tp.active.at(t, B);
    const Index row = t * B;
    tp.dh_sum.topRows(n) = tp.dh_next.topRows(n);
    if (dy) tp.dh_sum.topRows(n) += Eigen::Map<const Matrix<T>>(dy, n, U);
    const auto dh = tp.dh_sum.topRows(n).array();
    const auto g = tp.gates.middleRows(row, n);
    const auto i = g.leftCols(U).array(), j = g.middleCols(U, U).array(), f = g.middleCols(2 * U, U).array(),
               o = g.rightCols(U).array();
    const auto cp = tp.c.middleRows(row, n).array();
    const auto tc = tp.tanh_c.middleRows(row, n).array();
    // With layer_norm the gate gradients go to dnorm first (the norms' outputs), else straight to dgates.
    auto dn = (opt_.layer_norm ? tp.dnorm : tp.dgates).middleRows(row, n);
    auto di = dn.leftCols(U).array();
    auto dj = dn.middleCols(U, U).array();
    auto df = dn.middleCols(2 * U, U).array();
    auto d_o = dn.rightCols(U).array();
    auto dc = tp.dc_prev.topRows(n).array();  // first the gradient of the new c, then of c_prev
    d_o = dh * tc * o * (T(1) - o);
    dc = tp.dc_next.topRows(n).array() + dh * o * (T(1) - tc.square());
    if (opt_.layer_norm) {
      tp.dstate.middleRows(row, n) = tp.dc_prev.topRows(n);
      for (Index b = 0; b < n; ++b) normalize_backward(&tp.dc_prev(b, 0), &tp.chat(row + b, 0), tp.rstd(row + b, 4), 4);
    }
    if (tp.drop) {
      const auto m = tp.mask.middleRows(row, n).array();
      di = dc * j * m * i * (T(1) - i);
      dj = dc * i * m * (T(1) - j.square());
    } else {
      di = dc * j * i * (T(1) - i);
      dj = dc * i * (T(1) - j.square());
    }
    df = dc * cp * f * (T(1) - f);
    dc *= f;
    if (opt_.layer_norm) {
      auto dg = tp.dgates.middleRows(row, n);
      dg = dn;
      for (Index b = 0; b < n; ++b)
        for (int k = 0; k < 4; ++k) normalize_backward(&dg(b, k * U), &tp.xhat(row + b, k * U), tp.rstd(row + b, k), k);
    }
    detail::matmul(tp.dh_prev.topRows(n), tp.dgates.middleRows(row, n), tp.kernel_t.rightCols(U));
  }

  /// Example b had ended by step t: its state gradient passes through unchanged and its step-t
  /// gradients are zeroed.
  void backward_carry_row(Tape& tp, Index t, Index b) const {
    tp.dc_prev.row(b) = tp.dc_next.row(b);
    tp.dh_prev.row(b) = tp.dh_next.row(b);
    tp.dgates.row(t * tp.batch + b).setZero();
    if (opt_.layer_norm) {
      tp.dnorm.row(t * tp.batch + b).setZero();
      tp.dstate.row(t * tp.batch + b).setZero();
    }
  }

  /// The slot-t state gradient becomes the running one.
  void backward_advance(Tape& tp) const {
    tp.dc_next.swap(tp.dc_prev);
    tp.dh_next.swap(tp.dh_prev);
  }

  /// Adds the weight gradients of all steps into `grads` and, when dX is not null, writes the
  /// input gradients [time * batch, D] into it (zero past `steps`).
  void backward_end(Tape& tp, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>& grads) const {
    const Index n = tp.steps * tp.batch, U = units_, B = tp.batch, S = tp.steps;
    if (dX) {
      dX->setZero(tp.time * tp.batch, depth_);
      detail::for_active_rows(tp.active, S, B, [&](Index r0, Index k) {
        detail::matmul(dX->middleRows(r0, k), tp.dgates.middleRows(r0, k), tp.kernel_t.leftCols(depth_));
      });
    }
    if (n == 0) return;
    // Weight gradients as whole-sequence GEMMs: rows of dgates are (t, b) pairs; with row
    // skipping only the pairs that ran, packed (detail/active_rows.hpp).
    const auto& act = tp.active;
    const auto dgates = detail::gather_active_rows(tp.dgates, act, S, B, tp.pk_dg);
    Matrix<T>& dk = grads[kernel_];
    detail::matmul_tn(dk.topRows(depth_), detail::gather_active_rows(X, act, S, B, tp.pk_x), dgates, true);
    detail::matmul_tn(dk.bottomRows(U), detail::gather_active_rows(tp.h, act, S, B, tp.pk_h), dgates, true);
    if (!opt_.layer_norm) {
      grads[bias_].row(0) += dgates.colwise().sum();
      return;
    }
    const auto dnorm = detail::gather_active_rows(tp.dnorm, act, S, B, tp.pk_dn);
    const auto xhat = detail::gather_active_rows(tp.xhat, act, S, B, tp.pk_xhat);
    for (int k = 0; k < 4; ++k) {
      const auto d = dnorm.middleCols(k * U, U);
      grads[gamma_[k]].row(0) += (d.array() * xhat.middleCols(k * U, U).array()).matrix().colwise().sum();
      grads[beta_[k]].row(0) += d.colwise().sum();
    }
    const auto dstate = detail::gather_active_rows(tp.dstate, act, S, B, tp.pk_ds);
    const auto chat = detail::gather_active_rows(tp.chat, act, S, B, tp.pk_chat);
    grads[gamma_[4]].row(0) += (dstate.array() * chat.array()).matrix().colwise().sum();
    grads[beta_[4]].row(0) += dstate.colwise().sum();
  }

  /// The gradient of the state in slot 0, once every step has gone backward.
  State initial_state_grad(const Tape& tp) const { return State{tp.dc_next, tp.dh_next}; }

 private:
  static Index slot(const Tape& tp, Index t) { return tp.training ? t : t % 2; }
  static Index step_row(const Tape& tp, Index t) { return tp.training ? t * tp.batch : 0; }
  static int checked(int k) {
    if (k < 0 || k > 4)
      throw ValueError(detail::concat("layer_norm_basic_lstm_cell: norm index ", k,
                                      " is not one of 0 input, 1 transform, 2 forget, 3 output, 4 state"));
    return k;
  }

  /// Layer norm k of one row of U values (`in`, may equal `out`): out = TF's batch_normalization
  /// form, xhat = (v - mean) * rstd. The sums run in index order (bitwise the same for any row).
  void normalize(const T* in, T* out, T* xhat, T& rstd, int k) const {
    const Index U = units_;
    T sum = 0;
    for (Index u = 0; u < U; ++u) sum += in[u];
    const T mean = sum / static_cast<T>(U);
    T sq = 0;
    for (Index u = 0; u < U; ++u) sq += (in[u] - mean) * (in[u] - mean);
    const T var = sq / static_cast<T>(U);
    const T r = T(1) / std::sqrt(var + static_cast<T>(kEpsilon));
    rstd = r;
    const T* gamma = gamma_[k].value.data();
    const T* beta = beta_[k].value.data();
    for (Index u = 0; u < U; ++u) {
      const T v = in[u], inv = r * gamma[u];
      xhat[u] = (v - mean) * r;
      out[u] = v * inv + (beta[u] - mean * inv);
    }
  }

  /// The backward pass of layer norm k on one row, in place: d (the gradient of the output)
  /// becomes the gradient of the input, rstd * (dx - mean(dx) - xhat * mean(dx * xhat)) with dx =
  /// d * gamma.
  void normalize_backward(T* d, const T* xhat, T rstd, int k) const {
    const Index U = units_;
    const T* gamma = gamma_[k].value.data();
    T s1 = 0, s2 = 0;
    for (Index u = 0; u < U; ++u) {
      const T dx = d[u] * gamma[u];
      s1 += dx;
      s2 += dx * xhat[u];
    }
    const T m1 = s1 / static_cast<T>(U), m2 = s2 / static_cast<T>(U);
    for (Index u = 0; u < U; ++u) d[u] = rstd * (d[u] * gamma[u] - m1 - xhat[u] * m2);
  }

  /// Checks the options and sizes, then creates the variables (kernel and bias zero-filled,
  /// gamma = norm_gain, beta = norm_shift).
  void validate() {
    detail::check_scalar<T>();
    const std::string op = "layer_norm_basic_lstm_cell";
    if (depth_ <= 0 || units_ <= 0)
      throw ValueError(detail::concat(op, ": input_depth and num_units must be positive, given input_depth=", depth_,
                                      ", num_units=", units_));
    if (!std::isfinite(opt_.forget_bias))
      throw ValueError(detail::concat(op, ": forget_bias must be finite, given ", opt_.forget_bias));
    if (!std::isfinite(opt_.norm_gain) || !std::isfinite(opt_.norm_shift))
      throw ValueError(detail::concat(op, ": norm_gain and norm_shift must be finite, given ", opt_.norm_gain, " and ",
                                      opt_.norm_shift));
    if (!(opt_.dropout_keep_prob > T(0) && opt_.dropout_keep_prob <= T(1)))
      throw ValueError(detail::concat(op, ": dropout_keep_prob must be in (0, 1], given ", opt_.dropout_keep_prob));
    if (opt_.dropout_prob_seed && *opt_.dropout_prob_seed >= (std::uint64_t(1) << 53))
      throw ValueError(detail::concat(op, ": dropout_prob_seed must be below 2^53, given ", *opt_.dropout_prob_seed));
    kernel_ = Parameter<T>(depth_ + units_, 4 * units_);
    bias_ = opt_.layer_norm ? Parameter<T>(0) : Parameter<T>(4 * units_);
    for (int k = 0; k < 5; ++k) {
      gamma_[k] = Parameter<T>(opt_.layer_norm ? units_ : 0);
      beta_[k] = Parameter<T>(opt_.layer_norm ? units_ : 0);
      gamma_[k].value.setConstant(opt_.norm_gain);
      beta_[k].value.setConstant(opt_.norm_shift);
    }
  }

  /// The variables' values (and gradients) still have the shapes this cell was built with.
  void check_variables(bool with_grad) const {
    const std::string op = cell_name();
    detail::check_parameter(kernel_, depth_ + units_, 4 * units_, op, "kernel", with_grad);
    if (!opt_.layer_norm) detail::check_parameter(bias_, 1, 4 * units_, op, "bias", with_grad);
    if (opt_.layer_norm)
      for (int k = 0; k < 5; ++k) {
        const std::string g = std::string(norm_scope(k)) + "/gamma", b = std::string(norm_scope(k)) + "/beta";
        detail::check_parameter(gamma_[k], 1, units_, op, g.c_str(), with_grad);
        detail::check_parameter(beta_[k], 1, units_, op, b.c_str(), with_grad);
      }
  }

  Index depth_ = 0, units_ = 0;
  LayerNormBasicLSTMOptions<T> opt_;
  Parameter<T> kernel_, bias_;
  std::array<Parameter<T>, 5> gamma_, beta_;
};

}  // namespace cellflow
