// check_same_everywhere: do all ranks hold the same model and settings? Each rank describes what
// must agree (variable names and shapes, dtype, optimizer, hyper-parameters, data shapes) as
// lines of text; the ranks compare a 64-bit digest of it, and when one differs rank 0 finds the
// first line that differs and every rank throws the same ConsistencyError naming the rank and
// that line. No rank goes on alone into a training loop the others are not in.
//
//   cf::mpi::check_same_everywhere(mpi, cf::mpi::describe(model, &adam));
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/distributed/environment.hpp"
#include "cellflow/io/checkpoint.hpp"
#include "cellflow/optimizers/optimizer.hpp"

namespace cellflow::mpi {

namespace detail {

/// FNV-1a, 64 bits.
inline std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace detail

/// The variables (TF names and shapes, in order) and dtype of `vars`, and `optimizer`'s kind and
/// hyper-parameters (its learning rate, Adam's betas and epsilon, its step counters), one item a
/// line: what must be the same on every rank of a data-parallel run.
template <class T>
std::string describe(const VariableList<T>& vars, const io::detail::identity_t<Optimizer<T>>* optimizer = nullptr) {
  std::ostringstream out;
  out.precision(17);
  out << "dtype " << (sizeof(T) == 4 ? "float" : "double") << "\n";
  out << "variables " << vars.size() << "\n";
  for (const auto& v : vars) out << "variable '" << v.name << "' " << shape_string(v.shape) << "\n";
  if (optimizer != nullptr) {
    const OptimizerState<T> state = optimizer->export_state(vars);
    out << "optimizer " << state.kind << "\n";
    for (const auto& [name, value] : state.scalars) out << "optimizer " << name << " " << value << "\n";
    for (const auto& [name, value] : state.counters) out << "optimizer " << name << " " << value << "\n";
  }
  return out.str();
}

/// As above, for a Model (anything with variables() and config()), followed by every layer's
/// CellConfig: its kind, num_units and every option by name (forget_bias, activation, ...), so
/// that ranks whose cells compute differently with the same variables (another activation, say)
/// are told apart.
template <class Model, class = decltype(std::declval<Model&>().gradient_groups())>
std::string describe(Model& model, const Optimizer<typename Model::Scalar>* optimizer = nullptr) {
  std::ostringstream out;
  out.precision(17);
  out << describe(model.variables(), optimizer);
  const auto& cells = model.config().cells;
  for (std::size_t l = 0; l < cells.size(); ++l) {
    out << "layer " << l << " " << cells[l].kind << " num_units " << cells[l].num_units;
    for (const auto& [name, value] : cells[l].options) out << " " << name << " " << value;
    out << "\n";
  }
  return out.str();
}

/// Compares `description` (lines of text) across the ranks by a 64-bit digest. Returns when
/// every rank's is the same; otherwise every rank throws ConsistencyError with the same message,
/// naming each rank that differs from rank 0 and the first line where it does. A collective:
/// every rank must call it.
inline void check_same_everywhere(const Environment& env, const std::string& description) {
  if (env.size() == 1) return;
  const unsigned long long mine = detail::fnv1a(description);
  std::vector<unsigned long long> all(static_cast<std::size_t>(env.size()));
  detail::check(MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all.data(), 1, MPI_UNSIGNED_LONG_LONG, env.comm()),
                "MPI_Allgather (digest)");
  bool same = true;
  for (const auto d : all) same = same && d == all[0];
  if (same) return;
  // Rank 0 gathers every description, says where each differs and tells every rank.
  const int len = detail::count(description.size(), "check_same_everywhere");
  std::vector<int> lengths(static_cast<std::size_t>(env.size())), offsets(lengths.size());
  detail::check(MPI_Gather(&len, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, env.comm()), "MPI_Gather (lengths)");
  std::string texts;
  if (env.is_root()) {
    std::size_t total = 0;
    for (std::size_t r = 0; r < lengths.size(); ++r) {
      offsets[r] = detail::count(total, "check_same_everywhere");
      total += static_cast<std::size_t>(lengths[r]);
    }
    texts.resize(total);
  }
  detail::check(MPI_Gatherv(description.data(), len, MPI_CHAR, texts.data(), lengths.data(), offsets.data(), MPI_CHAR,
                            0, env.comm()),
                "MPI_Gatherv (descriptions)");
  std::string message;
  if (env.is_root()) {
    const auto text_of = [&](std::size_t r) {
      return texts.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(lengths[r]));
    };
    const std::vector<std::string> base = detail::lines_of(text_of(0));
    std::ostringstream out;
    out << "the ranks do not hold the same model and settings:";
    for (std::size_t r = 1; r < lengths.size(); ++r) {
      if (all[r] == all[0]) continue;
      const std::vector<std::string> other = detail::lines_of(text_of(r));
      std::size_t k = 0;
      while (k < base.size() && k < other.size() && base[k] == other[k]) ++k;
      out << "\n  rank " << r << " differs from rank 0 at line " << (k + 1) << ": rank 0 has '"
          << (k < base.size() ? base[k] : std::string("(nothing)")) << "', rank " << r << " has '"
          << (k < other.size() ? other[k] : std::string("(nothing)")) << "'";
    }
    message = out.str();
  }
  int size = detail::count(message.size(), "check_same_everywhere");
  detail::check(MPI_Bcast(&size, 1, MPI_INT, 0, env.comm()), "MPI_Bcast (message size)");
  message.resize(static_cast<std::size_t>(size));
  detail::check(MPI_Bcast(message.data(), size, MPI_CHAR, 0, env.comm()), "MPI_Bcast (message)");
  throw ConsistencyError(message);
}

}  // namespace cellflow::mpi
