// GRUCell: TensorFlow 1.x's GRU cells, in two variants chosen by GRUOptions::reset_after.
//
// reset_after = false (default): tf.nn.rnn_cell.GRUCell, the "reset before" variant.
//
//   r, u = split_2(sigmoid([x, h_prev] @ gates/kernel + gates/bias))   r = reset, u = update
//   c~   = tanh([x, r * h_prev] @ candidate/kernel + candidate/bias)   reset applied to h
//                                                                      BEFORE the matmul
//   h    = u * h_prev + (1 - u) * c~                                   output h, state h
//
//   Variable scope "gru_cell"; variables in TF's creation order: gates/kernel [D+U, 2U],
//   gates/bias [2U] (initialised to 1.0), candidate/kernel [D+U, U], candidate/bias [U] (zeros).
//
// reset_after = true: tf.contrib.cudnn_rnn.CudnnCompatibleGRUCell, the cuDNN / PyTorch nn.GRU /
// Keras GRU(reset_after=True) variant, which applies r AFTER the recurrent matmul and has a
// separate bias on the recurrent candidate term:
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
// columns are r | u in both variants (PyTorch's r | z, Keras's z | r: see docs/converters.md).
#pragma once

#include <string>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/detail/gemm.hpp"
#include "cellflow/rnn/scan.hpp"
#include "cellflow/rnn/step.hpp"

namespace cellflow {

/// Options of GRUCell.
struct GRUOptions {
  /// false: TF1 GRUCell (reset before the candidate matmul). true: TF1 CudnnCompatibleGRUCell,
  /// i.e. the cuDNN / PyTorch nn.GRU / Keras GRU(reset_after=True) equations.
  bool reset_after = false;
};

/// Per-sequence buffers of a GRU cell (see scan.hpp).
template <class T>
struct GRUTape {
  Index time = 0, batch = 0, steps = 0;
  bool training = false;
  Matrix<T> z;    // [steps*B, 3U]: input projections, then per step r | u | candidate
  Matrix<T> h;    // state slots [(steps+1)*B, U]
  Matrix<T> rh;   // [steps*B, U] reset before: r * h_prev, the candidate's recurrent input;
                  //               reset after:  h_prev @ hidden_projection/kernel + its bias
  Matrix<T> dz;   // [steps*B, 3U] gradients of the pre-activations
  Matrix<T> dhh;  // [steps*B, U] reset after: gradient of the hidden projection (r * d candidate)
  Matrix<T> dh_next, dh_prev, dh_sum, drh;
  Matrix<T> gates_t, cand_t;  // transposed kernels for the backward products, row-major
  Matrix<T> in_t;             // reset after: transposed input projection kernel [U, D]
};

/// tf.nn.rnn_cell.GRUCell (variable scope "gru_cell"), or with reset_after
/// CudnnCompatibleGRUCell (scope "cudnn_compatible_gru_cell"). State: h [batch, num_units].
template <class T>
class GRUCell {
 public:
  using Scalar = T;
  using State = Matrix<T>;
  using Tape = GRUTape<T>;

  /// TF1 GRUCell(num_units): reset before the candidate matmul.
  GRUCell(Index input_depth, Index num_units, Rng& rng) : GRUCell(input_depth, num_units, GRUOptions{}, rng) {}

  /// GRUCell with options; GRUOptions{true} is TF1's CudnnCompatibleGRUCell (reset after).
  GRUCell(Index input_depth, Index num_units, const GRUOptions& options, Rng& rng)
      : depth_(input_depth), units_(num_units), opt_(options) {
    detail::check_scalar<T>();
    if (input_depth <= 0 || num_units <= 0)
      throw ValueError(detail::concat(scope_name(), ": input_depth and num_units must be positive, given input_depth=",
                                      input_depth, ", num_units=", num_units));
    gates_kernel_ = Parameter<T>(depth_ + units_, 2 * units_);
    gates_bias_ = Parameter<T>(2 * units_);
    gates_kernel_.init_glorot(rng);
    if (opt_.reset_after) {
      in_kernel_ = Parameter<T>(depth_, units_);
      hid_kernel_ = Parameter<T>(units_, units_);
      in_bias_ = Parameter<T>(units_);
      hid_bias_ = Parameter<T>(units_);
      in_kernel_.init_glorot(rng);
      hid_kernel_.init_glorot(rng);
    } else {
      cand_kernel_ = Parameter<T>(depth_ + units_, units_);
      cand_bias_ = Parameter<T>(units_);
      cand_kernel_.init_glorot(rng);
    }
    gates_bias_.value.setConstant(T(1));  // TF1: gates bias starts at 1.0 (do not reset/update at first)
  }

  Index input_depth() const { return depth_; }
  Index num_units() const { return units_; }
  Index output_size() const { return units_; }
  const GRUOptions& options() const { return opt_; }
  bool reset_after() const { return opt_.reset_after; }
  std::string cell_name() const { return detail::concat(scope_name(), "(num_units=", units_, ")"); }
  std::string scope_name() const { return opt_.reset_after ? "cudnn_compatible_gru_cell" : "gru_cell"; }

  State zero_state(Index batch) const { return State::Zero(batch, units_); }

  void check_state(const State& s, Index batch, const std::string& what) const {
    if (s.rows() != batch || s.cols() != units_)
      throw ShapeError(detail::concat(what, ": ", cell_name(), " state expected h [", batch, ", ", units_, "], given [",
                                      s.rows(), ", ", s.cols(), "]"));
  }

  Parameter<T>& gates_kernel() { return gates_kernel_; }
  Parameter<T>& gates_bias() { return gates_bias_; }
  /// Reset before only (empty with reset_after).
  Parameter<T>& candidate_kernel() { return cand_kernel_; }
  Parameter<T>& candidate_bias() { return cand_bias_; }
  /// Reset after only (empty without reset_after).
  Parameter<T>& candidate_input_kernel() { return in_kernel_; }
  Parameter<T>& candidate_hidden_kernel() { return hid_kernel_; }
  Parameter<T>& candidate_input_bias() { return in_bias_; }
  Parameter<T>& candidate_hidden_bias() { return hid_bias_; }

  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = detail::join_scope(scope, scope_name());
    f(s + "/gates/kernel", gates_kernel_);
    f(s + "/gates/bias", gates_bias_);
    if (opt_.reset_after) {
      f(s + "/candidate/input_projection/kernel", in_kernel_);
      f(s + "/candidate/hidden_projection/kernel", hid_kernel_);
      f(s + "/candidate/input_projection/bias", in_bias_);
      f(s + "/candidate/hidden_projection/bias", hid_bias_);
    } else {
      f(s + "/candidate/kernel", cand_kernel_);
      f(s + "/candidate/bias", cand_bias_);
    }
  }

  StepOutput<T, State> operator()(const Matrix<T>& x, const State& state) const {
    return detail::run_step(*this, x, state);
  }

  // ---- sequence protocol (see rnn/scan.hpp) ----

  void forward_begin(Tape& tp, const Matrix<T>& X, Index time, Index batch, Index steps, const State& s0,
                     bool training) const {
    const Index U = units_;
    tp.time = time;
    tp.batch = batch;
    tp.steps = steps;
    tp.training = training;
    tp.z.resize(steps * batch, 3 * U);
    tp.h.resize((training ? steps + 1 : 2) * batch, U);
    tp.rh.resize(training ? steps * batch : batch, U);
    tp.h.topRows(batch) = s0;
    if (steps == 0) return;
    // All steps' input projections in one product per kernel; only h_prev products stay in the loop.
    const auto Xs = X.topRows(steps * batch);
    detail::matmul(tp.z.leftCols(2 * U), Xs, gates_kernel_.value.topRows(depth_));
    tp.z.leftCols(2 * U).rowwise() += gates_bias_.value.row(0);
    if (opt_.reset_after) {
      detail::matmul(tp.z.rightCols(U), Xs, in_kernel_.value);
      tp.z.rightCols(U).rowwise() += in_bias_.value.row(0);
    } else {
      detail::matmul(tp.z.rightCols(U), Xs, cand_kernel_.value.topRows(depth_));
      tp.z.rightCols(U).rowwise() += cand_bias_.value.row(0);
    }
  }

  void forward_step(Tape& tp, Index t, T* y) const {
    if (opt_.reset_after)
      forward_step_after(tp, t);
    else
      forward_step_before(tp, t);
    const Index B = tp.batch, U = units_;
    Eigen::Map<Matrix<T>>(y, B, U) = tp.h.middleRows(slot(tp, t + 1) * B, B);
  }

  void carry_state_row(Tape& tp, Index t, Index b) const {
    tp.h.row(slot(tp, t + 1) * tp.batch + b) = tp.h.row(slot(tp, t) * tp.batch + b);
  }

  State final_state(const Tape& tp) const { return tp.h.middleRows(slot(tp, tp.steps) * tp.batch, tp.batch); }

  void backward_begin(Tape& tp, const State* d_final) const {
    const Index B = tp.batch, U = units_;
    tp.dz.resize(tp.steps * B, 3 * U);
    tp.dh_prev.resize(B, U);
    tp.dh_sum.resize(B, U);
    tp.gates_t = gates_kernel_.value.transpose();
    if (opt_.reset_after) {
      tp.dhh.resize(tp.steps * B, U);
      tp.cand_t = hid_kernel_.value.transpose();
      tp.in_t = in_kernel_.value.transpose();
    } else {
      tp.drh.resize(B, U);
      tp.cand_t = cand_kernel_.value.transpose();
    }
    if (d_final)
      tp.dh_next = *d_final;
    else
      tp.dh_next.setZero(B, U);
  }

  void backward_step(Tape& tp, Index t, const T* dy) {
    const Index B = tp.batch, U = units_;
    tp.dh_sum = tp.dh_next;
    if (dy) tp.dh_sum += Eigen::Map<const Matrix<T>>(dy, B, U);
    if (opt_.reset_after)
      backward_step_after(tp, t);
    else
      backward_step_before(tp, t);
  }

  void backward_carry_row(Tape& tp, Index t, Index b) const {
    tp.dh_prev.row(b) = tp.dh_next.row(b);
    tp.dz.row(t * tp.batch + b).setZero();
    if (opt_.reset_after) tp.dhh.row(t * tp.batch + b).setZero();
  }

  void backward_advance(Tape& tp) const { tp.dh_next.swap(tp.dh_prev); }

  void backward_end(Tape& tp, const Matrix<T>& X, Matrix<T>* dX) {
    const Index n = tp.steps * tp.batch, U = units_;
    if (dX) {
      dX->setZero(tp.time * tp.batch, depth_);
      if (n > 0) {
        detail::matmul(dX->topRows(n), tp.dz.leftCols(2 * U), tp.gates_t.leftCols(depth_));
        if (opt_.reset_after)
          detail::matmul(dX->topRows(n), tp.dz.rightCols(U), tp.in_t, true);
        else
          detail::matmul(dX->topRows(n), tp.dz.rightCols(U), tp.cand_t.leftCols(depth_), true);
      }
    }
    if (n == 0) return;
    // Weight gradients as whole-sequence products: rows of dz are (t, b) pairs.
    const auto Xs = X.topRows(n);
    const auto Hp = tp.h.topRows(n);  // h_prev of every step
    const auto dg = tp.dz.leftCols(2 * U);
    const auto dc = tp.dz.rightCols(U);
    detail::matmul_tn(gates_kernel_.grad.topRows(depth_), Xs, dg, true);
    detail::matmul_tn(gates_kernel_.grad.bottomRows(U), Hp, dg, true);
    gates_bias_.grad.row(0) += dg.colwise().sum();
    if (opt_.reset_after) {
      detail::matmul_tn(in_kernel_.grad, Xs, dc, true);
      in_bias_.grad.row(0) += dc.colwise().sum();
      detail::matmul_tn(hid_kernel_.grad, Hp, tp.dhh, true);
      hid_bias_.grad.row(0) += tp.dhh.colwise().sum();
    } else {
      detail::matmul_tn(cand_kernel_.grad.topRows(depth_), Xs, dc, true);
      detail::matmul_tn(cand_kernel_.grad.bottomRows(U), tp.rh, dc, true);
      cand_bias_.grad.row(0) += dc.colwise().sum();
    }
  }

  State initial_state_grad(const Tape& tp) const { return tp.dh_next; }

  void forward_sequence(Tape& tp, const Matrix<T>& X, Index time, Index batch, Index steps, const State& s0,
                        const std::vector<Index>* lengths, Matrix<T>& Y, bool training) const {
    detail::scan_forward(*this, tp, X, time, batch, steps, s0, lengths, Y, training);
  }
  void backward_sequence(Tape& tp, const Matrix<T>& X, const std::vector<Index>* lengths, const Matrix<T>* dY,
                         const State* d_final, Matrix<T>* dX, State& d_initial) {
    detail::scan_backward(*this, tp, X, lengths, dY, d_final, dX);
    d_initial = initial_state_grad(tp);
  }

 private:
  static Index slot(const Tape& tp, Index t) { return tp.training ? t : t % 2; }

  // Reset before (TF1 GRUCell): c~ = tanh(x W_cx + (r * h_prev) W_ch + b_c).
  void forward_step_before(Tape& tp, Index t) const {
    const Index B = tp.batch, U = units_;
    const Index prev = slot(tp, t) * B, next = slot(tp, t + 1) * B, row = tp.training ? t * B : 0;
    const auto hp = tp.h.middleRows(prev, B);
    auto g = tp.z.block(t * B, 0, B, 2 * U);
    detail::matmul(g, hp, gates_kernel_.value.bottomRows(U), true);
    g.array() = g.array().logistic();  // r | u
    auto rh = tp.rh.middleRows(row, B);
    rh.array() = g.leftCols(U).array() * hp.array();
    auto c = tp.z.block(t * B, 2 * U, B, U);
    detail::matmul(c, rh, cand_kernel_.value.bottomRows(U), true);
    c.array() = c.array().tanh();
    const auto u = g.rightCols(U).array();
    tp.h.middleRows(next, B).array() = u * hp.array() + (T(1) - u) * c.array();
  }

  // Reset after (CudnnCompatibleGRUCell): c~ = tanh(x W_in + b_in + r * (h_prev W_hn + b_hn)).
  void forward_step_after(Tape& tp, Index t) const {
    const Index B = tp.batch, U = units_;
    const Index prev = slot(tp, t) * B, next = slot(tp, t + 1) * B, row = tp.training ? t * B : 0;
    const auto hp = tp.h.middleRows(prev, B);
    auto g = tp.z.block(t * B, 0, B, 2 * U);
    detail::matmul(g, hp, gates_kernel_.value.bottomRows(U), true);
    g.array() = g.array().logistic();  // r | u
    auto hh = tp.rh.middleRows(row, B);
    detail::matmul(hh, hp, hid_kernel_.value);
    hh.rowwise() += hid_bias_.value.row(0);
    auto c = tp.z.block(t * B, 2 * U, B, U);
    c.array() = (c.array() + g.leftCols(U).array() * hh.array()).tanh();
    const auto u = g.rightCols(U).array();
    tp.h.middleRows(next, B).array() = u * hp.array() + (T(1) - u) * c.array();
  }

  void backward_step_before(Tape& tp, Index t) {
    const Index B = tp.batch, U = units_, row = t * B;
    const auto dh = tp.dh_sum.array();
    const auto h = tp.h.middleRows(row, B).array();  // h_prev of step t
    const auto r = tp.z.block(row, 0, B, U).array();
    const auto u = tp.z.block(row, U, B, U).array();
    const auto c = tp.z.block(row, 2 * U, B, U).array();
    auto dr = tp.dz.block(row, 0, B, U).array();
    auto du = tp.dz.block(row, U, B, U).array();
    auto dc = tp.dz.block(row, 2 * U, B, U).array();
    auto dhp = tp.dh_prev.array();
    du = dh * (h - c) * u * (T(1) - u);
    dc = dh * (T(1) - u) * (T(1) - c.square());
    dhp = dh * u;
    detail::matmul(tp.drh, tp.dz.block(row, 2 * U, B, U), tp.cand_t.rightCols(U));
    dr = tp.drh.array() * h * r * (T(1) - r);
    dhp += tp.drh.array() * r;
    detail::matmul(tp.dh_prev, tp.dz.block(row, 0, B, 2 * U), tp.gates_t.rightCols(U), true);
  }

  void backward_step_after(Tape& tp, Index t) {
    const Index B = tp.batch, U = units_, row = t * B;
    const auto dh = tp.dh_sum.array();
    const auto h = tp.h.middleRows(row, B).array();  // h_prev of step t
    const auto r = tp.z.block(row, 0, B, U).array();
    const auto u = tp.z.block(row, U, B, U).array();
    const auto c = tp.z.block(row, 2 * U, B, U).array();
    const auto hh = tp.rh.middleRows(row, B).array();
    auto dr = tp.dz.block(row, 0, B, U).array();
    auto du = tp.dz.block(row, U, B, U).array();
    auto dc = tp.dz.block(row, 2 * U, B, U).array();
    auto dhh = tp.dhh.middleRows(row, B).array();
    auto dhp = tp.dh_prev.array();
    du = dh * (h - c) * u * (T(1) - u);
    dc = dh * (T(1) - u) * (T(1) - c.square());
    dhh = dc * r;
    dr = dc * hh * r * (T(1) - r);
    dhp = dh * u;
    detail::matmul(tp.dh_prev, tp.dhh.middleRows(row, B), tp.cand_t, true);
    detail::matmul(tp.dh_prev, tp.dz.block(row, 0, B, 2 * U), tp.gates_t.rightCols(U), true);
  }

  Index depth_ = 0, units_ = 0;
  GRUOptions opt_;
  Parameter<T> gates_kernel_, gates_bias_;
  Parameter<T> cand_kernel_, cand_bias_;                      // reset before
  Parameter<T> in_kernel_, hid_kernel_, in_bias_, hid_bias_;  // reset after
};

}  // namespace cellflow
