// Precision::bf16 inference (RNNOptions::precision, RNNStream's precision): every built-in cell
// kind and a 2-layer stack, against an fp32 run of the same cells with their kernels rounded to
// bfloat16 (one step from the zero state with bfloat16 inputs: every operand of every product is
// then exact, so only the float summation order differs) and against the fp32 path over many
// steps (a bf16 bound); row skipping; a stream equals the whole-sequence bf16 run bitwise and
// reads the weights once; the refusals (training, double, a cell without support); both kernels.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "support/cell_kinds.hpp"
#include "support/elman_cell.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_bf16_inference {

using namespace cellflow_test;

// Every kernel (variables whose name holds "kernel") rounded to bfloat16 in place.
template <class Cell>
void round_kernels(Cell& cell) {
  cell.for_each_variable("", [](const std::string& name, cf::Parameter<float>& p) {
    if (name.find("kernel") == std::string::npos) return;
    for (Index k = 0; k < p.value.size(); ++k) p.value.data()[k] = cf::detail::round_to_bf16(p.value.data()[k]);
  });
}

cf::Tensor3<float> bf16_inputs(Index batch, Index time, Index depth, cf::Rng& rng) {
  auto x = random_tensor<float>(batch, time, depth, rng);
  for (Index k = 0; k < x.size(); ++k) x.data()[k] = cf::detail::round_to_bf16(x.data()[k]);
  return x;
}

cf::RNNOptions infer(cf::Precision p) {
  cf::RNNOptions o;
  o.training = false;
  o.precision = p;
  return o;
}

// The checks every kind runs (the cell is changed: its kernels end up rounded).
template <class Cell>
void check_kind(Cell& cell, const std::string& name, bool exact_operands) {
  INFO(name);
  cf::Rng rng(5);
  const Index B = 5, Tn = 6, D = cell.input_depth();
  const auto x = bf16_inputs(B, Tn, D, rng);

  // fp32 vs bf16 over all steps, with lengths: within a bf16 bound, and not equal (bf16 ran).
  auto opts = infer(cf::Precision::fp32);
  opts.sequence_length = std::vector<Index>{6, 2, 0, 4, 6};
  const auto f32 = cf::dynamic_rnn(cell, x, opts);
  opts.precision = cf::Precision::bf16;
  const auto b16 = cf::dynamic_rnn(cell, x, opts);
  CHECK(max_diff(f32.outputs, b16.outputs) < 3e-2);
  CHECK(max_diff(f32.outputs, b16.outputs) > 0);
  for (Index t = 2; t < Tn; ++t)
    for (Index j = 0; j < cell.output_size(); ++j) REQUIRE(b16.outputs(1, t, j) == 0.0f);  // past length 2
  // Row skipping changes no row's sums: bitwise the run without it.
  opts.skip_ended_rows = false;
  const auto b16_all = cf::dynamic_rnn(cell, x, opts);
  CHECK(bitwise_equal(b16.outputs, b16_all.outputs));
  CHECK(same_state(b16.final_state, b16_all.final_state));

  // Kernels rounded to bfloat16: one step from the zero state with bfloat16 inputs has exact
  // operands, so bf16 equals fp32 up to the order of float sums (depth <= 16: < 1e-5 here).
  // Not so when a float intermediate feeds a product (LSTMCell's projection of m, the second
  // layer of a stack): it is rounded to bfloat16 there, a relative 2^-9.
  round_kernels(cell);
  cf::Tensor3<float> x1(B, 1, D);
  for (Index b = 0; b < B; ++b)
    for (Index d = 0; d < D; ++d) x1(b, 0, d) = x(b, 0, d);
  const auto r32 = cf::dynamic_rnn(cell, x1, infer(cf::Precision::fp32));
  const auto r16 = cf::dynamic_rnn(cell, x1, infer(cf::Precision::bf16));
  CHECK(max_diff(r32.outputs, r16.outputs) < (exact_operands ? 1e-5 : 2e-3));
  // Many steps with rounded kernels: only the state's rounding to bfloat16 remains.
  const auto m32 = cf::dynamic_rnn(cell, x, infer(cf::Precision::fp32));
  const auto m16 = cf::dynamic_rnn(cell, x, infer(cf::Precision::bf16));
  CHECK(max_diff(m32.outputs, m16.outputs) < 2e-2);

  // Both kernels give the same bits (normal numbers), where this CPU has AVX512-BF16.
  if (cf::cpu_has_bf16()) {
    auto o = infer(cf::Precision::bf16);
    o.bf16_kernel = cf::Bf16Kernel::portable;
    const auto port = cf::dynamic_rnn(cell, x, o);
    o.bf16_kernel = cf::Bf16Kernel::avx512_bf16;
    const auto avx = cf::dynamic_rnn(cell, x, o);
    CHECK(bitwise_equal(port.outputs, avx.outputs));
  }

  // A bf16 stream, one step at a time: bitwise the whole-sequence bf16 run.
  cf::RNNStream<Cell> stream(cell, B, cf::Precision::bf16);
  CHECK(stream.precision() == cf::Precision::bf16);
  for (Index t = 0; t < Tn; ++t) {
    const auto& y = stream.step(step_input(x, t));
    for (Index b = 0; b < B; ++b)
      for (Index j = 0; j < cell.output_size(); ++j) REQUIRE(y(b, j) == m16.outputs(b, t, j));
  }
  CHECK(same_state(stream.state(), m16.final_state));
  // From a given state, the whole sequence as one chunk: the same bits.
  cf::RNNStream<Cell> chunked(cell, cell.zero_state(B), cf::Precision::bf16);
  CHECK(bitwise_equal(chunked.feed(x), m16.outputs));
}

template <class Cell>
void run_kind(Cell cell, const std::string& name, bool exact_operands = true) {
  cf::Rng rng(9);
  randomize_variables(cell, rng);
  check_kind(cell, name, exact_operands);
}

TEST_CASE("bf16 inference: every built-in cell kind and a 2-layer stack", "[bf16_inference]") {
  cf::Rng rng(1);
  const Index D = 5;
  run_kind(cf::BasicRNNCell<float>(D, 4, rng), "BasicRNNCell");
  run_kind(cf::BasicLSTMCell<float>(D, 4, rng), "BasicLSTMCell");
  run_kind(cf::LSTMCell<float>(D, 4, peephole_options<float>(), rng), "LSTMCell(peepholes)");
  run_kind(cf::LSTMCell<float>(D, 4, all_lstm_options<float>(), rng), "LSTMCell(peep, clip, proj)", false);
  run_kind(cf::GRUCell<float>(D, 4, rng), "GRUCell");
  run_kind(cf::CudnnCompatibleGRUCell<float>(D, 4, rng), "CudnnCompatibleGRUCell");
  run_kind(cf::LayerNormBasicLSTMCell<float>(D, 4, rng), "LayerNormBasicLSTMCell");
  run_kind(cf::MultiRNNCell<float>(cf::GRUCell<float>(D, 4, rng), cf::LSTMCell<float>(4, 3, rng)),
           "MultiRNNCell(GRUCell, LSTMCell)", false);
  run_kind(cf::ResidualWrapper<cf::BasicRNNCell<float>>(cf::BasicRNNCell<float>(D, D, rng)), "ResidualWrapper");
  run_kind(cf::DropoutWrapper<cf::LSTMCell<float>>(cf::LSTMCell<float>(D, 4, rng), 0.7, 0.8),
           "DropoutWrapper (no dropout in inference)");
}

TEST_CASE("bf16 stream reads the weights once, refresh_weights() reads them again", "[bf16_inference]") {
  cf::Rng rng(2);
  cf::GRUCell<float> cell(3, 4, rng);
  randomize_variables(cell, rng);
  const auto x = bf16_inputs(2, 4, 3, rng);
  const auto before = cf::dynamic_rnn(cell, x, infer(cf::Precision::bf16));
  cf::RNNStream<cf::GRUCell<float>> stream(cell, 2, cf::Precision::bf16);
  stream.step(step_input(x, 0));
  const auto old_weights = cell.weights();
  auto w = old_weights;
  w.candidate_kernel *= 0.5f;
  w.gates_kernel *= -1.0f;
  cell.set_weights(w);
  for (Index t = 1; t < 4; ++t) {  // still the packed weights of the first call
    const auto& y = stream.step(step_input(x, t));
    for (Index b = 0; b < 2; ++b)
      for (Index j = 0; j < 4; ++j) REQUIRE(y(b, j) == before.outputs(b, t, j));
  }
  stream.reset();  // keeps them
  CHECK(stream.step(step_input(x, 0)) == step_input(before.outputs, 0));
  stream.reset();
  stream.refresh_weights();  // now the new ones
  const auto after = cf::dynamic_rnn(cell, x, infer(cf::Precision::bf16));
  CHECK(stream.step(step_input(x, 0)) == step_input(after.outputs, 0));
  CHECK(step_input(after.outputs, 0) != step_input(before.outputs, 0));
}

TEST_CASE("bf16 refusals: training, double, a cell without support, an absent kernel", "[bf16_inference]") {
  cf::Rng rng(3);
  cf::LSTMCell<float> cell(3, 4, rng);
  const auto x = random_tensor<float>(2, 3, 3, rng);
  cf::RNNOptions o;
  o.precision = cf::Precision::bf16;  // training = true by default
  CHECK(message_of<cf::ValueError>([&] {
          cf::dynamic_rnn(cell, x, o);
        }).find("bf16 is an inference path; train in fp32") != std::string::npos);
  CHECK_THROWS_AS(cf::dynamic_rnn(cell, x, o), cf::ValueError);

  cf::GRUCell<double> cd(3, 4, rng);
  const auto xd = random_tensor<double>(2, 3, 3, rng);
  o.training = false;
  CHECK_THROWS_AS(cf::dynamic_rnn(cd, xd, o), cf::ValueError);
  CHECK(message_of<cf::ValueError>([&] { cf::dynamic_rnn(cd, xd, o); }).find("is double") != std::string::npos);
  CHECK_THROWS_AS(cf::RNNStream<cf::GRUCell<double>>(cd, 2, cf::Precision::bf16), cf::ValueError);

  mycells::ElmanCell<float> mine(3, 4, rng);
  CHECK(!cf::supports_bf16_of(mine));
  CHECK_THROWS_AS(cf::dynamic_rnn(mine, x, o), cf::ValueError);
  CHECK(message_of<cf::ValueError>([&] {
          cf::dynamic_rnn(mine, x, o);
        }).find("elman_cell(num_units=4) does not support it") != std::string::npos);
  cf::MultiRNNCell<float> stack(cf::LSTMCell<float>(3, 4, rng), mycells::ElmanCell<float>(4, 2, rng));
  CHECK_THROWS_AS(cf::dynamic_rnn(stack, x, o), cf::ValueError);
  o.precision = cf::Precision::fp32;
  CHECK_NOTHROW(cf::dynamic_rnn(mine, x, o));  // fp32 stays as it was

  if (!cf::cpu_has_bf16()) {
    o.precision = cf::Precision::bf16;
    o.bf16_kernel = cf::Bf16Kernel::avx512_bf16;
    CHECK_THROWS_AS(cf::dynamic_rnn(cell, x, o), cf::UnsupportedCpuError);
  }
}

TEST_CASE("Model and ModelStream in bf16: close to fp32, the stream equals logits bitwise", "[bf16_inference]") {
  cf::Rng rng(4);
  cf::Model<float> model(5, {cf::GRU(7), cf::BasicLSTM(6)}, 3, rng);
  for (auto& v : model.variables()) *v.value = random_matrix<float>(v.value->rows(), v.value->cols(), rng, -0.8f, 0.8f);
  const auto x = random_tensor<float>(4, 6, 5, rng);
  cf::InferenceOptions o;
  o.batch_threads = 1;
  const auto p32 = model.predict_proba(x, o);
  o.precision = cf::Precision::bf16;
  const auto p16 = model.predict_proba(x, o);
  CHECK(max_diff(p32, p16) < 2e-2);
  CHECK(max_diff(p32, p16) > 0);
  CHECK(model.predict(x, o).size() == 4);
  const std::vector<int> labels{0, 1, 2, 0};
  CHECK(model.evaluate(x, labels, o).examples == 4);

  cf::ModelStream<float> stream(model, 4, cf::Precision::bf16);
  for (Index t = 0; t < 6; ++t) stream.step(step_input(x, t));
  CHECK(bitwise_equal(stream.logits(), model.logits(x, o)));

  // A bidirectional model: both directions' layers in bf16.
  cf::Model<float> bi(cf::bidirectional_classifier(5, {cf::GRU(4)}, 3), rng);
  for (auto& v : bi.variables()) *v.value = random_matrix<float>(v.value->rows(), v.value->cols(), rng, -0.8f, 0.8f);
  cf::InferenceOptions of;
  of.batch_threads = 1;
  const auto q32 = bi.predict_proba(x, of);
  const auto q16 = bi.predict_proba(x, o);
  CHECK(max_diff(q32, q16) < 2e-2);
  CHECK(max_diff(q32, q16) > 0);

  cf::Model<double> md(5, {cf::GRU(3)}, 2, rng);
  cf::InferenceOptions od;
  od.precision = cf::Precision::bf16;
  CHECK_THROWS_AS(md.predict(random_tensor<double>(2, 3, 5, rng), od), cf::ValueError);
}

}  // namespace test_bf16_inference
