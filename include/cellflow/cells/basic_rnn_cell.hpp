// BasicRNNCell: TensorFlow 1.x's plain (Elman) recurrent cell, tf.nn.rnn_cell.BasicRNNCell.
//
//   h = act([x, h_prev] @ kernel + bias)      kernel [D + U, U]: rows 0..D-1 act on x, rows D.. on h
//   output h, state h                         act: tanh by default (TF's `activation` argument)
//
// Variable scope "basic_rnn_cell"; variables in TF's creation order: kernel [D + U, U]
// (glorot_uniform with the fans of that shape, get_variable's default) and bias [U] (zeros).
// PyTorch's nn.RNN(nonlinearity='tanh' | 'relu') and Keras's SimpleRNN compute the same
// function (their two biases summed; weights transposed).
//
// Backward, with z the pre-activation of step t and dh the gradient reaching its output and new
// state: dz = dh * act'(z); kernel gradient [x, h_prev]^T dz, bias gradient the sum of dz over
// the batch; the gradient of [x, h_prev] is dz @ kernel^T.
//
// It is a step cell (cells/cell_traits.hpp): forward_begin projects the inputs of all steps in one
// product, forward_step adds h_prev @ W_h and applies the activation; every product goes through
// detail::matmul, so a stream equals the whole-sequence run bitwise. With Precision::bf16
// (inference) both products run on bfloat16 weights packed in forward_begin (detail/bf16_tape.hpp).
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

namespace cellflow {

/// The variables of a BasicRNNCell, TF layout (the bias as a 1 x U row).
template <class T>
struct BasicRNNWeights {
  Matrix<T> kernel;  ///< [D + U, U], rows 0..D-1 act on x
  Matrix<T> bias;    ///< 1 x U
};

// ---- cell contract ----

/// Per-sequence buffers of a BasicRNNCell.
template <class T>
struct BasicRNNTape {
  Index time = 0, batch = 0, steps = 0;  ///< the run's sizes (SequenceArgs), set by forward_begin
  /// The run keeps every step (SequenceArgs::training). Without it h holds two state slots.
  bool training = false;
  Matrix<T> z;                  ///< [steps*B, U]: the pre-activations x @ W_x + b + h_prev @ W_h
  Matrix<T> h;                  ///< state slots [(steps+1)*B, U]: slot t holds the state before step t
  Matrix<T> dz;                 ///< [steps*B, U] gradient of the pre-activations
  Matrix<T> dh_next, dh_prev;   ///< [B, U] running state gradients: after the step and before it
  Matrix<T> kernel_t;           ///< the transposed kernel [U, D + U] for the backward products
  detail::ActiveRows active;    ///< the rows each step computes (SequenceArgs::active)
  Matrix<T> pk_x, pk_h, pk_dz;  ///< with row skipping: the active rows of X, h_prev and dz, packed
  /// Precision::bf16 inference: W_x and W_h as bfloat16 (detail/bf16_tape.hpp).
  detail::Bf16TapeWeights<2> bf16;
};

// ---- end of cell contract ----

/// tf.nn.rnn_cell.BasicRNNCell(num_units, activation): h = act([x, h_prev] @ kernel + bias),
/// output and state h [batch, num_units]. Variable scope "basic_rnn_cell".
template <class T>
class BasicRNNCell {
 public:
  /// The scalar type: float or double.
  using Scalar = T;
  /// h [batch, num_units].
  using State = Matrix<T>;
  // ---- cell contract ----
  /// The per-sequence buffers of a run.
  using Tape = BasicRNNTape<T>;
  // ---- end of cell contract ----

  /// TF: BasicRNNCell(num_units, activation = tanh). The input depth is given because cellflow
  /// builds variables eagerly: the kernel is drawn from `rng` (glorot_uniform), the bias is zero.
  BasicRNNCell(Index input_depth, Index num_units, Rng& rng, Activation<T> activation = {})
      : depth_(input_depth), units_(num_units), act_(std::move(activation)) {
    make_variables();
    kernel_.init_glorot(rng);
  }

  /// From given weights, no Rng: the sizes follow from the kernel [D + U, U].
  explicit BasicRNNCell(const BasicRNNWeights<T>& w, Activation<T> activation = {})
      : depth_(w.kernel.rows() - w.kernel.cols()), units_(w.kernel.cols()), act_(std::move(activation)) {
    if (w.kernel.cols() <= 0 || depth_ <= 0)
      throw ShapeError(detail::concat("basic_rnn_cell: kernel [", w.kernel.rows(), ", ", w.kernel.cols(),
                                      "] must be [input_depth + num_units, num_units] with input_depth >= 1"));
    make_variables();
    set_weights(w);
  }

  /// D: the features of each input step.
  Index input_depth() const { return depth_; }
  /// U: the width of h.
  Index num_units() const { return units_; }
  /// The output's width: num_units (the output is h).
  Index output_size() const { return units_; }
  /// The activation (tanh unless given).
  const Activation<T>& activation() const { return act_; }
  /// "basic_rnn_cell(num_units=U)", for messages.
  std::string cell_name() const { return detail::concat("basic_rnn_cell(num_units=", units_, ")"); }
  /// The variable scope: "basic_rnn_cell".
  std::string scope_name() const { return "basic_rnn_cell"; }

  /// TF's class and the options that are set: "activation" (1 relu, -1 a user's) unless tanh.
  CellConfig config() const {
    CellConfig c;
    c.kind = "BasicRNNCell";
    c.input_depth = depth_;
    c.num_units = c.output_size = units_;
    if (!act_.is_default()) c.options["activation"] = act_.code();
    return c;
  }

  /// The all-zero state h [batch, num_units].
  State zero_state(Index batch) const { return State::Zero(batch, units_); }

  /// Throws ShapeError (starting with `what`) unless `s` is [batch, num_units].
  void check_state(const State& s, Index batch, const std::string& what) const {
    if (s.rows() != batch || s.cols() != units_)
      throw ShapeError(detail::concat(what, ": ", cell_name(), " state expected h [", batch, ", ", units_, "], given [",
                                      s.rows(), ", ", s.cols(), "]"));
  }

  /// "<scope>/basic_rnn_cell/kernel" [D + U, U]: rows 0..D-1 act on x, rows D.. on h.
  Parameter<T>& kernel() { return kernel_; }
  /// "<scope>/basic_rnn_cell/bias" [U].
  Parameter<T>& bias() { return bias_; }
  /// kernel (const cell).
  const Parameter<T>& kernel() const { return kernel_; }
  /// bias (const cell).
  const Parameter<T>& bias() const { return bias_; }

  /// A copy of the variables' values.
  BasicRNNWeights<T> weights() const { return BasicRNNWeights<T>{kernel_.value, bias_.value}; }

  /// Replaces both variables' values; each must have its exact shape (the bias as a row or a
  /// column), else ShapeError and nothing changes.
  void set_weights(const BasicRNNWeights<T>& w) {
    const std::string op = detail::concat(cell_name(), " set_weights");
    const auto k = detail::matrix_parameter<T>(w.kernel);
    const auto b = detail::vector_parameter<T>(w.bias, op, "bias");
    detail::check_parameter(k, depth_ + units_, units_, op, "kernel", false);
    detail::check_parameter(b, 1, units_, op, "bias", false);
    kernel_.value = k.value;
    bias_.value = b.value;
  }

  /// Calls f(name, Parameter<T>&) for kernel, then bias (TF's creation order), named
  /// "<scope>/basic_rnn_cell/..." ("basic_rnn_cell/kernel" with an empty scope).
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = detail::join_scope(scope, "basic_rnn_cell");
    f(s + "/kernel", kernel_);
    f(s + "/bias", bias_);
  }

  /// Sets both variables' gradients to zero.
  void zero_grad() {
    kernel_.zero_grad();
    bias_.zero_grad();
  }

  /// One step, TF's `cell(x, state)`: returns the output and the new state.
  StepOutput<T, State> operator()(const Matrix<T>& x, const State& state) const {
    return detail::call_step_cell(*this, x, state);
  }

  // ---- cell contract: step functions (cells/cell_traits.hpp) ----

  /// Sizes the tape for `a`, puts s0 in state slot 0 and computes x @ W_x + b of all steps in one
  /// product.
  void forward_begin(Tape& tp, const Matrix<T>& X, const SequenceArgs& a, const State& s0) const {
    check_variables(false);
    if (tp.bf16.template begin<T>(a, *this))
      tp.bf16.pack(kernel_.value.topRows(depth_), kernel_.value.bottomRows(units_));
    tp.time = a.time;
    tp.batch = a.batch;
    tp.steps = a.steps;
    tp.training = a.training;
    tp.active.assign(a.active, a.steps);
    tp.z.resize(a.steps * a.batch, units_);
    tp.h.resize((a.training ? a.steps + 1 : 2) * a.batch, units_);
    tp.h.topRows(a.batch) = s0;
    detail::for_active_rows(tp.active, a.steps, a.batch, [&](Index r0, Index n) {
      auto z = tp.z.middleRows(r0, n);
      detail::matmul_or_bf16(z, X.middleRows(r0, n), kernel_.value.topRows(depth_), tp.bf16.get(0), tp.bf16.kernel);
      z.rowwise() += bias_.value.row(0);
    });
  }

  /// Runs only the rows of examples that have not ended when SequenceArgs::active says so
  /// (optional contract member, cells/cell_traits.hpp).
  bool skips_ended_rows() const { return true; }

  /// Runs Precision::bf16 inference (optional contract member, cells/cell_traits.hpp): the
  /// input and recurrent products in bf16, bias and activation in float.
  bool supports_bf16() const { return true; }

  /// Step t: z += h_prev @ W_h, the new h = act(z) into slot t + 1 and the output rows
  /// [batch, num_units] to y.
  void forward_step(Tape& tp, Index t, T* y) const {
    const Index B = tp.batch, n = tp.active.at(t, B);
    auto z = tp.z.middleRows(t * B, n);
    detail::matmul_or_bf16(z, tp.h.middleRows(slot(tp, t) * B, n), kernel_.value.bottomRows(units_), tp.bf16.get(1),
                           tp.bf16.kernel, true);
    auto hn = tp.h.middleRows(slot(tp, t + 1) * B, n);
    act_.visit([&](auto op) { hn.array() = op.value(z.array()); });
    Eigen::Map<Matrix<T>>(y, n, units_) = hn;
  }

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

  /// Sizes the gradient buffers and transposes the kernel; the running state gradient := *d_final,
  /// or zero when it is null.
  void backward_begin(Tape& tp, const State* d_final) const {
    check_variables(true);
    tp.dz.resize(tp.steps * tp.batch, units_);
    tp.dh_prev.resize(tp.batch, units_);
    tp.kernel_t = kernel_.value.transpose();
    if (d_final)
      tp.dh_next = *d_final;
    else
      tp.dh_next.setZero(tp.batch, units_);
  }

  /// Step t: dz = (running gradient + dy) * act'(z), and the state gradient of slot t
  /// (dy: the step's output gradient rows, or null).
  void backward_step(Tape& tp, Index t, const T* dy) const {
    const Index B = tp.batch, row = t * B, n = tp.active.at(t, B);
    auto dz = tp.dz.middleRows(row, n);
    dz = tp.dh_next.topRows(n);
    if (dy) dz += Eigen::Map<const Matrix<T>>(dy, n, units_);
    const auto h = tp.h.middleRows(row + B, n).array();  // the output of step t (slot t + 1)
    act_.visit([&](auto op) { dz.array() *= op.derivative(h, [&] { return tp.z.middleRows(row, n).array(); }); });
    detail::matmul(tp.dh_prev.topRows(n), dz, tp.kernel_t.rightCols(units_));
  }

  /// Example b had ended by step t: its state gradient passes through unchanged and its step-t
  /// gradient is zeroed.
  void backward_carry_row(Tape& tp, Index t, Index b) const {
    tp.dh_prev.row(b) = tp.dh_next.row(b);
    tp.dz.row(t * tp.batch + b).setZero();
  }

  /// The slot-t state gradient becomes the running one.
  void backward_advance(Tape& tp) const { tp.dh_next.swap(tp.dh_prev); }

  /// Adds the weight gradients of all steps into `grads` (one product per block) and, when dX is
  /// not null, writes the input gradients [time * batch, D] into it (zero past `steps`).
  void backward_end(Tape& tp, const Matrix<T>& X, Matrix<T>* dX, Gradients<T>& grads) const {
    const Index n = tp.steps * tp.batch, B = tp.batch;
    if (dX) {
      dX->setZero(tp.time * tp.batch, depth_);
      detail::for_active_rows(tp.active, tp.steps, B, [&](Index r0, Index k) {
        detail::matmul(dX->middleRows(r0, k), tp.dz.middleRows(r0, k), tp.kernel_t.leftCols(depth_));
      });
    }
    if (n == 0) return;
    // Weight gradients as whole-sequence GEMMs over the rows that ran (detail/active_rows.hpp).
    const auto dz = detail::gather_active_rows(tp.dz, tp.active, tp.steps, B, tp.pk_dz);
    Matrix<T>& dk = grads[kernel_];
    detail::matmul_tn(dk.topRows(depth_), detail::gather_active_rows(X, tp.active, tp.steps, B, tp.pk_x), dz, true);
    detail::matmul_tn(dk.bottomRows(units_), detail::gather_active_rows(tp.h, tp.active, tp.steps, B, tp.pk_h), dz,
                      true);
    grads[bias_].row(0) += dz.colwise().sum();
  }

  /// The gradient of the state in slot 0, once every step has gone backward.
  State initial_state_grad(const Tape& tp) const { return tp.dh_next; }

 private:
  static Index slot(const Tape& tp, Index t) { return tp.training ? t : t % 2; }

  void make_variables() {
    detail::check_scalar<T>();
    if (depth_ <= 0 || units_ <= 0)
      throw ValueError(detail::concat("basic_rnn_cell: input_depth and num_units must be positive, given input_depth=",
                                      depth_, ", num_units=", units_));
    kernel_ = Parameter<T>(depth_ + units_, units_);
    bias_ = Parameter<T>(units_);
  }

  void check_variables(bool with_grad) const {
    detail::check_parameter(kernel_, depth_ + units_, units_, "basic_rnn_cell", "kernel", with_grad);
    detail::check_parameter(bias_, 1, units_, "basic_rnn_cell", "bias", with_grad);
  }

  Index depth_ = 0, units_ = 0;
  Activation<T> act_;
  Parameter<T> kernel_, bias_;
};

}  // namespace cellflow
