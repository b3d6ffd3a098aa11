// dynamic_rnn with the batch split across threads (RNNOptions::batch_threads) equals the
// unsplit run up to float rounding: outputs, final states, input and initial-state gradients
// and every variable gradient.
#include <catch2/catch.hpp>

#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_batch_threads {

using namespace cellflow_test;

template <class Cell>
struct Run {
  cf::Tensor3<double> outputs, d_inputs;
  std::vector<cf::Matrix<double>> state, d_state, grads;
};

template <class S>
void flatten(const S& s, std::vector<cf::Matrix<double>>& out) {
  for (const auto* p : const_state_parts(s)) out.push_back(*p);
}

template <class Cell>
Run<Cell> run(Cell& cell, const cf::Tensor3<double>& x, const typename Cell::State& s0, const cf::Tensor3<double>& dy,
              const typename Cell::State& ds, cf::RNNOptions opts, cf::RNNResult<Cell>& reuse) {
  cf::VariableList<double> vars;
  vars.add(cell);
  vars.zero_grad();
  cf::dynamic_rnn_into(reuse, cell, x, opts, &s0);
  auto g = cf::dynamic_rnn_backward(cell, reuse, &dy, &ds);
  Run<Cell> r;
  r.outputs = reuse.outputs;
  r.d_inputs = g.d_inputs;
  flatten(reuse.final_state, r.state);
  flatten(g.d_initial_state, r.d_state);
  for (auto& v : vars) r.grads.push_back(*v.grad);
  return r;
}

template <class A>
void require_close(const A& a, const A& b, const char* what) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (cf::Index k = 0; k < a.size(); ++k)
    worst = std::max(worst, std::abs(a.data()[k] - b.data()[k]) / std::max(1.0, std::abs(b.data()[k])));
  INFO(what << ": worst relative difference " << worst);
  REQUIRE(worst <= 1e-12);
}

template <class Cell>
void check(Cell cell, cf::Rng& rng) {
  const cf::Index B = 7, T = 5, D = cell.input_depth();
  const auto x = random_tensor<double>(B, T, D, rng);
  const auto dy = random_tensor<double>(B, T, cell.output_size(), rng);
  auto s0 = cell.zero_state(B), ds = cell.zero_state(B);
  // Random initial state and final-state gradient, part by part.
  randomize_state(s0, rng, -1.0, 1.0);
  randomize_state(ds, rng, -1.0, 1.0);
  for (bool with_lengths : {false, true}) {
    cf::RNNOptions opts;
    if (with_lengths) opts.sequence_length = std::vector<cf::Index>{5, 0, 3, 5, 1, 0, 4};
    cf::RNNResult<Cell> reuse;
    const auto ref = run(cell, x, s0, dy, ds, opts, reuse);
    for (int threads : {2, 3, 7, 16}) {  // 16 > batch: clamped to one example per slice
      opts.batch_threads = threads;
      INFO("batch_threads " << threads << (with_lengths ? ", with sequence_length" : ""));
      const auto got = run(cell, x, s0, dy, ds, opts, reuse);  // reuses the buffers of other splits
      require_close(got.outputs, ref.outputs, "outputs");
      require_close(got.d_inputs, ref.d_inputs, "d_inputs");
      for (std::size_t k = 0; k < ref.state.size(); ++k) require_close(got.state[k], ref.state[k], "final state");
      for (std::size_t k = 0; k < ref.d_state.size(); ++k)
        require_close(got.d_state[k], ref.d_state[k], "d_initial_state");
      for (std::size_t k = 0; k < ref.grads.size(); ++k) require_close(got.grads[k], ref.grads[k], "variable gradient");
    }
  }
}

TEST_CASE("batch_threads: a split batch gives the unsplit results", "[batch_threads]") {
  cf::Rng rng(77);
  SECTION("BasicLSTMCell") { check(cf::BasicLSTMCell<double>(3, 4, rng, 0.5), rng); }
  SECTION("LSTMCell with every option") {
    cf::LSTMOptions<double> o;
    o.use_peepholes = true;
    o.cell_clip = 0.8;
    o.num_proj = 3;
    o.proj_clip = 0.5;
    check(cf::LSTMCell<double>(3, 4, o, rng), rng);
  }
  SECTION("GRUCell") { check(cf::GRUCell<double>(3, 4, rng), rng); }
  SECTION("mixed MultiRNNCell") {
    cf::LSTMOptions<double> o;
    o.use_peepholes = true;
    check(cf::MultiRNNCell<double>(cf::LSTMCell<double>(3, 4, o, rng), cf::GRUCell<double>(4, 3, rng),
                                   cf::BasicLSTMCell<double>(3, 2, rng)),
          rng);
  }
}

TEST_CASE("batch_threads must be positive", "[batch_threads][errors]") {
  cf::Rng rng(1);
  cf::GRUCell<float> cell(2, 2, rng);
  cf::Tensor3<float> x(2, 3, 2);
  x.setZero();
  cf::RNNOptions opts;
  opts.batch_threads = 0;
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(cell, x, opts), Catch::Matchers::Contains("batch_threads must be >= 1, given 0"));
}

TEST_CASE("a result reused across different stacks gives fresh results", "[batch_threads]") {
  cf::Rng rng(5);
  cf::MultiRNNCell<double> gru_stack(cf::GRUCell<double>(3, 4, rng), cf::GRUCell<double>(4, 2, rng));
  cf::MultiRNNCell<double> lstm_stack(cf::BasicLSTMCell<double>(3, 5, rng), cf::GRUCell<double>(5, 2, rng),
                                      cf::BasicLSTMCell<double>(2, 3, rng));
  const auto x = random_tensor<double>(6, 4, 3, rng);
  for (int threads : {1, 3}) {
    cf::RNNOptions opts;
    opts.batch_threads = threads;
    cf::RNNResult<cf::MultiRNNCell<double>> reused;
    auto ds_gru = gru_stack.zero_state(6);
    ds_gru.back().h().setOnes();
    cf::dynamic_rnn_into(reused, gru_stack, x, opts);
    cf::dynamic_rnn_backward(gru_stack, reused, nullptr, &ds_gru);
    // The same result object now serves a stack of other kinds and sizes.
    cf::VariableList<double> vars;
    vars.add(lstm_stack);
    auto ds = lstm_stack.zero_state(6);
    ds.back().h().setOnes();
    vars.zero_grad();
    cf::dynamic_rnn_into(reused, lstm_stack, x, opts);
    const auto g_reused = cf::dynamic_rnn_backward(lstm_stack, reused, nullptr, &ds);
    std::vector<cf::Matrix<double>> grads_reused;
    for (auto& v : vars) grads_reused.push_back(*v.grad);
    vars.zero_grad();
    auto fresh = cf::dynamic_rnn(lstm_stack, x, opts);
    const auto g_fresh = cf::dynamic_rnn_backward(lstm_stack, fresh, nullptr, &ds);
    REQUIRE(max_abs_diff(reused.outputs, fresh.outputs) == 0.0);
    REQUIRE(max_abs_diff(g_reused.d_inputs, g_fresh.d_inputs) == 0.0);
    for (std::size_t k = 0; k < vars.size(); ++k) REQUIRE(max_abs_diff(grads_reused[k], *vars[k].grad) == 0.0);
  }
}

}  // namespace test_batch_threads
