// Explicit instantiation declarations for float and double of cellflow's heaviest templates, for
// programs that link the compiled companion library (CMake target cellflow::compiled, built from
// src/*.cpp). Without the macro CELLFLOW_EXTERN_TEMPLATES this header declares nothing and
// includes nothing: header-only use is unchanged.
//
// With CELLFLOW_EXTERN_TEMPLATES defined (cellflow::compiled defines it for its users), every
// translation unit that includes cellflow/cellflow.hpp (which includes this header last) or this
// header sees
//
//   extern template class cellflow::Model<float>;                        // and the rest below
//   extern template void cellflow::detail::dynamic_rnn_impl<MultiRNNCell<float>>(...);
//
// and so does not compile those templates itself: the compiler uses the copies compiled once
// into cellflow::compiled (`template class cellflow::Model<float>;` there). What that saves:
//
//   * a function template that is not inline (run_sequence, dynamic_rnn_impl,
//     dynamic_rnn_backward, make_cell, fit's loop, stack_bidirectional_dynamic_rnn, ...) is not
//     compiled at all, nor anything only it calls: the scan over time, the cells' forward and
//     backward steps, cellflow's matrix-product kernel;
//   * the virtual functions of a type-erased layer (AnyCell<T> holding a GRUCell<T>, ...) and of
//     the optimizers are not compiled: Model<T> builds its layers at run time (make_cell,
//     load_model), so without this every TU using Model<T> compiles all cell kinds;
//   * the member functions defined inside a class (implicitly inline) are still compiled where
//     they are called, since the compiler may inline them, but not emitted.
//
// Single headers: a TU that includes single headers (not cellflow/cellflow.hpp) gets these
// declarations by including this header after them (it includes what it declares).
//
// The declarations name exact signatures: a change to one of them in a header must be made
// here too (the companion's build then fails with "does not match any template declaration"
// otherwise). src/instantiate_*.cpp compile the matching definitions from the same list
// (CELLFLOW_DETAIL_INSTANTIATE below, with an empty first argument).
#pragma once

#if defined(CELLFLOW_EXTERN_TEMPLATES) || defined(CELLFLOW_DEFINE_EXTERN_TEMPLATES)

#include <string>
#include <vector>

#include "cellflow/cells/basic_rnn_cell.hpp"
#include "cellflow/cells/cell_state.hpp"
#include "cellflow/cells/gru_cell.hpp"
#include "cellflow/cells/layer_norm_basic_lstm_cell.hpp"
#include "cellflow/cells/lstm_cell.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/data/dataset.hpp"
#include "cellflow/layers/dense.hpp"
#include "cellflow/model/architecture.hpp"
#include "cellflow/model/callback.hpp"
#include "cellflow/model/fit.hpp"
#include "cellflow/model/model.hpp"
#include "cellflow/optimizers/adagrad.hpp"
#include "cellflow/optimizers/adam.hpp"
#include "cellflow/optimizers/gradient_descent.hpp"
#include "cellflow/optimizers/momentum.hpp"
#include "cellflow/optimizers/optimizer.hpp"
#include "cellflow/optimizers/rmsprop.hpp"
#include "cellflow/optimizers/slot_optimizer.hpp"
#include "cellflow/rnn/any_cell.hpp"
#include "cellflow/rnn/dropout_wrapper.hpp"
#include "cellflow/rnn/dynamic_rnn.hpp"
#include "cellflow/rnn/multi_rnn_cell.hpp"
#include "cellflow/rnn/sequence.hpp"
#include "cellflow/rnn/stack_bidirectional.hpp"

// The templates of running cell C (a complete type) over sequences: run_sequence (the scan over
// time and the cell's steps), its backward pass, dynamic_rnn's body and dynamic_rnn_backward.
// X is `extern` (declaration) or empty (definition, in src/).
#define CELLFLOW_DETAIL_INSTANTIATE_RUN(X, C)                                                                 \
  X template void cellflow::run_sequence<C>(const C&, C::Tape&, const cellflow::Matrix<C::Scalar>&,           \
                                            const cellflow::SequenceArgs&, const C::State&,                   \
                                            cellflow::Matrix<C::Scalar>&);                                    \
  X template void cellflow::run_sequence_backward<C>(                                                         \
      const C&, C::Tape&, const cellflow::Matrix<C::Scalar>&, const cellflow::SequenceArgs&,                  \
      const cellflow::Matrix<C::Scalar>*, const C::State*, cellflow::Matrix<C::Scalar>*, C::State&,           \
      cellflow::Gradients<C::Scalar>&);                                                                       \
  X template void cellflow::detail::dynamic_rnn_impl<C>(cellflow::RNNResult<C>&, const C&,                    \
                                                        const cellflow::Tensor3<C::Scalar>&, const C::State*, \
                                                        const cellflow::RNNOptions&);                         \
  X template cellflow::RNNGradients<C> cellflow::dynamic_rnn_backward<C>(                                     \
      C&, cellflow::RNNResult<C>&, const cellflow::Tensor3<C::Scalar>*, const C::State*, cellflow::BackwardObserver*);

// A concrete cell kind C of scalar T: the class, its runs, and its type-erased layer (what
// AnyCell<T> and so MultiRNNCell<T> and Model<T> hold), bare and inside a DropoutWrapper (what
// make_cell builds for with_dropout).
#define CELLFLOW_DETAIL_INSTANTIATE_CELL(X, T, C)                             \
  X template class C;                                                         \
  X template class cellflow::DropoutWrapper<C>;                               \
  X template struct cellflow::AnyCell<T>::Model<C>;                           \
  X template struct cellflow::AnyCell<T>::Model<cellflow::DropoutWrapper<C>>; \
  CELLFLOW_DETAIL_INSTANTIATE_RUN(X, C)                                       \
  CELLFLOW_DETAIL_INSTANTIATE_RUN(X, cellflow::DropoutWrapper<C>)

// Everything for scalar T: the six cell kinds make_cell builds, the stacks, the model layer,
// the dense head and the optimizers.
#define CELLFLOW_DETAIL_INSTANTIATE(X, T)                                                                              \
  CELLFLOW_DETAIL_INSTANTIATE_CELL(X, T, cellflow::BasicLSTMCell<T>)                                                   \
  CELLFLOW_DETAIL_INSTANTIATE_CELL(X, T, cellflow::LSTMCell<T>)                                                        \
  CELLFLOW_DETAIL_INSTANTIATE_CELL(X, T, cellflow::GRUCell<T>)                                                         \
  CELLFLOW_DETAIL_INSTANTIATE_CELL(X, T, cellflow::CudnnCompatibleGRUCell<T>)                                          \
  CELLFLOW_DETAIL_INSTANTIATE_CELL(X, T, cellflow::BasicRNNCell<T>)                                                    \
  CELLFLOW_DETAIL_INSTANTIATE_CELL(X, T, cellflow::LayerNormBasicLSTMCell<T>)                                          \
  X template class cellflow::AnyCell<T>;                                                                               \
  X template class cellflow::MultiRNNCell<T>;                                                                          \
  CELLFLOW_DETAIL_INSTANTIATE_RUN(X, cellflow::AnyCell<T>)                                                             \
  CELLFLOW_DETAIL_INSTANTIATE_RUN(X, cellflow::MultiRNNCell<T>)                                                        \
  X template cellflow::StackBidirectionalResult<T> cellflow::stack_bidirectional_dynamic_rnn<T>(                       \
      const std::vector<cellflow::AnyCell<T>>&, const std::vector<cellflow::AnyCell<T>>&, const cellflow::Tensor3<T>&, \
      const cellflow::BidirectionalOptions&, const std::vector<cellflow::CellState<T>>*,                               \
      const std::vector<cellflow::CellState<T>>*);                                                                     \
  X template cellflow::StackBidirectionalGradients<T> cellflow::stack_bidirectional_dynamic_rnn_backward<T>(           \
      std::vector<cellflow::AnyCell<T>>&, std::vector<cellflow::AnyCell<T>>&, cellflow::StackBidirectionalResult<T>&,  \
      const cellflow::Tensor3<T>*, const std::vector<cellflow::CellState<T>>*,                                         \
      const std::vector<cellflow::CellState<T>>*);                                                                     \
  X template cellflow::AnyCell<T> cellflow::make_cell<T>(const cellflow::CellConfig&, cellflow::Index,                 \
                                                         cellflow::Rng&);                                              \
  X template class cellflow::Dense<T>;                                                                                 \
  X template class cellflow::Model<T>;                                                                                 \
  X template cellflow::Model<T> cellflow::load_model<T>(const std::string&, cellflow::Optimizer<T>*);                  \
  X template cellflow::History cellflow::detail::fit_impl<T>(                                                          \
      cellflow::Model<T>&, cellflow::Optimizer<T>&, const cellflow::data::Dataset<T>&,                                 \
      const cellflow::data::Dataset<T>*, const cellflow::FitOptions&, std::vector<cellflow::Callback*>,                \
      cellflow::detail::FitGroup*);                                                                                    \
  X template class cellflow::Optimizer<T>;                                                                             \
  X template class cellflow::SlotOptimizer<T>;                                                                         \
  X template class cellflow::AdamOptimizer<T>;                                                                         \
  X template class cellflow::GradientDescentOptimizer<T>;                                                              \
  X template class cellflow::MomentumOptimizer<T>;                                                                     \
  X template class cellflow::RMSPropOptimizer<T>;                                                                      \
  X template class cellflow::AdagradOptimizer<T>;

#if defined(CELLFLOW_EXTERN_TEMPLATES) && !defined(CELLFLOW_DEFINE_EXTERN_TEMPLATES)
CELLFLOW_DETAIL_INSTANTIATE(extern, float)
CELLFLOW_DETAIL_INSTANTIATE(extern, double)
#endif

#endif  // CELLFLOW_EXTERN_TEMPLATES || CELLFLOW_DEFINE_EXTERN_TEMPLATES
