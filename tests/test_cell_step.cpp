// One time step by hand (rnn/step.hpp, cells/step_output.hpp): TF's `output, state = cell(x,
// state)` for every kind, and cell_forward / cell_backward, the training step and its backward
// pass for loops over time written by hand (their semantics, accumulation and errors). That a
// loop of cell_forward / cell_backward gives dynamic_rnn's numbers is checked for every cell kind
// by test_cell_contract.cpp.
#include <catch2/catch.hpp>

#include <string>
#include <type_traits>
#include <vector>

#include "support/cell_kinds.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_cell_step {

using namespace cellflow_test;
using Mat = cf::Matrix<double>;

TEST_CASE("a single step rejects a wrong input depth or state", "[cell_step][errors]") {
  cf::Rng rng(5);
  cf::LSTMCell<float> cell(28, 4, rng);
  REQUIRE_THROWS_WITH(cell(cf::Matrix<float>::Zero(2, 27), cell.zero_state(2)),
                      Catch::Matchers::Contains("lstm_cell(num_units=4): input depth 27, kernel expects 28"));
  REQUIRE_THROWS_AS(cell(cf::Matrix<float>::Zero(2, 28), cell.zero_state(3)), cf::ShapeError);
}

}  // namespace test_cell_step
