// Compiled by check_unoptimized_notice.cmake without and with optimisation: run unoptimised, the
// first forward pass prints cellflow's one-line notice on stderr (once, though it runs twice).
#include <cellflow/cellflow.hpp>

int main() {
  cellflow::Rng rng(1);
  cellflow::GRUCell<float> cell(2, 3, rng);
  cellflow::Tensor3<float> x(1, 2, 2);
  x.setZero();
  cellflow::dynamic_rnn(cell, x);
  cellflow::dynamic_rnn(cell, x);
  return 0;
}
