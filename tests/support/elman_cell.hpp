// A cell written the way a user writes one, against the public cell contract only
// (cells/cell_traits.hpp; docs/concepts.md, "Writing your own cell", shows this very code):
// the Elman RNN, TF's BasicRNNCell equations,
//
//   h = tanh([x, h_prev] @ kernel + bias)        kernel [D + U, U], bias [U]; output h, state h
//
// It lives outside namespace cellflow and uses Eigen's own products, as a user's cell would.
// The test suite runs it through everything a built-in cell goes through (the cell contract
// test), so the contract and its documentation cannot drift apart.
#pragma once

#include <string>

#include <cellflow/cells/cell_traits.hpp>
#include <cellflow/core/error.hpp>
#include <cellflow/core/gradients.hpp>
#include <cellflow/core/random.hpp>
#include <cellflow/core/sequence.hpp>
#include <cellflow/core/variable.hpp>

// [verbatim: tests/support/elman_cell.hpp]
namespace mycells {

template <class T>
class ElmanCell {
 public:
  using Scalar = T;
  using State = cellflow::Matrix<T>;  // h [batch, units]: state.hpp's operations come with it
  struct Tape {
    cellflow::Index time = 0, batch = 0, steps = 0;
    cellflow::Matrix<T> z;                 // [steps * batch, U]: x @ W_x + b for every step, then h of that step
    cellflow::Matrix<T> h;                 // state slots [(steps + 1) * batch, U]: slot t is the state before step t
    cellflow::Matrix<T> dz;                // [steps * batch, U]: gradient of the pre-activation
    cellflow::Matrix<T> dh_next, dh_prev;  // [batch, U]: running state gradients
  };

  ElmanCell(cellflow::Index input_depth, cellflow::Index units, cellflow::Rng& rng)
      : depth_(input_depth), units_(units), kernel_(input_depth + units, units), bias_(units) {
    if (input_depth <= 0 || units <= 0) throw cellflow::ValueError("elman_cell: sizes must be positive");
    kernel_.init_glorot(rng);
  }

  cellflow::Index input_depth() const { return depth_; }
  cellflow::Index output_size() const { return units_; }
  std::string cell_name() const { return "elman_cell(num_units=" + std::to_string(units_) + ")"; }
  std::string scope_name() const { return "elman_cell"; }

  State zero_state(cellflow::Index batch) const { return State::Zero(batch, units_); }
  void check_state(const State& s, cellflow::Index batch, const std::string& what) const {
    if (s.rows() != batch || s.cols() != units_)
      throw cellflow::ShapeError(what + ": " + cell_name() + " expects a state [" + std::to_string(batch) + ", " +
                                 std::to_string(units_) + "]");
  }

  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = scope.empty() ? "elman_cell" : scope + "/elman_cell";
    f(s + "/kernel", kernel_);
    f(s + "/bias", bias_);
  }

  // ---- forward: the scan calls forward_begin once, then forward_step for t = 0, 1, ... ----

  void forward_begin(Tape& tp, const cellflow::Matrix<T>& X, const cellflow::SequenceArgs& a, const State& s0) const {
    check_weights();
    tp.time = a.time;
    tp.batch = a.batch;
    tp.steps = a.steps;
    tp.h.resize((a.steps + 1) * a.batch, units_);
    tp.h.topRows(a.batch) = s0;
    // Every step's input projection in one product: rows of X are (t, b) pairs.
    tp.z.noalias() = X.topRows(a.steps * a.batch) * kernel_.value.topRows(depth_);
    tp.z.rowwise() += bias_.value.row(0);
  }

  void forward_step(Tape& tp, cellflow::Index t, T* y) const {
    const cellflow::Index B = tp.batch;
    auto z = tp.z.middleRows(t * B, B);
    z.noalias() += tp.h.middleRows(t * B, B) * kernel_.value.bottomRows(units_);
    z = z.array().tanh().matrix();
    tp.h.middleRows((t + 1) * B, B) = z;
    Eigen::Map<cellflow::Matrix<T>>(y, B, units_) = z;
  }

  // An example that has ended keeps its state.
  void carry_state_row(Tape& tp, cellflow::Index t, cellflow::Index b) const {
    tp.h.row((t + 1) * tp.batch + b) = tp.h.row(t * tp.batch + b);
  }

  State final_state(const Tape& tp) const { return tp.h.middleRows(tp.steps * tp.batch, tp.batch); }

  // ---- backward: backward_begin, then for t = steps-1 .. 0 backward_step (+ carries) and
  // ---- backward_advance, then backward_end ----

  void backward_begin(Tape& tp, const State* d_final) const {
    check_weights();
    tp.dz.resize(tp.steps * tp.batch, units_);
    tp.dh_prev.resize(tp.batch, units_);
    if (d_final)
      tp.dh_next = *d_final;
    else
      tp.dh_next.setZero(tp.batch, units_);
  }

  void backward_step(Tape& tp, cellflow::Index t, const T* dy) const {
    const cellflow::Index B = tp.batch;
    auto dz = tp.dz.middleRows(t * B, B);
    dz = tp.dh_next;
    if (dy) dz += Eigen::Map<const cellflow::Matrix<T>>(dy, B, units_);
    const auto h = tp.h.middleRows((t + 1) * B, B).array();  // tanh(z) of step t
    dz = (dz.array() * (T(1) - h.square())).matrix();
    tp.dh_prev.noalias() = dz * kernel_.value.bottomRows(units_).transpose();
  }

  // An ended example: its state gradient passes through, its step gradient is exactly zero.
  void backward_carry_row(Tape& tp, cellflow::Index t, cellflow::Index b) const {
    tp.dh_prev.row(b) = tp.dh_next.row(b);
    tp.dz.row(t * tp.batch + b).setZero();
  }

  void backward_advance(Tape& tp) const { tp.dh_next.swap(tp.dh_prev); }

  // Weight gradients of all steps at once, added where `grads` says.
  void backward_end(Tape& tp, const cellflow::Matrix<T>& X, cellflow::Matrix<T>* dX,
                    cellflow::Gradients<T>& grads) const {
    const cellflow::Index n = tp.steps * tp.batch;
    if (dX) {
      dX->setZero(tp.time * tp.batch, depth_);
      dX->topRows(n).noalias() = tp.dz * kernel_.value.topRows(depth_).transpose();
    }
    cellflow::Matrix<T>& dk = grads[kernel_];
    dk.topRows(depth_).noalias() += X.topRows(n).transpose() * tp.dz;
    dk.bottomRows(units_).noalias() += tp.h.topRows(n).transpose() * tp.dz;
    grads[bias_].row(0) += tp.dz.colwise().sum();
  }

  State initial_state_grad(const Tape& tp) const { return tp.dh_next; }

  cellflow::Parameter<T>& kernel() { return kernel_; }
  cellflow::Parameter<T>& bias() { return bias_; }

 private:
  void check_weights() const {
    if (kernel_.value.rows() != depth_ + units_ || kernel_.value.cols() != units_ || bias_.value.rows() != 1 ||
        bias_.value.cols() != units_)
      throw cellflow::ShapeError(cell_name() + ": a variable holds a matrix of the wrong shape");
  }

  cellflow::Index depth_, units_;
  cellflow::Parameter<T> kernel_, bias_;
};

}  // namespace mycells
// [end verbatim]
