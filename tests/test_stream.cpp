// RNNStream: a sequence fed step by step or chunk by chunk gives bitwise the outputs and final
// state of dynamic_rnn over the whole sequence, for every cell kind and a mixed stack; several
// threads streaming through one shared model each get their own sequence's results.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "support/cell_kinds.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_stream {

using namespace cellflow_test;

template <class Cell>
void check_stream_equals_dynamic_rnn(const Cell& cell, const typename Cell::State* s0) {
  using T = typename Cell::Scalar;
  const Index batch = 3, time = 7;
  cf::Rng rng(11);
  const auto x = random_tensor<T>(batch, time, cell.input_depth(), rng);
  cf::RNNOptions opts;
  opts.training = false;
  const auto whole = s0 ? cf::dynamic_rnn(cell, x, *s0, opts) : cf::dynamic_rnn(cell, x, opts);

  SECTION("one step at a time") {
    cf::RNNStream<Cell> stream = s0 ? cf::RNNStream<Cell>(cell, *s0) : cf::RNNStream<Cell>(cell, batch);
    for (Index t = 0; t < time; ++t) {
      const cf::Matrix<T>& y = stream.step(step_input(x, t));
      REQUIRE(y.rows() == batch);
      REQUIRE(y.cols() == cell.output_size());
      for (Index b = 0; b < batch; ++b)
        for (Index j = 0; j < y.cols(); ++j) REQUIRE(y(b, j) == whole.outputs(b, t, j));
    }
    CHECK(stream.steps() == time);
    CHECK(same_state(stream.state(), whole.final_state));
  }

  SECTION("chunks of 3, 1 and 3 steps, batch-major and time-major") {
    cf::RNNStream<Cell> stream = s0 ? cf::RNNStream<Cell>(cell, *s0) : cf::RNNStream<Cell>(cell, batch);
    Index t0 = 0;
    for (Index len : {3, 1, 3}) {
      const bool time_major = len == 1;
      cf::Tensor3<T> chunk =
          time_major ? cf::Tensor3<T>(len, batch, x.dimension(2)) : cf::Tensor3<T>(batch, len, x.dimension(2));
      for (Index b = 0; b < batch; ++b)
        for (Index t = 0; t < len; ++t)
          for (Index d = 0; d < x.dimension(2); ++d) (time_major ? chunk(t, b, d) : chunk(b, t, d)) = x(b, t0 + t, d);
      const auto& y = stream.feed(chunk, time_major);
      for (Index b = 0; b < batch; ++b)
        for (Index t = 0; t < len; ++t)
          for (Index j = 0; j < cell.output_size(); ++j)
            REQUIRE((time_major ? y(t, b, j) : y(b, t, j)) == whole.outputs(b, t0 + t, j));
      t0 += len;
    }
    CHECK(same_state(stream.state(), whole.final_state));
    stream.reset();
    CHECK(stream.steps() == 0);
    CHECK(same_state(stream.state(), cell.zero_state(batch)));
  }
}

TEMPLATE_TEST_CASE("RNNStream equals dynamic_rnn bitwise for every cell kind", "[stream]", float, double) {
  using T = TestType;
  cf::Rng rng(3);
  SECTION("BasicLSTMCell") {
    cf::BasicLSTMCell<T> cell(5, 4, rng);
    check_stream_equals_dynamic_rnn(cell, nullptr);
  }
  SECTION("LSTMCell with peepholes, cell_clip and num_proj, from a non-zero state") {
    cf::LSTMOptions<T> o;
    o.use_peepholes = true;
    o.cell_clip = T(0.5);
    o.num_proj = 3;
    cf::LSTMCell<T> cell(5, 4, o, rng);
    const cf::LSTMStateTuple<T> s0{random_matrix<T>(3, 4, rng), random_matrix<T>(3, 3, rng)};
    check_stream_equals_dynamic_rnn(cell, &s0);
  }
  SECTION("GRUCell") {
    cf::GRUCell<T> cell(5, 6, rng);
    check_stream_equals_dynamic_rnn(cell, nullptr);
  }
  SECTION("mixed 3-layer MultiRNNCell") {
    cf::MultiRNNCell<T> multi(cf::BasicLSTMCell<T>(5, 4, rng), cf::GRUCell<T>(4, 6, rng),
                              cf::LSTMCell<T>(6, 3, cf::LSTMOptions<T>{}, rng));
    check_stream_equals_dynamic_rnn(multi, nullptr);
  }
}

TEST_CASE("several threads stream through one shared model, each with its own state", "[stream]") {
  cf::Rng rng(5);
  std::vector<cf::BasicLSTMCell<float>> layers;
  layers.emplace_back(8, 16, rng);
  layers.emplace_back(16, 16, rng);
  const cf::MultiRNNCell<float> model(std::move(layers));
  const Index threads = 4, time = 40;
  std::vector<cf::Tensor3<float>> inputs;
  std::vector<cf::Tensor3<float>> expected;
  cf::RNNOptions opts;
  opts.training = false;
  for (Index k = 0; k < threads; ++k) {
    inputs.push_back(random_tensor<float>(1, time, 8, rng));
    expected.push_back(cf::dynamic_rnn(model, inputs.back(), opts).outputs);
  }
  std::vector<int> ok(static_cast<std::size_t>(threads), 0);
  std::vector<std::thread> pool;
  for (Index k = 0; k < threads; ++k)
    pool.emplace_back([&, k] {
      const auto u = static_cast<std::size_t>(k);
      cf::RNNStream<cf::MultiRNNCell<float>> stream(model);
      bool all = true;
      for (int repeat = 0; repeat < 20; ++repeat) {  // many interleavings with the other threads
        stream.reset();
        for (Index t = 0; t < time; ++t) {
          const auto& y = stream.step(step_input(inputs[u], t));
          for (Index j = 0; j < y.cols(); ++j) all = all && y(0, j) == expected[u](0, t, j);
        }
      }
      ok[u] = all ? 1 : 0;
    });
  for (auto& th : pool) th.join();
  for (Index k = 0; k < threads; ++k) CHECK(ok[static_cast<std::size_t>(k)] == 1);
}

TEST_CASE("RNNStream rejects inputs and states of the wrong shape", "[stream][errors]") {
  using Catch::Matchers::Contains;
  cf::Rng rng(1);
  cf::GRUCell<float> cell(3, 4, rng);
  cf::RNNStream<cf::GRUCell<float>> stream(cell, 2);
  CHECK_THROWS_WITH(stream.step(cf::Matrix<float>::Zero(2, 5)),
                    Contains("x is [2, 5]") && Contains("expects [batch, input_depth] = [2, 3]"));
  CHECK_THROWS_AS(stream.step(cf::Matrix<float>::Zero(1, 3)), cf::ShapeError);
  CHECK_THROWS_WITH(stream.feed(cf::Tensor3<float>(2, 4, 2)), Contains("chunk is [2, 4, 2]"));
  CHECK_THROWS_AS(stream.set_state(cf::Matrix<float>::Zero(3, 4)), cf::ShapeError);
  CHECK_THROWS_AS(cf::RNNStream<cf::GRUCell<float>>(cell, 0), cf::ValueError);
  CHECK(stream.steps() == 0);  // nothing was fed by the failed calls
}

TEST_CASE("RNNStream refuses a state of no examples, as it refuses batch 0", "[stream][errors]") {
  cf::Rng rng(2);
  cf::GRUCell<float> gru(3, 4, rng);
  CHECK_THROWS_MATCHES(
      cf::RNNStream<cf::GRUCell<float>>(gru, cf::Matrix<float>::Zero(0, 4)), cf::ValueError,
      what_contains<cf::ValueError>("RNNStream: the initial state holds 0 examples; a stream needs at least one"));
  CHECK_THROWS_MATCHES(cf::RNNStream<cf::GRUCell<float>>(gru, 0), cf::ValueError,
                       what_contains<cf::ValueError>("RNNStream: batch must be positive, given 0"));
  CHECK_THROWS_AS(cf::RNNStream<cf::GRUCell<float>>(gru, -3), cf::ValueError);
  cf::BasicLSTMCell<float> lstm(3, 2, rng);
  CHECK_THROWS_AS(cf::RNNStream<cf::BasicLSTMCell<float>>(lstm, lstm.zero_state(0)), cf::ValueError);
  cf::MultiRNNCell<float> stack(cf::BasicLSTMCell<float>(3, 2, rng), cf::GRUCell<float>(2, 2, rng));
  CHECK_THROWS_AS(cf::RNNStream<cf::MultiRNNCell<float>>(stack, stack.zero_state(0)), cf::ValueError);
  // A state of one or more examples sets the stream's batch.
  cf::RNNStream<cf::MultiRNNCell<float>> two(stack, stack.zero_state(2));
  CHECK(two.batch() == 2);
  CHECK(two.step(cf::Matrix<float>::Zero(2, 3)).rows() == 2);
}

TEST_CASE("RNNStream: set_state resumes a saved state, reset starts again", "[stream]") {
  cf::Rng rng(4);
  cf::LSTMCell<double> cell(3, 4, peephole_options<double>(), rng);
  const auto x = random_tensor<double>(2, 6, 3, rng);
  const auto whole = cf::dynamic_rnn(cell, x);
  cf::RNNStream<cf::LSTMCell<double>> stream(cell, 2);
  for (Index t = 0; t < 3; ++t) stream.step(step_input(x, t));
  const auto saved = stream.state();
  stream.reset();
  CHECK(stream.steps() == 0);
  CHECK(same_state(stream.state(), cell.zero_state(2)));
  stream.step(step_input(x, 5));  // another sequence meanwhile
  stream.set_state(saved);
  for (Index t = 3; t < 6; ++t) {
    const auto& y = stream.step(step_input(x, t));
    for (Index b = 0; b < 2; ++b)
      for (Index k = 0; k < 4; ++k) CHECK(y(b, k) == whole.outputs(b, t, k));
  }
  CHECK(same_state(stream.state(), whole.final_state));
}

}  // namespace test_stream
