// A complete small cell (h = tanh([x, h_prev] @ kernel)) for the compile-fail tests: each test
// removes one member of the cell contract (cells/cell_traits.hpp) with a macro and checks that
// the compiler says which one, in a few lines. With CELLFLOW_COMPILE_FAIL_CONTROL defined nothing
// is removed and the test's program must compile: the failure is then the missing member's.
#pragma once

#include <string>

#include <cellflow/cellflow.hpp>

namespace compile_fail {

template <class T>
class TanhCell {
 public:
  using Scalar = T;
  using State = cellflow::Matrix<T>;
  struct Buffers {
    cellflow::Index time = 0, batch = 0, steps = 0;
    cellflow::Matrix<T> z, h, dz, dh_next, dh_prev;
  };
#ifndef CELLFLOW_OMIT_TAPE
  using Tape = Buffers;
#endif

  TanhCell(cellflow::Index depth, cellflow::Index units, cellflow::Rng& rng)
      : depth_(depth), units_(units), kernel_(depth + units, units) {
    kernel_.init_glorot(rng);
  }

  cellflow::Index input_depth() const { return depth_; }
  cellflow::Index output_size() const { return units_; }
  std::string cell_name() const { return "tanh_cell"; }
  State zero_state(cellflow::Index batch) const { return State::Zero(batch, units_); }
  void check_state(const State& s, cellflow::Index batch, const std::string& what) const {
    if (s.rows() != batch || s.cols() != units_) throw cellflow::ShapeError(what + ": wrong state shape");
  }
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    f(scope + "/tanh_cell/kernel", kernel_);
  }

  void forward_begin(Buffers& tp, const cellflow::Matrix<T>& X, const cellflow::SequenceArgs& a,
                     const State& s0) const {
    tp.time = a.time;
    tp.batch = a.batch;
    tp.steps = a.steps;
    tp.h.resize((a.steps + 1) * a.batch, units_);
    tp.h.topRows(a.batch) = s0;
    tp.z.noalias() = X.topRows(a.steps * a.batch) * kernel_.value.topRows(depth_);
  }
#ifndef CELLFLOW_OMIT_FORWARD_STEP
  void forward_step(Buffers& tp, cellflow::Index t, T* y) const {
    auto z = tp.z.middleRows(t * tp.batch, tp.batch);
    z.noalias() += tp.h.middleRows(t * tp.batch, tp.batch) * kernel_.value.bottomRows(units_);
    z = z.array().tanh().matrix();
    tp.h.middleRows((t + 1) * tp.batch, tp.batch) = z;
    Eigen::Map<cellflow::Matrix<T>>(y, tp.batch, units_) = z;
  }
#endif
  void carry_state_row(Buffers& tp, cellflow::Index t, cellflow::Index b) const {
    tp.h.row((t + 1) * tp.batch + b) = tp.h.row(t * tp.batch + b);
  }
  State final_state(const Buffers& tp) const { return tp.h.middleRows(tp.steps * tp.batch, tp.batch); }

  void backward_begin(Buffers& tp, const State* d_final) const {
    tp.dz.resize(tp.steps * tp.batch, units_);
    tp.dh_prev.resize(tp.batch, units_);
    if (d_final)
      tp.dh_next = *d_final;
    else
      tp.dh_next.setZero(tp.batch, units_);
  }
  void backward_step(Buffers& tp, cellflow::Index t, const T* dy) const {
    auto dz = tp.dz.middleRows(t * tp.batch, tp.batch);
    dz = tp.dh_next;
    if (dy) dz += Eigen::Map<const cellflow::Matrix<T>>(dy, tp.batch, units_);
    const auto h = tp.h.middleRows((t + 1) * tp.batch, tp.batch).array();
    dz = (dz.array() * (T(1) - h.square())).matrix();
    tp.dh_prev.noalias() = dz * kernel_.value.bottomRows(units_).transpose();
  }
  void backward_carry_row(Buffers& tp, cellflow::Index t, cellflow::Index b) const {
    tp.dh_prev.row(b) = tp.dh_next.row(b);
    tp.dz.row(t * tp.batch + b).setZero();
  }
  void backward_advance(Buffers& tp) const { tp.dh_next.swap(tp.dh_prev); }
  void backward_end(Buffers& tp, const cellflow::Matrix<T>& X, cellflow::Matrix<T>* dX,
                    cellflow::Gradients<T>& grads) const {
    const cellflow::Index n = tp.steps * tp.batch;
    if (dX) {
      dX->setZero(tp.time * tp.batch, depth_);
      dX->topRows(n).noalias() = tp.dz * kernel_.value.topRows(depth_).transpose();
    }
    cellflow::Matrix<T>& dk = grads[kernel_];
    dk.topRows(depth_).noalias() += X.topRows(n).transpose() * tp.dz;
    dk.bottomRows(units_).noalias() += tp.h.topRows(n).transpose() * tp.dz;
  }
  State initial_state_grad(const Buffers& tp) const { return tp.dh_next; }

 private:
  cellflow::Index depth_, units_;
  cellflow::Parameter<T> kernel_;
};

/// What a user does with a cell: run it over a sequence.
template <class Cell>
int run_cell(Cell& cell) {
  cellflow::Tensor3<double> x(2, 3, cell.input_depth());
  x.setConstant(0.5);
  const auto r = cellflow::dynamic_rnn(cell, x);
  return r.outputs.size() == 2 * 3 * cell.output_size() ? 0 : 1;
}

}  // namespace compile_fail
