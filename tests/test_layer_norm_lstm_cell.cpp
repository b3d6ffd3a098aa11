// LayerNormBasicLSTMCell (cells/layer_norm_basic_lstm_cell.hpp), beyond the cell contract
// (tests/test_cell_contract.cpp runs it with layer_norm on and off):
//   * forward, final state and every gradient against the independent float64 reference of
//     tests/fixtures/generate_layer_norm_lstm.py (random gamma/beta, sequence_length, an initial
//     state, layer_norm off with its bias, dropout at a fixed draw), in double and float;
//   * TF's variable names, creation order and initializers (gamma = norm_gain, beta = norm_shift,
//     a glorot kernel, a glorot bias only without layer_norm), config() and make_cell;
//   * the central-difference gradient check with recurrent dropout at a fixed draw;
//   * dropout: masks of 0 and 1/keep kept at the rate keep, the same for any batch_threads, the
//     same for the same draw and other for another; inference never drops;
//   * layer_norm = false computes BasicLSTMCell's numbers (with the bias);
//   * bad options and inputs; a Model of such layers saved and loaded back.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/states.hpp"
#include "support/temp_dir.hpp"
#include "support/test_util.hpp"

namespace test_layer_norm_lstm_cell {

using namespace cellflow_test;
using Catch::Matchers::Contains;
template <class T>
using Cell = cf::LayerNormBasicLSTMCell<T>;
template <class T>
using Options = cf::LayerNormBasicLSTMOptions<T>;

const std::map<std::string, FixtureCase>& cases() {
  static const auto c = load_fixture_file(fixture_path("layer_norm_lstm_reference.txt"));
  return c;
}

/// The cell a fixture case describes, with the case's variables.
template <class T>
Cell<T> cell_of(const FixtureCase& fc) {
  Options<T> o;
  o.layer_norm = fc.config_num("layer_norm") != 0;
  o.forget_bias = static_cast<T>(fc.config_num("forget_bias"));
  o.dropout_keep_prob = static_cast<T>(fc.config_num("dropout_keep_prob"));
  o.dropout_prob_seed = static_cast<std::uint64_t>(fc.config_num("dropout_prob_seed"));
  cf::Rng rng(1);
  Cell<T> cell(static_cast<Index>(fc.config_num("input_depth")), static_cast<Index>(fc.config_num("num_units")), o,
               rng);
  cf::VariableList<T> vars;
  vars.add(cell, "rnn");
  REQUIRE(vars.size() == (o.layer_norm ? 11u : 2u));
  for (auto& v : vars) *v.value = to_matrix<T>(fc.tensor(v.name));
  return cell;
}

TEMPLATE_TEST_CASE("LayerNormBasicLSTMCell matches the float64 reference", "[layer_norm_lstm][reference]", double,
                   float) {
  using T = TestType;
  const double rtol = FrameworkTol<T>::rtol, atol = FrameworkTol<T>::atol;
  for (const char* name : {"ln_lstm", "ln_lstm_no_norm", "ln_lstm_dropout"}) {
    INFO("case " << name);
    const FixtureCase& fc = cases().at(name);
    Cell<T> cell = cell_of<T>(fc);
    cf::RNNOptions opts;
    opts.draw = static_cast<std::uint64_t>(fc.config_num("draw"));
    if (fc.has_ints("sequence_length")) {
      std::vector<Index> lengths;
      for (long long n : fc.int_list("sequence_length")) lengths.push_back(static_cast<Index>(n));
      opts.sequence_length = lengths;
    }
    const typename Cell<T>::State s0{to_matrix<T>(fc.tensor("initial_state/c")),
                                     to_matrix<T>(fc.tensor("initial_state/h"))};
    auto r = cf::dynamic_rnn(cell, to_tensor3<T>(fc.tensor("inputs")), s0, opts);
    check_close("outputs", r.outputs, fc.tensor("outputs").values, rtol, atol);
    check_close("final c", r.final_state.c, fc.tensor("final_state/c").values, rtol, atol);
    check_close("final h", r.final_state.h, fc.tensor("final_state/h").values, rtol, atol);
    if (cell.options().dropout_keep_prob < 1) {  // the case does drop: some units, not all
      const auto& mask = r.tape.split.slice(0).tape.mask;
      REQUIRE(mask.size() > 0);
      CHECK((mask.array() == T(0)).count() > 5);
      CHECK((mask.array() != T(0)).count() > 5);
    }

    cf::zero_grad(cell);
    const cf::Tensor3<T> dY = to_tensor3<T>(fc.tensor("w_outputs"));
    const typename Cell<T>::State dF{to_matrix<T>(fc.tensor("w_final_state/c")),
                                     to_matrix<T>(fc.tensor("w_final_state/h"))};
    auto g = cf::dynamic_rnn_backward(cell, r, &dY, &dF);
    check_close("grad inputs", g.d_inputs, fc.tensor("grad/inputs").values, rtol, atol);
    check_close("grad initial c", g.d_initial_state.c, fc.tensor("grad/initial_state/c").values, rtol, atol);
    check_close("grad initial h", g.d_initial_state.h, fc.tensor("grad/initial_state/h").values, rtol, atol);
    cf::VariableList<T> vars;
    vars.add(cell, "rnn");
    for (auto& v : vars) check_close("grad " + v.name, *v.grad, fc.tensor("grad/" + v.name).values, rtol, atol);
  }
}

TEST_CASE("LayerNormBasicLSTMCell: TF's variables, initializers, config and make_cell", "[layer_norm_lstm]") {
  const Index D = 5, U = 6;
  const std::string s = "rnn/layer_norm_basic_lstm_cell/";
  SECTION("layer_norm on: a kernel, then gamma and beta of input, transform, forget, output, state") {
    Options<double> o;
    o.norm_gain = 1.5;
    o.norm_shift = -0.25;
    cf::Rng rng(3);
    Cell<double> cell(D, U, o, rng);
    cf::VariableList<double> vars;
    vars.add(cell, "rnn");
    std::vector<std::string> names;
    for (auto& v : vars) names.push_back(v.name);
    CHECK(names == std::vector<std::string>{s + "kernel", s + "input/gamma", s + "input/beta", s + "transform/gamma",
                                            s + "transform/beta", s + "forget/gamma", s + "forget/beta",
                                            s + "output/gamma", s + "output/beta", s + "state/gamma",
                                            s + "state/beta"});
    CHECK(vars[0].shape == std::vector<Index>{D + U, 4 * U});
    for (std::size_t k = 1; k < vars.size(); ++k) {
      CHECK(vars[k].shape == std::vector<Index>{U});
      CHECK((vars[k].value->array() == (k % 2 == 1 ? 1.5 : -0.25)).all());
    }
    const double limit = std::sqrt(6.0 / double(D + U + 4 * U));  // glorot_uniform, TF's fans
    CHECK(cell.kernel().value.cwiseAbs().maxCoeff() <= limit);
    CHECK(cell.kernel().value.cwiseAbs().maxCoeff() > 0.8 * limit);
    CHECK(cell.bias().size() == 0);
    const cf::CellConfig c = cell.config();
    CHECK(c.kind == "LayerNormBasicLSTMCell");
    CHECK(c.num_units == U);
    CHECK(c.output_size == U);
    CHECK(c.get("layer_norm") == 1);
    CHECK(c.get("norm_gain") == 1.5);
    CHECK(c.get("norm_shift") == -0.25);
    CHECK(c.get("forget_bias") == 1.0);
    CHECK(c.get("dropout_keep_prob") == 1.0);
    CHECK_FALSE(c.has("dropout_prob_seed"));
    // make_cell builds the same cell from the same draws.
    cf::Rng again(3);
    cf::AnyCell<double> any = cf::make_cell<double>(c, D, again);
    cf::VariableList<double> any_vars;
    any_vars.add(any, "rnn");
    REQUIRE(any_vars.size() == vars.size());
    for (std::size_t k = 0; k < vars.size(); ++k) {
      CHECK(any_vars[k].name == vars[k].name);
      CHECK((any_vars[k].value->array() == vars[k].value->array()).all());
    }
  }
  SECTION("layer_norm off: a kernel and a glorot-uniform bias (get_variable's default), no gamma or beta") {
    Options<double> o;
    o.layer_norm = false;
    cf::Rng rng(4);
    Cell<double> cell(D, U, o, rng);
    cf::VariableList<double> vars;
    vars.add(cell, "rnn");
    REQUIRE(vars.size() == 2);
    CHECK(vars[0].name == s + "kernel");
    CHECK(vars[1].name == s + "bias");
    CHECK(vars[1].shape == std::vector<Index>{4 * U});
    const double limit = std::sqrt(6.0 / double(8 * U));
    CHECK(cell.bias().value.cwiseAbs().maxCoeff() <= limit);
    CHECK(cell.bias().value.cwiseAbs().maxCoeff() > 0.5 * limit);
    CHECK(cell.gamma(0).size() == 0);
    CHECK(cell.config().get("layer_norm") == 0);
  }
}

TEST_CASE("LayerNormBasicLSTMCell: gradient check with recurrent dropout at a fixed draw", "[layer_norm_lstm][grad]") {
  cf::Rng rng(21);
  Options<double> o;
  o.dropout_keep_prob = 0.7;
  o.dropout_prob_seed = 9;
  o.forget_bias = 0.5;
  Cell<double> cell(3, 4, o, rng);
  randomize_variables(cell, rng, 0.8);
  const Index B = 3, T = 4;
  const cf::Tensor3<double> X = random_tensor<double>(B, T, 3, rng, -1.5, 1.5);
  Cell<double>::State s0 = cell.zero_state(B);
  randomize_state(s0, rng);
  cf::RNNOptions opts;
  opts.draw = 11;
  opts.sequence_length = std::vector<Index>{4, 2, 3};
  auto r = cf::dynamic_rnn(cell, X, s0, opts);
  const auto& mask = r.tape.split.slice(0).tape.mask;
  REQUIRE(mask.rows() == T * B);
  CHECK((mask.array() == 0.0).count() > 3);  // the check goes through dropped and kept units

  const cf::Tensor3<double> Wo = random_tensor<double>(B, T, 4, rng);
  const std::vector<cf::Matrix<double>> Ws = {random_matrix<double>(B, 4, rng), random_matrix<double>(B, 4, rng)};
  const Cell<double>::State dF{Ws[0], Ws[1]};
  cf::VariableList<double> vars;
  vars.add(cell, "rnn");
  vars.zero_grad();
  auto g = cf::dynamic_rnn_backward(cell, r, &Wo, &dF);
  std::vector<cf::Matrix<double>> grads;
  for (auto& v : vars) grads.push_back(*v.grad);

  cf::Tensor3<double> Xp = X;
  Cell<double>::State sp = s0;
  const auto loss = [&] { return rnn_loss(cell, Xp, &sp, opts, Wo, Ws); };
  GradCheck gc("LayerNormBasicLSTMCell, dropout 0.7, draw 11");
  for (Index k = 0; k < Xp.size(); ++k)
    gc.compare(indexed("d inputs", k), g.d_inputs.data()[k], central_diff(Xp.data()[k], loss));
  for (Index k = 0; k < sp.c.size(); ++k)
    gc.compare(indexed("d c0", k), g.d_initial_state.c.data()[k], central_diff(sp.c.data()[k], loss));
  for (Index k = 0; k < sp.h.size(); ++k)
    gc.compare(indexed("d h0", k), g.d_initial_state.h.data()[k], central_diff(sp.h.data()[k], loss));
  for (std::size_t vi = 0; vi < vars.size(); ++vi)
    for (Index k = 0; k < vars[vi].size(); ++k)
      gc.compare(indexed("d " + vars[vi].name, k), grads[vi].data()[k], central_diff(vars[vi].value->data()[k], loss));
  INFO(gc.summary());
  CHECK(gc.bad == 0);
  CHECK(gc.checked == static_cast<long>(X.size() + 2 * B * 4 + vars.num_scalars()));
}

TEST_CASE("LayerNormBasicLSTMCell dropout: rate, scale, draws and batch_threads", "[layer_norm_lstm][dropout]") {
  const Index B = 40, T = 12, D = 2, U = 16;
  cf::Rng rng(8);
  Options<double> o;
  o.dropout_keep_prob = 0.75;
  o.dropout_prob_seed = 4;
  Cell<double> cell(D, U, o, rng);
  randomize_variables(cell, rng, 0.8);
  const cf::Tensor3<double> X = random_tensor<double>(B, T, D, rng);
  cf::RNNOptions opts;
  opts.draw = 7;
  auto r = cf::dynamic_rnn(cell, X, opts);
  const cf::Matrix<double> mask = r.tape.split.slice(0).tape.mask;
  REQUIRE(mask.rows() == T * B);
  REQUIRE(mask.cols() == U);

  SECTION("every entry is 0 or 1/keep, kept at the rate keep") {
    const double scale = 1.0 / 0.75;
    CHECK(((mask.array() == 0.0) || (mask.array() == scale)).all());
    const double kept = double((mask.array() != 0.0).count()) / double(mask.size());
    const double sigma = std::sqrt(0.75 * 0.25 / double(mask.size()));
    CHECK(std::abs(kept - 0.75) < 4 * sigma);
    // Units of one example at one step are not all dropped together (a mask per unit).
    Index mixed_rows = 0;
    for (Index k = 0; k < mask.rows(); ++k) {
      const auto zeros = (mask.row(k).array() == 0.0).count();
      mixed_rows += zeros > 0 && zeros < U;
    }
    CHECK(mixed_rows > mask.rows() / 2);
  }
  SECTION("the same draw drops the same units, another draw others") {
    auto same = cf::dynamic_rnn(cell, X, opts);
    CHECK((same.tape.split.slice(0).tape.mask.array() == mask.array()).all());
    CHECK(bitwise_equal(same.outputs, r.outputs));
    cf::RNNOptions other = opts;
    other.draw = 8;
    auto o2 = cf::dynamic_rnn(cell, X, other);
    CHECK((o2.tape.split.slice(0).tape.mask.array() != mask.array()).count() > mask.size() / 5);
    Options<double> reseeded = o;
    reseeded.dropout_prob_seed = 5;
    Cell<double> cell2(D, U, reseeded, rng);
    auto o3 = cf::dynamic_rnn(cell2, X, opts);
    CHECK((o3.tape.split.slice(0).tape.mask.array() != mask.array()).count() > mask.size() / 5);
  }
  SECTION("without a seed, each cell draws its own from its Rng and records it") {
    Options<double> unseeded = o;
    unseeded.dropout_prob_seed.reset();
    cf::Rng r1(11);
    Cell<double> a(D, U, unseeded, r1), b(D, U, unseeded, r1);
    REQUIRE(a.options().dropout_prob_seed.has_value());
    REQUIRE(b.options().dropout_prob_seed.has_value());
    CHECK(*a.options().dropout_prob_seed != *b.options().dropout_prob_seed);
    CHECK(*a.options().dropout_prob_seed < (std::uint64_t(1) << 53));
    CHECK(a.config().get("dropout_prob_seed") == static_cast<double>(*a.options().dropout_prob_seed));
    cf::Rng r2(11);
    Cell<double> a2(D, U, unseeded, r2);  // the same Rng seed: the same drawn seed
    CHECK(*a2.options().dropout_prob_seed == *a.options().dropout_prob_seed);
    Options<double> no_dropout = unseeded;
    no_dropout.dropout_keep_prob = 1;
    Cell<double> c(D, U, no_dropout, r2);  // nothing drops: nothing drawn
    CHECK_FALSE(c.options().dropout_prob_seed.has_value());
  }
  SECTION("batch_threads: the same masks for every example and the same numbers") {
    for (int threads : {2, 3}) {
      INFO("batch_threads " << threads);
      cf::RNNOptions split = opts;
      split.batch_threads = threads;
      auto rs = cf::dynamic_rnn(cell, X, split);
      REQUIRE(rs.tape.split.size() == threads);
      for (Index p = 0; p < rs.tape.split.size(); ++p) {
        const auto& sl = rs.tape.split.slice(p);
        for (Index t = 0; t < T; ++t)
          for (Index b = 0; b < sl.n; ++b)
            REQUIRE((sl.tape.mask.row(t * sl.n + b).array() == mask.row(t * B + sl.b0 + b).array()).all());
      }
      CHECK(max_abs_diff(rs.outputs, r.outputs) <= 1e-12);
    }
  }
  SECTION("in a stack (through AnyCell and MultiRNNCell): the same numbers for any batch_threads") {
    Options<double> top = o;
    top.dropout_prob_seed = 5;
    cf::MultiRNNCell<double> stack(cell, Cell<double>(U, 3, top, rng));
    randomize_variables(stack, rng, 0.8);
    cf::RNNOptions split = opts;
    split.sequence_length = std::vector<Index>(static_cast<std::size_t>(B), T - 2);
    auto one = cf::dynamic_rnn(stack, X, split);
    split.batch_threads = 3;
    auto three = cf::dynamic_rnn(stack, X, split);
    CHECK(max_abs_diff(three.outputs, one.outputs) <= 1e-12);
    cf::RNNOptions infer = split;
    infer.training = false;
    CHECK(max_abs_diff(cf::dynamic_rnn(stack, X, infer).outputs, one.outputs) > 1e-3);  // the stack drops
  }
  SECTION("inference never drops: it equals the cell without dropout") {
    Options<double> none = o;
    none.dropout_keep_prob = 1;
    Cell<double> plain(D, U, none, rng);
    cf::VariableList<double> a, b;
    a.add(plain);
    b.add(cell);
    for (std::size_t k = 0; k < a.size(); ++k) *a[k].value = *b[k].value;
    cf::RNNOptions infer = opts;
    infer.training = false;
    auto ri = cf::dynamic_rnn(cell, X, infer);
    CHECK(bitwise_equal(ri.outputs, cf::dynamic_rnn(plain, X, infer).outputs));
    CHECK(bitwise_equal(ri.outputs, cf::dynamic_rnn(plain, X, opts).outputs));  // training without dropout
    CHECK_FALSE(bitwise_equal(ri.outputs, r.outputs));                          // training with dropout differs
    // cell(x, state) and a stream are inference too.
    const cf::Matrix<double> x0 = step_input(X, 0);
    const auto step = cell(x0, cell.zero_state(B));
    for (Index b = 0; b < B; ++b)
      for (Index u = 0; u < U; ++u) REQUIRE(step.output(b, u) == ri.outputs(b, 0, u));
    cf::RNNStream<Cell<double>> stream(cell, B);
    const cf::Matrix<double> y0 = stream.step(x0);
    CHECK((y0.array() == step.output.array()).all());
  }
}

TEST_CASE("LayerNormBasicLSTMCell with layer_norm = false computes BasicLSTMCell's numbers", "[layer_norm_lstm]") {
  cf::Rng rng(12);
  Options<double> o;
  o.layer_norm = false;
  o.forget_bias = 0.9;
  Cell<double> cell(3, 5, o, rng);
  cf::LSTMWeights<double> w;
  w.kernel = cell.kernel().value;
  w.bias = cell.bias().value;
  cf::BasicLSTMCell<double> basic(w, 0.9);
  const cf::Tensor3<double> X = random_tensor<double>(4, 6, 3, rng);
  cf::BasicLSTMCell<double>::State s0 = basic.zero_state(4);
  randomize_state(s0, rng);
  cf::RNNOptions opts;
  opts.sequence_length = std::vector<Index>{6, 3, 0, 5};
  auto a = cf::dynamic_rnn(cell, X, s0, opts);
  auto b = cf::dynamic_rnn(basic, X, s0, opts);
  CHECK(bitwise_equal(a.outputs, b.outputs));
  CHECK(same_state(a.final_state, b.final_state));
  const cf::Tensor3<double> dY = random_tensor<double>(4, 6, 5, rng);
  cf::zero_grad(cell);
  cf::zero_grad(basic);
  auto ga = cf::dynamic_rnn_backward(cell, a, &dY);
  auto gb = cf::dynamic_rnn_backward(basic, b, &dY);
  CHECK(max_abs_diff(ga.d_inputs, gb.d_inputs) <= 1e-13);
  CHECK(state_diff(ga.d_initial_state, gb.d_initial_state) <= 1e-13);
  CHECK(max_abs_diff(cell.kernel().grad, basic.kernel().grad) <= 1e-12);
  CHECK(max_abs_diff(cell.bias().grad, basic.bias().grad) <= 1e-12);
}

TEST_CASE("LayerNormBasicLSTMCell: bad options and inputs", "[layer_norm_lstm][errors]") {
  cf::Rng rng(1);
  const auto with_keep = [&](double keep) {
    Options<double> o;
    o.dropout_keep_prob = keep;
    return Cell<double>(3, 4, o, rng);
  };
  for (double keep : {0.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()})
    CHECK_THAT(message_of<cf::ValueError>([&] { with_keep(keep); }), Contains("dropout_keep_prob must be in (0, 1]"));
  CHECK_NOTHROW(with_keep(1.0));
  CHECK_THAT(message_of<cf::ValueError>([&] { Cell<double>(3, 0, rng); }), Contains("num_units=0"));
  Options<double> o;
  o.forget_bias = std::numeric_limits<double>::infinity();
  CHECK_THAT(message_of<cf::ValueError>([&] { Cell<double>(3, 4, o, rng); }), Contains("forget_bias"));
  o = {};
  o.norm_gain = std::numeric_limits<double>::quiet_NaN();
  CHECK_THAT(message_of<cf::ValueError>([&] { Cell<double>(3, 4, o, rng); }), Contains("norm_gain"));
  o = {};
  o.dropout_prob_seed = std::uint64_t(1) << 53;
  CHECK_THAT(message_of<cf::ValueError>([&] { Cell<double>(3, 4, o, rng); }), Contains("dropout_prob_seed"));

  Cell<double> cell(3, 4, rng);
  CHECK_THAT(message_of<cf::ValueError>([&] { cell.gamma(5); }), Contains("norm index 5"));
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::dynamic_rnn(cell, random_tensor<double>(2, 3, 4, rng)); }),
             Contains("depth 4") && Contains("layer_norm_basic_lstm_cell(num_units=4)"));
  Cell<double>::State bad{cf::Matrix<double>::Zero(2, 4), cf::Matrix<double>::Zero(2, 3)};
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::dynamic_rnn(cell, random_tensor<double>(2, 3, 3, rng), bad); }),
             Contains("h [2, 4]") && Contains("h [2, 3]"));
  cf::VariableList<double> vars;
  vars.add(cell);
  *vars["layer_norm_basic_lstm_cell/state/beta"].value = cf::Matrix<double>::Zero(1, 3);
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::dynamic_rnn(cell, random_tensor<double>(2, 3, 3, rng)); }),
             Contains("state/beta"));

  // The model layer: options of its kind only, each in its range.
  const auto make = [&](const cf::CellConfig& c) { return cf::make_cell<double>(c, 3, rng); };
  cf::CellConfig c = cf::LayerNormBasicLSTM(4);
  c.options["layer_norm"] = 2;
  CHECK_THAT(message_of<cf::ValueError>([&] { make(c); }), Contains("layer_norm must be 0 or 1"));
  c = cf::LayerNormBasicLSTM(4);
  c.options["dropout_keep_prob"] = 0;
  CHECK_THAT(message_of<cf::ValueError>([&] { make(c); }), Contains("dropout_keep_prob must be in (0, 1]"));
  c = cf::LayerNormBasicLSTM(4);
  c.options["dropout_prob_seed"] = 1.5;
  CHECK_THAT(message_of<cf::ValueError>([&] { make(c); }), Contains("dropout_prob_seed must be an integer"));
  c = cf::LayerNormBasicLSTM(4);
  c.options["activation"] = 1;
  CHECK_THAT(message_of<cf::ValueError>([&] { make(c); }), Contains("has no option 'activation'"));
}

TEST_CASE("A Model of LayerNormBasicLSTM layers saves and loads back", "[layer_norm_lstm][model]") {
  TempDir dir;
  Options<double> first;
  first.norm_gain = 1.2;
  first.norm_shift = 0.1;
  first.dropout_keep_prob = 0.8;
  first.dropout_prob_seed = (std::uint64_t(1) << 40) + 3;  // not exact in float: must survive as an integer
  Options<double> second;
  second.layer_norm = false;
  second.forget_bias = 0.5;
  const cf::ModelConfig config =
      cf::classifier(3, {cf::LayerNormBasicLSTM(5, first), cf::LayerNormBasicLSTM(4, second)}, 3);
  cf::Rng rng(6);
  cf::Model<float> model(config, rng);
  CHECK(model.variables().find("rnn/multi_rnn_cell/cell_0/layer_norm_basic_lstm_cell/state/gamma") != nullptr);
  CHECK(model.variables().find("rnn/multi_rnn_cell/cell_1/layer_norm_basic_lstm_cell/bias") != nullptr);
  CHECK(model.variables().find("rnn/multi_rnn_cell/cell_1/layer_norm_basic_lstm_cell/input/gamma") == nullptr);
  const std::string path = dir.file("ln.ckpt");
  model.save(path);
  const cf::Model<float> back = cf::load_model<float>(path);
  CHECK(cf::differences(back.config(), model.config()).empty());
  CHECK(back.config().cells[0].get("dropout_prob_seed") == double((std::uint64_t(1) << 40) + 3));
  REQUIRE(back.variables().size() == model.variables().size());
  for (std::size_t k = 0; k < model.variables().size(); ++k) {
    CHECK(back.variables()[k].name == model.variables()[k].name);
    CHECK((back.variables()[k].value->array() == model.variables()[k].value->array()).all());
  }
  const cf::Tensor3<float> X = random_tensor<float>(4, 5, 3, rng);
  CHECK(bitwise_equal(back.predict_proba(X), model.predict_proba(X)));
}

}  // namespace test_layer_norm_lstm_cell
