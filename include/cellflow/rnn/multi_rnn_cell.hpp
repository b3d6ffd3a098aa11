// MultiRNNCell: a stack of cells that is itself a cell (tf.nn.rnn_cell.MultiRNNCell).
//
//   inp = x
//   for l, cell in enumerate(cells):     # variable scope "multi_rnn_cell/cell_<l>"
//       inp, state[l] = cell(inp, state[l])
//   output inp, state (one state per layer, layer 0 first)
//
// Over a sequence the stack runs layer-major: layer 0 over every time step, then layer 1 over
// layer 0's outputs, and so on. That gives the same numbers as TF's step-major loop (each
// layer's step t depends only on its own step t-1 and the layer below at step t) and lets every
// layer run its whole sequence with its weights in cache. With sequence_length, every layer
// copies its state through past an example's end; a layer's outputs there are zero, which is
// what the layer above then reads: those steps' results are discarded by the select above it, as
// in TF.
//
// It is a sequence cell (cells/cell_traits.hpp): its forward_sequence is that layer loop, each
// layer an AnyCell run through run_sequence.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/cells/cell_state.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/rnn/any_cell.hpp"
#include "cellflow/rnn/sequence.hpp"
#include "cellflow/rnn/step.hpp"

namespace cellflow {

namespace detail {
template <class V>
struct is_vector : std::false_type {};
template <class V, class A>
struct is_vector<std::vector<V, A>> : std::true_type {};
}  // namespace detail

// ---- cell contract ----

/// Per-sequence buffers of a MultiRNNCell: each layer's tape and the outputs between layers.
template <class T>
struct MultiRNNTape {
  std::vector<typename AnyCell<T>::Tape> tapes;  ///< one per layer
  std::vector<Matrix<T>> outputs;                ///< time-major outputs of layers 0..L-2
  /// Backward's buffers between layers: d_below receives a layer's input gradient, which becomes
  /// (swapped into d_above) the output gradient of the layer below.
  Matrix<T> d_below, d_above;
};

// ---- end of cell contract ----

template <class T>
/// tf.nn.rnn_cell.MultiRNNCell: a stack of cells, each held as an AnyCell, that is itself a cell;
/// layer l reads layer l - 1's output. Variables under "multi_rnn_cell/cell_<l>/"; the state holds
/// one CellState per layer, layer 0 first.
class MultiRNNCell {
 public:
  /// The scalar type of every layer.
  using Scalar = T;
  using State = std::vector<CellState<T>>;  ///< one state per layer, layer 0 first
  // ---- cell contract ----
  /// The per-sequence buffers of a run.
  using Tape = MultiRNNTape<T>;
  // ---- end of cell contract ----

  /// A stack of one cell type, as in `MultiRNNCell([BasicLSTMCell(150) for _ in range(3)])`;
  /// also std::vector<AnyCell<T>> for a stack whose kinds and depth are chosen at run time.
  template <class Cell>
  explicit MultiRNNCell(std::vector<Cell> cells) {
    for (auto& c : cells) layers_.emplace_back(std::move(c));
    validate();
  }

  /// A stack that mixes kinds: MultiRNNCell<float>(LSTMCell<float>(...), GRUCell<float>(...)).
  template <class First, class... Rest,
            class = std::enable_if_t<!detail::is_vector<std::decay_t<First>>::value || sizeof...(Rest) != 0>>
  explicit MultiRNNCell(First first, Rest... rest) {
    layers_.emplace_back(std::move(first));
    (layers_.emplace_back(std::move(rest)), ...);
    validate();
  }

  /// Number of layers (at least 1).
  Index num_layers() const { return static_cast<Index>(layers_.size()); }
  /// Layer 0's input depth.
  Index input_depth() const { return layers_.front().input_depth(); }
  /// The top layer's output size.
  Index output_size() const { return layers_.back().output_size(); }
  /// "multi_rnn_cell(L layers)", for messages.
  std::string cell_name() const { return detail::concat("multi_rnn_cell(", layers_.size(), " layers)"); }
  /// "multi_rnn_cell": the variable scope.
  std::string scope_name() const { return "multi_rnn_cell"; }
  /// Whether every layer skips the rows of ended examples (cells/cell_traits.hpp): only then does
  /// dynamic_rnn sort the rows for row skipping.
  bool skips_ended_rows() const {
    for (const auto& c : layers_)
      if (!c.skips_ended_rows()) return false;
    return true;
  }

  /// Whether every layer runs Precision::bf16 inference (cells/cell_traits.hpp).
  bool supports_bf16() const {
    for (const auto& c : layers_)
      if (!c.supports_bf16()) return false;
    return true;
  }

  /// Layer l (0 = the bottom); ValueError outside [0, num_layers()).
  AnyCell<T>& layer(Index l) { return layers_[checked(l)]; }
  /// Layer l (const stack); ValueError outside [0, num_layers()).
  const AnyCell<T>& layer(Index l) const { return layers_[checked(l)]; }

  /// Every layer's zero state for `batch` examples, layer 0 first.
  State zero_state(Index batch) const {
    State s;
    for (const auto& c : layers_) s.push_back(c.zero_state(batch));
    return s;
  }

  /// Throws ShapeError unless `s` holds one state per layer, each a state of its layer for `batch`
  /// examples (the message names the layer).
  void check_state(const State& s, Index batch, const std::string& what) const {
    if (s.size() != layers_.size())
      throw ShapeError(detail::concat(what, ": ", cell_name(), " state expected ", layers_.size(),
                                      " layer states, given ", s.size()));
    for (std::size_t l = 0; l < layers_.size(); ++l)
      layers_[l].check_state(s[l], batch, detail::concat(what, " (layer ", l, ")"));
  }

  /// Calls f(name, Parameter<T>&) for each variable, layer by layer, named
  /// "<scope>/multi_rnn_cell/cell_<l>/..." (e.g. "multi_rnn_cell/cell_0/gru_cell/gates/kernel").
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    const std::string s = detail::join_scope(scope, "multi_rnn_cell");
    for (std::size_t l = 0; l < layers_.size(); ++l)
      layers_[l].for_each_variable(detail::concat(s, "/cell_", l), std::ref(f));
  }

  /// Sets the gradient of every variable of every layer to zero.
  void zero_grad() { cellflow::zero_grad(*this); }

  /// One step, TF's `cell(x, state)`: the top layer's output and every layer's new state.
  StepOutput<T, State> operator()(const Matrix<T>& x, const State& state) const {
    return detail::run_step(*this, x, state);
  }

  // ---- cell contract: sequence functions (cells/cell_traits.hpp), layer by layer ----

  /// Runs layer 0 over every step of X, then layer 1 over its outputs, and so on; the top layer's
  /// outputs go to Y.
  void forward_sequence(Tape& tp, const Matrix<T>& X, const SequenceArgs& args, const State& s0, Matrix<T>& Y) const {
    const std::size_t L = layers_.size();
    tp.tapes.resize(L);
    tp.outputs.resize(L - 1);
    const Matrix<T>* in = &X;
    for (std::size_t l = 0; l < L; ++l) {
      Matrix<T>& out = (l + 1 == L) ? Y : tp.outputs[l];
      run_sequence(layers_[l], tp.tapes[l], *in, args, s0[l], out);
      in = &out;
    }
  }

  /// Every layer's final state; Error when the tape holds another number of layers than the stack.
  State final_state(const Tape& tp) const {
    check_tape(tp);
    State s;
    for (std::size_t l = 0; l < layers_.size(); ++l) s.push_back(layers_[l].final_state(tp.tapes[l]));
    return s;
  }

  /// final_state written into `s`, reusing its layers' buffers (no allocation when s already holds
  /// this stack's state for the batch).
  void final_state_into(const Tape& tp, State& s) const {
    check_tape(tp);
    s.resize(layers_.size());
    for (std::size_t l = 0; l < layers_.size(); ++l) layers_[l].final_state_into(tp.tapes[l], s[l]);
  }

  /// Backward from the top layer down, each layer's input gradient being the output gradient of the
  /// one below; d_initial receives every layer's initial-state gradient. args.observer, if set,
  /// hears of each layer as it finishes. Error when the tape holds another number of layers than
  /// the stack.
  void backward_sequence(Tape& tp, const Matrix<T>& X, const SequenceArgs& args, const Matrix<T>* dY,
                         const State* d_final, Matrix<T>* dX, State& d_initial, Gradients<T>& grads) const {
    check_tape(tp);
    const std::size_t L = layers_.size();
    d_initial.resize(L);
    const Matrix<T>* d_out = dY;
    // The layers' time loops report their steps; the layers themselves are this stack's to report.
    struct StepsOnly final : BackwardObserver {
      BackwardObserver* to = nullptr;
      void layer_done(Index) override {}
      void step_done() override { to->step_done(); }
    } steps_only;
    steps_only.to = args.observer;
    SequenceArgs layer_args = args;
    layer_args.observer = args.observer ? &steps_only : nullptr;
    for (std::size_t l = L; l-- > 0;) {
      const Matrix<T>& in = l == 0 ? X : tp.outputs[l - 1];
      Matrix<T>* d_in = l == 0 ? dX : &tp.d_below;
      run_sequence_backward(layers_[l], tp.tapes[l], in, layer_args, d_out, d_final ? &(*d_final)[l] : nullptr, d_in,
                            d_initial[l], grads);
      if (args.observer) args.observer->layer_done(static_cast<Index>(l));
      if (l > 0) {
        tp.d_above.swap(tp.d_below);
        d_out = &tp.d_above;
      }
    }
  }

 private:
  std::size_t checked(Index l) const {
    if (l < 0 || l >= num_layers())
      throw ValueError(detail::concat(cell_name(), ": layer ", l, " is outside [0, ", num_layers(), ")"));
    return static_cast<std::size_t>(l);
  }

  void check_tape(const Tape& tp) const {
    if (tp.tapes.size() != layers_.size())
      throw Error(detail::concat(cell_name(), ": the tape holds ", tp.tapes.size(), " layers, the stack has ",
                                 layers_.size(), " (it was not filled by this stack's forward pass)"));
  }

  void validate() const {
    if (layers_.empty()) throw ValueError("multi_rnn_cell: needs at least one cell");
    for (std::size_t l = 1; l < layers_.size(); ++l)
      if (layers_[l].input_depth() != layers_[l - 1].output_size())
        throw ShapeError(detail::concat("multi_rnn_cell: cell_", l, " (", layers_[l].cell_name(), ") has input depth ",
                                        layers_[l].input_depth(), ", but cell_", l - 1, " (",
                                        layers_[l - 1].cell_name(), ") outputs ", layers_[l - 1].output_size()));
  }

  std::vector<AnyCell<T>> layers_;
};

}  // namespace cellflow
