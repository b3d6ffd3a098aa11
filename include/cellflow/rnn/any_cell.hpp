// AnyCell: a type-erased cell, so that one MultiRNNCell can stack different kinds of cells, and
// a stack's layer count and kinds can be chosen at run time (std::vector<AnyCell<T>>).
//
// The erasure is per whole sequence: AnyCell is a sequence cell (cells/cell_traits.hpp) whose
// forward_sequence makes one virtual call that runs the concrete cell through run_sequence
// (rnn/sequence.hpp), so the time loop inside stays statically typed and inlined.
//
// Any cell whose state is a Matrix (GRU kinds) or an LSTMStateTuple (LSTM kinds) can be held;
// its state is then a CellState<T>.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "cellflow/cells/cell_state.hpp"
#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/rnn/sequence.hpp"
#include "cellflow/rnn/step.hpp"

namespace cellflow {

namespace detail {
/// The tape of an erased cell: the concrete cell's tape behind a pointer.
struct TapeBase {
  virtual ~TapeBase() = default;
};
}  // namespace detail

template <class T>
/// A cell of any kind behind one type (see the top of this header): a sequence cell whose state is a
/// CellState<T>. Copying an AnyCell copies the wrapped cell, variables included.
class AnyCell {
 public:
  /// The wrapped cell's scalar type, float or double.
  using Scalar = T;
  /// An LSTMStateTuple or a plain h, whichever the wrapped cell's state is.
  using State = CellState<T>;
  /// What for_each_variable calls: f(name, Parameter<T>&).
  using VariableVisitor = std::function<void(const std::string&, Parameter<T>&)>;
  // ---- cell contract ----
  /// The concrete cell's tape; (re)made to fit by forward_sequence.
  struct Tape {
    std::unique_ptr<detail::TapeBase> impl;
  };
  // ---- end of cell contract ----

  /// Wraps any cell meeting the contract whose state is a Matrix or an LSTMStateTuple.
  template <class Cell, class = std::enable_if_t<!std::is_same_v<std::decay_t<Cell>, AnyCell>>>
  AnyCell(Cell cell)  // NOLINT: implicit by design
      : self_(std::make_unique<Model<Cell>>(std::move(cell))) {
    static_assert(detail::check_cell<Cell>(), "AnyCell: the type is not a cell (see the messages above)");
    static_assert(std::is_same_v<typename Cell::Scalar, T>, "AnyCell: the cell's scalar type differs");
    static_assert(
        std::is_same_v<typename Cell::State, Matrix<T>> || std::is_same_v<typename Cell::State, LSTMStateTuple<T>>,
        "AnyCell: only cells with a Matrix (GRU kinds) or LSTMStateTuple (LSTM kinds) state can be "
        "layers of a MultiRNNCell");
  }
  /// A deep copy: the wrapped cell and its variables are copied.
  AnyCell(const AnyCell& o) : self_(o.self_->clone()) {}
  /// Takes the wrapped cell over; the moved-from AnyCell holds none and may only be assigned or destroyed.
  AnyCell(AnyCell&&) noexcept = default;
  /// Replaces the wrapped cell by a copy of o's.
  AnyCell& operator=(const AnyCell& o) {
    if (this != &o) self_ = o.self_->clone();
    return *this;
  }
  /// Takes o's cell over, as the move constructor does.
  AnyCell& operator=(AnyCell&&) noexcept = default;

  /// The wrapped cell's input depth.
  Index input_depth() const { return self_->input_depth(); }
  /// The wrapped cell's output size.
  Index output_size() const { return self_->output_size(); }
  /// The wrapped cell's cell_name(), e.g. "gru_cell(num_units=64)".
  std::string cell_name() const { return self_->cell_name(); }
  /// The concrete cell's variable scope ("basic_lstm_cell", "gru_cell", ...).
  std::string scope_name() const { return self_->scope_name(); }
  /// The concrete cell's CellConfig (its TF class and options).
  CellConfig config() const { return self_->config(); }
  /// Whether the wrapped cell skips the rows of ended examples (cells/cell_traits.hpp).
  bool skips_ended_rows() const { return self_->skips_ended_rows(); }
  /// Whether the wrapped cell runs Precision::bf16 inference (cells/cell_traits.hpp).
  bool supports_bf16() const { return self_->supports_bf16(); }
  /// The wrapped cell's zero state for `batch` examples.
  State zero_state(Index batch) const { return self_->zero_state(batch); }
  /// Throws ShapeError unless `s` is the wrapped cell's kind of state (LSTM or GRU) with its shapes for
  /// `batch` examples; `what` starts the message.
  void check_state(const State& s, Index batch, const std::string& what) const { self_->check_state(s, batch, what); }

  /// The wrapped cell, if it is a `Cell`; otherwise nullptr.
  template <class Cell>
  Cell* as() {
    auto* m = dynamic_cast<Model<Cell>*>(self_.get());
    return m ? &m->cell : nullptr;
  }
  /// The wrapped cell, if it is a `Cell`; otherwise nullptr (const AnyCell).
  template <class Cell>
  const Cell* as() const {
    auto* m = dynamic_cast<const Model<Cell>*>(self_.get());
    return m ? &m->cell : nullptr;
  }

  /// Calls f(name, Parameter<T>&) for each variable of the wrapped cell, named as that cell names them
  /// under `scope`.
  void for_each_variable(const std::string& scope, const VariableVisitor& f) { self_->for_each_variable(scope, f); }
  /// Sets the gradient of every variable of the wrapped cell to zero.
  void zero_grad() { cellflow::zero_grad(*this); }

  /// One step, TF's `cell(x, state)`.
  StepOutput<T, State> operator()(const Matrix<T>& x, const State& state) const {
    return detail::run_step(*this, x, state);
  }

  // ---- cell contract: sequence functions (cells/cell_traits.hpp) ----

  /// Runs the wrapped cell over X through run_sequence (one virtual call per sequence), its tape in tp
  /// (made anew when tp held another kind's).
  void forward_sequence(Tape& tp, const Matrix<T>& X, const SequenceArgs& args, const State& s0, Matrix<T>& Y) const {
    self_->forward_sequence(tp, X, args, s0, Y);
  }
  /// The wrapped cell's final state; Error when tp was not filled by a forward pass of this kind of cell.
  State final_state(const Tape& tp) const {
    check_tape(tp, "final_state");
    return self_->final_state(*tp.impl);
  }
  /// The wrapped cell's final state written into `s`, reusing its buffers when s holds that kind
  /// of state; Error when tp was not filled by a forward pass of this kind of cell.
  void final_state_into(const Tape& tp, State& s) const {
    check_tape(tp, "final_state");
    self_->final_state_into(*tp.impl, s);
  }
  /// The wrapped cell's backward pass through run_sequence_backward; Error when tp was not filled by a
  /// forward pass of this kind of cell.
  void backward_sequence(Tape& tp, const Matrix<T>& X, const SequenceArgs& args, const Matrix<T>* dY,
                         const State* d_final, Matrix<T>* dX, State& d_initial, Gradients<T>& grads) const {
    check_tape(tp, "backward");
    self_->backward_sequence(*tp.impl, X, args, dY, d_final, dX, d_initial, grads);
  }

 private:
  void check_tape(const Tape& tp, const char* what) const {
    if (!tp.impl || !self_->tape_fits(*tp.impl))
      throw Error(
          detail::concat(cell_name(), " ", what, ": the tape was not filled by a forward pass of this kind of cell"));
  }

  struct Concept {
    virtual ~Concept() = default;
    virtual std::unique_ptr<Concept> clone() const = 0;
    virtual Index input_depth() const = 0;
    virtual Index output_size() const = 0;
    virtual std::string cell_name() const = 0;
    virtual std::string scope_name() const = 0;
    virtual CellConfig config() const = 0;
    virtual bool skips_ended_rows() const = 0;
    virtual bool supports_bf16() const = 0;
    virtual State zero_state(Index) const = 0;
    virtual void check_state(const State&, Index, const std::string&) const = 0;
    virtual void for_each_variable(const std::string&, const VariableVisitor&) = 0;
    virtual bool tape_fits(const detail::TapeBase&) const = 0;
    virtual void forward_sequence(Tape&, const Matrix<T>&, const SequenceArgs&, const State&, Matrix<T>&) const = 0;
    virtual State final_state(const detail::TapeBase&) const = 0;
    virtual void final_state_into(const detail::TapeBase&, State&) const = 0;
    virtual void backward_sequence(detail::TapeBase&, const Matrix<T>&, const SequenceArgs&, const Matrix<T>*,
                                   const State*, Matrix<T>*, State&, Gradients<T>&) const = 0;
  };

  template <class Cell>
  struct Model final : Concept {
    using CS = typename Cell::State;
    struct TapeImpl final : detail::TapeBase {
      typename Cell::Tape tape;
    };

    explicit Model(Cell c) : cell(std::move(c)) {}
    std::unique_ptr<Concept> clone() const override { return std::make_unique<Model>(cell); }
    Index input_depth() const override { return cell.input_depth(); }
    Index output_size() const override { return cell.output_size(); }
    std::string cell_name() const override { return cell.cell_name(); }
    std::string scope_name() const override { return scope_name_of(cell); }
    CellConfig config() const override { return config_of(cell); }
    bool skips_ended_rows() const override { return skips_ended_rows_of(cell); }
    bool supports_bf16() const override { return supports_bf16_of(cell); }
    State zero_state(Index batch) const override { return State(cell.zero_state(batch)); }
    void check_state(const State& s, Index batch, const std::string& what) const override {
      if (!holds(s))
        throw ShapeError(what + ": " + cell.cell_name() + " needs a " + State(cell.zero_state(0)).kind() +
                         ", given a " + s.kind());
      cell.check_state(s.template get<CS>(), batch, what);
    }
    void for_each_variable(const std::string& scope, const VariableVisitor& f) override {
      cell.for_each_variable(scope, f);
    }
    bool tape_fits(const detail::TapeBase& tp) const override { return dynamic_cast<const TapeImpl*>(&tp) != nullptr; }
    void forward_sequence(Tape& tp, const Matrix<T>& X, const SequenceArgs& args, const State& s0,
                          Matrix<T>& Y) const override {
      if (!tp.impl || !tape_fits(*tp.impl)) tp.impl = std::make_unique<TapeImpl>();  // a reused tape of another kind
      run_sequence(cell, static_cast<TapeImpl&>(*tp.impl).tape, X, args, s0.template get<CS>(), Y);
    }
    State final_state(const detail::TapeBase& tp) const override {
      return State(cell.final_state(static_cast<const TapeImpl&>(tp).tape));
    }
    void final_state_into(const detail::TapeBase& tp, State& s) const override {
      const auto& tape = static_cast<const TapeImpl&>(tp).tape;
      if (holds(s))
        cellflow::final_state_into(cell, tape, s.template get<CS>());
      else
        s = State(cell.final_state(tape));
    }
    void backward_sequence(detail::TapeBase& tp, const Matrix<T>& X, const SequenceArgs& args, const Matrix<T>* dY,
                           const State* d_final, Matrix<T>* dX, State& d_initial, Gradients<T>& grads) const override {
      CS d0;
      run_sequence_backward(cell, static_cast<TapeImpl&>(tp).tape, X, args, dY,
                            d_final ? &d_final->template get<CS>() : nullptr, dX, d0, grads);
      d_initial = State(std::move(d0));
    }

    static bool holds(const State& s) { return s.is_lstm() == std::is_same_v<CS, LSTMStateTuple<T>>; }

    Cell cell;
  };

  std::unique_ptr<Concept> self_;
};

}  // namespace cellflow
