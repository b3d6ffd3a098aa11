// dynamic_rnn given an Eigen::Tensor in Eigen's default (column-major) layout: refused with a
// message saying what cellflow takes and how to convert, not Eigen's assertion.
// expect: cellflow takes row-major tensors
#include <cellflow/cellflow.hpp>

int main() {
  cellflow::Rng rng(1);
  cellflow::GRUCell<float> cell(2, 3, rng);
#ifdef CELLFLOW_COMPILE_FAIL_CONTROL
  Eigen::Tensor<float, 3, Eigen::RowMajor> x(2, 4, 2);
#else
  Eigen::Tensor<float, 3> x(2, 4, 2);
#endif
  x.setZero();
  return static_cast<int>(cellflow::dynamic_rnn(cell, x).outputs.size()) == 24 ? 0 : 1;
}
