// Central-difference gradient checks in double precision (the harness: tests/support/gradcheck.hpp)
// of the cells with their option variants, one-layer and mixed stacks, the Dense head with the
// mean sparse softmax cross-entropy, and the seed program's whole pipeline. Every cell kind is
// also checked by the cell contract test (test_cell_contract.cpp); here are the variants.
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "support/cell_kinds.hpp"
#include "support/gradcheck.hpp"

namespace test_gradcheck {

using namespace cellflow_test;
using Mat = cf::Matrix<double>;
using Ten = cf::Tensor3<double>;
using VarList = cf::VariableList<double>;
using StackState = std::vector<cf::CellState<double>>;

TEST_CASE("gradcheck: BasicLSTMCell, forget_bias 1 and 0.3", "[gradcheck]") {
  for (double fb : {1.0, 0.3}) {
    cf::Rng rng(101);
    cf::BasicLSTMCell<double> cell(3, 4, rng, fb);
    randomize_variables(cell, rng);
    check_rnn_gradients(cell, "BasicLSTMCell(forget_bias=" + std::to_string(fb) + ")", 4, rng);
  }
}

TEST_CASE("gradcheck: LSTMCell with peepholes", "[gradcheck]") {
  cf::Rng rng(202);
  auto o = peephole_options<double>();
  o.forget_bias = 0.5;
  cf::LSTMCell<double> cell(3, 3, o, rng);
  randomize_variables(cell, rng);
  check_rnn_gradients(cell, "LSTMCell(peepholes)", 5, rng);
}

TEST_CASE("gradcheck: LSTMCell with peepholes and cell_clip", "[gradcheck]") {
  cf::Rng rng(303);
  auto o = peephole_options<double>();
  o.cell_clip = 0.4;
  cf::LSTMCell<double> cell(3, 3, o, rng);
  randomize_variables(cell, rng, 1.0);
  using Cell = cf::LSTMCell<double>;
  long accepted = 0;
  GradcheckValidator<Cell> valid = [&](const cf::RNNResult<Cell>& r, const std::vector<Index>& lens) {
    const bool ok = clip_sample_ok(r.tape.split.slice(0).tape.c_raw, 0.4, 3, lens);
    accepted += ok;
    return ok;
  };
  check_rnn_gradients(cell, "LSTMCell(peepholes, cell_clip=0.4)", 4, rng, valid);
  CHECK(accepted == 6);
}

TEST_CASE("gradcheck: LSTMCell with num_proj and proj_clip", "[gradcheck]") {
  cf::Rng rng(404);
  cf::LSTMOptions<double> o;
  o.num_proj = 2;
  o.proj_clip = 0.3;
  o.forget_bias = 0.8;
  cf::LSTMCell<double> cell(3, 4, o, rng);
  randomize_variables(cell, rng, 1.0);
  using Cell = cf::LSTMCell<double>;
  GradcheckValidator<Cell> valid = [&](const cf::RNNResult<Cell>& r, const std::vector<Index>& lens) {
    return clip_sample_ok(r.tape.split.slice(0).tape.r_raw, 0.3, 3, lens);
  };
  check_rnn_gradients(cell, "LSTMCell(num_proj=2, proj_clip=0.3)", 4, rng, valid);
}

TEST_CASE("gradcheck: LSTMCell with every option", "[gradcheck]") {
  cf::Rng rng(505);
  auto o = peephole_options<double>();
  o.cell_clip = 0.5;
  o.num_proj = 3;
  o.proj_clip = 0.1;
  cf::LSTMCell<double> cell(2, 3, o, rng);
  randomize_variables(cell, rng, 1.0);
  using Cell = cf::LSTMCell<double>;
  GradcheckValidator<Cell> valid = [&](const cf::RNNResult<Cell>& r, const std::vector<Index>& lens) {
    return clip_sample_ok(r.tape.split.slice(0).tape.c_raw, 0.5, 3, lens) &&
           clip_sample_ok(r.tape.split.slice(0).tape.r_raw, 0.1, 3, lens);
  };
  check_rnn_gradients(cell, "LSTMCell(peepholes, cell_clip, num_proj, proj_clip)", 4, rng, valid);
}

TEST_CASE("gradcheck: GRUCell", "[gradcheck]") {
  cf::Rng rng(606);
  cf::GRUCell<double> cell(3, 4, rng);
  randomize_variables(cell, rng);
  check_rnn_gradients(cell, "GRUCell", 5, rng);
}

/// Layer 0 LSTMCell(peepholes, num_proj), layer 1 GRUCell, layer 2 BasicLSTMCell(forget_bias 0.7).
cf::MultiRNNCell<double> mixed_stack(cf::Rng& rng) {
  cf::LSTMOptions<double> o;
  o.use_peepholes = true;
  o.num_proj = 2;
  cf::LSTMCell<double> l0(3, 3, o, rng);
  cf::GRUCell<double> l1(2, 3, rng);
  cf::BasicLSTMCell<double> l2(3, 2, rng, 0.7);
  return cf::MultiRNNCell<double>(std::move(l0), std::move(l1), std::move(l2));
}

TEST_CASE("gradcheck: mixed 3-layer MultiRNNCell", "[gradcheck]") {
  cf::Rng rng(707);
  auto multi = mixed_stack(rng);
  randomize_variables(multi, rng);
  check_rnn_gradients(multi, "MultiRNNCell(LSTMCell(peep, proj), GRUCell, BasicLSTMCell)", 4, rng);
}

TEST_CASE("gradcheck: one-layer MultiRNNCell of an LSTMCell", "[gradcheck]") {
  cf::Rng rng(808);
  cf::LSTMCell<double> cell(2, 3, peephole_options<double>(), rng);
  cf::MultiRNNCell<double> multi(std::move(cell));
  randomize_variables(multi, rng);
  check_rnn_gradients(multi, "MultiRNNCell(LSTMCell(peep))", 3, rng);
}

TEST_CASE("gradcheck: Dense head + mean sparse softmax cross-entropy", "[gradcheck]") {
  cf::Rng rng(909);
  cf::Dense<double> dense(4, 5, rng);
  randomize_variables(dense, rng);
  const Mat x0 = random_matrix<double>(3, 4, rng, -2, 2);
  const std::vector<int> labels{1, 4, 0};
  VarList vars;
  vars.add(dense);
  REQUIRE(vars.size() == 2);

  Mat x = x0;
  auto loss = [&] { return cf::sparse_softmax_cross_entropy_with_logits(labels, dense(x)).mean(); };

  vars.zero_grad();
  const Mat logits = dense(x);
  const auto xe = cf::sparse_softmax_cross_entropy_with_logits(labels, logits);
  const Mat dx = dense.backward(x, xe.mean_gradient());
  std::vector<Mat> grads;
  for (auto& v : vars) grads.push_back(*v.grad);

  GradCheck gc("Dense + mean xent");
  // The loss gradient w.r.t. the logits on its own.
  Mat lg = logits;
  auto loss_logits = [&] { return cf::sparse_softmax_cross_entropy_with_logits(labels, lg).mean(); };
  const Mat dlogits = xe.mean_gradient();
  for (Index k = 0; k < lg.size(); ++k)
    gc.compare(indexed("d logits", k), dlogits.data()[k], central_diff(lg.data()[k], loss_logits));
  for (Index k = 0; k < x.size(); ++k) gc.compare(indexed("d x", k), dx.data()[k], central_diff(x.data()[k], loss));
  for (std::size_t vi = 0; vi < vars.size(); ++vi)
    for (Index k = 0; k < vars[vi].size(); ++k)
      gc.compare(indexed("d " + vars[vi].name, k), grads[vi].data()[k], central_diff(vars[vi].value->data()[k], loss));
  INFO(gc.summary());
  CHECK(gc.bad == 0);
  CHECK(gc.checked == 15 + 12 + 20 + 5);
  // Each row of the per-example gradient sums to zero (softmax - onehot).
  for (Index b = 0; b < 3; ++b) CHECK(std::abs(xe.backprop.row(b).sum()) < 1e-15);
}

TEST_CASE("gradcheck: seed pipeline MultiRNNCell -> final_state.back().h() -> Dense -> mean xent", "[gradcheck]") {
  cf::Rng rng(1001);
  auto multi = mixed_stack(rng);
  cf::Dense<double> dense(multi.output_size(), 3, rng);
  randomize_variables(multi, rng);
  randomize_variables(dense, rng);
  VarList vars;
  vars.add(multi, "rnn").add(dense);

  const Index B = 3, T = 5;
  Ten X = random_tensor<double>(B, T, multi.input_depth(), rng, -1.5, 1.5);
  const std::vector<int> labels{2, 0, 1};
  cf::RNNOptions opt;
  opt.sequence_length = std::vector<Index>{3, 0, 5};

  auto loss = [&] {
    const auto r = cf::dynamic_rnn(multi, X, opt);
    return cf::sparse_softmax_cross_entropy_with_logits(labels, dense(r.final_state.back().h())).mean();
  };

  vars.zero_grad();
  auto r = cf::dynamic_rnn(multi, X, opt);
  const Mat h = r.final_state.back().h();
  const auto xe = cf::sparse_softmax_cross_entropy_with_logits(labels, dense(h));
  const Mat dh = dense.backward(h, xe.mean_gradient());
  StackState d_final = multi.zero_state(B);
  d_final.back().h() = dh;
  auto g = cf::dynamic_rnn_backward(multi, r, nullptr, &d_final);
  std::vector<Mat> grads;
  for (auto& v : vars) grads.push_back(*v.grad);

  GradCheck gc("pipeline");
  for (Index k = 0; k < X.size(); ++k)
    gc.compare(indexed("d inputs", k), g.d_inputs.data()[k], central_diff(X.data()[k], loss));
  // A few scalars of every variable of every layer: first, last and two in between.
  int layers_seen[4] = {0, 0, 0, 0};
  for (std::size_t vi = 0; vi < vars.size(); ++vi) {
    auto& v = vars[vi];
    const Index n = v.size();
    for (Index k : {Index(0), n / 3, (2 * n) / 3, n - 1})
      gc.compare(indexed("d " + v.name, k), grads[vi].data()[k], central_diff(v.value->data()[k], loss));
    for (int l = 0; l < 3; ++l)
      if (v.name.find("cell_" + std::to_string(l) + "/") != std::string::npos) ++layers_seen[l];
    if (v.name.rfind("dense/", 0) == 0) ++layers_seen[3];
    INFO(v.name);
    CHECK(grads[vi].cwiseAbs().maxCoeff() > 0.0);
  }
  INFO(gc.summary());
  CHECK(gc.bad == 0);
  CHECK(layers_seen[0] == 6);  // kernel, bias, 3 peepholes, projection
  CHECK(layers_seen[1] == 4);
  CHECK(layers_seen[2] == 2);
  CHECK(layers_seen[3] == 2);
  // The length-0 row has no path from the inputs: its input gradients are exactly 0.
  for (Index t = 0; t < T; ++t)
    for (Index d = 0; d < X.dimension(2); ++d) CHECK(g.d_inputs(1, t, d) == 0.0);
}

}  // namespace test_gradcheck
