// AnyCell: a type-erased cell, so that one MultiRNNCell can stack different kinds of cells.
// The erasure is per whole sequence (one virtual call per layer and sequence), so it costs
// nothing measurable; the time loop inside stays statically typed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/cells/cell_state.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow {

namespace detail {
struct TapeBase {
  virtual ~TapeBase() = default;
};
}  // namespace detail

template <class T>
class AnyCell {
 public:
  using Scalar = T;
  using State = CellState<T>;
  using VariableVisitor = std::function<void(const std::string&, Parameter<T>&)>;

  template <class Cell, class = std::enable_if_t<!std::is_same_v<std::decay_t<Cell>, AnyCell>>>
  AnyCell(Cell cell)  // NOLINT: implicit by design
      : self_(std::make_unique<Model<Cell>>(std::move(cell))) {
    static_assert(std::is_same_v<typename Cell::Scalar, T>, "AnyCell: the cell's scalar type differs");
    static_assert(std::is_constructible_v<CellState<T>, typename Cell::State>,
                  "AnyCell: only single cells (LSTM kinds, GRU) can be layers of a MultiRNNCell");
  }
  AnyCell(const AnyCell& o) : self_(o.self_->clone()) {}
  AnyCell(AnyCell&&) noexcept = default;
  AnyCell& operator=(const AnyCell& o) {
    if (this != &o) self_ = o.self_->clone();
    return *this;
  }
  AnyCell& operator=(AnyCell&&) noexcept = default;

  Index input_depth() const { return self_->input_depth(); }
  Index output_size() const { return self_->output_size(); }
  std::string cell_name() const { return self_->cell_name(); }
  State zero_state(Index batch) const { return self_->zero_state(batch); }
  void check_state(const State& s, Index batch, const std::string& what) const { self_->check_state(s, batch, what); }

  /// The wrapped cell, if it is a `Cell`; otherwise nullptr.
  template <class Cell>
  Cell* as() {
    auto* m = dynamic_cast<Model<Cell>*>(self_.get());
    return m ? &m->cell : nullptr;
  }
  template <class Cell>
  const Cell* as() const {
    auto* m = dynamic_cast<const Model<Cell>*>(self_.get());
    return m ? &m->cell : nullptr;
  }

  void for_each_variable(const std::string& scope, const VariableVisitor& f) { self_->for_each_variable(scope, f); }

  std::unique_ptr<detail::TapeBase> new_tape() const { return self_->new_tape(); }
  /// Whether `tp` is a tape of this cell's type (a reused result may hold another cell's).
  bool tape_fits(const detail::TapeBase& tp) const { return self_->tape_fits(tp); }
  void forward_sequence(detail::TapeBase& tp, const Matrix<T>& X, Index time, Index batch, Index steps, const State& s0,
                        const std::vector<Index>* lengths, Matrix<T>& Y, bool training) const {
    self_->forward_sequence(tp, X, time, batch, steps, s0, lengths, Y, training);
  }
  State final_state(const detail::TapeBase& tp) const { return self_->final_state(tp); }
  void backward_sequence(detail::TapeBase& tp, const Matrix<T>& X, const std::vector<Index>* lengths,
                         const Matrix<T>* dY, const State* d_final, Matrix<T>* dX, State& d_initial) {
    self_->backward_sequence(tp, X, lengths, dY, d_final, dX, d_initial);
  }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual std::unique_ptr<Concept> clone() const = 0;
    virtual Index input_depth() const = 0;
    virtual Index output_size() const = 0;
    virtual std::string cell_name() const = 0;
    virtual State zero_state(Index) const = 0;
    virtual void check_state(const State&, Index, const std::string&) const = 0;
    virtual void for_each_variable(const std::string&, const VariableVisitor&) = 0;
    virtual std::unique_ptr<detail::TapeBase> new_tape() const = 0;
    virtual bool tape_fits(const detail::TapeBase&) const = 0;
    virtual void forward_sequence(detail::TapeBase&, const Matrix<T>&, Index, Index, Index, const State&,
                                  const std::vector<Index>*, Matrix<T>&, bool) const = 0;
    virtual State final_state(const detail::TapeBase&) const = 0;
    virtual void backward_sequence(detail::TapeBase&, const Matrix<T>&, const std::vector<Index>*, const Matrix<T>*,
                                   const State*, Matrix<T>*, State&) = 0;
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
    std::unique_ptr<detail::TapeBase> new_tape() const override { return std::make_unique<TapeImpl>(); }
    bool tape_fits(const detail::TapeBase& tp) const override { return dynamic_cast<const TapeImpl*>(&tp) != nullptr; }
    void forward_sequence(detail::TapeBase& tp, const Matrix<T>& X, Index time, Index batch, Index steps,
                          const State& s0, const std::vector<Index>* lengths, Matrix<T>& Y,
                          bool training) const override {
      cell.forward_sequence(static_cast<TapeImpl&>(tp).tape, X, time, batch, steps, s0.template get<CS>(), lengths, Y,
                            training);
    }
    State final_state(const detail::TapeBase& tp) const override {
      return State(cell.final_state(static_cast<const TapeImpl&>(tp).tape));
    }
    void backward_sequence(detail::TapeBase& tp, const Matrix<T>& X, const std::vector<Index>* lengths,
                           const Matrix<T>* dY, const State* d_final, Matrix<T>* dX, State& d_initial) override {
      CS d0;
      cell.backward_sequence(static_cast<TapeImpl&>(tp).tape, X, lengths, dY,
                             d_final ? &d_final->template get<CS>() : nullptr, dX, d0);
      d_initial = State(std::move(d0));
    }

    static bool holds(const State& s) { return s.is_lstm() == std::is_same_v<CS, LSTMStateTuple<T>>; }

    Cell cell;
  };

  std::unique_ptr<Concept> self_;
};

}  // namespace cellflow
