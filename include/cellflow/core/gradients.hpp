// Gradients: where a backward pass adds the gradients of the variables it reads. A cell's
// backward functions only read the cell; they add each variable's gradient into
// `grads[variable]`:
//
//   matmul_tn(grads[kernel_].topRows(depth), X, dgates, /*accumulate=*/true);
//   grads[bias_].row(0) += dgates.colwise().sum();
//
// Two kinds:
// * direct (the default): grads[p] is p.grad itself, as for any backward call of a model;
// * buffered: grads[p] is a private buffer of p's shape, zeroed when first used after begin();
//   add_to_variables() then adds every buffer used into its variable's gradient. The batch
//   slices of dynamic_rnn (RNNOptions::batch_threads) each get one, so that no two threads ever
//   write the same gradient, and no slice needs a copy of the weights.
//
// A Gradients writes into the gradients of the variables it is given, so it must only be used
// with variables whose owner (a cell, a stack) the caller may modify: dynamic_rnn_backward takes
// the cell by non-const reference for that reason.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow {

// ---- cell contract ----

template <class T>
/// Where a backward pass adds each variable's gradient: `grads[p]` is p.grad itself (direct, the
/// default) or a private buffer of p's shape (buffered(), for a batch slice of dynamic_rnn's
/// batch_threads); see the top of this header.
class Gradients {
 public:
  /// Direct: grads[p] is p.grad.
  Gradients() = default;

  /// A buffered Gradients (see the top of this header).
  static Gradients buffered() {
    Gradients g;
    g.buffered_ = true;
    return g;
  }

  /// Whether this Gradients was made by buffered().
  bool is_buffered() const { return buffered_; }

  /// The accumulator of variable `p`: its gradient, or (buffered) a buffer of its shape, zeroed
  /// at its first use after begin().
  Matrix<T>& operator[](const Parameter<T>& p) {
    if (!buffered_) {
      auto& grad = const_cast<Parameter<T>&>(p).grad;  // see the top of this header
      if (grad.rows() != p.value.rows() || grad.cols() != p.value.cols())
        throw ShapeError(detail::concat("backward: a variable's gradient is ", grad.rows(), "x", grad.cols(),
                                        ", its value ", p.value.rows(), "x", p.value.cols(),
                                        " (was a matrix of another shape written into it?)"));
      return grad;
    }
    for (auto& e : entries_) {
      if (e.param != &p) continue;
      if (!e.used) {
        e.used = true;
        e.buffer.setZero(p.value.rows(), p.value.cols());
      }
      return e.buffer;
    }
    entries_.push_back(Entry{&p, Matrix<T>::Zero(p.value.rows(), p.value.cols()), true});
    return entries_.back().buffer;
  }

  /// Buffered: starts a new pass (buffers are zeroed again at their next use).
  void begin() {
    for (auto& e : entries_) e.used = false;
  }

  /// Buffered: adds every buffer used since begin() into its variable's gradient, in the order
  /// the buffers were first used, and forgets the buffers of variables not used in this pass
  /// (another model's, when a result is reused). A variable whose gradient changed shape
  /// meanwhile is a ShapeError.
  void add_to_variables() {
    for (auto& e : entries_) {
      if (!e.used) continue;
      auto& grad = const_cast<Parameter<T>*>(e.param)->grad;
      if (grad.rows() != e.buffer.rows() || grad.cols() != e.buffer.cols())
        throw ShapeError(detail::concat("Gradients: a variable's gradient is ", grad.rows(), "x", grad.cols(),
                                        ", its buffered gradient ", e.buffer.rows(), "x", e.buffer.cols()));
      grad += e.buffer;
    }
    forget_unused();
  }

  /// Buffered: adds every buffer used since begin() into `target[variable]` (its gradient, or
  /// its buffer when `target` is buffered too), in the order the buffers were first used, and
  /// forgets the buffers of variables not used in this pass. A cell that sums a pass's weight
  /// gradients in several parts sums them here first: the variable's gradient then gets the
  /// pass's gradient in one addition, so two passes add exactly twice one.
  void add_to(Gradients& target) {
    for (auto& e : entries_)
      if (e.used) target[*e.param] += e.buffer;
    forget_unused();
  }

 private:
  void forget_unused() {
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [](const Entry& e) { return !e.used; }),
                   entries_.end());
  }

  struct Entry {
    const Parameter<T>* param;
    Matrix<T> buffer;
    bool used;
  };
  bool buffered_ = false;
  std::vector<Entry> entries_;
};

}  // namespace cellflow
