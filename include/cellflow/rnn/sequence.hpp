// One entry point for running any cell over a sequence, forward and backward: a step cell goes
// to the scan (rnn/scan.hpp), a sequence cell (MultiRNNCell, AnyCell, whole-sequence wrappers)
// to its own forward_sequence / backward_sequence. dynamic_rnn, RNNStream, cell_forward and the
// layers of a stack all come through here, so a new cell is run everywhere once it meets the
// contract of cells/cell_traits.hpp, which is checked here with one message per missing member.
//
// X, Y, dX and dY are time-major [time * batch, depth] matrices (core/sequence.hpp).
#pragma once

#include <optional>
#include <string>
#include <type_traits>

#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/precision.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/rnn/scan.hpp"

namespace cellflow {

/// How a run multiplies (RNNOptions::precision and its bf16 choices, or a stream's), checked
/// once before it starts.
struct PrecisionChoice {
  /// fp32.
  PrecisionChoice() = default;
  /// `precision` (implicit: a Precision converts), with its bf16 fallback and kernel.
  PrecisionChoice(Precision precision, Bf16Fallback fallback = Bf16Fallback::portable,
                  std::optional<Bf16Kernel> kernel = std::nullopt)
      : precision(precision), fallback(fallback), kernel(kernel) {}
  Precision precision = Precision::fp32;  ///< fp32 (exact, the default) or bf16 (inference only)
  /// On a CPU without AVX512-BF16: the portable kernel (default) or UnsupportedCpuError.
  Bf16Fallback fallback = Bf16Fallback::portable;
  /// A kernel to use instead of the CPU's best (tests compare the two): avx512_bf16 on a CPU
  /// without it is an UnsupportedCpuError.
  std::optional<Bf16Kernel> kernel;
};

namespace detail {

/// Checks that `cell` may run with `p` (`op` starts the messages) and sets args.precision and
/// args.bf16_kernel. bf16 needs a float cell (ValueError naming the type), inference
/// (ValueError when args.training) and a cell whose supports_bf16() is true (ValueError naming
/// the cell; never a silent float run); the kernel is p.kernel, else choose_bf16_kernel(p.fallback).
template <class Cell>
void set_precision(const Cell& cell, const PrecisionChoice& p, SequenceArgs& args, const char* op) {
  args.precision = p.precision;
  if (p.precision != Precision::bf16) return;
  using T = typename Cell::Scalar;
  if constexpr (!std::is_same_v<T, float>)
    throw ValueError(concat(op, ": Precision::bf16 needs a float model; ", cell.cell_name(), " is ",
                            std::is_same_v<T, double> ? "double" : "not float",
                            " (bf16 products sum in float: build the model in float for bf16 inference)"));
  if (args.training)
    throw ValueError(concat(op, ": bf16 is an inference path; train in fp32 (set training = false for bf16)"));
  if (!supports_bf16_of(cell))
    throw ValueError(concat(op, ": Precision::bf16 was requested, but ", cell.cell_name(),
                            " does not support it (no supports_bf16() returning true; cells/cell_traits.hpp): run it "
                            "in Precision::fp32"));
  if (p.kernel) {
    if (*p.kernel == Bf16Kernel::avx512_bf16 && !cpu_has_bf16())
      throw UnsupportedCpuError(concat(op, ": the avx512_bf16 kernel was requested, but this CPU lacks AVX512-BF16"));
    args.bf16_kernel = *p.kernel;
  } else {
    args.bf16_kernel = choose_bf16_kernel(p.fallback);
  }
}

}  // namespace detail

// ---- cell contract: running any cell over a sequence ----

/// Runs `cell` forward over X: outputs into Y [time * batch, output_size] (zeros past each
/// example's length), everything backward needs into `tape` (when args.training); the final
/// state is then cell.final_state(tape).
template <class Cell>
void run_sequence(const Cell& cell, typename Cell::Tape& tape, const Matrix<typename Cell::Scalar>& X,
                  const SequenceArgs& args, const typename Cell::State& s0, Matrix<typename Cell::Scalar>& Y) {
  if constexpr (detail::is_sequence_cell_v<Cell>) {
    if constexpr (detail::check_sequence_cell<Cell>()) cell.forward_sequence(tape, X, args, s0, Y);
  } else if constexpr (detail::check_step_cell<Cell>()) {
    detail::scan_forward(cell, tape, X, args, s0, Y);
  }
}

/// Backpropagation through a run of run_sequence with args.training (the same `args`): adds
/// the weight gradients into `grads`, writes dX when not null and the initial state's gradient
/// into d_initial. dY and d_final may be null.
template <class Cell>
void run_sequence_backward(const Cell& cell, typename Cell::Tape& tape, const Matrix<typename Cell::Scalar>& X,
                           const SequenceArgs& args, const Matrix<typename Cell::Scalar>* dY,
                           const typename Cell::State* d_final, Matrix<typename Cell::Scalar>* dX,
                           typename Cell::State& d_initial, Gradients<typename Cell::Scalar>& grads) {
  if constexpr (detail::is_sequence_cell_v<Cell>) {
    if constexpr (detail::check_sequence_cell<Cell>())
      cell.backward_sequence(tape, X, args, dY, d_final, dX, d_initial, grads);
  } else if constexpr (detail::check_step_cell<Cell>()) {
    detail::scan_backward(cell, tape, X, args, dY, d_final, dX, d_initial, grads);
  }
}

/// The final state of the run in `tape` written into `state`: through the cell's optional
/// final_state_into (which reuses state's buffers: no allocation once it has the right shape), or
/// by assigning final_state(tape) for a cell without it.
template <class Cell>
void final_state_into(const Cell& cell, const typename Cell::Tape& tape, typename Cell::State& state) {
  if constexpr (detail::has_v<Cell, detail::final_state_into_t>)
    cell.final_state_into(tape, state);
  else
    state = cell.final_state(tape);
}

}  // namespace cellflow
