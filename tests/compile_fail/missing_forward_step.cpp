// A step cell without forward_step: dynamic_rnn must refuse it, naming the member.
// expect: cellflow: the cell type lacks `void forward_step(Tape&, Index t, Scalar* y) const`
#ifndef CELLFLOW_COMPILE_FAIL_CONTROL
#define CELLFLOW_OMIT_FORWARD_STEP
#endif
#include "contract_cell.hpp"

int main() {
  cellflow::Rng rng(1);
  compile_fail::TanhCell<double> cell(2, 3, rng);
  return compile_fail::run_cell(cell);
}
