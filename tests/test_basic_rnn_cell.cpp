// BasicRNNCell, the `activation` option of BasicRNNCell / BasicLSTMCell / LSTMCell / GRUCell, and
// ResidualWrapper (issue 14):
//   * against the independent float64 torch reference tests/fixtures/rnn_cells_reference.txt
//     (generate_rnn_cells.py: BasicRNNCell tanh and relu, BasicLSTMCell and LSTMCell(peepholes,
//     num_proj) and GRUCell with relu, ResidualWrapper(GRUCell); sequence_length, initial states,
//     gradients of every input, state and variable), float and double;
//   * the activation option: configs, tanh given as a user's function equals the built-in, a
//     user's activation through the central-difference gradient check;
//   * bad input: sizes, weights, empty functions, ResidualWrapper widths, configs that cannot
//     hold an activation;
//   * the model layer: BasicRNN and activations through save / load_model; a user's activation
//     refused by Model::save with the layer named, and its weights round trip by name;
//   * the converters: a real torch.nn.RNN(relu) module's state_dict (outputs, h_n and gradients)
//     through BasicRNNCells and back, the same as Keras SimpleRNN weights; no PyTorch mapping for a
//     relu LSTM or a residual layer.
// The cell contract test (test_cell_contract.cpp) runs BasicRNNCell (tanh, relu), ResidualWrapper
// and a stack of them with user activations through everything else.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/states.hpp"
#include "support/temp_dir.hpp"
#include "support/test_util.hpp"

namespace test_basic_rnn_cell {

using namespace cellflow_test;

// ---- the reference fixture ----

const std::map<std::string, FixtureCase>& cases() {
  static const auto c = load_fixture_file(fixture_path("rnn_cells_reference.txt"));
  return c;
}

template <class T>
constexpr double rtol() {
  return std::is_same_v<T, float> ? 2e-4 : 1e-9;
}
template <class T>
constexpr double atol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-10;
}

template <class A>
void expect_close(const std::string& what, const A& actual, const FixtureTensor& expected, double rt, double at) {
  INFO(what);
  REQUIRE(static_cast<std::size_t>(actual.size()) == expected.values.size());
  double worst = 0;
  for (std::size_t k = 0; k < expected.values.size(); ++k) {
    const double d = std::abs(static_cast<double>(actual.data()[k]) - expected.values[k]);
    worst = std::max(worst, std::isnan(d) ? 1e300 : d / (at + rt * std::abs(expected.values[k])));
  }
  INFO("worst |diff| / allowed = " << worst);
  CHECK(worst <= 1.0);
}

/// The state parts of a Matrix or LSTMStateTuple, named as the fixture names them.
template <class T>
std::vector<std::pair<std::string, cf::Matrix<T>*>> named_parts(cf::Matrix<T>& s) {
  return {{"h", &s}};
}
template <class T>
std::vector<std::pair<std::string, cf::Matrix<T>*>> named_parts(cf::LSTMStateTuple<T>& s) {
  return {{"c", &s.c}, {"h", &s.h}};
}

template <class T>
cf::Activation<T> activation_of(const FixtureCase& fc) {
  return fc.config_str("activation") == "relu" ? cf::Activation<T>::relu() : cf::Activation<T>::tanh();
}

template <class T, class Cell>
void run_case(const FixtureCase& fc, Cell& cell) {
  using State = typename Cell::State;
  cf::VariableList<T> vars;
  vars.add(cell, "rnn");
  for (const auto& v : vars) {
    INFO("variable " << v.name);
    REQUIRE(fc.has(v.name));
  }
  for (const auto& v : vars) vars.assign(v.name, to_matrix<T>(fc.tensor(v.name)));
  const cf::Tensor3<T> X = to_tensor3<T>(fc.tensor("inputs")), dY = to_tensor3<T>(fc.tensor("w_outputs"));
  const Index B = X.dimension(0);
  cf::RNNOptions opt;
  if (fc.has_ints("sequence_length")) {
    const auto& l = fc.int_list("sequence_length");
    opt.sequence_length = std::vector<Index>(l.begin(), l.end());
  }
  State s0 = cell.zero_state(B), dF = cell.zero_state(B);
  for (auto& [n, m] : named_parts(s0)) *m = to_matrix<T>(fc.tensor("initial_state/" + n));
  for (auto& [n, m] : named_parts(dF)) *m = to_matrix<T>(fc.tensor("w_final_state/" + n));

  auto r = cf::dynamic_rnn(cell, X, s0, opt);
  expect_close("outputs", r.outputs, fc.tensor("outputs"), rtol<T>(), atol<T>());
  for (auto& [n, m] : named_parts(r.final_state))
    expect_close("final_state/" + n, *m, fc.tensor("final_state/" + n), rtol<T>(), atol<T>());
  vars.zero_grad();
  auto g = cf::dynamic_rnn_backward(cell, r, &dY, &dF);
  expect_close("grad/inputs", g.d_inputs, fc.tensor("grad/inputs"), rtol<T>(), atol<T>());
  for (auto& [n, m] : named_parts(g.d_initial_state))
    expect_close("grad/initial_state/" + n, *m, fc.tensor("grad/initial_state/" + n), rtol<T>(), atol<T>());
  for (const auto& v : vars) expect_close("grad/" + v.name, *v.grad, fc.tensor("grad/" + v.name), rtol<T>(), atol<T>());
}

TEMPLATE_TEST_CASE("BasicRNNCell, activations and ResidualWrapper match the torch reference", "[basic_rnn][reference]",
                   float, double) {
  using T = TestType;
  REQUIRE(cases().size() == 7);
  for (const auto& [name, fc] : cases()) {
    if (fc.config_str("kind") == "torch_nn_rnn") continue;  // the converter's case, below
    INFO("fixture case " << name << ", " << (sizeof(T) == 4 ? "float" : "double"));
    cf::Rng rng(1);
    const std::string kind = fc.config_str("kind");
    const Index D = static_cast<Index>(fc.config_num("input_depth")),
                U = static_cast<Index>(fc.config_num("num_units"));
    const cf::Activation<T> act = activation_of<T>(fc);
    if (kind == "basic_rnn") {
      cf::BasicRNNCell<T> cell(D, U, rng, act);
      run_case<T>(fc, cell);
    } else if (kind == "basic_lstm") {
      cf::BasicLSTMCell<T> cell(D, U, rng, fc.config_num("forget_bias"), act);
      run_case<T>(fc, cell);
    } else if (kind == "lstm") {
      cf::LSTMOptions<T> o;
      o.use_peepholes = fc.config_num("use_peepholes") != 0;
      o.num_proj = static_cast<Index>(fc.config_num("num_proj"));
      o.forget_bias = static_cast<T>(fc.config_num("forget_bias"));
      o.activation = act;
      cf::LSTMCell<T> cell(D, U, o, rng);
      run_case<T>(fc, cell);
    } else if (kind == "gru" && fc.config_num("residual") != 0) {
      cf::ResidualWrapper<cf::GRUCell<T>> cell(cf::GRUCell<T>(D, U, rng, act));
      run_case<T>(fc, cell);
    } else if (kind == "gru") {
      cf::GRUCell<T> cell(D, U, rng, act);
      run_case<T>(fc, cell);
    } else {
      FAIL("unknown kind " << kind);
    }
  }
}

// ---- the activation option ----

TEST_CASE("activation: configs record it, tanh as a user's function equals the built-in", "[basic_rnn][activation]") {
  cf::Rng rng(3);
  CHECK_FALSE(cf::BasicRNNCell<double>(3, 4, rng).config().has("activation"));
  CHECK(cf::BasicRNNCell<double>(3, 4, rng, cf::Activation<double>::relu()).config().get("activation") == 1);
  CHECK(cf::GRUCell<double>(3, 4, rng, cf::Activation<double>::relu()).config().get("activation") == 1);
  CHECK_FALSE(cf::BasicLSTMCell<double>(3, 4, rng).config().has("activation"));
  CHECK(cf::BasicLSTMCell<double>(3, 4, rng, 1.0, cf::Activation<double>::relu()).config().get("activation") == 1);
  const cf::Activation<double> user_tanh([](double x) { return std::tanh(x); },
                                         [](double x) { return 1 - std::tanh(x) * std::tanh(x); }, "my_tanh");
  CHECK(user_tanh.is_custom());
  CHECK(user_tanh.name() == "my_tanh");
  CHECK(cf::GRUCell<double>(3, 4, rng, user_tanh).config().get("activation") == -1);
  CHECK(cf::Activation<double>::relu()(-2.0) == 0.0);
  CHECK(cf::Activation<double>::relu().derivative(0.5) == 1.0);

  // The same weights with the built-in tanh and with tanh given as a user's function.
  cf::LSTMOptions<double> builtin, user;
  builtin.use_peepholes = user.use_peepholes = true;
  user.activation = user_tanh;
  cf::LSTMCell<double> a(3, 4, builtin, rng);
  randomize_variables(a, rng);
  cf::LSTMCell<double> b(a.weights(), user);
  const cf::Tensor3<double> X = random_tensor<double>(2, 5, 3, rng);
  const cf::Tensor3<double> dY = random_tensor<double>(2, 5, 4, rng);
  cf::RNNOptions opt;
  opt.sequence_length = std::vector<Index>{5, 3};
  auto ra = cf::dynamic_rnn(a, X, opt);
  auto rb = cf::dynamic_rnn(b, X, opt);
  CHECK(max_diff(ra.outputs, rb.outputs) <= 1e-14);
  cf::zero_grad(a);
  cf::zero_grad(b);
  auto ga = cf::dynamic_rnn_backward(a, ra, &dY), gb = cf::dynamic_rnn_backward(b, rb, &dY);
  CHECK(max_diff(ga.d_inputs, gb.d_inputs) <= 1e-13);
  CHECK(max_diff(a.kernel().grad, b.kernel().grad) <= 1e-13);
  // relu really changes the function.
  cf::LSTMOptions<double> relu = builtin;
  relu.activation = cf::Activation<double>::relu();
  cf::LSTMCell<double> c(a.weights(), relu);
  CHECK(max_diff(cf::dynamic_rnn(c, X, opt).outputs, ra.outputs) > 1e-3);
}

/// A smooth user's activation: x / (1 + x^2), derivative (1 - x^2) / (1 + x^2)^2.
cf::Activation<double> bump() {
  return cf::Activation<double>([](double x) { return x / (1 + x * x); },
                                [](double x) { return (1 - x * x) / ((1 + x * x) * (1 + x * x)); }, "bump");
}

TEST_CASE("activation: a user's function through the central-difference gradient check", "[basic_rnn][gradcheck]") {
  cf::Rng rng(4);
  cf::BasicRNNCell<double> rnn(3, 3, rng, bump());
  randomize_variables(rnn, rng);
  check_rnn_gradients(rnn, "BasicRNNCell(bump)", 3, rng);
  cf::LSTMOptions<double> o;
  o.num_proj = 2;
  o.cell_clip = 5.0;  // never reached: exercises the clip path with a user's activation
  o.activation = bump();
  cf::LSTMCell<double> lstm(3, 3, o, rng);
  randomize_variables(lstm, rng);
  check_rnn_gradients(lstm, "LSTMCell(num_proj, bump)", 3, rng);
}

// ---- bad input ----

TEST_CASE("BasicRNNCell, Activation and ResidualWrapper reject bad input clearly", "[basic_rnn][errors]") {
  cf::Rng rng(5);
  CHECK_THROWS_MATCHES(cf::BasicRNNCell<double>(0, 4, rng), cf::ValueError,
                       what_contains<cf::ValueError>("input_depth=0"));
  CHECK_THROWS_AS(cf::BasicRNNCell<double>(3, -1, rng), cf::ValueError);
  cf::BasicRNNCell<double> cell(3, 4, rng);
  CHECK_THROWS_MATCHES(cell.set_weights({cf::Matrix<double>::Zero(6, 4), cf::Matrix<double>::Zero(1, 4)}),
                       cf::ShapeError, what_contains<cf::ShapeError>("kernel"));
  CHECK_THROWS_MATCHES(cf::BasicRNNCell<double>(cf::BasicRNNWeights<double>{cf::Matrix<double>::Zero(4, 4), {}}),
                       cf::ShapeError, what_contains<cf::ShapeError>("[input_depth + num_units, num_units]"));
  CHECK_THROWS_MATCHES(cf::dynamic_rnn(cell, random_tensor<double>(2, 3, 5, rng)), cf::ShapeError,
                       what_contains<cf::ShapeError>("basic_rnn_cell(num_units=4)"));
  CHECK_THROWS_MATCHES(cell(cf::Matrix<double>::Zero(2, 3), cf::Matrix<double>::Zero(2, 5)), cf::ShapeError,
                       what_contains<cf::ShapeError>("state expected h [2, 4], given [2, 5]"));
  CHECK_THROWS_MATCHES(cf::Activation<double>(
                           nullptr, [](double) { return 1.0; }, "half"),
                       cf::ValueError, what_contains<cf::ValueError>("'half'"));
  CHECK_THROWS_MATCHES(cf::Activation<double>::from_code(7, "here"), cf::ValueError,
                       what_contains<cf::ValueError>("unknown activation code 7"));
  CHECK_THROWS_MATCHES(cf::ResidualWrapper<cf::GRUCell<double>>(cf::GRUCell<double>(3, 4, rng)), cf::ShapeError,
                       what_contains<cf::ShapeError>("gru_cell(num_units=4) reads 3 features and outputs 4"));
  // A wrapped LSTM with a projection back to its input depth is fine.
  cf::LSTMOptions<double> o;
  o.num_proj = 3;
  CHECK_NOTHROW(cf::ResidualWrapper<cf::LSTMCell<double>>(cf::LSTMCell<double>(3, 5, o, rng)));
}

TEST_CASE("ResidualWrapper: output = input + cell output, the cell's state and variables", "[basic_rnn][residual]") {
  cf::Rng rng(6);
  cf::GRUCell<double> inner(4, 4, rng);
  randomize_variables(inner, rng);
  cf::ResidualWrapper<cf::GRUCell<double>> res(inner);
  CHECK(res.config().kind == "ResidualWrapper");
  CHECK(res.wrapped_config().kind == "GRUCell");
  CHECK(res.cell_name() == "residual_wrapper(gru_cell(num_units=4))");
  const cf::Tensor3<double> X = random_tensor<double>(3, 4, 4, rng);
  cf::RNNOptions opt;
  opt.sequence_length = std::vector<Index>{4, 2, 0};
  const auto a = cf::dynamic_rnn(inner, X, opt);
  const auto r = cf::dynamic_rnn(res, X, opt);
  bool exact = true;
  for (Index b = 0; b < 3; ++b)
    for (Index t = 0; t < 4; ++t)
      for (Index k = 0; k < 4; ++k) {
        const bool ran = t < (*opt.sequence_length)[static_cast<std::size_t>(b)];
        exact = exact && r.outputs(b, t, k) == (ran ? X(b, t, k) + a.outputs(b, t, k) : 0.0);
      }
  CHECK(exact);
  CHECK(bitwise_equal(r.final_state, a.final_state));
  // Inside a MultiRNNCell and inside another wrapper; names as without the wrapper.
  using Res = cf::ResidualWrapper<cf::GRUCell<double>>;
  cf::MultiRNNCell<double> stack(cf::BasicRNNCell<double>(2, 4, rng), cf::ResidualWrapper<Res>(Res(inner)));
  cf::VariableList<double> vars;
  vars.add(stack, "rnn");
  REQUIRE(vars.size() == 6);
  CHECK(vars[2].name == "rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel");
  const auto twice = cf::dynamic_rnn(cf::ResidualWrapper<Res>(Res(inner)), X);
  const auto once = cf::dynamic_rnn(res, X);
  bool doubled = true;
  for (Index k = 0; k < X.size(); ++k)
    doubled = doubled && twice.outputs.data()[k] == once.outputs.data()[k] + X.data()[k];
  CHECK(doubled);
}

// ---- the model layer ----

TEST_CASE("Model: BasicRNN and activations survive save and load_model", "[basic_rnn][model]") {
  cf::Rng rng(7);
  cf::LSTMOptions<double> lo;
  lo.activation = cf::Activation<double>::relu();
  lo.use_peepholes = true;
  cf::Model<double> model(3,
                          {cf::BasicRNN(5, cf::ActivationKind::relu), cf::GRU(4, cf::ActivationKind::relu),
                           cf::BasicLSTM(4, 0.5, cf::ActivationKind::relu), cf::LSTM(3, lo), cf::BasicRNN(4)},
                          2, rng);
  CHECK(model.rnn().layer(0).config().kind == "BasicRNNCell");
  CHECK(model.rnn().layer(0).config().get("activation") == 1);
  CHECK(model.rnn().layer(3).config().get("activation") == 1);
  CHECK_FALSE(model.rnn().layer(4).config().has("activation"));
  const std::string text = cf::to_text(model.config());
  INFO(text);
  CHECK(text.find("cell BasicRNNCell num_units=5 activation=relu\n") != std::string::npos);
  CHECK(text.find("cell GRUCell num_units=4 activation=relu\n") != std::string::npos);
  CHECK(text.find("cell BasicRNNCell num_units=4\n") != std::string::npos);
  CHECK(cf::differences(cf::model_config_from_text(text), model.config()).empty());

  TempDir dir;
  const std::string path = dir.file("rnn.ckpt");
  model.save(path);
  const auto loaded = cf::load_model<double>(path);
  CHECK(cf::differences(loaded.config(), model.config()).empty());
  const cf::Tensor3<double> X = random_tensor<double>(4, 6, 3, rng);
  CHECK(bitwise_equal(loaded.logits(X), model.logits(X)));
  // A relu model differs from the same weights with tanh: the activation is really rebuilt.
  cf::ModelConfig tanh_config = model.config();
  for (auto& c : tanh_config.cells) c.options.erase("activation");
  cf::Model<double> tanh_model(tanh_config, rng);
  for (const auto& v : model.variables()) tanh_model.variables().assign(v.name, *v.value);
  CHECK_FALSE(bitwise_equal(tanh_model.logits(X), model.logits(X)));
  CHECK_THROWS_MATCHES(tanh_model.load_weights(path), cf::ValueError, what_contains<cf::ValueError>("activation=relu"));

  // Options a kind does not take, unknown activations.
  CHECK_THROWS_MATCHES(cf::Model<double>(3,
                                         {cf::GRU(4),
                                          [] {
                                            auto c = cf::CudnnCompatibleGRU(4);
                                            c.options["activation"] = 1;
                                            return c;
                                          }()},
                                         2, rng),
                       cf::ValueError,
                       what_contains<cf::ValueError>("CudnnCompatibleGRUCell has no option 'activation'"));
  std::string bad = text;
  bad.replace(bad.find("activation=relu"), 15, "activation=elu");
  CHECK_THROWS_MATCHES(cf::model_config_from_text(bad), cf::ValueError,
                       what_contains<cf::ValueError>("unknown activation 'elu'"));
}

TEST_CASE("Model: a user's activation is refused by save, naming the layer, weights load by name",
          "[basic_rnn][model]") {
  cf::Rng rng(8);
  cf::MultiRNNCell<double> stack(cf::GRUCell<double>(3, 4, rng), cf::BasicRNNCell<double>(4, 4, rng, bump()));
  cf::Model<double> model(stack, cf::Dense<double>(4, 2, rng));
  TempDir dir;
  const std::string path = dir.file("user.ckpt");
  CHECK_THROWS_MATCHES(model.save(path), cf::ValueError,
                       what_contains<cf::ValueError>("Model::save: layer 1 (basic_rnn_cell(num_units=4)) has a "
                                                     "user-supplied activation"));
  CHECK_FALSE(std::ifstream(path).good());
  CHECK_THROWS_AS(model.checkpoint_bytes(), cf::ValueError);
  CHECK_THROWS_MATCHES(cf::to_text(model.config()), cf::ValueError, what_contains<cf::ValueError>("layer 1"));
  CHECK_THROWS_MATCHES(cf::make_cell<double>(model.config().cells[1], 4, rng), cf::ValueError,
                       what_contains<cf::ValueError>("user-supplied activation"));
  // The documented way: the weights by name, into a model built in code.
  cf::io::save_checkpoint(path, model.variables());
  cf::MultiRNNCell<double> stack2(cf::GRUCell<double>(3, 4, rng), cf::BasicRNNCell<double>(4, 4, rng, bump()));
  cf::Model<double> other(stack2, cf::Dense<double>(4, 2, rng));
  const cf::Tensor3<double> X = random_tensor<double>(2, 5, 3, rng);
  CHECK_FALSE(bitwise_equal(other.logits(X), model.logits(X)));
  other.load_weights(path);
  CHECK(bitwise_equal(other.logits(X), model.logits(X)));
}

TEST_CASE("Model: a ResidualWrapper layer saves and loads by variable name, load_model says it cannot rebuild it",
          "[basic_rnn][model][residual]") {
  cf::Rng rng(10);
  cf::MultiRNNCell<double> stack(cf::GRUCell<double>(3, 4, rng),
                                 cf::ResidualWrapper<cf::BasicRNNCell<double>>(cf::BasicRNNCell<double>(4, 4, rng)));
  cf::Model<double> model(stack, cf::Dense<double>(4, 2, rng));
  CHECK(model.config().cells[1].kind == "ResidualWrapper");
  TempDir dir;
  const std::string path = dir.file("residual.ckpt");
  model.save(path);
  CHECK_THROWS_MATCHES(cf::load_model<double>(path), cf::ValueError,
                       what_contains<cf::ValueError>("unknown cell kind 'ResidualWrapper'"));
  cf::MultiRNNCell<double> stack2(cf::GRUCell<double>(3, 4, rng),
                                  cf::ResidualWrapper<cf::BasicRNNCell<double>>(cf::BasicRNNCell<double>(4, 4, rng)));
  cf::Model<double> other(stack2, cf::Dense<double>(4, 2, rng));
  const cf::Tensor3<double> X = random_tensor<double>(2, 5, 3, rng);
  other.load_weights(path);
  CHECK(bitwise_equal(other.logits(X), model.logits(X)));
}

// ---- converters ----

TEST_CASE(
    "converters: a torch.nn.RNN(relu) module's state_dict (and Keras SimpleRNN weights) into BasicRNNCells and back",
    "[basic_rnn][convert]") {
  const FixtureCase& fc = cases().at("torch_rnn_relu");
  cf::Rng rng(11);
  const auto relu = cf::Activation<double>::relu();
  cf::MultiRNNCell<double> multi(cf::BasicRNNCell<double>(3, 4, rng, relu), cf::BasicRNNCell<double>(4, 4, rng, relu));
  cf::convert::StateDict<double> sd;
  for (const char* base : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"})
    for (int l = 0; l < 2; ++l) {
      const std::string key = std::string(base) + "_l" + std::to_string(l);
      sd[key] = to_matrix<double>(fc.tensor(key));
    }
  cf::convert::load_pytorch_state_dict(multi, sd);
  const cf::Tensor3<double> X = to_tensor3<double>(fc.tensor("inputs")),
                            dY = to_tensor3<double>(fc.tensor("w_outputs"));
  auto s0 = multi.zero_state(3), dF = multi.zero_state(3);
  for (Index l = 0; l < 2; ++l) {
    s0[static_cast<std::size_t>(l)].h() = layer_of<double>(fc.tensor("h0"), l);
    dF[static_cast<std::size_t>(l)].h() = layer_of<double>(fc.tensor("w_h_n"), l);
  }
  auto r = cf::dynamic_rnn(multi, X, s0);
  expect_close("outputs", r.outputs, fc.tensor("outputs"), 1e-12, 1e-13);
  for (Index l = 0; l < 2; ++l) {
    const cf::Matrix<double> hn = layer_of<double>(fc.tensor("h_n"), l);
    CHECK(max_diff(r.final_state[static_cast<std::size_t>(l)].h(), hn) <= 1e-13);
  }
  cf::zero_grad(multi);
  auto g = cf::dynamic_rnn_backward(multi, r, &dY, &dF);
  expect_close("grad/inputs", g.d_inputs, fc.tensor("grad/inputs"), 1e-10, 1e-11);
  const auto grads = cf::convert::pytorch_gradients(multi);
  REQUIRE(grads.size() == 8);
  for (const auto& [key, m] : grads) expect_close("grad/" + key, m, fc.tensor("grad/" + key), 1e-10, 1e-11);
  // Back to PyTorch: the same weights, the bias summed into bias_ih (bias_hh 0).
  const auto back = cf::convert::pytorch_state_dict(multi);
  for (int l = 0; l < 2; ++l) {
    const std::string s = "_l" + std::to_string(l);
    CHECK(bitwise_equal(back.at("weight_ih" + s), sd.at("weight_ih" + s)));
    CHECK(bitwise_equal(back.at("weight_hh" + s), sd.at("weight_hh" + s)));
    CHECK(bitwise_equal(back.at("bias_ih" + s), cf::Matrix<double>(sd.at("bias_ih" + s) + sd.at("bias_hh" + s))));
    CHECK(back.at("bias_hh" + s).isZero(0));
  }
  // Keras SimpleRNN(activation='relu') layers hold the same function: kernel = W_ih^T,
  // recurrent_kernel = W_hh^T, bias = b_ih + b_hh.
  std::vector<cf::convert::KerasSimpleRNNWeights<double>> keras;
  for (int l = 0; l < 2; ++l) {
    const std::string s = "_l" + std::to_string(l);
    keras.push_back({sd.at("weight_ih" + s).transpose(), sd.at("weight_hh" + s).transpose(),
                     sd.at("bias_ih" + s) + sd.at("bias_hh" + s)});
  }
  cf::MultiRNNCell<double> from_keras(cf::BasicRNNCell<double>(3, 4, rng, relu),
                                      cf::BasicRNNCell<double>(4, 4, rng, relu));
  cf::convert::load_keras(from_keras, keras);
  expect_close("outputs from Keras weights", cf::dynamic_rnn(from_keras, X, s0).outputs, fc.tensor("outputs"), 1e-12,
               1e-13);
  const auto k0 = cf::convert::simple_rnn_to_keras(cf::convert::basic_rnn_weights(from_keras.layer(0)));
  CHECK(bitwise_equal(k0.kernel, keras[0].kernel));
  CHECK(bitwise_equal(k0.recurrent_kernel, keras[0].recurrent_kernel));
  CHECK_THROWS_MATCHES(cf::convert::load_keras(multi.layer(0), cf::convert::KerasLSTMWeights<double>{}), cf::ValueError,
                       what_contains<cf::ValueError>("cannot take Keras LSTM weights"));
  CHECK_THROWS_MATCHES(
      cf::convert::load_keras(multi.layer(1), keras[0]), cf::ShapeError,
      what_contains<cf::ShapeError>("kernel (basic_rnn_cell(num_units=4)) expected [4, 4], given [3, 4]"));
  // One nonlinearity per module; a user's function has none.
  cf::MultiRNNCell<double> mixed(cf::BasicRNNCell<double>(3, 4, rng, relu), cf::BasicRNNCell<double>(4, 4, rng));
  CHECK_THROWS_MATCHES(
      cf::convert::pytorch_state_dict(mixed), cf::ValueError,
      what_contains<cf::ValueError>("one nonlinearity; layer 0 has activation relu, layer 1 has tanh"));
  cf::BasicRNNCell<double> user(3, 4, rng, bump());
  CHECK_THROWS_MATCHES(
      cf::convert::pytorch_state_dict(user), cf::ValueError,
      what_contains<cf::ValueError>("user-supplied activation; PyTorch's nn.RNN computes tanh or relu"));
  cf::MultiRNNCell<double> lstm_and_rnn(cf::BasicLSTMCell<double>(3, 4, rng), cf::BasicRNNCell<double>(4, 4, rng));
  CHECK_THROWS_MATCHES(cf::convert::pytorch_state_dict(lstm_and_rnn), cf::ValueError,
                       what_contains<cf::ValueError>("all nn.LSTM, all nn.GRU or all nn.RNN layers"));
}

TEST_CASE("converters: non-tanh LSTMs and residual layers have no PyTorch mapping", "[basic_rnn][convert]") {
  cf::Rng rng(9);
  cf::BasicLSTMCell<double> relu(3, 4, rng, 1.0, cf::Activation<double>::relu());
  CHECK_THROWS_MATCHES(
      cf::convert::pytorch_state_dict(relu), cf::ValueError,
      what_contains<cf::ValueError>("with activation relu; PyTorch's nn.LSTM and nn.GRU compute tanh"));
  cf::convert::StateDict<double> sd =
      cf::convert::pytorch_state_dict(*std::make_unique<cf::BasicLSTMCell<double>>(3, 4, rng));
  CHECK_THROWS_MATCHES(cf::convert::load_pytorch_state_dict(relu, sd), cf::ValueError,
                       what_contains<cf::ValueError>("with activation relu"));
  cf::ResidualWrapper<cf::BasicLSTMCell<double>> res(cf::BasicLSTMCell<double>(4, 4, rng));
  CHECK_THROWS_MATCHES(cf::convert::pytorch_state_dict(res), cf::ValueError,
                       what_contains<cf::ValueError>("no PyTorch nn.LSTM/nn.GRU/nn.RNN counterpart"));
}

}  // namespace test_basic_rnn_cell
