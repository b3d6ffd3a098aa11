// cellflow::mpi consumer: a GRUCell's variables through the data-parallel collectives. Every rank
// starts from its own weights and takes rank 0's (broadcast_variables), sets gradients of its own
// (rank r: (r + 1) times a fixed pattern, the mean over r + 1 local examples) and makes them the
// global batch's (allreduce_gradients: each rank's weighted by its share of the examples, then
// summed). Rank 0 prints what it checked; the output does not depend on the number of ranks, so
// the same expected_mpi.txt holds for a singleton run (what run_consumer.cmake does: no mpirun)
// and for `mpirun -n N`. Exits 1 on any mismatch.
#include <cellflow/cellflow.hpp>
#include <cellflow/distributed/mpi.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace cf = cellflow;

namespace {

// The fixed pattern of variable j's element k (a gradient of the variable's shape).
double pattern(std::size_t j, cf::Index k) { return 0.25 * double(j + 1) - 0.125 * double(k % 5); }

int run(const cf::mpi::Environment& mpi) {
  const int rank = mpi.rank(), size = mpi.size();
  cf::Rng rng(static_cast<std::uint64_t>(100 + rank));  // each rank's own initial weights
  cf::GRUCell<double> cell(2, 3, rng);
  cf::VariableList<double> vars;
  vars.add(cell, "rnn");
  cf::mpi::check_same_everywhere(mpi, cf::mpi::describe(vars));
  if (mpi.is_root()) {
    std::printf("%zu variables, %ld scalars\n", vars.size(), static_cast<long>(vars.num_scalars()));
    for (const auto& v : vars) std::printf("  %s %s\n", v.name.c_str(), cf::shape_string(v.shape).c_str());
  }

  // broadcast_variables: rank 0's weights everywhere. The reference: rank 0's seed, rebuilt here.
  cf::Rng root_rng(100);
  cf::GRUCell<double> root_cell(2, 3, root_rng);
  cf::VariableList<double> root_vars;
  root_vars.add(root_cell, "rnn");
  cf::mpi::broadcast_variables(vars, mpi);
  // A failing rank goes on to the next collective all the same, so that no rank waits forever.
  bool ok = true;
  for (std::size_t j = 0; j < vars.size(); ++j) ok = ok && *vars[j].value == *root_vars[j].value;
  if (!ok) std::printf("FAIL: rank %d: after broadcast_variables the weights are not rank 0's\n", rank);
  if (ok && mpi.is_root()) std::printf("broadcast_variables: every rank holds rank 0's weights\n");

  // allreduce_gradients: rank r holds (r + 1) * pattern over r + 1 examples; the global gradient
  // is sum_r (r + 1) / S * (r + 1) * pattern, S = sum_r (r + 1) examples.
  for (std::size_t j = 0; j < vars.size(); ++j)
    for (cf::Index k = 0; k < vars[j].grad->size(); ++k) vars[j].grad->data()[k] = double(rank + 1) * pattern(j, k);
  cf::mpi::allreduce_gradients(vars, rank + 1, mpi);
  double examples = 0, weight = 0;
  for (int r = 0; r < size; ++r) {
    examples += r + 1;
    weight += double(r + 1) * double(r + 1);
  }
  weight /= examples;
  double worst = 0;
  for (std::size_t j = 0; j < vars.size(); ++j)
    for (cf::Index k = 0; k < vars[j].grad->size(); ++k)
      worst = std::max(worst, std::abs(vars[j].grad->data()[k] - weight * pattern(j, k)));
  if (!(worst < 1e-12)) {
    std::printf("FAIL: rank %d: allreduce_gradients differs from the weighted sum over the ranks by %g\n", rank, worst);
    return 1;
  }
  if (ok && mpi.is_root())
    std::printf("allreduce_gradients: every rank holds the examples-weighted sum of the ranks' gradients\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  cf::mpi::Environment mpi(argc, argv);
  return mpi.run([&] { return run(mpi); });
}
