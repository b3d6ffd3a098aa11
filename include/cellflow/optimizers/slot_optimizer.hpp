// SlotOptimizer: the shared machinery of the optimizers whose state is a few hyper-parameters,
// on/off options and one or more slots per variable (MomentumOptimizer, RMSPropOptimizer,
// AdagradOptimizer). It keeps the slots, checks that later steps pass the same variables, counts
// the steps, and exports, checks and imports the whole state by name (optimizers/optimizer.hpp),
// so every such optimizer saves and resumes through checkpoints (io/checkpoint.hpp) exactly.
//
// The state of such an optimizer: its kind; the scalars it declares (each with a range it must be
// in); the counters it declares as options (0 or 1, e.g. "use_nesterov") and the counter "step";
// no slots before its first step (TF creates them with the first apply), afterwards exactly the
// slots its options call for, for every variable of the list, with the variable's shape.
// An optimizer of your own derives from it and implements the hooks in its protected part.
#pragma once

#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/optimizers/optimizer.hpp"

namespace cellflow {

namespace detail {

/// `x` as a T in [0, 1]; ValueError "<op>: <what> must be in [0, 1], given x" otherwise.
template <class T, class S>
T closed_unit_interval(S x, const std::string& op, const char* what) {
  static_assert(std::is_arithmetic_v<S>, "cellflow: a hyper-parameter must be a number");
  const T v = static_cast<T>(x);
  if (!(v >= T(0) && v <= T(1))) throw ValueError(concat(op, ": ", what, " must be in [0, 1], given ", x));
  return v;
}

/// `x` as a T, finite and > 0; ValueError "<op>: <what> must be finite and > 0, given x" otherwise.
template <class T, class S>
T finite_positive(S x, const std::string& op, const char* what) {
  static_assert(std::is_arithmetic_v<S>, "cellflow: a hyper-parameter must be a number");
  const T v = static_cast<T>(x);
  if (!(std::isfinite(v) && v > T(0)))
    throw ValueError(concat(op, ": ", what, " must be finite and > 0, given ", x,
                            std::isfinite(x) && !std::isfinite(v) ? " (too large for this scalar type)" : ""));
  return v;
}

}  // namespace detail

/// The range a scalar of a SlotOptimizer's state must be in.
enum class ScalarRange {
  nonnegative,  ///< finite and >= 0 (a learning rate, an epsilon)
  positive,     ///< finite and > 0 (Adagrad's initial accumulator value)
  unit          ///< in [0, 1] (a decay, a momentum)
};

template <class T>
/// The base of the optimizers with per-variable slots (see the top of this header).
class SlotOptimizer : public Optimizer<T> {
 public:
  /// One step over every variable of the list, using the gradients stored in it. The first call
  /// creates the slots (each at its initial value) for the list's variables; later calls must
  /// pass a list of the same variables (names and shapes) in the same order. Every gradient and
  /// slot is checked (ShapeError naming the variable) before anything changes.
  void apply_gradients(VariableList<T>& vars) final {
    const std::string op = detail::concat(this->type_name(), "::apply_gradients");
    detail::check_gradients(vars, op.c_str());
    init_or_check(vars, op);
    std::vector<T*> slots(slots_.size());
    for (std::size_t k = 0; k < vars.size(); ++k) {
      for (std::size_t j = 0; j < slots_.size(); ++j) slots[j] = slots_[j][k].data();
      update(vars[k].value->data(), vars[k].grad->data(), vars[k].size(), slots.data());
    }
    ++step_;
  }

  /// Steps applied so far.
  long long step() const { return step_; }

  /// The names of the slots this optimizer keeps for every variable, in TF's creation order.
  std::vector<std::string> slot_names() const { return slot_names_for(flags()); }

  /// The slot `name` of variable k of the list it was made for (in list order); empty before the
  /// first step. ValueError for a name that is not one of slot_names().
  const std::vector<Matrix<T>>& slots(const std::string& name) const {
    const std::vector<std::string> names = slot_names();
    for (std::size_t j = 0; j < names.size(); ++j)
      if (names[j] == name) return slots_.empty() ? empty_ : slots_[j];
    throw ValueError(detail::concat(this->type_name(), "::slots: no slot '", name, "'; ", names_text(names)));
  }

  /// The state (top of this header); the slots keyed by the names of `vars`, which must be the
  /// list the slots were made for (ValueError otherwise).
  OptimizerState<T> export_state(const VariableList<T>& vars) const final {
    OptimizerState<T> s;
    s.kind = this->kind();
    s.scalars = scalars();
    s.counters = flags();
    s.counters["step"] = step_;
    if (slots_.empty()) return s;
    const std::vector<std::string> names = slot_names();
    if (slots_[0].size() != vars.size())
      throw ValueError(detail::concat(this->type_name(), "::export_state: the optimizer holds slots for ",
                                      slots_[0].size(), " variables, the list has ", vars.size()));
    for (std::size_t k = 0; k < vars.size(); ++k) {
      const VariableRef<T>& var = vars[k];
      const Matrix<T>& first = slots_[0][k];
      if (var.name != made_for_[k] || var.value == nullptr || var.value->rows() != first.rows() ||
          var.value->cols() != first.cols())
        throw ValueError(detail::concat(this->type_name(), "::export_state: variable ", k, " of the list is '",
                                        var.name, "' ", shape_string(var.shape), ", the optimizer's slots ", k,
                                        " were made for '", made_for_[k], "' (", first.rows(), "x", first.cols(), ")"));
      for (std::size_t j = 0; j < names.size(); ++j)
        s.slots[{var.name, names[j]}] = OptimizerSlot<T>{var.shape, slots_[j][k]};
    }
    return s;
  }

  /// Every reason why `s` is not a state of this kind for `vars`: another kind; a scalar missing,
  /// unknown or out of its range; an option counter missing, unknown or not 0 or 1; the counter
  /// step missing or negative; slots when step is 0 are fine only as a complete set; no slots
  /// after a step (unless `vars` is empty); a slot missing, unknown, misshapen, for a variable
  /// not in the list, or (for the slots that cannot be negative) holding a negative value (NaN is
  /// let through, as training can produce it).
  std::vector<std::string> state_problems(const OptimizerState<T>& s, const VariableList<T>& vars) const final {
    using detail::concat;
    std::vector<std::string> p;
    if (s.kind != this->kind()) {
      p.push_back(concat("the state is of kind '", s.kind, "', not '", this->kind(), "'"));
      return p;
    }
    const std::map<std::string, ScalarRange> rules = scalar_ranges();
    for (const auto& rule : rules)
      if (s.scalars.count(rule.first) == 0) p.push_back(concat("the scalar '", rule.first, "' is missing"));
    for (const auto& [name, value] : s.scalars) {
      const auto rule = rules.find(name);
      if (rule == rules.end()) {
        p.push_back(concat("unknown scalar '", name, "'"));
      } else if (rule->second == ScalarRange::unit && !(value >= T(0) && value <= T(1))) {
        p.push_back(concat("the scalar '", name, "' = ", value, " is not in [0, 1]"));
      } else if (rule->second == ScalarRange::nonnegative && !(std::isfinite(value) && value >= T(0))) {
        p.push_back(concat("the scalar '", name, "' = ", value, " is not finite and >= 0"));
      } else if (rule->second == ScalarRange::positive && !(std::isfinite(value) && value > T(0))) {
        p.push_back(concat("the scalar '", name, "' = ", value, " is not finite and > 0"));
      }
    }
    const std::map<std::string, long long> own_flags = flags();
    std::map<std::string, long long> state_flags;
    for (const auto& flag : own_flags)
      if (s.counters.count(flag.first) == 0) p.push_back(concat("the counter '", flag.first, "' is missing"));
    long long step = 0;
    if (s.counters.count("step") == 0) p.push_back("the counter 'step' is missing");
    for (const auto& [name, value] : s.counters) {
      if (name == "step") {
        if (value < 0)
          p.push_back(concat("the counter 'step' = ", value, " is negative"));
        else
          step = value;
      } else if (own_flags.count(name) == 0) {
        p.push_back(concat("unknown counter '", name, "'"));
      } else if (value != 0 && value != 1) {
        p.push_back(concat("the counter '", name, "' = ", value, " is not 0 or 1 (an option: off or on)"));
      } else {
        state_flags[name] = value;
      }
    }
    if (state_flags.size() != own_flags.size()) return p;  // which slots it needs is unknown
    if (s.slots.empty()) {
      if (step != 0 && !vars.empty())
        p.push_back(
            concat("no slots, but ", step, " steps taken: ", this->type_name(), " has slots after its first step"));
      return p;
    }
    const std::vector<std::string> needed = slot_names_for(state_flags);
    std::map<std::string, std::size_t> index;
    for (std::size_t k = 0; k < vars.size(); ++k) index.emplace(vars[k].name, k);
    for (const VariableRef<T>& var : vars) {
      for (const std::string& slot : needed) {
        const OptimizerSlot<T>* found = s.find_slot(var.name, slot);
        if (found == nullptr) {
          p.push_back(concat("the slot '", slot, "' of '", var.name, "' is missing"));
          continue;
        }
        if (found->shape != var.shape || found->value.rows() != var.value->rows() ||
            found->value.cols() != var.value->cols()) {
          p.push_back(concat("the slot '", slot, "' of '", var.name, "' is ", shape_string(found->shape), " (",
                             found->value.rows(), "x", found->value.cols(), "), the variable ", shape_string(var.shape),
                             " (", var.value->rows(), "x", var.value->cols(), ")"));
          continue;
        }
        if (slot_nonnegative(slot)) {
          const T* x = found->value.data();
          for (Index i = 0; i < found->value.size(); ++i)
            if (x[i] < T(0)) {
              p.push_back(
                  concat("the slot '", slot, "' of '", var.name, "': ", slot, "[", i, "] = ", x[i], " is negative"));
              break;
            }
        }
      }
    }
    for (const auto& key_slot : s.slots) {
      const auto& key = key_slot.first;
      bool known = false;
      for (const std::string& n : needed) known = known || n == key.second;
      if (!known)
        p.push_back(concat("unknown slot '", key.second, "' of '", key.first, "' (", names_text(needed), ")"));
      else if (index.count(key.first) == 0)
        p.push_back(concat("the slot '", key.second, "' of '", key.first, "': no variable of that name in the list"));
    }
    return p;
  }

 protected:
  /// Takes the learning rate, already checked.
  explicit SlotOptimizer(T learning_rate) : Optimizer<T>(learning_rate) {}
  SlotOptimizer(const SlotOptimizer&) = default;
  SlotOptimizer& operator=(const SlotOptimizer&) = default;
  SlotOptimizer(SlotOptimizer&&) noexcept = default;
  SlotOptimizer& operator=(SlotOptimizer&&) noexcept = default;

  /// Every scalar of the state ("learning_rate" included) and its value.
  virtual std::map<std::string, T> scalars() const = 0;
  /// The range of every scalar scalars() returns.
  virtual std::map<std::string, ScalarRange> scalar_ranges() const = 0;
  /// The options, as counters 0 or 1 (e.g. {"use_nesterov", 0}); empty when there are none.
  virtual std::map<std::string, long long> flags() const { return {}; }
  /// The slots an optimizer with these options keeps, in TF's creation order.
  virtual std::vector<std::string> slot_names_for(const std::map<std::string, long long>& flags) const = 0;
  /// The value a slot starts at.
  virtual T slot_initial_value(const std::string& slot) const = 0;
  /// Whether a slot's values can never be negative (checked when a state is imported).
  virtual bool slot_nonnegative(const std::string& /*slot*/) const { return false; }
  /// Takes the scalars and options of a state that state_problems accepted. Must not throw.
  virtual void assign_hyper(const OptimizerState<T>& s) = 0;
  /// The update of one variable of `n` values: `slots[j]` is the slot slot_names()[j] of it.
  virtual void update(T* var, const T* grad, Index n, T* const* slots) const = 0;

  void assign_state(const OptimizerState<T>& s, const VariableList<T>& vars) final {
    std::map<std::string, long long> state_flags;
    for (const auto& f : flags()) state_flags[f.first] = s.counters.at(f.first);
    const std::vector<std::string> names = slot_names_for(state_flags);
    std::vector<std::vector<Matrix<T>>> slots;
    std::vector<std::string> made_for;
    if (!s.slots.empty()) {
      slots.resize(names.size());
      for (const VariableRef<T>& var : vars) {
        for (std::size_t j = 0; j < names.size(); ++j) slots[j].push_back(s.find_slot(var.name, names[j])->value);
        made_for.push_back(var.name);
      }
    }
    // Nothing below throws.
    assign_hyper(s);
    step_ = s.counters.at("step");
    slots_ = std::move(slots);
    made_for_ = std::move(made_for);
  }

 private:
  static std::string names_text(const std::vector<std::string>& names) {
    std::string t = "the slots are";
    for (std::size_t j = 0; j < names.size(); ++j) t += (j ? ", '" : " '") + names[j] + "'";
    return t;
  }

  void init_or_check(const VariableList<T>& vars, const std::string& op) {
    if (slots_.empty() && step_ == 0) {
      const std::vector<std::string> names = slot_names();
      std::vector<std::vector<Matrix<T>>> slots(names.size());
      std::vector<std::string> made_for;
      for (const auto& var : vars) {
        for (std::size_t j = 0; j < names.size(); ++j)
          slots[j].push_back(Matrix<T>::Constant(var.value->rows(), var.value->cols(), slot_initial_value(names[j])));
        made_for.push_back(var.name);
      }
      slots_ = std::move(slots);
      made_for_ = std::move(made_for);
      return;
    }
    const std::size_t held = slots_.empty() ? 0 : slots_[0].size();
    if (vars.size() != held)
      throw ShapeError(detail::concat(op, ": the optimizer holds slots for ", held, " variables, given ", vars.size()));
    for (std::size_t k = 0; k < vars.size(); ++k) {
      const Matrix<T>& first = slots_[0][k];
      if (vars[k].value->rows() != first.rows() || vars[k].value->cols() != first.cols())
        throw ShapeError(detail::concat(op, ": variable ", k, " ('", vars[k].name, "') is ",
                                        shape_string(vars[k].shape), ", its slots were made for ", first.rows(), "x",
                                        first.cols()));
      if (vars[k].name != made_for_[k])
        throw ShapeError(detail::concat(op, ": variable ", k, " is '", vars[k].name, "', its slots were made for '",
                                        made_for_[k], "' (the list's variables or their order changed)"));
    }
  }

  long long step_ = 0;
  std::vector<std::vector<Matrix<T>>> slots_;  // slots_[j][k]: slot slot_names()[j] of variable k
  std::vector<std::string> made_for_;          // the variables the slots were made for, in order
  std::vector<Matrix<T>> empty_;
};

}  // namespace cellflow
