// RNNStream: a sequence fed step by step or chunk by chunk gives bitwise the outputs and final
// state of dynamic_rnn over the whole sequence, for every cell kind and a mixed stack; several
// threads streaming through one shared model each get their own sequence's results.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>
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

/// Rows of `s` (every part) other than `b` equal those of `t`, bitwise.
template <class S>
bool same_rows(const S& s, const S& t, Index b) {
  return same_state(state_row(s, b), state_row(t, b));
}

template <class Cell>
void check_masked_steps(const Cell& cell) {
  using T = typename Cell::Scalar;
  const Index batch = 3;
  cf::Rng rng(31);
  cf::RNNStream<Cell> stream(cell, batch), reference(cell, batch);
  for (Index t = 0; t < 2; ++t) {
    const auto x = random_matrix<T>(batch, cell.input_depth(), rng);
    stream.step(x);
    reference.step(x);
  }
  const auto before = stream.state();
  const auto x = random_matrix<T>(batch, cell.input_depth(), rng);
  cf::Matrix<T> with_nan = x;
  with_nan.row(1).setConstant(std::numeric_limits<T>::quiet_NaN());  // stream 1 sits out: never read
  const cf::Matrix<T> y = stream.step(with_nan, {true, false, true});
  const cf::Matrix<T> all = reference.step(x);
  // The active streams advance as in an unmasked step; the inactive one keeps its state and
  // outputs zeros.
  for (const Index b : {Index(0), Index(2)}) {
    CHECK(bitwise_equal(cf::Matrix<T>(y.row(b)), cf::Matrix<T>(all.row(b))));
    CHECK(same_rows(stream.state(), reference.state(), b));
  }
  CHECK(same_rows(stream.state(), before, 1));
  CHECK(y.row(1).isZero(0));
  CHECK_FALSE(same_rows(stream.state(), before, 0));
  for (const auto* p : const_state_parts(stream.state())) CHECK(std::isfinite(p->sum()));
  CHECK(std::isfinite(y.sum()));
  CHECK(stream.steps(0) == 3);
  CHECK(stream.steps(1) == 2);
  CHECK(stream.steps(2) == 3);
  CHECK(stream.steps() == 3);
  // No stream active: nothing changes, the outputs are zero; the call still counts as a step.
  const auto now = stream.state();
  cf::Matrix<T> nan_all = x;
  nan_all.setConstant(std::numeric_limits<T>::quiet_NaN());
  const cf::Matrix<T> none = stream.step(nan_all, {false, false, false});
  CHECK(none.isZero(0));
  CHECK(same_state(stream.state(), now));
  CHECK(stream.steps(0) == 3);
  CHECK(stream.steps() == 4);
  // Stream 1, stepped on its own now, continues from where it stopped.
  cf::RNNStream<Cell> alone(cell, state_row(before, 1));
  const auto x1 = random_matrix<T>(batch, cell.input_depth(), rng);
  const cf::Matrix<T> y1 = stream.step(x1, {false, true, false});
  const cf::Matrix<T> ya = alone.step(cf::Matrix<T>(x1.row(1)));
  CHECK(bitwise_equal(cf::Matrix<T>(y1.row(1)), ya));
  CHECK(same_state(state_row(stream.state(), 1), alone.state()));
}

TEMPLATE_TEST_CASE("RNNStream::step(x, active) advances only the active streams, NaN in the others is not read",
                   "[stream]", float, double) {
  for_each_kind<TestType>([](auto& cell, const std::string& name) {
    INFO(name);
    check_masked_steps(cell);
  });
}

TEMPLATE_TEST_CASE("RNNStream::feed(chunk, lengths) equals dynamic_rnn with sequence_length", "[stream]", float,
                   double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    INFO(name);
    using Cell = std::decay_t<decltype(cell)>;
    cf::Rng rng(32);
    const Index batch = 4, time = 5;
    auto s0 = cell.zero_state(batch);
    randomize_state(s0, rng);
    const std::vector<Index> lengths = {5, 0, 2, 4};
    auto x = random_tensor<T>(batch, time, cell.input_depth(), rng);
    for (Index b = 0; b < batch; ++b)
      for (Index t = 0; t < time; ++t)
        for (Index d = 0; d < x.dimension(2); ++d)
          if (t >= lengths[static_cast<std::size_t>(b)]) x(b, t, d) = 0;
    cf::RNNOptions ro;
    ro.training = false;
    ro.sequence_length = lengths;
    const auto expected = cf::dynamic_rnn(cell, x, s0, ro);
    auto with_nan = x;
    for (Index b = 0; b < batch; ++b)
      for (Index t = lengths[static_cast<std::size_t>(b)]; t < time; ++t)
        for (Index d = 0; d < x.dimension(2); ++d) with_nan(b, t, d) = std::numeric_limits<T>::quiet_NaN();
    for (const bool time_major : {false, true}) {
      INFO("time_major " << time_major);
      cf::RNNStream<Cell> stream(cell, s0);
      const auto& y = stream.feed(time_major ? swap01(with_nan) : with_nan, lengths, time_major);
      CHECK(bitwise_equal(time_major ? swap01(y) : y, expected.outputs));
      CHECK(same_state(stream.state(), expected.final_state));
      CHECK(same_state(state_row(stream.state(), 1), state_row(s0, 1)));  // length 0: unchanged
      for (Index b = 0; b < batch; ++b) CHECK(stream.steps(b) == lengths[static_cast<std::size_t>(b)]);
      CHECK(stream.steps() == time);
    }
    // Feeding in two chunks with the lengths split between them gives the same end state.
    cf::RNNStream<Cell> two(cell, s0);
    cf::Tensor3<T> first(batch, 3, x.dimension(2)), second(batch, 2, x.dimension(2));
    for (Index b = 0; b < batch; ++b)
      for (Index d = 0; d < x.dimension(2); ++d) {
        for (Index t = 0; t < 3; ++t) first(b, t, d) = with_nan(b, t, d);
        for (Index t = 0; t < 2; ++t) second(b, t, d) = with_nan(b, 3 + t, d);
      }
    two.feed(first, std::vector<Index>{3, 0, 2, 3});
    two.feed(second, std::vector<Index>{2, 0, 0, 1});
    CHECK(same_state(two.state(), expected.final_state));
  });
}

TEMPLATE_TEST_CASE("RNNStream::reset(b) restarts one stream and leaves the others", "[stream]", float, double) {
  using T = TestType;
  cf::Rng rng(33);
  cf::MultiRNNCell<T> cell = mixed_kinds_stack<T>(rng);
  randomize_variables(cell, rng);
  cf::RNNStream<cf::MultiRNNCell<T>> stream(cell, 3), untouched(cell, 3), fresh(cell, 3);
  for (int t = 0; t < 3; ++t) {
    const auto x = random_matrix<T>(3, kKindsDepth, rng);
    stream.step(x);
    untouched.step(x);
  }
  stream.reset(2);
  CHECK(same_state(state_row(stream.state(), 2), cell.zero_state(1)));
  CHECK(same_rows(stream.state(), untouched.state(), 0));
  CHECK(same_rows(stream.state(), untouched.state(), 1));
  CHECK(stream.steps(2) == 0);
  CHECK(stream.steps(0) == 3);
  CHECK(stream.steps() == 3);
  for (int t = 0; t < 2; ++t) {
    const auto x = random_matrix<T>(3, kKindsDepth, rng);
    const cf::Matrix<T> y = stream.step(x);
    const cf::Matrix<T> yu = untouched.step(x);
    const cf::Matrix<T> yf = fresh.step(x);
    CHECK(bitwise_equal(cf::Matrix<T>(y.row(2)), cf::Matrix<T>(yf.row(2))));
    CHECK(bitwise_equal(cf::Matrix<T>(y.row(0)), cf::Matrix<T>(yu.row(0))));
    CHECK_FALSE(bitwise_equal(cf::Matrix<T>(y.row(2)), cf::Matrix<T>(yu.row(2))));
  }
  CHECK(same_rows(stream.state(), fresh.state(), 2));
  CHECK(stream.steps(2) == 2);
  CHECK(stream.steps(1) == 5);
}

TEST_CASE("RNNStream rejects a wrong mask, wrong lengths and a stream out of range", "[stream][errors]") {
  using Catch::Matchers::Contains;
  cf::Rng rng(34);
  cf::BasicLSTMCell<float> cell(3, 4, rng);
  cf::RNNStream<cf::BasicLSTMCell<float>> stream(cell, 3);
  stream.step(cf::Matrix<float>::Ones(3, 3));
  const auto state = stream.state();
  CHECK_THROWS_AS(stream.step(cf::Matrix<float>::Zero(3, 3), {true, false}), cf::ShapeError);
  CHECK_THROWS_WITH(stream.step(cf::Matrix<float>::Zero(3, 3), {true, false}),
                    Contains("active has 2 entries, the stream holds 3 sequences"));
  CHECK_THROWS_AS(stream.step(cf::Matrix<float>::Zero(2, 3), {true, false, true}), cf::ShapeError);
  CHECK_THROWS_AS(stream.reset(-1), cf::ValueError);
  CHECK_THROWS_WITH(stream.reset(-1), Contains("RNNStream::reset: stream -1 is outside [0, 3)"));
  CHECK_THROWS_AS(stream.reset(3), cf::ValueError);
  CHECK_THROWS_AS((void)stream.steps(3), cf::ValueError);
  CHECK_THROWS_WITH((void)stream.steps(-2), Contains("RNNStream::steps: stream -2 is outside [0, 3)"));
  cf::Tensor3<float> chunk(3, 4, 3);
  chunk.setZero();
  CHECK_THROWS_AS(stream.feed(chunk, std::vector<Index>{1, 2}), cf::ShapeError);
  CHECK_THROWS_WITH(stream.feed(chunk, std::vector<Index>{1, 2}), Contains("lengths has 2 entries"));
  CHECK_THROWS_AS(stream.feed(chunk, std::vector<Index>{1, 5, 0}), cf::ValueError);
  CHECK_THROWS_WITH(stream.feed(chunk, std::vector<Index>{1, 5, 0}), Contains("lengths[1] = 5 is outside [0, 4]"));
  CHECK_THROWS_AS(stream.feed(chunk, std::vector<Index>{1, -1, 0}), cf::ValueError);
  CHECK_THROWS_AS(stream.feed(cf::Tensor3<float>(3, 4, 2), std::vector<Index>{1, 1, 1}), cf::ShapeError);
  CHECK_THROWS_WITH(stream.feed(cf::Tensor3<float>(2, 4, 3), std::vector<Index>{1, 1}), Contains("chunk is [2, 4, 3]"));
  CHECK(same_state(stream.state(), state));
  CHECK(stream.steps() == 1);
  for (Index b = 0; b < 3; ++b) CHECK(stream.steps(b) == 1);
}

}  // namespace test_stream
