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

TEST_CASE("a stack built at run time from std::vector<AnyCell<T>>: names, shapes, training", "[multi_rnn_cell]") {
  const std::vector<std::string> kinds{"lstm", "gru", "lstm", "gru"};
  cf::Rng rng(41), same_seed(41);
  cf::MultiRNNCell<float> stack(runtime_layers(kinds, rng));
  REQUIRE(stack.num_layers() == 4);
  CHECK(stack.input_depth() == 6);
  CHECK(stack.output_size() == 5);
  CHECK(stack.cell_name() == "multi_rnn_cell(4 layers)");
  for (Index l = 0; l < 4; ++l) {
    INFO("layer " << l);
    const bool gru = kinds[static_cast<std::size_t>(l)] == "gru";
    CHECK(stack.layer(l).scope_name() == (gru ? "gru_cell" : "basic_lstm_cell"));
    CHECK((stack.layer(l).as<cf::GRUCell<float>>() != nullptr) == gru);
    CHECK((stack.layer(l).as<cf::BasicLSTMCell<float>>() != nullptr) == !gru);
  }

  cf::Dense<float> dense(5, 3, rng);
  cf::VariableList<float> vars;
  vars.add(stack, "rnn").add(dense);
  const std::vector<std::pair<std::string, std::vector<Index>>> expected{
      {"rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel", {11, 20}},
      {"rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias", {20}},
      {"rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel", {10, 10}},
      {"rnn/multi_rnn_cell/cell_1/gru_cell/gates/bias", {10}},
      {"rnn/multi_rnn_cell/cell_1/gru_cell/candidate/kernel", {10, 5}},
      {"rnn/multi_rnn_cell/cell_1/gru_cell/candidate/bias", {5}},
      {"rnn/multi_rnn_cell/cell_2/basic_lstm_cell/kernel", {10, 20}},
      {"rnn/multi_rnn_cell/cell_2/basic_lstm_cell/bias", {20}},
      {"rnn/multi_rnn_cell/cell_3/gru_cell/gates/kernel", {10, 10}},
      {"rnn/multi_rnn_cell/cell_3/gru_cell/gates/bias", {10}},
      {"rnn/multi_rnn_cell/cell_3/gru_cell/candidate/kernel", {10, 5}},
      {"rnn/multi_rnn_cell/cell_3/gru_cell/candidate/bias", {5}},
      {"dense/kernel", {5, 3}},
      {"dense/bias", {3}}};
  REQUIRE(vars.size() == expected.size());
  for (std::size_t k = 0; k < expected.size(); ++k) {
    CHECK(vars[k].name == expected[k].first);
    CHECK(vars[k].shape == expected[k].second);
  }

  // The same stack written with static types: the same weights from the same seed, and the same
  // numbers through training. The cells are built one by one: the evaluation order of a call's
  // arguments is unspecified.
  cf::BasicLSTMCell<float> l0(6, 5, same_seed);
  cf::GRUCell<float> l1(5, 5, same_seed);
  cf::BasicLSTMCell<float> l2(5, 5, same_seed);
  cf::GRUCell<float> l3(5, 5, same_seed);
  cf::MultiRNNCell<float> fixed(l0, l1, l2, l3);
  cf::Dense<float> fixed_dense(5, 3, same_seed);
  cf::VariableList<float> fixed_vars;
  fixed_vars.add(fixed, "rnn").add(fixed_dense);
  REQUIRE(fixed_vars.size() == vars.size());
  for (std::size_t k = 0; k < vars.size(); ++k) {
    CHECK(fixed_vars[k].name == vars[k].name);
    CHECK(bitwise_equal(*fixed_vars[k].value, *vars[k].value));
  }

  cf::AdamOptimizer<float> adam(0.05f), fixed_adam(0.05f);
  const auto before = variable_values(stack);
  const auto x = random_tensor<float>(8, 4, 6, rng);
  const std::vector<int> y{0, 1, 2, 0, 1, 2, 0, 1};
  const double first = train_step(stack, dense, vars, adam, x, y);
  CHECK(train_step(fixed, fixed_dense, fixed_vars, fixed_adam, x, y) == first);
  for (std::size_t k = 0; k < vars.size(); ++k) {
    INFO(vars[k].name);
    CHECK(vars[k].grad->cwiseAbs().maxCoeff() > 0.0f);  // every layer is trained
    CHECK(bitwise_equal(*fixed_vars[k].value, *vars[k].value));
  }
  const auto after = variable_values(stack);
  for (std::size_t k = 0; k < before.size(); ++k) CHECK_FALSE(bitwise_equal(before[k], after[k]));
  double last = first;
  for (int step = 0; step < 20; ++step) last = train_step(stack, dense, vars, adam, x, y);
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.5 * first);  // it learns the batch
}

TEST_CASE("a user's cell is a layer like any other", "[multi_rnn_cell]") {
  cf::Rng rng(42);
  std::vector<cf::AnyCell<double>> layers;
  layers.emplace_back(mycells::ElmanCell<double>(3, 4, rng));
  layers.emplace_back(cf::CudnnCompatibleGRUCell<double>(4, 2, rng));
  cf::MultiRNNCell<double> stack(std::move(layers));
  CHECK(stack.layer(0).cell_name() == "elman_cell(num_units=4)");
  CHECK(stack.layer(0).scope_name() == "elman_cell");
  CHECK(stack.layer(0).as<mycells::ElmanCell<double>>() != nullptr);
  const cf::CellConfig c = stack.layer(0).config();  // no config(): its name and sizes
  CHECK(c.kind == "elman_cell(num_units=4)");
  CHECK(c.input_depth == 3);
  CHECK(c.output_size == 4);
  CHECK(c.num_units == 0);
  cf::VariableList<double> vars;
  vars.add(stack, "rnn");
  REQUIRE(vars.size() == 8);
  CHECK(vars[0].name == "rnn/multi_rnn_cell/cell_0/elman_cell/kernel");
  CHECK(vars[1].name == "rnn/multi_rnn_cell/cell_0/elman_cell/bias");
  CHECK(vars[2].name == "rnn/multi_rnn_cell/cell_1/cudnn_compatible_gru_cell/gates/kernel");
  // The layer runs exactly as the cell alone.
  const auto x = random_tensor<double>(2, 5, 3, rng);
  const auto& elman = *stack.layer(0).as<mycells::ElmanCell<double>>();
  const auto alone = cf::dynamic_rnn(elman, x);
  cf::MultiRNNCell<double> one(std::vector<cf::AnyCell<double>>{stack.layer(0)});
  const auto in_stack = cf::dynamic_rnn(one, x);
  CHECK(bitwise_equal(alone.outputs, in_stack.outputs));
  CHECK(bitwise_equal(alone.final_state, in_stack.final_state[0].h()));
}

TEST_CASE("MultiRNNCell::layer(l) for l < 0 or l >= num_layers() is a ValueError", "[multi_rnn_cell][errors]") {
  cf::Rng rng(43);
  cf::MultiRNNCell<float> stack(cf::GRUCell<float>(2, 3, rng), cf::BasicLSTMCell<float>(3, 2, rng));
  const auto& const_stack = stack;
  CHECK(stack.layer(1).output_size() == 2);
  CHECK(const_stack.layer(0).input_depth() == 2);
  CHECK_THROWS_MATCHES(stack.layer(-1), cf::ValueError,
                       what_contains<cf::ValueError>("multi_rnn_cell(2 layers): layer -1 is outside [0, 2)"));
  CHECK_THROWS_MATCHES(stack.layer(2), cf::ValueError,
                       what_contains<cf::ValueError>("multi_rnn_cell(2 layers): layer 2 is outside [0, 2)"));
  CHECK_THROWS_AS(const_stack.layer(2), cf::ValueError);
  CHECK_THROWS_AS(const_stack.layer(-1), cf::ValueError);
}

TEST_CASE("AnyCell reports its cell's name, scope, config and sizes, and copies deeply", "[multi_rnn_cell]") {
  cf::Rng rng(44);
  cf::LSTMOptions<float> o;
  o.use_peepholes = true;
  o.num_proj = 2;
  o.cell_clip = 0.5f;
  o.forget_bias = 0.25f;
  cf::AnyCell<float> any = cf::LSTMCell<float>(3, 4, o, rng);
  CHECK(any.cell_name() == "lstm_cell(num_units=4)");
  CHECK(any.scope_name() == "lstm_cell");
  CHECK(cf::scope_name_of(any) == "lstm_cell");
  CHECK(any.input_depth() == 3);
  CHECK(any.output_size() == 2);
  const cf::CellConfig c = any.config();
  CHECK(c.kind == "LSTMCell");
  CHECK(c.num_units == 4);
  CHECK(c.output_size == 2);
  CHECK(c.get("forget_bias") == 0.25);
  CHECK(c.get("use_peepholes") == 1);
  CHECK(c.get("num_proj") == 2);
  CHECK(c.get("cell_clip") == 0.5);
  CHECK_FALSE(c.has("proj_clip"));
  CHECK(cf::config_of(any).kind == "LSTMCell");
  CHECK(any.as<cf::GRUCell<float>>() == nullptr);
  REQUIRE(any.as<cf::LSTMCell<float>>() != nullptr);
  CHECK(any.zero_state(2).is_lstm());

  cf::AnyCell<float> copy = any;  // a copy owns a cell of its own
  copy.as<cf::LSTMCell<float>>()->kernel().value.setZero();
  CHECK_FALSE(any.as<cf::LSTMCell<float>>()->kernel().value.isZero(0));
  cf::AnyCell<float> gru = cf::GRUCell<float>(3, 2, rng);
  CHECK(gru.scope_name() == "gru_cell");
  CHECK(gru.config().kind == "GRUCell");
  CHECK_FALSE(gru.zero_state(1).is_lstm());
  gru = any;  // copy assignment replaces the kind
  CHECK(gru.scope_name() == "lstm_cell");
  CHECK(gru.as<cf::LSTMCell<float>>() != any.as<cf::LSTMCell<float>>());

  // A stack's config is its name and sizes (TF's MultiRNNCell has no class options here).
  cf::MultiRNNCell<float> stack(any, cf::GRUCell<float>(2, 2, rng));
  const cf::CellConfig sc = cf::config_of(stack);
  CHECK(sc.kind == "multi_rnn_cell(2 layers)");
  CHECK(sc.input_depth == 3);
  CHECK(sc.output_size == 2);
  CHECK(cf::scope_name_of(stack) == "multi_rnn_cell");
}

TEST_CASE("zero_grad() of a stack clears every layer's gradients", "[multi_rnn_cell]") {
  cf::Rng rng(45);
  auto stack = mixed_kinds_stack<double>(rng);
  cf::VariableList<double> vars;
  vars.add(stack);
  REQUIRE(vars.size() == 12);
  for (auto& v : vars) v.grad->setConstant(3.0);
  stack.zero_grad();
  for (auto& v : vars) CHECK(v.grad->isZero(0));
  for (auto& v : vars) v.grad->setConstant(3.0);
  stack.layer(1).zero_grad();  // one layer only
  for (auto& v : vars) {
    INFO(v.name);
    CHECK(v.grad->isZero(0) == (v.name.find("cell_1/") != std::string::npos));
  }
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
