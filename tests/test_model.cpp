// Model<T> (model/model.hpp): train_step equals the hand-written TF1 loop (dynamic_rnn, Dense,
// the loss, dynamic_rnn_backward, clipping, the optimizer) bitwise, in float and double, with
// sequence_length, batch_threads, clip_norm, Adam and GradientDescent; TF variable names; deep
// copies and cheap moves; evaluate, logits, predict and predict_proba against a manual forward
// pass (chunked or not, with a data set's lengths); the non-finite policy; every input error
// (with the weights unchanged); save, load_model and load_weights (bitwise round trips, resumed
// training, old checkpoints, wrong scalar type or architecture, truncated and foreign files,
// unknown cell kinds and newer architecture versions).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/elman_cell.hpp"
#include "support/temp_dir.hpp"
#include "support/test_util.hpp"

namespace test_model {

using namespace cellflow_test;
using Catch::Matchers::Contains;
using Bytes = std::vector<std::uint8_t>;

template <class T>
struct Batch {
  cf::Tensor3<T> x;
  std::vector<int> y;
  std::vector<Index> lengths;
};

/// Random inputs in [-1, 1), labels in [0, classes), lengths in [0, time] with the first example
/// running all steps.
template <class T>
Batch<T> make_batch(Index batch, Index time, Index depth, Index classes, cf::Rng& rng) {
  Batch<T> b;
  b.x = random_tensor<T>(batch, time, depth, rng);
  for (Index i = 0; i < batch; ++i) {
    b.y.push_back(static_cast<int>(rng.below(static_cast<std::uint64_t>(classes))));
    b.lengths.push_back(i == 0 ? time : static_cast<Index>(rng.below(static_cast<std::uint64_t>(time) + 1)));
  }
  return b;
}

template <class T>
std::vector<cf::Matrix<T>> values_of_vars(const cf::VariableList<T>& vars) {
  std::vector<cf::Matrix<T>> v;
  for (const auto& ref : vars) v.push_back(*ref.value);
  return v;
}

template <class T>
std::vector<cf::Matrix<T>> grads_of_vars(const cf::VariableList<T>& vars) {
  std::vector<cf::Matrix<T>> v;
  for (const auto& ref : vars) v.push_back(*ref.grad);
  return v;
}

template <class T>
std::vector<std::string> names_of(const cf::VariableList<T>& vars) {
  std::vector<std::string> n;
  for (const auto& ref : vars) n.push_back(ref.name);
  return n;
}

/// Same kind, scalars, counters and slots, every slot bitwise.
template <class T>
bool same_optimizer_state(const cf::OptimizerState<T>& a, const cf::OptimizerState<T>& b) {
  if (a.kind != b.kind || a.scalars != b.scalars || a.counters != b.counters || a.slots.size() != b.slots.size())
    return false;
  for (const auto& [key, slot] : a.slots) {
    const auto it = b.slots.find(key);
    if (it == b.slots.end() || it->second.shape != slot.shape || !bitwise_equal(it->second.value, slot.value))
      return false;
  }
  return true;
}

/// GRU(7) over 5 features, BasicLSTM(6) on top: what Model(5, {GRU(7), BasicLSTM(6)}, 3, rng) builds.
template <class T>
cf::MultiRNNCell<T> hand_stack(cf::Rng& rng) {
  std::vector<cf::AnyCell<T>> cells;
  cells.push_back(cf::AnyCell<T>(cf::GRUCell<T>(5, 7, rng)));
  cells.push_back(cf::AnyCell<T>(cf::BasicLSTMCell<T>(7, 6, rng)));
  return cf::MultiRNNCell<T>(std::move(cells));
}

template <class T>
cf::Model<T> small_model(cf::Rng& rng) {
  return cf::Model<T>(5, {cf::GRU(7), cf::BasicLSTM(6)}, 3, rng);
}

/// The TF1 program written out with the low-level API.
template <class T>
class HandModel {
 public:
  explicit HandModel(cf::Rng& rng) : multi_(hand_stack<T>(rng)), dense_(6, 3, rng) {
    vars_.add(multi_, "rnn").add(dense_);
  }
  HandModel(const HandModel&) = delete;  // vars_ points into the members
  HandModel& operator=(const HandModel&) = delete;

  cf::StepResult step(const Batch<T>& b, cf::Optimizer<T>& opt, bool use_lengths, int threads, double clip) {
    vars_.zero_grad();
    cf::RNNOptions ro;
    if (use_lengths) ro.sequence_length = b.lengths;
    ro.batch_threads = threads;
    auto r = cf::dynamic_rnn(multi_, b.x, ro);
    const cf::Matrix<T>& h = r.final_state.back().h();
    const cf::Matrix<T> logits = dense_(h);
    const auto xent = cf::sparse_softmax_cross_entropy_with_logits(b.y, logits);
    auto d_state = multi_.zero_state(h.rows());
    d_state.back().h() = dense_.backward(h, xent.mean_gradient());
    cf::dynamic_rnn_backward(multi_, r, nullptr, &d_state);
    cf::StepResult s;
    s.loss = xent.mean();
    s.accuracy = cf::mean_of(cf::in_top_k(logits, b.y, 1));
    if (clip > 0) s.global_norm = cf::clip_by_global_norm(vars_, clip);
    opt.apply_gradients(vars_);
    return s;
  }

  cf::VariableList<T>& variables() { return vars_; }

 private:
  cf::MultiRNNCell<T> multi_;
  cf::Dense<T> dense_;
  cf::VariableList<T> vars_;
};

template <class T>
std::unique_ptr<cf::Optimizer<T>> make_optimizer(const std::string& kind) {
  if (kind == "adam") return std::make_unique<cf::AdamOptimizer<T>>(0.01);
  return std::make_unique<cf::GradientDescentOptimizer<T>>(0.5);
}

template <class T>
void check_model_equals_hand_loop(const std::string& optimizer, int threads, double clip, bool use_lengths) {
  INFO("optimizer " << optimizer << ", batch_threads " << threads << ", clip_norm " << clip << ", lengths "
                    << use_lengths);
  cf::Rng rng_model(3), rng_hand(3);
  cf::Model<T> model = small_model<T>(rng_model);
  HandModel<T> hand(rng_hand);
  REQUIRE(names_of(model.variables()) == names_of(hand.variables()));
  REQUIRE(bitwise_equal(values_of_vars(model.variables()), values_of_vars(hand.variables())));
  const auto initial = values_of_vars(model.variables());
  auto opt_model = make_optimizer<T>(optimizer);
  auto opt_hand = make_optimizer<T>(optimizer);
  cf::Rng data(17);
  bool clipped = false;
  for (int s = 0; s < 5; ++s) {
    INFO("step " << s);
    const Batch<T> b = make_batch<T>(4 + s, 6, 5, 3, data);
    cf::TrainOptions o;
    if (use_lengths) o.sequence_length = b.lengths;
    o.batch_threads = threads;
    o.clip_norm = clip;
    const cf::StepResult rm = model.train_step(b.x, b.y, *opt_model, o);
    const cf::StepResult rh = hand.step(b, *opt_hand, use_lengths, threads, clip);
    CHECK_FALSE(rm.skipped);
    CHECK(rm.loss == rh.loss);
    CHECK(rm.accuracy == rh.accuracy);
    CHECK(rm.global_norm == rh.global_norm);
    CHECK(std::isfinite(rm.loss));
    clipped = clipped || rm.global_norm > clip;
    // The gradients of the step are kept, and equal; so are the updated weights.
    REQUIRE(bitwise_equal(grads_of_vars(model.variables()), grads_of_vars(hand.variables())));
    REQUIRE(bitwise_equal(values_of_vars(model.variables()), values_of_vars(hand.variables())));
  }
  CHECK(model.steps() == 5);
  CHECK(model.skipped_steps() == 0);
  CHECK_FALSE(bitwise_equal(values_of_vars(model.variables()), initial));  // it trained
  if (clip > 0) CHECK(clipped);  // the norm was above clip_norm at least once: clipping mattered
  CHECK(same_optimizer_state(opt_model->export_state(model.variables()), opt_hand->export_state(hand.variables())));
}

TEMPLATE_TEST_CASE("Model::train_step equals the hand-written loop bitwise", "[model][composition]", float, double) {
  using T = TestType;
  SECTION("Adam, sequence_length, one thread") { check_model_equals_hand_loop<T>("adam", 1, 0, true); }
  SECTION("Adam, sequence_length, two threads") { check_model_equals_hand_loop<T>("adam", 2, 0, true); }
  SECTION("Adam, no sequence_length") { check_model_equals_hand_loop<T>("adam", 1, 0, false); }
  SECTION("Adam with clip_norm") { check_model_equals_hand_loop<T>("adam", 1, 0.05, true); }
  SECTION("GradientDescent") { check_model_equals_hand_loop<T>("gradient_descent", 1, 0, true); }
  SECTION("GradientDescent with clip_norm, two threads") {
    check_model_equals_hand_loop<T>("gradient_descent", 2, 0.05, true);
  }
}

TEST_CASE("Model built from hand-made layers equals the one built from its config", "[model][composition]") {
  cf::Rng rng_a(3), rng_b(3);
  cf::Model<float> from_config = small_model<float>(rng_a);
  cf::MultiRNNCell<float> stack = hand_stack<float>(rng_b);
  cf::Dense<float> head(6, 3, rng_b);
  cf::Model<float> from_layers(std::move(stack), std::move(head));
  CHECK(cf::differences(from_config.config(), from_layers.config()).empty());
  CHECK(cf::to_text(from_config.config()) == cf::to_text(from_layers.config()));
  CHECK(names_of(from_config.variables()) == names_of(from_layers.variables()));
  CHECK(bitwise_equal(values_of_vars(from_config.variables()), values_of_vars(from_layers.variables())));
  // A head that does not read the stack's output.
  cf::Rng rng_c(3);
  const std::string msg = message_of<cf::ShapeError>(
      [&] { cf::Model<float> bad(hand_stack<float>(rng_c), cf::Dense<float>(7, 3, rng_c)); });
  CHECK_THAT(msg, Contains("the head reads 7 features, the stack outputs 6"));
}

TEST_CASE("Model variables have TensorFlow's names and shapes", "[model][variables]") {
  using Names = std::vector<std::string>;
  SECTION("two layers in a MultiRNNCell") {
    cf::Rng rng(3);
    cf::Model<float> model = small_model<float>(rng);
    CHECK(names_of(model.variables()) ==
          Names{"rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel", "rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias",
                "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/kernel",
                "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/bias", "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel",
                "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias", "dense/kernel", "dense/bias"});
    const std::vector<std::vector<Index>> shapes = {{12, 14}, {14}, {12, 7}, {7}, {13, 24}, {24}, {6, 3}, {3}};
    for (std::size_t k = 0; k < shapes.size(); ++k) CHECK(model.variables()[k].shape == shapes[k]);
    CHECK(model.num_parameters() == 168 + 14 + 84 + 7 + 312 + 24 + 18 + 3);
    CHECK(model.input_depth() == 5);
    CHECK(model.classes() == 3);
    // variables() points at the layers' own parameters.
    CHECK(model.variables()[6].value == &model.head().kernel().value);
    CHECK(model.variables()[7].grad == &model.head().bias().grad);
    const std::string s = model.summary();
    CHECK_THAT(s, Contains("GRUCell(7)") && Contains("BasicLSTMCell(6)") && Contains("Dense(3) 'dense'") &&
                      Contains("total parameters: 630"));
  }
  SECTION("one cell given straight to dynamic_rnn (multi_rnn_cell = false)") {
    cf::ModelConfig c = cf::classifier(5, {cf::GRU(7)}, 3);
    c.multi_rnn_cell = false;
    cf::Rng rng(3), rng_multi(3);
    cf::Model<float> model(c, rng);
    CHECK(names_of(model.variables()) == Names{"rnn/gru_cell/gates/kernel", "rnn/gru_cell/gates/bias",
                                               "rnn/gru_cell/candidate/kernel", "rnn/gru_cell/candidate/bias",
                                               "dense/kernel", "dense/bias"});
    // Only the names differ from the MultiRNNCell model of the same seed.
    cf::Model<float> multi(5, {cf::GRU(7)}, 3, rng_multi);
    CHECK(names_of(multi.variables())[0] == "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel");
    CHECK(bitwise_equal(values_of_vars(model.variables()), values_of_vars(multi.variables())));
    cf::AdamOptimizer<float> adam(0.01);
    cf::Rng data(2);
    const Batch<float> b = make_batch<float>(3, 4, 5, 3, data);
    model.train_step(b.x, b.y, adam, {});
    CHECK_FALSE(bitwise_equal(values_of_vars(model.variables()), values_of_vars(multi.variables())));
  }
  SECTION("one cell built by hand, without MultiRNNCell") {
    cf::ModelConfig c = cf::classifier(5, {cf::GRU(7)}, 3);
    c.multi_rnn_cell = false;
    cf::Rng rng_config(3), rng_hand(3);
    cf::Model<float> from_config(c, rng_config);
    cf::GRUCell<float> gru(5, 7, rng_hand);
    cf::Dense<float> head(7, 3, rng_hand);
    cf::Model<float> from_cell(cf::AnyCell<float>(std::move(gru)), std::move(head));
    CHECK_FALSE(from_cell.config().multi_rnn_cell);
    CHECK(cf::differences(from_cell.config(), from_config.config()).empty());
    CHECK(names_of(from_cell.variables()) == names_of(from_config.variables()));
    CHECK(names_of(from_cell.variables())[0] == "rnn/gru_cell/gates/kernel");
    CHECK(bitwise_equal(values_of_vars(from_cell.variables()), values_of_vars(from_config.variables())));
    // It saves and loads back as such.
    TempDir dir;
    from_cell.save(dir.file("one.ckpt"));
    const cf::Model<float> back = cf::load_model<float>(dir.file("one.ckpt"));
    CHECK_FALSE(back.config().multi_rnn_cell);
    CHECK(names_of(back.variables()) == names_of(from_cell.variables()));
    CHECK(bitwise_equal(values_of_vars(back.variables()), values_of_vars(from_cell.variables())));
  }
  SECTION("another scope and head name") {
    cf::ModelConfig c = cf::classifier(5, {cf::BasicLSTM(4), cf::BasicLSTM(4)}, 2);
    c.scope = "encoder";
    c.head_name = "logits";
    cf::Rng rng(1);
    cf::Model<double> model(c, rng);
    CHECK(names_of(model.variables()) == Names{"encoder/multi_rnn_cell/cell_0/basic_lstm_cell/kernel",
                                               "encoder/multi_rnn_cell/cell_0/basic_lstm_cell/bias",
                                               "encoder/multi_rnn_cell/cell_1/basic_lstm_cell/kernel",
                                               "encoder/multi_rnn_cell/cell_1/basic_lstm_cell/bias", "logits/kernel",
                                               "logits/bias"});
  }
}

TEST_CASE("Model refuses an invalid architecture with a ValueError naming the problem", "[model][errors]") {
  cf::Rng rng(1);
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::Model<float>(5, {}, 3, rng); }), Contains("cells is empty"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::Model<float>(5, {cf::GRU(4)}, 0, rng); }),
             Contains("classes must be in [1, 2^24], given 0"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::Model<float>(0, {cf::GRU(4)}, 2, rng); }),
             Contains("input_depth must be in [1, 2^24], given 0"));
  CHECK_THAT(message_of<cf::ValueError>([&] {
               cf::Model<float>(5, {cf::GRU(4), cf::GRU(0)}, 2, rng);
             }),
             Contains("layer 1") && Contains("num_units"));
}

TEST_CASE("Model copies are deep, moves keep the weights where they are", "[model]") {
  cf::Rng rng(3);
  cf::Model<float> original = small_model<float>(rng);
  cf::Rng data(8);
  const Batch<float> b = make_batch<float>(5, 6, 5, 3, data);
  cf::TrainOptions o;
  o.sequence_length = b.lengths;
  o.batch_threads = 1;
  const auto before = values_of_vars(original.variables());

  SECTION("copy construction") {
    cf::Model<float> copy = original;
    CHECK(bitwise_equal(values_of_vars(copy.variables()), before));
    CHECK(copy.variables()[0].value != original.variables()[0].value);
    CHECK(cf::differences(copy.config(), original.config()).empty());
    cf::AdamOptimizer<float> adam(0.01);
    for (int s = 0; s < 3; ++s) copy.train_step(b.x, b.y, adam, o);
    CHECK(bitwise_equal(values_of_vars(original.variables()), before));
    CHECK_FALSE(bitwise_equal(values_of_vars(copy.variables()), before));
    CHECK(copy.steps() == 3);
    CHECK(original.steps() == 0);
    // The copy's list points into the copy: its head's kernel is what its variables() changed.
    CHECK(copy.variables()[6].value == &copy.head().kernel().value);
  }
  SECTION("copy assignment") {
    cf::Rng other_rng(99);
    cf::Model<float> target(4, {cf::BasicLSTM(3)}, 2, other_rng);
    target = original;
    CHECK(cf::differences(target.config(), original.config()).empty());
    CHECK(names_of(target.variables()) == names_of(original.variables()));
    CHECK(bitwise_equal(values_of_vars(target.variables()), before));
    cf::GradientDescentOptimizer<float> sgd(0.5);
    target.train_step(b.x, b.y, sgd, o);
    CHECK(bitwise_equal(values_of_vars(original.variables()), before));
    CHECK_FALSE(bitwise_equal(values_of_vars(target.variables()), before));
    // Self-assignment changes nothing.
    const auto trained = values_of_vars(target.variables());
    cf::Model<float>& alias = target;
    target = alias;
    CHECK(bitwise_equal(values_of_vars(target.variables()), trained));
  }
  SECTION("move construction and move assignment") {
    const float* data0 = original.variables()[0].value->data();
    const float* head0 = original.head().kernel().value.data();
    cf::Model<float> moved(std::move(original));
    CHECK(moved.variables()[0].value->data() == data0);
    CHECK(moved.head().kernel().value.data() == head0);
    CHECK(bitwise_equal(values_of_vars(moved.variables()), before));
    cf::Rng other_rng(5);
    cf::Model<float> target(4, {cf::GRU(3)}, 2, other_rng);
    target = std::move(moved);
    CHECK(target.variables()[0].value->data() == data0);
    CHECK(target.input_depth() == 5);
    // The moved-to model trains, and equals a copy trained the same way.
    cf::Rng rng_ref(3);
    cf::Model<float> reference = small_model<float>(rng_ref);
    cf::AdamOptimizer<float> a1(0.01), a2(0.01);
    const auto r1 = target.train_step(b.x, b.y, a1, o);
    const auto r2 = reference.train_step(b.x, b.y, a2, o);
    CHECK(r1.loss == r2.loss);
    CHECK_FALSE(bitwise_equal(values_of_vars(target.variables()), before));
    CHECK(bitwise_equal(values_of_vars(target.variables()), values_of_vars(reference.variables())));
    CHECK(target.variables()[0].value->data() == data0);
  }
}

/// Model::logits computed by hand: dynamic_rnn of the stack, the head on the top layer's h.
template <class T>
cf::Matrix<T> manual_logits(const cf::Model<T>& m, const cf::Tensor3<T>& x, const cf::SequenceLengths& lengths) {
  cf::RNNOptions ro;
  ro.training = false;
  ro.sequence_length = lengths;
  ro.batch_threads = 1;
  const auto r = cf::dynamic_rnn(m.rnn(), x, ro);
  return m.head()(r.final_state.back().h());
}

TEMPLATE_TEST_CASE("Model::evaluate, logits, predict and predict_proba equal a manual forward pass",
                   "[model][inference]", float, double) {
  using T = TestType;
  cf::Rng rng(3);
  cf::Model<T> model = small_model<T>(rng);
  // Train a little so that the predictions are not all alike.
  cf::AdamOptimizer<T> adam(0.05);
  cf::Rng data(21);
  const Batch<T> train = make_batch<T>(16, 6, 5, 3, data);
  cf::TrainOptions to;
  to.sequence_length = train.lengths;
  to.batch_threads = 1;
  for (int s = 0; s < 10; ++s) model.train_step(train.x, train.y, adam, to);

  const Index n = 11;
  const Batch<T> b = make_batch<T>(n, 6, 5, 3, data);
  for (const bool use_lengths : {false, true}) {
    INFO("sequence_length " << use_lengths);
    const cf::SequenceLengths lengths = use_lengths ? cf::SequenceLengths(b.lengths) : cf::SequenceLengths();
    const cf::Matrix<T> expected = manual_logits(model, b.x, lengths);
    const auto xent = cf::sparse_softmax_cross_entropy_with_logits(b.y, expected);
    double loss_sum = 0;
    int hits = 0;
    for (Index i = 0; i < n; ++i) {
      loss_sum += static_cast<double>(xent.loss(i));
      Index best = 0;
      for (Index j = 1; j < 3; ++j)
        if (expected(i, j) > expected(i, best)) best = j;
      hits += best == b.y[static_cast<std::size_t>(i)] ? 1 : 0;
    }
    const double expected_loss = loss_sum / static_cast<double>(n);
    const double expected_accuracy = hits / static_cast<double>(n);

    cf::InferenceOptions io;
    io.sequence_length = lengths;
    io.batch_threads = 1;
    CHECK(bitwise_equal(model.logits(b.x, io), expected));
    const cf::Metrics whole = model.evaluate(b.x, b.y, io);
    CHECK(whole.examples == n);
    CHECK(whole.loss == Approx(expected_loss).epsilon(1e-12));
    CHECK(whole.accuracy == expected_accuracy);
    for (const Index chunk : {Index(1), Index(3), Index(4), Index(10), Index(11), Index(64)}) {
      INFO("batch_size " << chunk);
      cf::InferenceOptions ci = io;
      ci.batch_size = chunk;
      // Bitwise: every product sums a row in the same order whatever the number of rows.
      CHECK(bitwise_equal(model.logits(b.x, ci), expected));
      const cf::Metrics m = model.evaluate(b.x, b.y, ci);
      CHECK(m.examples == n);
      CHECK(m.loss == Approx(whole.loss).epsilon(1e-12));  // the per-example losses summed in other groups
      CHECK(m.accuracy == whole.accuracy);
    }
    // Two threads: each slice's rows are summed as in one call, so the logits are the same
    // bitwise; the loss up to the grouping of the sum.
    cf::InferenceOptions two = io;
    two.batch_threads = 2;
    CHECK(bitwise_equal(model.logits(b.x, two), expected));
    CHECK(model.evaluate(b.x, b.y, two).loss == Approx(whole.loss).epsilon(1e-5));

    // predict: the index of the largest logit.
    const std::vector<Index> predicted = model.predict(b.x, io);
    REQUIRE(predicted.size() == static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) {
      Index best = 0;
      for (Index j = 1; j < 3; ++j)
        if (expected(i, j) > expected(i, best)) best = j;
      CHECK(predicted[static_cast<std::size_t>(i)] == best);
    }
    CHECK(predicted == cf::argmax(expected));

    // predict_proba: softmax of the logits, rows summing to 1.
    const cf::Matrix<T> p = model.predict_proba(b.x, io);
    CHECK(bitwise_equal(p, cf::softmax(expected)));
    REQUIRE(p.rows() == n);
    REQUIRE(p.cols() == 3);
    for (Index i = 0; i < n; ++i) {
      double z = 0;
      for (Index j = 0; j < 3; ++j) z += std::exp(static_cast<double>(expected(i, j)));
      double row = 0;
      for (Index j = 0; j < 3; ++j) {
        CHECK(static_cast<double>(p(i, j)) ==
              Approx(std::exp(static_cast<double>(expected(i, j))) / z).epsilon(1e-5).margin(1e-7));
        CHECK(p(i, j) > 0);
        row += static_cast<double>(p(i, j));
      }
      CHECK(row == Approx(1.0).epsilon(1e-6));
    }
  }
  // With lengths the result differs from without (the lengths are used).
  CHECK_FALSE(bitwise_equal(model.logits(b.x, {}), manual_logits(model, b.x, b.lengths)));
}

TEST_CASE("Model::evaluate of a Dataset uses its lengths", "[model][inference][batches]") {
  cf::Rng rng(3);
  cf::Model<float> model = small_model<float>(rng);
  cf::Rng data(4);
  const Batch<float> b = make_batch<float>(9, 6, 5, 3, data);
  cf::InferenceOptions io;
  io.batch_threads = 1;
  cf::data::Dataset<float> with{b.x, b.y, b.lengths};
  cf::data::Dataset<float> without{b.x, b.y, {}};
  cf::InferenceOptions li = io;
  li.sequence_length = b.lengths;
  const cf::Metrics expected = model.evaluate(b.x, b.y, li);
  const cf::Metrics m = model.evaluate(with, io);
  CHECK(m.loss == expected.loss);
  CHECK(m.accuracy == expected.accuracy);
  CHECK(m.examples == 9);
  const cf::Metrics full = model.evaluate(without, io);
  CHECK(full.loss == model.evaluate(b.x, b.y, io).loss);
  CHECK(full.loss != m.loss);
  // The dataset's lengths win over the options' (the example lengths belong to the data).
  cf::InferenceOptions wrong = io;
  wrong.sequence_length = std::vector<Index>(9, 1);
  CHECK(model.evaluate(with, wrong).loss == m.loss);
  // A data set whose images and labels disagree.
  cf::data::Dataset<float> bad{b.x, std::vector<int>(8, 0), {}};
  CHECK_THAT(message_of<cf::ShapeError>([&] { model.evaluate(bad, io); }),
             Contains("the dataset has 9 examples but 8 labels"));
  cf::data::Dataset<float> bad_lengths{b.x, b.y, std::vector<Index>(9, 7)};
  CHECK_THAT(message_of<cf::ValueError>([&] { model.evaluate(bad_lengths, io); }),
             Contains("sequence_length[0] = 7 is outside [0, 6]"));
}

TEST_CASE("Model ignores what is past each example's length (NaN there changes nothing)", "[model][inference]") {
  cf::Rng rng(3);
  cf::Model<float> a = small_model<float>(rng);
  cf::Model<float> c = a;
  cf::Rng data(6);
  Batch<float> b = make_batch<float>(6, 6, 5, 3, data);
  for (std::size_t i = 0; i < b.lengths.size(); ++i)
    for (Index t = 0; t < 6; ++t)
      for (Index d = 0; d < 5; ++d)
        if (t >= b.lengths[i]) b.x(static_cast<Index>(i), t, d) = 0;
  Batch<float> nan = b;
  for (std::size_t i = 0; i < b.lengths.size(); ++i)
    for (Index t = b.lengths[i]; t < 6; ++t)
      for (Index d = 0; d < 5; ++d) nan.x(static_cast<Index>(i), t, d) = std::numeric_limits<float>::quiet_NaN();
  cf::InferenceOptions io;
  io.sequence_length = b.lengths;
  io.batch_threads = 1;
  CHECK(bitwise_equal(a.logits(nan.x, io), a.logits(b.x, io)));
  cf::AdamOptimizer<float> o1(0.01), o2(0.01);
  cf::TrainOptions to;
  to.sequence_length = b.lengths;
  to.batch_threads = 1;
  const auto r1 = a.train_step(nan.x, nan.y, o1, to);
  const auto r2 = c.train_step(b.x, b.y, o2, to);
  CHECK_FALSE(r1.skipped);
  CHECK(std::isfinite(r1.loss));
  CHECK(r1.loss == r2.loss);
  CHECK(bitwise_equal(values_of_vars(a.variables()), values_of_vars(c.variables())));
}

TEST_CASE("Model::train_step with a non-finite loss stops or skips, as asked", "[model][guards][errors]") {
  cf::Rng rng(3);
  cf::Model<float> model = small_model<float>(rng);
  cf::AdamOptimizer<float> adam(0.01);
  cf::Rng data(12);
  const Batch<float> good = make_batch<float>(4, 6, 5, 3, data);
  cf::TrainOptions o;
  o.sequence_length = good.lengths;
  o.batch_threads = 1;
  model.train_step(good.x, good.y, adam, o);  // a first step, so that Adam has slots to keep
  Batch<float> bad = good;
  bad.x(0, 2, 1) = std::numeric_limits<float>::quiet_NaN();  // example 0 runs all 6 steps
  const auto weights = values_of_vars(model.variables());
  const auto state = adam.export_state(model.variables());

  SECTION("stop: NumericError naming the step, nothing changes") {
    const std::string msg = message_of<cf::NumericError>([&] { model.train_step(bad.x, bad.y, adam, o); });
    CHECK_THAT(msg, Contains("step 2") && Contains("nan"));
    CHECK(bitwise_equal(values_of_vars(model.variables()), weights));
    CHECK(same_optimizer_state(adam.export_state(model.variables()), state));
    CHECK(model.steps() == 2);
    CHECK(model.skipped_steps() == 0);
  }
  SECTION("skip: reported, counted, nothing changes, training continues as if it never happened") {
    cf::Model<float> twin = model;
    cf::AdamOptimizer<float> twin_adam(0.5);
    twin_adam.import_state(state, twin.variables());
    o.on_nonfinite = cf::NonFinitePolicy::skip;
    const cf::StepResult r = model.train_step(bad.x, bad.y, adam, o);
    CHECK(r.skipped);
    CHECK(std::isnan(r.loss));
    CHECK(bitwise_equal(values_of_vars(model.variables()), weights));
    CHECK(same_optimizer_state(adam.export_state(model.variables()), state));
    CHECK(model.skipped_steps() == 1);
    CHECK(model.steps() == 2);
    const cf::StepResult r2 = model.train_step(bad.x, bad.y, adam, o);
    CHECK(r2.skipped);
    CHECK(model.skipped_steps() == 2);
    const cf::StepResult next = model.train_step(good.x, good.y, adam, o);
    const cf::StepResult twin_next = twin.train_step(good.x, good.y, twin_adam, o);
    CHECK_FALSE(next.skipped);
    CHECK(next.loss == twin_next.loss);
    CHECK(bitwise_equal(values_of_vars(model.variables()), values_of_vars(twin.variables())));
    CHECK(model.skipped_steps() == 2);
    CHECK(model.steps() == 4);
  }
  SECTION("a finite loss with a NaN gradient: stop names the variable, skip leaves everything") {
    // An infinite input weight of the top layer: its gate saturates (the forward pass and the
    // loss stay finite), and backward multiplies that weight by the gate's zero derivative, a
    // NaN that reaches the layer below.
    cf::VariableRef<float>& top = model.variables()[4];
    REQUIRE(top.name == "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel");
    (*top.value)(0, 0) = std::numeric_limits<float>::infinity();
    const auto poisoned = values_of_vars(model.variables());
    const std::string msg = message_of<cf::NumericError>([&] { model.train_step(good.x, good.y, adam, o); });
    CHECK_THAT(msg, Contains("step 2: the gradient of 'rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel' is nan"));
    o.on_nonfinite = cf::NonFinitePolicy::skip;
    const cf::StepResult r = model.train_step(good.x, good.y, adam, o);
    CHECK(r.skipped);
    CHECK(std::isfinite(r.loss));
    CHECK(bitwise_equal(values_of_vars(model.variables()), poisoned));
    CHECK(same_optimizer_state(adam.export_state(model.variables()), state));
    CHECK(model.steps() == 3);
    CHECK(model.skipped_steps() == 1);
  }
  SECTION("a diverged head (an infinite bias): the loss is NaN") {
    model.head().bias().value(0, 1) = std::numeric_limits<float>::infinity();
    const auto diverged = values_of_vars(model.variables());
    CHECK_THAT(message_of<cf::NumericError>([&] { model.train_step(good.x, good.y, adam, o); }),
               Contains("step 2: the loss is nan"));
    o.on_nonfinite = cf::NonFinitePolicy::skip;
    CHECK(model.train_step(good.x, good.y, adam, o).skipped);
    CHECK(bitwise_equal(values_of_vars(model.variables()), diverged));
    CHECK(model.skipped_steps() == 1);
  }
}

TEST_CASE("Model rejects bad inputs, labels, lengths and options, leaving the weights unchanged", "[model][errors]") {
  cf::Rng rng(3);
  cf::Model<float> model = small_model<float>(rng);
  cf::AdamOptimizer<float> adam(0.01);
  cf::Rng data(1);
  const Batch<float> b = make_batch<float>(4, 6, 5, 3, data);
  const auto weights = values_of_vars(model.variables());
  const auto adam0 = adam.export_state(model.variables());
  cf::TrainOptions o;
  o.batch_threads = 1;

  const cf::Tensor3<float> wrong_depth = random_tensor<float>(4, 6, 4, data);
  CHECK_THAT(message_of<cf::ShapeError>([&] { model.train_step(wrong_depth, b.y, adam, o); }),
             Contains("Model::train_step: inputs are [4, 6, 4]") && Contains("[batch >= 1, time >= 1, 5]"));
  CHECK_THAT(message_of<cf::ShapeError>([&] { model.predict(wrong_depth); }),
             Contains("inputs are [4, 6, 4]") && Contains(", 5]"));
  CHECK_THAT(message_of<cf::ShapeError>([&] { model.evaluate(wrong_depth, b.y); }), Contains("Model::evaluate"));
  CHECK_THAT(message_of<cf::ShapeError>([&] {
               model.train_step(b.x, std::vector<int>{0, 1, 2}, adam, o);
             }),
             Contains("3 labels for 4 examples"));
  CHECK_THAT(message_of<cf::ShapeError>([&] {
               model.evaluate(b.x, std::vector<int>{0, 1, 2, 0, 1});
             }),
             Contains("5 labels for 4 examples"));
  CHECK_THAT(message_of<cf::ValueError>([&] {
               model.train_step(b.x, std::vector<int>{0, 1, 3, 0}, adam, o);
             }),
             Contains("labels[2] = 3 is outside [0, 3)"));
  CHECK_THAT(message_of<cf::ValueError>([&] {
               model.train_step(b.x, std::vector<long>{0, -1, 2, 0}, adam, o);
             }),
             Contains("labels[1] = -1 is outside [0, 3)"));
  CHECK_THAT(message_of<cf::ValueError>([&] {
               model.train_step(b.x, std::vector<std::uint8_t>{0, 1, 2, 200}, adam, o);
             }),
             Contains("labels[3] = 200 is outside [0, 3)"));
  CHECK_THAT(message_of<cf::ValueError>([&] {
               model.evaluate(b.x, std::vector<int>{0, 1, 2, 9});
             }),
             Contains("labels[3] = 9"));

  cf::TrainOptions few = o;
  few.sequence_length = std::vector<Index>{6, 6, 6};
  CHECK_THAT(message_of<cf::ShapeError>([&] { model.train_step(b.x, b.y, adam, few); }),
             Contains("sequence_length has 3 entries") && Contains("batch 4"));
  cf::TrainOptions too_long = o;
  too_long.sequence_length = std::vector<Index>{6, 7, 1, 1};
  CHECK_THAT(message_of<cf::ValueError>([&] { model.train_step(b.x, b.y, adam, too_long); }),
             Contains("sequence_length[1] = 7 is outside [0, 6]"));
  cf::TrainOptions negative = o;
  negative.sequence_length = std::vector<Index>{6, 1, -1, 1};
  CHECK_THAT(message_of<cf::ValueError>([&] { model.train_step(b.x, b.y, adam, negative); }),
             Contains("sequence_length[2] = -1"));
  cf::InferenceOptions il;
  il.sequence_length = std::vector<Index>{1, 2};
  CHECK_THAT(message_of<cf::ShapeError>([&] { model.logits(b.x, il); }), Contains("sequence_length has 2 entries"));

  cf::TrainOptions threads = o;
  threads.batch_threads = -1;
  CHECK_THAT(message_of<cf::ValueError>([&] { model.train_step(b.x, b.y, adam, threads); }),
             Contains("batch_threads must be >= 0") && Contains("given -1"));
  cf::InferenceOptions ithreads;
  ithreads.batch_threads = -2;
  CHECK_THAT(message_of<cf::ValueError>([&] { model.predict_proba(b.x, ithreads); }),
             Contains("batch_threads must be >= 0"));
  cf::InferenceOptions chunk;
  chunk.batch_size = -1;
  CHECK_THAT(message_of<cf::ValueError>([&] { model.evaluate(b.x, b.y, chunk); }), Contains("batch_size must be >= 0"));
  for (const double clip : {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    cf::TrainOptions c = o;
    c.clip_norm = clip;
    CHECK_THAT(message_of<cf::ValueError>([&] { model.train_step(b.x, b.y, adam, c); }),
               Contains("clip_norm must be finite and >= 0"));
  }
  const cf::Tensor3<float> empty(0, 6, 5);
  CHECK_THAT(message_of<cf::ShapeError>([&] { model.train_step(empty, std::vector<int>{}, adam, o); }),
             Contains("inputs are [0, 6, 5]"));

  CHECK(bitwise_equal(values_of_vars(model.variables()), weights));
  CHECK(model.steps() == 0);
  CHECK(same_optimizer_state(adam.export_state(model.variables()), adam0));
  // And it still trains afterwards.
  CHECK_FALSE(model.train_step(b.x, b.y, adam, o).skipped);
  CHECK(model.steps() == 1);
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

TEST_CASE("Model::save and load_model round trip bitwise and resume training", "[model][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("model.ckpt");
  cf::Rng rng(3);
  cf::Model<float> model = small_model<float>(rng);
  cf::AdamOptimizer<float> adam(0.01);
  cf::Rng data(30);
  const Batch<float> b = make_batch<float>(6, 6, 5, 3, data);
  cf::TrainOptions o;
  o.sequence_length = b.lengths;
  o.batch_threads = 1;
  for (int s = 0; s < 3; ++s) model.train_step(b.x, b.y, adam, o);
  model.save(path, &adam, {{"epoch", "3"}});
  CHECK(read_bytes(path) == model.checkpoint_bytes(&adam, {{"epoch", "3"}}));
  const cf::io::CheckpointInfo info = cf::io::read_checkpoint_info(path);
  REQUIRE(info.metadata.count("cellflow.model") == 1);
  CHECK(info.metadata.at("cellflow.model") == cf::to_text(model.config()));
  CHECK(info.metadata.at("epoch") == "3");

  SECTION("weights and predictions") {
    cf::Model<float> loaded = cf::load_model<float>(path);
    CHECK(cf::differences(loaded.config(), model.config()).empty());
    CHECK(names_of(loaded.variables()) == names_of(model.variables()));
    CHECK(bitwise_equal(values_of_vars(loaded.variables()), values_of_vars(model.variables())));
    cf::InferenceOptions io;
    io.sequence_length = b.lengths;
    CHECK(bitwise_equal(loaded.predict_proba(b.x, io), model.predict_proba(b.x, io)));
    CHECK(loaded.predict(b.x) == model.predict(b.x));
  }
  SECTION("with the optimizer: the next steps are bitwise those of the saved model") {
    cf::AdamOptimizer<float> adam2(0.5);  // its hyper-parameters are replaced by the file's
    cf::Model<float> loaded = cf::load_model<float>(path, &adam2);
    CHECK(adam2.learning_rate() == adam.learning_rate());
    CHECK(same_optimizer_state(adam2.export_state(loaded.variables()), adam.export_state(model.variables())));
    for (int s = 0; s < 2; ++s) {
      const auto r1 = model.train_step(b.x, b.y, adam, o);
      const auto r2 = loaded.train_step(b.x, b.y, adam2, o);
      CHECK(r1.loss == r2.loss);
      REQUIRE(bitwise_equal(values_of_vars(loaded.variables()), values_of_vars(model.variables())));
    }
  }
  SECTION("double: its own type only") {
    CHECK_THAT(message_of<cf::ValueError>([&] { cf::load_model<double>(path); }),
               Contains("load_model<float>") && Contains("model.ckpt"));
    cf::Rng r(1);
    cf::Model<double> md = small_model<double>(r);
    const std::string pd = dir.file("double.ckpt");
    md.save(pd);
    const cf::Model<double> back = cf::load_model<double>(pd);
    CHECK(bitwise_equal(values_of_vars(back.variables()), values_of_vars(md.variables())));
    CHECK_THAT(message_of<cf::ValueError>([&] { cf::load_model<float>(pd); }), Contains("load_model<double>"));
  }
  SECTION("a checkpoint without an architecture loads with load_weights only") {
    const std::string plain = dir.file("plain.ckpt");
    cf::io::save_checkpoint(plain, model.variables());
    CHECK_THAT(message_of<cf::ValueError>([&] { cf::load_model<float>(plain); }),
               Contains("load_weights") && Contains("no architecture"));
    cf::Rng other(77);
    cf::Model<float> target = small_model<float>(other);
    REQUIRE_FALSE(bitwise_equal(values_of_vars(target.variables()), values_of_vars(model.variables())));
    target.load_weights(plain);
    CHECK(bitwise_equal(values_of_vars(target.variables()), values_of_vars(model.variables())));
  }
  SECTION("load_weights of another architecture lists the differences and changes nothing") {
    cf::Rng other(77);
    cf::Model<float> target(5, {cf::BasicLSTM(7), cf::BasicLSTM(6)}, 4, other);
    const auto before = values_of_vars(target.variables());
    const std::string msg = message_of<cf::ValueError>([&] { target.load_weights(path); });
    CHECK_THAT(msg, Contains("another architecture") && Contains("2 differences") &&
                        Contains("layer 0: GRUCell(7) in the file, BasicLSTMCell(7, forget_bias=1) in the model") &&
                        Contains("classes: 3 in the file, 4 in the model") && Contains("load_model<float>"));
    CHECK_THAT(msg, !Contains("layer 1"));
    CHECK(bitwise_equal(values_of_vars(target.variables()), before));
    // The same architecture loads into a model built in code.
    cf::Rng same(78);
    cf::Model<float> ok = small_model<float>(same);
    const auto ok_before = values_of_vars(ok.variables());
    cf::GradientDescentOptimizer<float> sgd(0.1);
    CHECK_THAT(message_of<cf::ValueError>([&] { ok.load_weights(path, &sgd); }),
               Contains("'adam'") && Contains("gradient_descent"));
    CHECK(bitwise_equal(values_of_vars(ok.variables()), ok_before));
    CHECK(sgd.learning_rate() == 0.1f);
    cf::AdamOptimizer<float> adam3(0.1);
    const cf::io::CheckpointInfo got = ok.load_weights(path, &adam3);
    CHECK(got.metadata.at("epoch") == "3");
    CHECK(bitwise_equal(values_of_vars(ok.variables()), values_of_vars(model.variables())));
    CHECK(same_optimizer_state(adam3.export_state(ok.variables()), adam.export_state(model.variables())));
  }
  SECTION("truncated and foreign files are IOErrors, and change nothing") {
    const Bytes bytes = read_bytes(path);
    const std::string half = dir.file("half.ckpt");
    write_bytes(half, Bytes(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() / 2)));
    CHECK_THAT(message_of<cf::IOError>([&] { cf::load_model<float>(half); }),
               Contains("load_model") && Contains("half.ckpt"));
    const std::string text = dir.file("notes.txt");
    const std::string words = "these are not the weights you are looking for\n";
    write_bytes(text, Bytes(words.begin(), words.end()));
    CHECK_THAT(message_of<cf::IOError>([&] { cf::load_model<float>(text); }), Contains("notes.txt"));
    CHECK_THAT(message_of<cf::IOError>([&] { cf::load_model<float>(dir.file("missing.ckpt")); }),
               Contains("missing.ckpt"));
    cf::Rng other(77);
    cf::Model<float> target = small_model<float>(other);
    const auto before = values_of_vars(target.variables());
    CHECK_THROWS_AS(target.load_weights(half), cf::IOError);
    CHECK_THROWS_AS(target.load_weights(text), cf::IOError);
    CHECK(bitwise_equal(values_of_vars(target.variables()), before));
  }
  SECTION("an unknown cell kind or a newer architecture version: load_model refuses it by name") {
    const std::string text = cf::to_text(model.config());
    const std::string fancy = dir.file("fancy.ckpt");
    cf::io::save_checkpoint(
        fancy, model.variables(), nullptr,
        {{"cellflow.model", replace_once(text, "cell GRUCell num_units=7", "cell FancyCell num_units=4")}});
    CHECK_THAT(message_of<cf::ValueError>([&] { cf::load_model<float>(fancy); }),
               Contains("unknown cell kind") && Contains("FancyCell") && Contains("fancy.ckpt"));
    const std::string newer = dir.file("newer.ckpt");
    cf::io::save_checkpoint(newer, model.variables(), nullptr,
                            {{"cellflow.model", replace_once(text, "cellflow-model 1", "cellflow-model 99")}});
    CHECK_THAT(message_of<cf::ValueError>([&] { cf::load_model<float>(newer); }), Contains("99") && Contains("newer"));
    // load_weights into a model built by code: an architecture this cellflow cannot read (a
    // user's cell kind, a newer version) does not stop the weights loading by variable name.
    cf::Rng other(77);
    cf::Model<float> target = small_model<float>(other);
    target.load_weights(fancy);
    CHECK(bitwise_equal(values_of_vars(target.variables()), values_of_vars(model.variables())));
    cf::Model<float> target2 = small_model<float>(other);
    target2.load_weights(newer);
    CHECK(bitwise_equal(values_of_vars(target2.variables()), values_of_vars(model.variables())));
  }
}

TEST_CASE("a model with a user's cell saves, loads its weights by name, and load_model names the unknown kind",
          "[model][errors]") {
  TempDir dir;
  const auto build = [](std::uint64_t seed) {
    cf::Rng rng(seed);
    std::vector<cf::AnyCell<float>> layers;
    layers.emplace_back(cf::GRUCell<float>(3, 4, rng));
    layers.emplace_back(mycells::ElmanCell<float>(4, 5, rng));  // cell_name() "elman_cell(num_units=5)"
    return cf::Model<float>(cf::MultiRNNCell<float>(std::move(layers)), cf::Dense<float>(5, 2, rng));
  };
  const cf::Model<float> saved = build(1);
  const std::string path = dir.file("user_cell.ckpt");
  saved.save(path);
  const std::string text = cf::io::read_checkpoint_info(path).metadata.at("cellflow.model");
  CHECK_THAT(text, Contains("cell elman_cell(num_units_5) num_units=0"));  // one word, whatever the name

  cf::Model<float> other = build(2);
  other.load_weights(path);  // the architecture text is not readable here: matched by name
  for (std::size_t k = 0; k < saved.variables().size(); ++k)
    CHECK(bitwise_equal(*other.variables()[k].value, *saved.variables()[k].value));

  CHECK_THAT(message_of<cf::ValueError>([&] { cf::load_model<float>(path); }),
             Contains("unknown cell kind 'elman_cell(num_units_5)'"));
}

}  // namespace test_model
