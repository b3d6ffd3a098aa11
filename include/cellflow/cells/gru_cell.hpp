// GRUCell: TensorFlow 1.x's tf.nn.rnn_cell.GRUCell, the "reset before" variant.
//
//   r, u = split_2(sigmoid([x, h_prev] @ gates/kernel + gates/bias))   r = reset, u = update
//   c~   = tanh([x, r * h_prev] @ candidate/kernel + candidate/bias)   reset applied to h
//                                                                      BEFORE the matmul
//   h    = u * h_prev + (1 - u) * c~                                   output h, state h
//
// Variables: gates/kernel [D+U, 2U], gates/bias [2U] (initialised to 1.0), candidate/kernel
// [D+U, U], candidate/bias [U] (zeros); kernels glorot_uniform. This differs from the
// cuDNN/PyTorch/Keras(reset_after) GRU, which applies r after the recurrent matmul.
#pragma once

#include <string>

#include "cellflow/core/error.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/detail/gemm.hpp"
#include "cellflow/rnn/scan.hpp"
#include "cellflow/rnn/step.hpp"

namespace cellflow {

/// Per-sequence buffers of a GRU cell (see scan.hpp).
template <class T>
struct GRUTape {
  Index time = 0, batch = 0, steps = 0;
  bool training = false;
  Matrix<T> z;   // [steps*B, 3U]: input projections, then per step r | u | candidate
  Matrix<T> h;   // state slots [(steps+1)*B, U]
  Matrix<T> rh;  // [steps*B, U] r * h_prev, the candidate's recurrent input
  Matrix<T> dz;  // [steps*B, 3U] gradients of the pre-activations
  Matrix<T> dh_next, dh_prev, dh_sum, drh;
  Matrix<T> gates_t, cand_t;  // transposed kernels for the backward products, row-major
};

/// tf.nn.rnn_cell.GRUCell. Variable scope "gru_cell". State: h [batch, num_units].
template <class T>
class GRUCell {
 public:
  using Scalar = T;
  using State = Matrix<T>;
  using Tape = GRUTape<T>;

  GRUCell(Index input_depth, Index num_units, Rng& rng) : depth_(input_depth), units_(num_units) {
    detail::check_scalar<T>();
    if (input_depth <= 0 || num_units <= 0)
      throw ValueError(detail::concat("gru_cell: input_depth and num_units must be positive, given input_depth=",
                                      input_depth, ", num_units=", num_units));
    gates_kernel_ = Parameter<T>(depth_ + units_, 2 * units_);
    gates_bias_ = Parameter<T>(2 * units_);
    cand_kernel_ = Parameter<T>(depth_ + units_, units_);
    cand_bias_ = Parameter<T>(units_);
    gates_kernel_.init_glorot(rng);
    cand_kernel_.init_glorot(rng);
    gates_bias_.value.setConstant(T(1));  // TF1: gates bias starts at 1.0 (do not reset/update at first)
  }

  Index input_depth() const { return depth_; }
  Index num_units() const { return units_; }
  Index output_size() const { return units_; }
  std::string cell_name() const { return detail::concat("gru_cell(num_units=", units_, ")"); }
  std::string scope_name() const { return "gru_cell"; }

  State zero_state(Index batch) const { return State::Zero(batch, units_); }

  void check_state(const State& s, Index batch, const std::string& what) const {
    if (s.rows() != batch || s.cols() != units_)
      throw ShapeError(detail::concat(what, ": ", cell_name(), " state expected h [", batch, ", ", units_,
                                      "], given [", s.rows(), ", ", s.cols(), "]"));
  }

  Parameter<T>& gates_kernel() { return gates_kernel_; }
  Parameter<T>& gates_bias() { return gates_bias_; }
  Parameter<T>& candidate_kernel() { return cand_kernel_; }
  Parameter<T>& candidate_bias() { return cand_bias_; }

  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = detail::join_scope(scope, "gru_cell");
    f(s + "/gates/kernel", gates_kernel_);
    f(s + "/gates/bias", gates_bias_);
    f(s + "/candidate/kernel", cand_kernel_);
    f(s + "/candidate/bias", cand_bias_);
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
    const auto Xs = X.topRows(steps * batch);
    detail::matmul(tp.z.leftCols(2 * U), Xs, gates_kernel_.value.topRows(depth_));
    detail::matmul(tp.z.rightCols(U), Xs, cand_kernel_.value.topRows(depth_));
    tp.z.leftCols(2 * U).rowwise() += gates_bias_.value.row(0);
    tp.z.rightCols(U).rowwise() += cand_bias_.value.row(0);
  }

  void forward_step(Tape& tp, Index t, T* y) const {
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
    Eigen::Map<Matrix<T>>(y, B, U) = tp.h.middleRows(next, B);
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
    tp.drh.resize(B, U);
    tp.gates_t = gates_kernel_.value.transpose();
    tp.cand_t = cand_kernel_.value.transpose();
    if (d_final)
      tp.dh_next = *d_final;
    else
      tp.dh_next.setZero(B, U);
  }

  void backward_step(Tape& tp, Index t, const T* dy) {
    const Index B = tp.batch, U = units_, row = t * B;
    tp.dh_sum = tp.dh_next;
    if (dy) tp.dh_sum += Eigen::Map<const Matrix<T>>(dy, B, U);
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

  void backward_carry_row(Tape& tp, Index t, Index b) const {
    tp.dh_prev.row(b) = tp.dh_next.row(b);
    tp.dz.row(t * tp.batch + b).setZero();
  }

  void backward_advance(Tape& tp) const { tp.dh_next.swap(tp.dh_prev); }

  void backward_end(Tape& tp, const Matrix<T>& X, Matrix<T>* dX) {
    const Index n = tp.steps * tp.batch, U = units_;
    if (dX) {
      dX->setZero(tp.time * tp.batch, depth_);
      if (n > 0) {
        detail::matmul(dX->topRows(n), tp.dz.leftCols(2 * U), tp.gates_t.leftCols(depth_));
        detail::matmul(dX->topRows(n), tp.dz.rightCols(U), tp.cand_t.leftCols(depth_), true);
      }
    }
    if (n == 0) return;
    const auto Xs = X.topRows(n);
    const auto dg = tp.dz.leftCols(2 * U);
    const auto dc = tp.dz.rightCols(U);
    detail::matmul_tn(gates_kernel_.grad.topRows(depth_), Xs, dg, true);
    detail::matmul_tn(gates_kernel_.grad.bottomRows(U), tp.h.topRows(n), dg, true);
    gates_bias_.grad.row(0) += dg.colwise().sum();
    detail::matmul_tn(cand_kernel_.grad.topRows(depth_), Xs, dc, true);
    detail::matmul_tn(cand_kernel_.grad.bottomRows(U), tp.rh, dc, true);
    cand_bias_.grad.row(0) += dc.colwise().sum();
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

  Index depth_ = 0, units_ = 0;
  Parameter<T> gates_kernel_, gates_bias_, cand_kernel_, cand_bias_;
};

}  // namespace cellflow
