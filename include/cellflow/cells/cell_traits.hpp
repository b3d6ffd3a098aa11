// The cell contract: what a type must offer to be run by dynamic_rnn, RNNStream, a
// MultiRNNCell layer or cell(x, state), checked at compile time with one readable message per
// missing member ("cellflow: the cell type lacks forward_step(...)"), instead of pages of
// template errors. docs/concepts.md ("Writing your own cell") walks through a complete cell.
//
// There are two kinds of cells.
//
// A *step cell* (BasicLSTMCell, LSTMCell, GRUCell, CudnnCompatibleGRUCell, a user's cell) knows
// the math of one time step and nothing of time: the scan (rnn/scan.hpp) owns the time loop,
// sequence_length and the order of BPTT, and calls, for a sequence held time-major in one
// [time * batch, depth] matrix X (rows t*batch .. t*batch + batch - 1 are step t):
//
//   forward_begin(tape, X, args, s0)     size the tape for `args`, put s0 in state slot 0, and do
//                                        whatever covers all steps at once (the input projection);
//                                        X stays valid until the last forward_step, which may read
//                                        it (the LSTM and GRU cells project x_t step by step)
//   forward_step(tape, t, y)             state slot t -> slot t + 1; output rows [batch, out] to y
//   carry_state_row(tape, t, b)          example b has ended: slot t + 1 row b := slot t row b
//   final_state(tape)                    the state in slot args.steps
//   backward_begin(tape, d_final*)       the running state gradient := d_final (or 0)
//   backward_step(tape, t, dy*)          step t's gradients; the state gradient of slot t
//                                        (dy: output gradient rows of step t, or null)
//   backward_carry_row(tape, t, b)       example b had ended: its state gradient passes through
//                                        unchanged and its step-t gradients are exactly zero
//   backward_advance(tape)               the slot-t state gradient becomes the running one
//   backward_end(tape, X, dX*, grads)    weight gradients over all steps, added into
//                                        grads[variable]; input gradients into dX when not null
//   initial_state_grad(tape)             the gradient of the state in slot 0
//
// Every one of them is const: a cell is only read while it runs (many threads may run one
// model), the tape holds everything a run keeps, and gradients go where `grads` says
// (core/gradients.hpp). Weight gradients are formed in backward_end, after backward_carry_row
// has zeroed the steps of ended examples, so that padded steps contribute exactly nothing.
//
// A *sequence cell* (MultiRNNCell, AnyCell, wrappers of whole sequences) runs a whole sequence
// itself and offers, instead of the step functions:
//
//   forward_sequence(tape, X, args, s0, Y)
//   final_state(tape)
//   backward_sequence(tape, X, args, dY*, d_final*, dX*, d_initial, grads)
//
// run_sequence / run_sequence_backward (rnn/sequence.hpp) route a step cell to the scan and a
// sequence cell to its own functions. Both kinds also have the members every cell has:
//
//   using Scalar = float or double; using State = ...; using Tape = ... (default-constructible)
//   Index input_depth() const; Index output_size() const; std::string cell_name() const
//   State zero_state(Index batch) const
//   void check_state(const State&, Index batch, const std::string& what) const   (throws ShapeError)
//   template <class F> void for_each_variable(const std::string& scope, F&& f)    (f(name, Parameter&))
//
// and a state type with the operations of cells/state.hpp (a Matrix and LSTMStateTuple have
// them). Optional: `std::string scope_name() const`, `CellConfig config() const`, `void zero_grad()`.
//
// Optional for a step cell, for DropoutWrapper's state dropout (rnn/dropout_wrapper.hpp), which
// must reach the state the cell hands to its next step and the gradient flowing back into it:
//
//   droppable_state(tape, t)             the part of state slot t that state dropout acts on, a
//                                        writable [batch, width] row-major block (an
//                                        Eigen::Map<Matrix<Scalar>>): TF's default
//                                        dropout_state_filter_visitor drops every state except
//                                        the c of an LSTMStateTuple, so h for the LSTM cells and
//                                        the whole state for the GRU cells
//   droppable_state_grad(tape)           the same part of the running state gradient (the
//                                        gradient of slot t + 1 before backward_step(tape, t))
//
// A cell without them can be wrapped with input and output dropout; state_keep_prob < 1 on it
// is a ValueError.
//
// Optional for any cell, row skipping (RNNOptions::skip_ended_rows):
//
//   bool skips_ended_rows() const        true: when SequenceArgs::active is set, the cell runs
//                                        step t only on rows 0 .. active[t] - 1 (the rows are
//                                        sorted by length, longest first): its per-step GEMMs and
//                                        gate passes, the input projections, input
//                                        gradients and weight gradients skip every row of an
//                                        example that has ended. Rows from active[t] on are left
//                                        to carry_state_row / backward_carry_row (called as
//                                        always) and to the scan, which zeroes their outputs.
//                                        Per-example random draws use SequenceArgs::example(b).
//                                        A composite answers for what it holds (all layers).
//
// Without it (or when it returns false) dynamic_rnn keeps the rows in the caller's order and the
// cell computes every row of every step, as TF does.
//
// Optional for any cell, reduced-precision inference (RNNOptions::precision, core/precision.hpp):
//
//   bool supports_bf16() const           true: when SequenceArgs::precision is Precision::bf16
//                                        (never with training), the cell multiplies by its
//                                        kernels stored as bfloat16 (detail::bf16_gemm, float
//                                        sums), packing them in forward_begin unless
//                                        SequenceArgs::weights_unchanged says the tape still
//                                        holds them; everything else stays in the cell's type.
//                                        A composite answers for what it holds (all layers).
//
// Without it (or when it returns false) a bf16 request is a ValueError naming the cell: bf16 is
// never silently replaced by float.
//
// Optional for any cell, for streaming without allocation (RNNStream::step):
//
//   final_state_into(tape, state)        the final state written into an existing State, reusing
//                                        its buffers (no allocation when it has the right shape)
//
// Without it the stream assigns final_state(tape), which allocates a new state every call.
//
// Optional for any step cell, weight gradients while the backward loop runs:
//
//   backward_weights(tape, t, X, dX, grads)  called by the scan after step t's backward_step and
//                                        backward_carry_row calls: the cell may add the weight
//                                        gradients of steps t .. (and write their rows of dX,
//                                        when not null, the whole dX [time*batch, depth] sized
//                                        and zeroed at its first write) while those steps' rows
//                                        are still in cache; it must have done every step once
//                                        called with t = 0, and backward_end then adds nothing
//                                        twice. A cell never called so (its steps driven by
//                                        hand) does all of it in backward_end, as without it.
#pragma once

#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/core/gradients.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow {

/// What a cell is, in TensorFlow's words: its class and the constructor arguments that are set.
/// Converters read it to know how to translate a layer's weights, whatever its static type.
struct CellConfig {
  /// TF's class name: "BasicLSTMCell", "LSTMCell", "GRUCell", "CudnnCompatibleGRUCell", "BasicRNNCell",
  /// "LayerNormBasicLSTMCell", "DropoutWrapper", "ResidualWrapper"
  std::string kind;
  Index input_depth = 0, num_units = 0, output_size = 0;  ///< the sizes; num_units stays 0 for a cell without config()
  /// Options that are set, by TF's argument name: "forget_bias", "use_peepholes" (1), "cell_clip",
  /// "num_proj", "proj_clip", "activation" (1 relu, -1 a user's function; tanh is not written). Every value is exact as
  /// a double (float/double values, booleans, integers below 2^53).
  std::map<std::string, double> options;
  /// A wrapper's wrapped cell (DropoutWrapper: one entry, the inner cell's config); empty for a
  /// plain cell. A wrapper adds no variables: its variables are those of the cell it wraps.
  std::vector<CellConfig> wrapped;

  /// Whether the option is set (a key of `options`).
  bool has(const std::string& option) const { return options.count(option) != 0; }
  /// The option's value, or `otherwise` when it is not set.
  double get(const std::string& option, double otherwise = 0) const {
    const auto it = options.find(option);
    return it == options.end() ? otherwise : it->second;
  }
};

namespace detail {

template <class, template <class> class, class = void>
struct detected : std::false_type {};
template <class C, template <class> class Op>
struct detected<C, Op, std::void_t<Op<C>>> : std::true_type {};
template <class C, template <class> class Op>
inline constexpr bool has_v = detected<C, Op>::value;

// The members, as expressions a cell must make well-formed.
template <class C>
using scalar_t = typename C::Scalar;
template <class C>
using state_t = typename C::State;
template <class C>
using tape_t = typename C::Tape;
template <class C>
using M = Matrix<typename C::Scalar>;

template <class C>
using input_depth_t = decltype(static_cast<Index>(std::declval<const C&>().input_depth()));
template <class C>
using output_size_t = decltype(static_cast<Index>(std::declval<const C&>().output_size()));
template <class C>
using cell_name_t = decltype(std::string(std::declval<const C&>().cell_name()));
template <class C>
using zero_state_t = decltype(static_cast<typename C::State>(std::declval<const C&>().zero_state(Index{})));
template <class C>
using check_state_t = decltype(std::declval<const C&>().check_state(std::declval<const typename C::State&>(), Index{},
                                                                    std::declval<const std::string&>()));
template <class C>
using for_each_variable_t = decltype(std::declval<C&>().for_each_variable(
    std::declval<const std::string&>(), std::declval<void (*)(const std::string&, Parameter<typename C::Scalar>&)>()));
template <class C>
using final_state_t = decltype(static_cast<typename C::State>(
    std::declval<const C&>().final_state(std::declval<const typename C::Tape&>())));

template <class C>
using final_state_into_t = decltype(std::declval<const C&>().final_state_into(std::declval<const typename C::Tape&>(),
                                                                              std::declval<typename C::State&>()));

template <class C>
using forward_begin_t = decltype(std::declval<const C&>().forward_begin(
    std::declval<typename C::Tape&>(), std::declval<const M<C>&>(), std::declval<const SequenceArgs&>(),
    std::declval<const typename C::State&>()));
template <class C>
using forward_step_t = decltype(std::declval<const C&>().forward_step(std::declval<typename C::Tape&>(), Index{},
                                                                      std::declval<typename C::Scalar*>()));
template <class C>
using carry_state_row_t =
    decltype(std::declval<const C&>().carry_state_row(std::declval<typename C::Tape&>(), Index{}, Index{}));
template <class C>
using backward_begin_t = decltype(std::declval<const C&>().backward_begin(std::declval<typename C::Tape&>(),
                                                                          std::declval<const typename C::State*>()));
template <class C>
using backward_step_t = decltype(std::declval<const C&>().backward_step(std::declval<typename C::Tape&>(), Index{},
                                                                        std::declval<const typename C::Scalar*>()));
template <class C>
using backward_carry_row_t =
    decltype(std::declval<const C&>().backward_carry_row(std::declval<typename C::Tape&>(), Index{}, Index{}));
template <class C>
using backward_advance_t = decltype(std::declval<const C&>().backward_advance(std::declval<typename C::Tape&>()));
template <class C>
using backward_end_t = decltype(std::declval<const C&>().backward_end(
    std::declval<typename C::Tape&>(), std::declval<const M<C>&>(), std::declval<M<C>*>(),
    std::declval<Gradients<typename C::Scalar>&>()));
template <class C>
using initial_state_grad_t = decltype(static_cast<typename C::State>(
    std::declval<const C&>().initial_state_grad(std::declval<const typename C::Tape&>())));

template <class C>
using forward_sequence_t = decltype(std::declval<const C&>().forward_sequence(
    std::declval<typename C::Tape&>(), std::declval<const M<C>&>(), std::declval<const SequenceArgs&>(),
    std::declval<const typename C::State&>(), std::declval<M<C>&>()));
template <class C>
using backward_sequence_t = decltype(std::declval<const C&>().backward_sequence(
    std::declval<typename C::Tape&>(), std::declval<const M<C>&>(), std::declval<const SequenceArgs&>(),
    std::declval<const M<C>*>(), std::declval<const typename C::State*>(), std::declval<M<C>*>(),
    std::declval<typename C::State&>(), std::declval<Gradients<typename C::Scalar>&>()));

template <class C>
using droppable_state_t = decltype(static_cast<Eigen::Map<M<C>>>(
    std::declval<const C&>().droppable_state(std::declval<typename C::Tape&>(), Index{})));
template <class C>
using droppable_state_grad_t = decltype(static_cast<Eigen::Map<M<C>>>(
    std::declval<const C&>().droppable_state_grad(std::declval<typename C::Tape&>())));
/// Whether a step cell offers the optional state-dropout members (see the top of this header).
template <class C>
inline constexpr bool has_droppable_state_v = has_v<C, droppable_state_t>&& has_v<C, droppable_state_grad_t>;

template <class C>
using backward_weights_t = decltype(std::declval<const C&>().backward_weights(
    std::declval<typename C::Tape&>(), Index{}, std::declval<const M<C>&>(), std::declval<M<C>*>(),
    std::declval<Gradients<typename C::Scalar>&>()));
/// Whether a step cell offers the optional backward_weights member (see the top of this header).
template <class C>
inline constexpr bool has_backward_weights_v = has_v<C, backward_weights_t>;

template <class C>
using skips_ended_rows_t = decltype(static_cast<bool>(std::declval<const C&>().skips_ended_rows()));
template <class C>
using supports_bf16_t = decltype(static_cast<bool>(std::declval<const C&>().supports_bf16()));

template <class C>
using scope_name_t = decltype(std::string(std::declval<const C&>().scope_name()));
template <class C>
using config_t = decltype(static_cast<CellConfig>(std::declval<const C&>().config()));

/// The types every cell declares; one message per missing one.
template <class Cell>
constexpr bool check_cell_types() {
  constexpr bool scalar = has_v<Cell, scalar_t>, state = has_v<Cell, state_t>, tape = has_v<Cell, tape_t>;
  static_assert(scalar, "cellflow: the cell type lacks `using Scalar = float;` (or double)");
  static_assert(state, "cellflow: the cell type lacks `using State = ...;` (the type of its state)");
  static_assert(tape, "cellflow: the cell type lacks `using Tape = ...;` (its per-sequence buffers)");
  if constexpr (scalar) {
    static_assert(std::is_same_v<scalar_t<Cell>, float> || std::is_same_v<scalar_t<Cell>, double>,
                  "cellflow: a cell's Scalar must be float or double");
  }
  return scalar && state && tape;
}

/// The members every cell has (step cells and sequence cells alike).
template <class Cell>
constexpr bool check_cell_common() {
  static_assert(has_v<Cell, input_depth_t>, "cellflow: the cell type lacks `Index input_depth() const`");
  static_assert(has_v<Cell, output_size_t>, "cellflow: the cell type lacks `Index output_size() const`");
  static_assert(has_v<Cell, cell_name_t>, "cellflow: the cell type lacks `std::string cell_name() const`");
  static_assert(has_v<Cell, zero_state_t>, "cellflow: the cell type lacks `State zero_state(Index batch) const`");
  static_assert(has_v<Cell, check_state_t>,
                "cellflow: the cell type lacks `void check_state(const State&, Index batch, const std::string& what) "
                "const`");
  static_assert(has_v<Cell, for_each_variable_t>,
                "cellflow: the cell type lacks `template <class F> void for_each_variable(const std::string& scope, "
                "F&& f)` calling f(name, Parameter<Scalar>&) for each variable");
  static_assert(has_v<Cell, final_state_t>, "cellflow: the cell type lacks `State final_state(const Tape&) const`");
  return has_v<Cell, input_depth_t> && has_v<Cell, output_size_t> && has_v<Cell, cell_name_t> &&
         has_v<Cell, zero_state_t> && has_v<Cell, check_state_t> && has_v<Cell, for_each_variable_t> &&
         has_v<Cell, final_state_t>;
}

/// Whether Cell runs whole sequences itself (MultiRNNCell, AnyCell): it has forward_sequence.
template <class Cell, bool = check_cell_types<Cell>()>
inline constexpr bool is_sequence_cell_v = false;
template <class Cell>
inline constexpr bool is_sequence_cell_v<Cell, true> = has_v<Cell, forward_sequence_t>;

/// Checks a sequence cell's members; true when all are there.
template <class Cell>
constexpr bool check_sequence_cell() {
  if constexpr (!check_cell_types<Cell>()) {
    return false;
  } else {
    constexpr bool common = check_cell_common<Cell>();
    static_assert(has_v<Cell, backward_sequence_t>,
                  "cellflow: the cell type has forward_sequence but lacks `void backward_sequence(Tape&, const "
                  "Matrix<Scalar>& X, const SequenceArgs&, const Matrix<Scalar>* dY, const State* d_final, "
                  "Matrix<Scalar>* dX, State& d_initial, Gradients<Scalar>&) const`");
    return common && has_v<Cell, backward_sequence_t>;
  }
}

/// Checks a step cell's members (see the top of this header); true when all are there.
template <class Cell>
constexpr bool check_step_cell() {
  if constexpr (!check_cell_types<Cell>()) {
    return false;
  } else {
    constexpr bool common = check_cell_common<Cell>();
    static_assert(has_v<Cell, forward_begin_t>,
                  "cellflow: the cell type lacks `void forward_begin(Tape&, const Matrix<Scalar>& X, const "
                  "SequenceArgs&, const State& s0) const`");
    static_assert(has_v<Cell, forward_step_t>,
                  "cellflow: the cell type lacks `void forward_step(Tape&, Index t, Scalar* y) const`");
    static_assert(has_v<Cell, carry_state_row_t>,
                  "cellflow: the cell type lacks `void carry_state_row(Tape&, Index t, Index b) const`");
    static_assert(has_v<Cell, backward_begin_t>,
                  "cellflow: the cell type lacks `void backward_begin(Tape&, const State* d_final) const`");
    static_assert(has_v<Cell, backward_step_t>,
                  "cellflow: the cell type lacks `void backward_step(Tape&, Index t, const Scalar* dy) const`");
    static_assert(has_v<Cell, backward_carry_row_t>,
                  "cellflow: the cell type lacks `void backward_carry_row(Tape&, Index t, Index b) const`");
    static_assert(has_v<Cell, backward_advance_t>,
                  "cellflow: the cell type lacks `void backward_advance(Tape&) const`");
    static_assert(has_v<Cell, backward_end_t>,
                  "cellflow: the cell type lacks `void backward_end(Tape&, const Matrix<Scalar>& X, Matrix<Scalar>* "
                  "dX, Gradients<Scalar>& grads) const`");
    static_assert(has_v<Cell, initial_state_grad_t>,
                  "cellflow: the cell type lacks `State initial_state_grad(const Tape&) const`");
    return common && has_v<Cell, forward_begin_t> && has_v<Cell, forward_step_t> && has_v<Cell, carry_state_row_t> &&
           has_v<Cell, backward_begin_t> && has_v<Cell, backward_step_t> && has_v<Cell, backward_carry_row_t> &&
           has_v<Cell, backward_advance_t> && has_v<Cell, backward_end_t> && has_v<Cell, initial_state_grad_t>;
  }
}

/// Checks whichever kind Cell is; true when it meets its contract.
template <class Cell>
constexpr bool check_cell() {
  if constexpr (is_sequence_cell_v<Cell>)
    return check_sequence_cell<Cell>();
  else
    return check_step_cell<Cell>();
}

}  // namespace detail

// ---- cell contract ----

/// Whether `Cell` meets the cell contract (either kind); usable in static_assert and SFINAE.
/// It checks without failing; `static_assert(cellflow::is_cell_v<MyCell>)` only says yes or no:
/// dynamic_rnn and friends name the missing member.
template <class Cell>
inline constexpr bool is_cell_v = [] {
  if constexpr (!(detail::has_v<Cell, detail::scalar_t> && detail::has_v<Cell, detail::state_t> &&
                  detail::has_v<Cell, detail::tape_t>)) {
    return false;
  } else {
    using namespace detail;
    constexpr bool common = has_v<Cell, input_depth_t> && has_v<Cell, output_size_t> && has_v<Cell, cell_name_t> &&
                            has_v<Cell, zero_state_t> && has_v<Cell, check_state_t> &&
                            has_v<Cell, for_each_variable_t> && has_v<Cell, final_state_t>;
    constexpr bool step =
        has_v<Cell, forward_begin_t> && has_v<Cell, forward_step_t> && has_v<Cell, carry_state_row_t> &&
        has_v<Cell, backward_begin_t> && has_v<Cell, backward_step_t> && has_v<Cell, backward_carry_row_t> &&
        has_v<Cell, backward_advance_t> && has_v<Cell, backward_end_t> && has_v<Cell, initial_state_grad_t>;
    constexpr bool sequence = has_v<Cell, forward_sequence_t> && has_v<Cell, backward_sequence_t>;
    return common && (step || sequence);
  }
}();

// ---- end of cell contract ----

/// Whether `cell` skips the rows of ended examples (its optional skips_ended_rows(), see the top
/// of this header); false for a cell without it.
template <class Cell>
bool skips_ended_rows_of(const Cell& cell) {
  if constexpr (detail::has_v<Cell, detail::skips_ended_rows_t>)
    return cell.skips_ended_rows();
  else
    return false;
}

/// Whether `cell` runs Precision::bf16 inference (its optional supports_bf16(), see the top of
/// this header); false for a cell without it.
template <class Cell>
bool supports_bf16_of(const Cell& cell) {
  if constexpr (detail::has_v<Cell, detail::supports_bf16_t>)
    return cell.supports_bf16();
  else
    return false;
}

/// The variables' TF scope of a cell: its scope_name() when it has one ("lstm_cell"), else "".
template <class Cell>
std::string scope_name_of(const Cell& cell) {
  if constexpr (detail::has_v<Cell, detail::scope_name_t>)
    return cell.scope_name();
  else
    return {};
}

/// A cell's CellConfig: its config() when it has one, else just its sizes with kind = cell_name().
template <class Cell>
CellConfig config_of(const Cell& cell) {
  if constexpr (detail::has_v<Cell, detail::config_t>) {
    return cell.config();
  } else {
    CellConfig c;
    c.kind = cell.cell_name();
    c.input_depth = cell.input_depth();
    c.output_size = cell.output_size();
    return c;
  }
}

/// Sets the gradient of every variable of `module` (a cell, a stack, a layer) to zero.
template <class Module>
void zero_grad(Module& module) {
  using T = typename Module::Scalar;
  module.for_each_variable("", [](const std::string&, Parameter<T>& p) { p.zero_grad(); });
}

}  // namespace cellflow
