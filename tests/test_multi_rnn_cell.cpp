// MultiRNNCell, AnyCell and CellState (rnn/multi_rnn_cell.hpp, rnn/any_cell.hpp,
// cells/cell_state.hpp): a one-layer stack is its cell, stacks whose layer count and kinds are
// chosen at run time (std::vector<AnyCell<T>>: names, shapes, training), a user's cell as a layer,
// layer access, what an AnyCell reports, and every error. Everything a stack must do as a cell
// (gradients, streams, padding, threads, checkpoints) is in test_cell_contract.cpp.
#include <catch2/catch.hpp>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/cell_kinds.hpp"
#include "support/elman_cell.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_multi_rnn_cell {

using namespace cellflow_test;
using Catch::Matchers::Contains;

template <class T>
using StackState = std::vector<cf::CellState<T>>;

TEMPLATE_TEST_CASE("a one-layer MultiRNNCell equals its cell", "[multi_rnn_cell][composition]", float, double) {
  using T = TestType;
  for_each_single_cell<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    using State = typename Cell::State;
    INFO(name);
    cf::MultiRNNCell<T> multi(cell);
    REQUIRE(multi.num_layers() == 1);
    REQUIRE(multi.output_size() == cell.output_size());

    cf::VariableList<T> v1, v2;
    v1.add(cell, "rnn");
    v2.add(multi, "rnn");
    REQUIRE(v1.size() == v2.size());
    for (std::size_t k = 0; k < v1.size(); ++k) {
      REQUIRE(v1[k].name.rfind("rnn/", 0) == 0);
      CHECK(v2[k].name == "rnn/multi_rnn_cell/cell_0/" + v1[k].name.substr(4));
      CHECK(v2[k].shape == v1[k].shape);
      CHECK(bitwise_equal(*v1[k].value, *v2[k].value));
    }

    cf::Rng rng(5);
    const Index B = 3, Tn = 5;
    const auto X = random_tensor<T>(B, Tn, kKindsDepth, rng);
    State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    const StackState<T> ms0{cf::CellState<T>(s0)};
    for (bool with_len : {false, true}) {
      INFO("with sequence_length: " << with_len);
      cf::RNNOptions o;
      if (with_len) o.sequence_length = std::vector<Index>{2, 0, 5};
      auto r1 = cf::dynamic_rnn(cell, X, s0, o);
      auto r2 = cf::dynamic_rnn(multi, X, ms0, o);
      CHECK(bitwise_equal(r1.outputs, r2.outputs));
      REQUIRE(r2.final_state.size() == 1);
      CHECK(same_state(r1.final_state, r2.final_state[0].template get<State>()));

      const auto dY = random_tensor<T>(B, Tn, cell.output_size(), rng);
      State dS = r1.final_state;
      randomize_state(dS, rng);
      const StackState<T> mdS{cf::CellState<T>(dS)};
      v1.zero_grad();
      v2.zero_grad();
      auto g1 = cf::dynamic_rnn_backward(cell, r1, &dY, &dS);
      auto g2 = cf::dynamic_rnn_backward(multi, r2, &dY, &mdS);
      CHECK(bitwise_equal(g1.d_inputs, g2.d_inputs));
      REQUIRE(g2.d_initial_state.size() == 1);
      CHECK(same_state(g1.d_initial_state, g2.d_initial_state[0].template get<State>()));
      for (std::size_t k = 0; k < v1.size(); ++k) {
        INFO(v1[k].name << " vs " << v2[k].name);
        CHECK(bitwise_equal(*v1[k].grad, *v2[k].grad));
        CHECK(v1[k].grad->cwiseAbs().maxCoeff() > T(0));
      }
    }
  });
}

/// The concepts.md sample: kinds and depth chosen at run time.
std::vector<cf::AnyCell<float>> runtime_layers(const std::vector<std::string>& kinds, cf::Rng& rng) {
  std::vector<cf::AnyCell<float>> layers;
  for (std::size_t l = 0; l < kinds.size(); ++l) {
    const Index depth = l == 0 ? 6 : 5;
    if (kinds[l] == "gru")
      layers.emplace_back(cf::GRUCell<float>(depth, 5, rng));
    else
      layers.emplace_back(cf::BasicLSTMCell<float>(depth, 5, rng));
  }
  return layers;
}

/// One step of the seed program's training (final h -> Dense -> mean xent -> Adam); returns the loss.
double train_step(cf::MultiRNNCell<float>& stack, cf::Dense<float>& dense, cf::VariableList<float>& vars,
                  cf::AdamOptimizer<float>& adam, const cf::Tensor3<float>& x, const std::vector<int>& y) {
  vars.zero_grad();
  auto r = cf::dynamic_rnn(stack, x);
  const cf::Matrix<float>& h = r.final_state.back().h();
  const auto xent = cf::sparse_softmax_cross_entropy_with_logits(y, dense(h));
  auto d_state = stack.zero_state(x.dimension(0));
  d_state.back().h() = dense.backward(h, xent.mean_gradient());
  cf::dynamic_rnn_backward(stack, r, nullptr, &d_state);
  adam.apply_gradients(vars);
  return xent.mean();
}

TEST_CASE("MultiRNNCell rejects layers whose depths do not chain", "[multi_rnn_cell][errors]") {
  cf::Rng rng(7);
  REQUIRE_THROWS_MATCHES(cf::MultiRNNCell<float>(cf::BasicLSTMCell<float>(3, 4, rng), cf::GRUCell<float>(5, 2, rng)),
                         cf::ShapeError, Catch::Matchers::Predicate<cf::ShapeError>([](const cf::ShapeError& e) {
                           const std::string m = e.what();
                           return m.find("cell_1 (gru_cell(num_units=2)) has input depth 5") != std::string::npos &&
                                  m.find("outputs 4") != std::string::npos;
                         }));
  REQUIRE_THROWS_AS(cf::MultiRNNCell<float>(std::vector<cf::GRUCell<float>>{}), cf::ValueError);
}

TEST_CASE("CellState says what it holds", "[multi_rnn_cell][errors]") {
  cf::CellState<float> gru_state(cf::Matrix<float>::Zero(1, 2));
  REQUIRE_THROWS_WITH(gru_state.c(), Contains("GRU state h, which has no c"));
  REQUIRE_THROWS_AS(gru_state.get<cf::LSTMStateTuple<float>>(), cf::ValueError);
  REQUIRE(gru_state.h().cols() == 2);
}

}  // namespace test_multi_rnn_cell
