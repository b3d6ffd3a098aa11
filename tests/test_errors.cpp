// Every user-facing error path: the right exception type, and a message naming the operation,
// what was expected and what was given.
#include <catch2/catch.hpp>

#include "support/test_util.hpp"

using namespace cellflow_test;
using Catch::Matchers::Contains;

namespace {

cf::MultiRNNCell<float> small_stack(cf::Rng& rng) {
  std::vector<cf::BasicLSTMCell<float>> cells;
  cells.emplace_back(4, 3, rng);
  cells.emplace_back(3, 3, rng);
  return cf::MultiRNNCell<float>(std::move(cells));
}

}  // namespace

TEST_CASE("dynamic_rnn rejects inputs of the wrong depth, naming both depths", "[errors]") {
  cf::Rng rng(1);
  cf::BasicLSTMCell<float> cell(28, 5, rng);
  cf::Tensor3<float> x(2, 3, 27);
  x.setZero();
  REQUIRE_THROWS_MATCHES(
      cf::dynamic_rnn(cell, x), cf::ShapeError, Catch::Matchers::Predicate<cf::ShapeError>([](const cf::ShapeError& e) {
        const std::string m = e.what();
        return m.find("dynamic_rnn") != std::string::npos && m.find("depth 27") != std::string::npos &&
               m.find("input depth 28") != std::string::npos;
      }));
  auto stack = small_stack(rng);
  REQUIRE_THROWS_AS(cf::dynamic_rnn(stack, x), cf::ShapeError);
}

TEST_CASE("dynamic_rnn rejects empty batches and sequences", "[errors]") {
  cf::Rng rng(1);
  cf::GRUCell<float> cell(3, 2, rng);
  cf::Tensor3<float> no_time(2, 0, 3), no_batch(0, 4, 3);
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(cell, no_time), Contains("at least one example and one time step"));
  REQUIRE_THROWS_AS(cf::dynamic_rnn(cell, no_batch), cf::ShapeError);
}

TEST_CASE("dynamic_rnn rejects an initial state of the wrong batch or width", "[errors]") {
  cf::Rng rng(2);
  cf::BasicLSTMCell<float> cell(3, 4, rng);
  cf::Tensor3<float> x(2, 5, 3);
  x.setZero();
  auto s = cell.zero_state(3);  // batch 3 for inputs of batch 2
  REQUIRE_THROWS_MATCHES(cf::dynamic_rnn(cell, x, s), cf::ShapeError,
                         Catch::Matchers::Predicate<cf::ShapeError>([](const cf::ShapeError& e) {
                           const std::string m = e.what();
                           return m.find("initial_state") != std::string::npos &&
                                  m.find("c [2, 4]") != std::string::npos && m.find("c [3, 4]") != std::string::npos;
                         }));
  cf::GRUCell<float> gru(3, 4, rng);
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(gru, x, cf::Matrix<float>::Zero(2, 5)), Contains("given [2, 5]"));

  auto stack = small_stack(rng);
  cf::Tensor3<float> x4(2, 5, 4);
  x4.setZero();
  auto ms = stack.zero_state(2);
  ms.pop_back();
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(stack, x4, ms), Contains("expected 2 layer states, given 1"));
  auto wrong_kind = stack.zero_state(2);
  wrong_kind[1] = cf::CellState<float>(cf::Matrix<float>::Zero(2, 3));  // a GRU state for an LSTM layer
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(stack, x4, wrong_kind), Contains("layer 1") && Contains("GRU state"));
}

TEST_CASE("dynamic_rnn validates sequence_length", "[errors]") {
  cf::Rng rng(3);
  cf::GRUCell<double> cell(2, 3, rng);
  cf::Tensor3<double> x(3, 4, 2);
  x.setZero();
  cf::RNNOptions opts;
  opts.sequence_length = std::vector<cf::Index>{1, 2};
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(cell, x, opts), Contains("sequence_length has 2 entries") && Contains("batch 3"));
  opts.sequence_length = std::vector<cf::Index>{1, -1, 2};
  REQUIRE_THROWS_MATCHES(cf::dynamic_rnn(cell, x, opts), cf::ValueError,
                         Catch::Matchers::Predicate<cf::ValueError>([](const cf::ValueError& e) {
                           return std::string(e.what()).find("sequence_length[1] = -1") != std::string::npos;
                         }));
  opts.sequence_length = std::vector<cf::Index>{1, 5, 2};
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(cell, x, opts), Contains("sequence_length[1] = 5") && Contains("4 time steps"));
  opts.sequence_length = std::vector<cf::Index>{0, 4, 2};  // 0 and T are valid
  REQUIRE_NOTHROW(cf::dynamic_rnn(cell, x, opts));
}

TEST_CASE("dynamic_rnn_backward rejects a result without activations and wrong gradient shapes", "[errors]") {
  cf::Rng rng(4);
  cf::BasicLSTMCell<float> cell(3, 2, rng);
  cf::Tensor3<float> x(2, 3, 3);
  x.setConstant(0.5f);
  cf::RNNOptions inference;
  inference.training = false;
  auto r = cf::dynamic_rnn(cell, x, inference);
  cf::Tensor3<float> dy(2, 3, 2);
  dy.setZero();
  REQUIRE_THROWS_WITH(cf::dynamic_rnn_backward(cell, r, &dy), Contains("training = false"));

  auto t = cf::dynamic_rnn(cell, x);
  cf::Tensor3<float> bad(2, 4, 2);
  bad.setZero();
  REQUIRE_THROWS_WITH(cf::dynamic_rnn_backward(cell, t, &bad),
                      Contains("d_outputs is [2, 4, 2]") && Contains("outputs are [2, 3, 2]"));
  auto ds = cell.zero_state(5);
  REQUIRE_THROWS_AS(cf::dynamic_rnn_backward(cell, t, nullptr, &ds), cf::ShapeError);
}

TEST_CASE("a single step rejects a wrong input depth or state", "[errors]") {
  cf::Rng rng(5);
  cf::LSTMCell<float> cell(28, 4, rng);
  REQUIRE_THROWS_WITH(cell(cf::Matrix<float>::Zero(2, 27), cell.zero_state(2)),
                      Contains("lstm_cell(num_units=4): input depth 27, kernel expects 28"));
  REQUIRE_THROWS_AS(cell(cf::Matrix<float>::Zero(2, 28), cell.zero_state(3)), cf::ShapeError);
}

TEST_CASE("cells reject invalid options", "[errors]") {
  cf::Rng rng(6);
  REQUIRE_THROWS_AS(cf::BasicLSTMCell<float>(0, 4, rng), cf::ValueError);
  REQUIRE_THROWS_AS(cf::GRUCell<float>(3, 0, rng), cf::ValueError);
  cf::LSTMOptions<float> o;
  o.proj_clip = 1.0f;
  REQUIRE_THROWS_WITH(cf::LSTMCell<float>(3, 4, o, rng), Contains("proj_clip needs num_proj"));
  o = {};
  o.cell_clip = -1.0f;
  REQUIRE_THROWS_WITH(cf::LSTMCell<float>(3, 4, o, rng), Contains("cell_clip must be >= 0"));
  o = {};
  o.num_proj = 0;
  REQUIRE_THROWS_WITH(cf::LSTMCell<float>(3, 4, o, rng), Contains("num_proj must be positive"));
}

TEST_CASE("MultiRNNCell rejects layers whose depths do not chain", "[errors]") {
  cf::Rng rng(7);
  REQUIRE_THROWS_MATCHES(cf::MultiRNNCell<float>(cf::BasicLSTMCell<float>(3, 4, rng), cf::GRUCell<float>(5, 2, rng)),
                         cf::ShapeError, Catch::Matchers::Predicate<cf::ShapeError>([](const cf::ShapeError& e) {
                           const std::string m = e.what();
                           return m.find("cell_1 (gru_cell(num_units=2)) has input depth 5") != std::string::npos &&
                                  m.find("outputs 4") != std::string::npos;
                         }));
  REQUIRE_THROWS_AS(cf::MultiRNNCell<float>(std::vector<cf::GRUCell<float>>{}), cf::ValueError);
}

TEST_CASE("CellState says what it holds", "[errors]") {
  cf::CellState<float> gru_state(cf::Matrix<float>::Zero(1, 2));
  REQUIRE_THROWS_WITH(gru_state.c(), Contains("GRU state h, which has no c"));
  REQUIRE_THROWS_AS(gru_state.get<cf::LSTMStateTuple<float>>(), cf::ValueError);
  REQUIRE(gru_state.h().cols() == 2);
}

TEST_CASE("Dense rejects wrong input and gradient shapes", "[errors]") {
  cf::Rng rng(8);
  cf::Dense<float> dense(150, 10, rng);
  REQUIRE_THROWS_WITH(dense(cf::Matrix<float>::Zero(4, 149)),
                      Contains("dense forward: input depth 149, kernel expects 150"));
  REQUIRE_THROWS_WITH(dense.backward(cf::Matrix<float>::Zero(4, 150), cf::Matrix<float>::Zero(4, 9)),
                      Contains("dy expected [4, 10], given [4, 9]"));
}

TEST_CASE("sparse softmax cross-entropy rejects bad labels", "[errors]") {
  cf::Matrix<float> logits = cf::Matrix<float>::Zero(3, 10);
  REQUIRE_THROWS_WITH(cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{1, 2}, logits),
                      Contains("2 labels for logits [3, 10]; expected 3"));
  REQUIRE_THROWS_MATCHES(cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{1, 10, 2}, logits),
                         cf::ValueError, Catch::Matchers::Predicate<cf::ValueError>([](const cf::ValueError& e) {
                           return std::string(e.what()).find("labels[1] = 10 is outside the valid range [0, 10)") !=
                                  std::string::npos;
                         }));
  REQUIRE_THROWS_AS(cf::sparse_softmax_cross_entropy_with_logits(std::vector<long>{1, 2, -1}, logits), cf::ValueError);
}

TEST_CASE("in_top_k rejects a target count that differs from the batch", "[errors]") {
  cf::Matrix<float> p = cf::Matrix<float>::Zero(3, 4);
  REQUIRE_THROWS_WITH(cf::in_top_k(p, std::vector<int>{0}, 1),
                      Contains("1 targets for predictions [3, 4]; expected 3"));
}

TEST_CASE("VariableList names what it has and checks shapes", "[errors]") {
  cf::Rng rng(9);
  cf::GRUCell<float> cell(3, 2, rng);
  cf::VariableList<float> vars;
  vars.add(cell, "rnn");
  REQUIRE_THROWS_WITH(vars.at("rnn/gru_cell/kernel"),
                      Contains("no variable named 'rnn/gru_cell/kernel'") && Contains("rnn/gru_cell/gates/kernel"));
  REQUIRE_THROWS_WITH(vars.add(cell, "rnn"), Contains("duplicate variable name 'rnn/gru_cell/gates/kernel'"));
  REQUIRE_THROWS_WITH(vars.assign("rnn/gru_cell/gates/bias", cf::Matrix<float>::Zero(1, 3)),
                      Contains("expected [4]") && Contains("given 1x3"));
}

TEST_CASE("Adam refuses a variable list that does not match its slots", "[errors]") {
  cf::Rng rng(10);
  cf::Dense<float> a(3, 2, rng), b(3, 4, rng, "other");
  cf::VariableList<float> va, vb, vab;
  va.add(a);
  vb.add(b);
  vab.add(a).add(b);
  cf::AdamOptimizer<float> adam;
  adam.apply_gradients(va);
  REQUIRE_THROWS_WITH(adam.apply_gradients(vb), Contains("'other/kernel'"));
  REQUIRE_THROWS_WITH(adam.apply_gradients(vab), Contains("slots for 2 variables, given 4"));
  REQUIRE_THROWS_AS(cf::AdamOptimizer<float>(0.001f, 1.0f), cf::ValueError);
}

TEST_CASE("dynamic_rnn_backward refuses a result computed by another cell", "[errors]") {
  cf::Rng rng(11);
  cf::GRUCell<float> a(3, 2, rng), b(3, 2, rng);
  cf::Tensor3<float> x(2, 3, 3);
  x.setConstant(0.1f);
  auto r = cf::dynamic_rnn(a, x);
  auto ds = b.zero_state(2);
  REQUIRE_THROWS_WITH(cf::dynamic_rnn_backward(b, r, nullptr, &ds), Contains("was not computed by this gru_cell"));
  REQUIRE_NOTHROW(cf::dynamic_rnn_backward(a, r, nullptr, &ds));
}
