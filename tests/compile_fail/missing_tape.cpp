// A cell whose per-sequence buffers are not declared as its Tape: dynamic_rnn must refuse it,
// naming the member.
// expect: cellflow: the cell type lacks `using Tape = ...;`
#ifndef CELLFLOW_COMPILE_FAIL_CONTROL
#define CELLFLOW_OMIT_TAPE
#endif
#include "contract_cell.hpp"

int main() {
  cellflow::Rng rng(1);
  compile_fail::TanhCell<double> cell(2, 3, rng);
  return compile_fail::run_cell(cell);
}
