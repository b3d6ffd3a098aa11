// ModelStream (model/model_stream.hpp): a batch of independent streams over a Model gives, after
// every step, bitwise the predictions Model::predict_proba gives for the steps each stream has
// taken (all streams advancing, or some sitting out steps: then as predict_proba with
// sequence_length); reset(b) restarts one stream and leaves the others alone; steps(b) counts;
// feed(chunk, lengths) equals stepping; and every error.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_model_stream {

using namespace cellflow_test;
using Catch::Matchers::Contains;

/// A small trained-looking model: GRU(7) and BasicLSTM(6) over 5 features, 3 classes, with
/// random weights (non-zero biases) so that predictions differ between steps and streams.
template <class T>
cf::Model<T> stream_model(std::uint64_t seed) {
  cf::Rng rng(seed);
  cf::Model<T> model(5, {cf::GRU(7), cf::BasicLSTM(6)}, 3, rng);
  for (auto& v : model.variables()) *v.value = random_matrix<T>(v.value->rows(), v.value->cols(), rng, T(-0.8), T(0.8));
  return model;
}

/// The first `steps` steps of x [batch, time, depth].
template <class T>
cf::Tensor3<T> prefix(const cf::Tensor3<T>& x, Index steps) {
  cf::Tensor3<T> p(x.dimension(0), steps, x.dimension(2));
  for (Index b = 0; b < x.dimension(0); ++b)
    for (Index t = 0; t < steps; ++t)
      for (Index d = 0; d < x.dimension(2); ++d) p(b, t, d) = x(b, t, d);
  return p;
}

inline cf::InferenceOptions one_thread(const cf::SequenceLengths& lengths = {}) {
  cf::InferenceOptions o;
  o.batch_threads = 1;
  o.sequence_length = lengths;
  return o;
}

TEMPLATE_TEST_CASE("ModelStream predictions equal Model::predict_proba on the prefix, bitwise", "[model_stream]", float,
                   double) {
  using T = TestType;
  const cf::Model<T> model = stream_model<T>(3);
  cf::Rng rng(9);
  const Index streams = 3, time = 7;
  const auto x = random_tensor<T>(streams, time, 5, rng);
  cf::ModelStream<T> s(model, streams);
  CHECK(s.streams() == streams);
  // Before any step: the prediction of the zero state (the head's bias through the softmax).
  cf::Matrix<T> bias_rows(streams, 3);
  for (Index b = 0; b < streams; ++b) bias_rows.row(b) = model.head().bias().value.row(0);
  CHECK(bitwise_equal(s.logits(), bias_rows));
  for (Index t = 0; t < time; ++t) {
    INFO("step " << t);
    const cf::Matrix<T> logits = s.step(step_input(x, t));
    const cf::Tensor3<T> seen = prefix(x, t + 1);
    CHECK(bitwise_equal(logits, model.logits(seen, one_thread())));
    CHECK(bitwise_equal(s.predict_proba(), model.predict_proba(seen, one_thread())));
    CHECK(s.predict() == model.predict(seen, one_thread()));
    for (Index b = 0; b < streams; ++b) CHECK(s.steps(b) == t + 1);
  }
  // The state is dynamic_rnn's final state.
  cf::RNNOptions ro;
  ro.training = false;
  ro.batch_threads = 1;
  CHECK(same_state(s.state(), cf::dynamic_rnn(model.rnn(), x, ro).final_state));
  // Stepping changed the predictions (the test is not vacuous).
  CHECK_FALSE(bitwise_equal(s.logits(), bias_rows));
  s.reset();
  CHECK(bitwise_equal(s.logits(), bias_rows));
  CHECK(s.steps(0) == 0);
}

/// Each of `streams` streams predicts, bitwise, what predict_proba gives for its sequence alone
/// (a batch of one).
template <class T>
void check_each_stream_alone(Index streams) {
  const cf::Model<T> model = stream_model<T>(3);
  cf::Rng rng(19);
  const Index time = 4;
  const auto x = random_tensor<T>(streams, time, 5, rng);
  cf::ModelStream<T> s(model, streams);
  for (Index t = 0; t < time; ++t) s.step(step_input(x, t));
  const cf::Matrix<T> p = s.predict_proba();
  for (Index b = 0; b < streams; ++b) {
    INFO(streams << " streams, stream " << b);
    cf::Tensor3<T> alone(1, time, 5);
    for (Index t = 0; t < time; ++t)
      for (Index d = 0; d < 5; ++d) alone(0, t, d) = x(b, t, d);
    CHECK(bitwise_equal(cf::Matrix<T>(p.row(b)), model.predict_proba(alone, one_thread())));
  }
}

TEMPLATE_TEST_CASE("each of a few streams predicts what predict_proba gives for its sequence alone", "[model_stream]",
                   float, double) {
  check_each_stream_alone<TestType>(5);
}

// With many streams (16 + 3 + 6 >= 20, where Eigen's own product would switch to a blocked GEMM
// that sums a row in another order) each stream still predicts exactly what predict_proba gives
// for its sequence alone: Dense's forward product is cellflow's row-invariant gemm.
TEMPLATE_TEST_CASE("each of many streams predicts what predict_proba gives for its sequence alone", "[model_stream]",
                   float, double) {
  check_each_stream_alone<TestType>(16);
}

TEMPLATE_TEST_CASE("ModelStream with active masks equals predict_proba with sequence_length", "[model_stream]", float,
                   double) {
  using T = TestType;
  const cf::Model<T> model = stream_model<T>(4);
  cf::Rng rng(10);
  const Index streams = 3, calls = 8;
  // active[t][b]: stream 0 always, stream 1 every other call, stream 2 only from call 5 on.
  std::vector<std::vector<bool>> active;
  for (Index t = 0; t < calls; ++t) active.push_back({true, t % 2 == 0, t >= 5});
  std::vector<std::vector<cf::Matrix<T>>> taken(static_cast<std::size_t>(streams));  // each stream's inputs
  cf::ModelStream<T> s(model, streams);
  for (Index t = 0; t < calls; ++t) {
    INFO("call " << t);
    cf::Matrix<T> x = random_matrix<T>(streams, 5, rng);
    cf::Matrix<T> given = x;
    for (Index b = 0; b < streams; ++b) {
      const auto ub = static_cast<std::size_t>(b);
      if (active[static_cast<std::size_t>(t)][ub])
        taken[ub].push_back(x.row(b));
      else
        given.row(b).setConstant(std::numeric_limits<T>::quiet_NaN());  // never read
    }
    s.step(given, active[static_cast<std::size_t>(t)]);
    // Each stream's own steps, packed from step 0, as a padded batch with lengths.
    Index longest = 1;
    std::vector<Index> lengths;
    for (const auto& seq : taken) {
      lengths.push_back(static_cast<Index>(seq.size()));
      longest = std::max(longest, static_cast<Index>(seq.size()));
    }
    cf::Tensor3<T> packed(streams, longest, 5);
    packed.setZero();
    for (Index b = 0; b < streams; ++b)
      for (Index k = 0; k < lengths[static_cast<std::size_t>(b)]; ++k)
        for (Index d = 0; d < 5; ++d)
          packed(b, k, d) = taken[static_cast<std::size_t>(b)][static_cast<std::size_t>(k)](0, d);
    const cf::Matrix<T> expected = model.predict_proba(packed, one_thread(lengths));
    const cf::Matrix<T> got = s.predict_proba();
    CHECK(bitwise_equal(got, expected));
    CHECK(std::isfinite(got.sum()));
    for (Index b = 0; b < streams; ++b) CHECK(s.steps(b) == lengths[static_cast<std::size_t>(b)]);
  }
  CHECK(s.steps(0) == 8);
  CHECK(s.steps(1) == 4);
  CHECK(s.steps(2) == 3);
}

TEST_CASE("ModelStream::reset(b) restarts one stream and leaves the others alone", "[model_stream]") {
  const cf::Model<float> model = stream_model<float>(5);
  cf::Rng rng(11);
  const Index streams = 3;
  cf::ModelStream<float> s(model, streams), untouched(model, streams), fresh(model, streams);
  for (int t = 0; t < 4; ++t) {
    const cf::Matrix<float> x = random_matrix<float>(streams, 5, rng);
    s.step(x);
    untouched.step(x);
  }
  const cf::Matrix<float> before = s.logits();
  s.reset(1);
  CHECK(s.steps(0) == 4);
  CHECK(s.steps(1) == 0);
  CHECK(s.steps(2) == 4);
  // Stream 1 is back at the zero state and the zero state's prediction; 0 and 2 did not move.
  const auto zero = model.rnn().zero_state(1);
  CHECK(same_state(state_row(s.state(), 1), zero));
  CHECK(same_state(state_row(s.state(), 0), state_row(untouched.state(), 0)));
  CHECK(same_state(state_row(s.state(), 2), state_row(untouched.state(), 2)));
  CHECK(bitwise_equal(cf::Matrix<float>(s.logits().row(1)), cf::Matrix<float>(model.head().bias().value)));
  CHECK(bitwise_equal(cf::Matrix<float>(s.logits().row(0)), cf::Matrix<float>(before.row(0))));
  CHECK(bitwise_equal(cf::Matrix<float>(s.logits().row(2)), cf::Matrix<float>(before.row(2))));
  // From here stream 1 predicts what a fresh stream fed the same steps predicts; the others
  // continue as if nothing had happened.
  for (int t = 0; t < 3; ++t) {
    INFO("step " << t << " after the reset");
    const cf::Matrix<float> x = random_matrix<float>(streams, 5, rng);
    s.step(x);
    untouched.step(x);
    fresh.step(x);
    const cf::Matrix<float> p = s.predict_proba(), pu = untouched.predict_proba(), pf = fresh.predict_proba();
    CHECK(bitwise_equal(cf::Matrix<float>(p.row(1)), cf::Matrix<float>(pf.row(1))));
    CHECK(bitwise_equal(cf::Matrix<float>(p.row(0)), cf::Matrix<float>(pu.row(0))));
    CHECK(bitwise_equal(cf::Matrix<float>(p.row(2)), cf::Matrix<float>(pu.row(2))));
    CHECK_FALSE(bitwise_equal(cf::Matrix<float>(p.row(1)), cf::Matrix<float>(pu.row(1))));
  }
  CHECK(s.steps(1) == 3);
  CHECK(s.steps(0) == 7);
}

TEMPLATE_TEST_CASE("ModelStream::feed(chunk, lengths) equals stepping with masks", "[model_stream]", float, double) {
  using T = TestType;
  const cf::Model<T> model = stream_model<T>(6);
  cf::Rng rng(12);
  const Index streams = 3;
  cf::ModelStream<T> fed(model, streams), stepped(model, streams);
  // A first chunk for everyone, so that the states are not zero.
  const auto first = random_tensor<T>(streams, 2, 5, rng);
  fed.feed(first);
  for (Index t = 0; t < 2; ++t) stepped.step(step_input(first, t));
  CHECK(same_state(fed.state(), stepped.state()));
  const auto before = fed.state();

  const std::vector<Index> lengths = {4, 0, 2};
  auto chunk = random_tensor<T>(streams, 4, 5, rng);
  for (Index b = 0; b < streams; ++b)  // past each stream's length: never read
    for (Index t = lengths[static_cast<std::size_t>(b)]; t < 4; ++t)
      for (Index d = 0; d < 5; ++d) chunk(b, t, d) = std::numeric_limits<T>::quiet_NaN();
  const cf::Matrix<T> logits = fed.feed(chunk, lengths);
  for (Index t = 0; t < 4; ++t) stepped.step(step_input(chunk, t), {t < lengths[0], t < lengths[1], t < lengths[2]});
  CHECK(same_state(fed.state(), stepped.state()));
  CHECK(bitwise_equal(logits, stepped.logits()));
  CHECK(std::isfinite(logits.sum()));
  // The stream of length 0 did not change at all.
  CHECK(same_state(state_row(fed.state(), 1), state_row(before, 1)));
  CHECK_FALSE(same_state(state_row(fed.state(), 0), state_row(before, 0)));
  CHECK(fed.steps(0) == 6);
  CHECK(fed.steps(1) == 2);
  CHECK(fed.steps(2) == 4);
  // The whole history equals predict_proba of the concatenated sequences with lengths.
  cf::Tensor3<T> whole(streams, 6, 5);
  whole.setZero();
  for (Index b = 0; b < streams; ++b) {
    for (Index t = 0; t < 2; ++t)
      for (Index d = 0; d < 5; ++d) whole(b, t, d) = first(b, t, d);
    for (Index t = 0; t < lengths[static_cast<std::size_t>(b)]; ++t)
      for (Index d = 0; d < 5; ++d) whole(b, 2 + t, d) = chunk(b, t, d);
  }
  CHECK(bitwise_equal(fed.predict_proba(), model.predict_proba(whole, one_thread(std::vector<Index>{6, 2, 4}))));
  // Time-major chunks and no lengths: the same as batch-major.
  cf::ModelStream<T> major(model, streams), minor(model, streams);
  const auto c = random_tensor<T>(streams, 3, 5, rng);
  minor.feed(c);
  major.feed(swap01(c), {}, /*time_major=*/true);
  CHECK(same_state(major.state(), minor.state()));
}

TEST_CASE("ModelStream rejects bad inputs, masks, lengths and stream numbers", "[model_stream][errors]") {
  const cf::Model<float> model = stream_model<float>(7);
  cf::ModelStream<float> s(model, 2);
  s.step(cf::Matrix<float>::Ones(2, 5));
  const auto state = s.state();
  CHECK_THAT(message_of<cf::ShapeError>([&] { s.step(cf::Matrix<float>::Zero(2, 4)); }),
             Contains("x is [2, 4]") && Contains("[2, 5]"));
  CHECK_THAT(message_of<cf::ShapeError>([&] { s.step(cf::Matrix<float>::Zero(2, 5), {true}); }),
             Contains("active has 1 entries, the stream holds 2 sequences"));
  CHECK_THAT(message_of<cf::ShapeError>([&] { s.feed(cf::Tensor3<float>(3, 2, 5)); }), Contains("chunk is [3, 2, 5]"));
  cf::Tensor3<float> chunk(2, 3, 5);
  chunk.setZero();
  CHECK_THAT(message_of<cf::ShapeError>([&] { s.feed(chunk, std::vector<Index>{1}); }),
             Contains("lengths has 1 entries"));
  CHECK_THAT(message_of<cf::ValueError>([&] {
               s.feed(chunk, std::vector<Index>{1, 4});
             }),
             Contains("lengths[1] = 4 is outside [0, 3]"));
  CHECK_THAT(message_of<cf::ValueError>([&] {
               s.feed(chunk, std::vector<Index>{-1, 0});
             }),
             Contains("lengths[0] = -1"));
  CHECK_THAT(message_of<cf::ValueError>([&] { s.reset(-1); }), Contains("stream -1 is outside [0, 2)"));
  CHECK_THAT(message_of<cf::ValueError>([&] { s.reset(2); }), Contains("stream 2 is outside [0, 2)"));
  CHECK_THAT(message_of<cf::ValueError>([&] { (void)s.steps(5); }), Contains("stream 5 is outside [0, 2)"));
  CHECK_THROWS_AS(cf::ModelStream<float>(model, 0), cf::ValueError);
  // Nothing changed.
  CHECK(same_state(s.state(), state));
  CHECK(s.steps(0) == 1);
  CHECK(s.steps(1) == 1);
}

}  // namespace test_model_stream
