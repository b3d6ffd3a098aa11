// The bf16 weights a step cell keeps in its tape for a Precision::bf16 inference run
// (SequenceArgs::precision): N matrices (e.g. the input and the recurrent part of a kernel),
// packed as bfloat16 by forward_begin (once per run, or once per stream with
// SequenceArgs::weights_unchanged), and `matmul_or_bf16`, the product a cell's forward path
// calls: detail::bf16_gemm with the packed weights when the run is bf16, detail::matmul with the
// float weights otherwise.
#pragma once

#include <array>
#include <string>
#include <type_traits>
#include <utility>

#include "cellflow/core/error.hpp"
#include "cellflow/core/precision.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/detail/bf16_gemm.hpp"
#include "cellflow/detail/gemm.hpp"

namespace cellflow::detail {

/// Throws ValueError unless a run with `a` may use bf16 on `cell` (scalar T): float only,
/// inference only. Does nothing for Precision::fp32; the cell's name is built only for an error.
template <class T, class Cell>
void check_bf16_run(const SequenceArgs& a, const Cell& cell) {
  if (a.precision != Precision::bf16) return;
  if constexpr (!std::is_same_v<T, float>)
    throw ValueError(concat(cell.cell_name(), ": Precision::bf16 needs a float cell; this one is ",
                            std::is_same_v<T, double> ? "double" : "not float",
                            " (bf16 products sum in float: build the model in float for bf16 inference)"));
  if (a.training)
    throw ValueError(concat(cell.cell_name(), ": bf16 is an inference path; train in fp32 (training = true given)"));
}

/// A cell tape's bf16 weights: N packed matrices and whether the current run uses them.
template <int N>
struct Bf16TapeWeights {
  bool on = false;                           ///< the current run multiplies in bf16
  bool packed = false;                       ///< `w` holds the weights of an earlier bf16 run
  Bf16Kernel kernel = Bf16Kernel::portable;  ///< the kernel of the current run
  std::array<Bf16Weights, N> w;              ///< the packed matrices, in the cell's order

  /// Called by forward_begin: checks the run (check_bf16_run), records its precision and kernel
  /// and returns whether the weights must be packed now (a bf16 run, unless the weights are
  /// unchanged since the last packing).
  template <class T, class Cell>
  bool begin(const SequenceArgs& a, const Cell& cell) {
    check_bf16_run<T>(a, cell);
    on = a.precision == Precision::bf16;
    kernel = a.bf16_kernel;
    if (!on) return false;
    return !(packed && a.weights_unchanged);
  }

  /// Packs the matrices (any float Eigen expressions), in order.
  template <class... M>
  void pack(const M&... m) {
    static_assert(sizeof...(M) == N, "Bf16TapeWeights::pack: one matrix per slot");
    int i = 0;
    ((w[static_cast<std::size_t>(i++)] = Bf16Weights(m)), ...);
    packed = true;
  }

  /// Slot i's packed weights when the run is bf16, else null (the float product runs).
  const Bf16Weights* get(int i) const { return on ? &w[static_cast<std::size_t>(i)] : nullptr; }
};

/// dst = a b (dst += a b when accumulate): with bf16 weights `w` (not null) the bf16 product on
/// `kernel`, else the float product with b. dst and a row-major matrices or blocks of them.
template <class D, class A, class B>
void matmul_or_bf16(D&& dst, const A& a, const B& b, const Bf16Weights* w, Bf16Kernel kernel, bool accumulate = false) {
  using T = typename A::Scalar;
  if constexpr (std::is_same_v<T, float>) {
    if (w) {
      bf16_gemm(mview(dst), cview(a), *w, accumulate, kernel);
      return;
    }
  }
  matmul(std::forward<D>(dst), a, b, accumulate);
}

}  // namespace cellflow::detail
