// A task only recurrence can solve: the class is the sign of the first step's input, and every
// later step is noise. A feed-forward model on the last step is at chance; a trained LSTM or
// GRU must carry the first value through the noisy steps in its state.
#include <catch2/catch.hpp>

#include "support/test_util.hpp"

namespace test_learnability {

using namespace cellflow_test;

struct Batch {
  cf::Tensor3<float> x;
  std::vector<int> y;
};

Batch make_batch(cf::Index n, cf::Index steps, cf::Rng& rng) {
  Batch b{cf::Tensor3<float>(n, steps, 2), std::vector<int>(static_cast<std::size_t>(n))};
  for (cf::Index i = 0; i < n; ++i) {
    const int label = static_cast<int>(rng.below(2));
    b.y[static_cast<std::size_t>(i)] = label;
    for (cf::Index t = 0; t < steps; ++t) {
      b.x(i, t, 0) = t == 0 ? (label ? 1.0f : -1.0f) : rng.normal<float>();
      b.x(i, t, 1) = t == 0 ? 1.0f : 0.0f;  // marks the first step
    }
  }
  return b;
}

template <class Cell>
double train_and_test(Cell cell, cf::Rng& rng) {
  const cf::Index steps = 10, batch = 32;
  cf::Dense<float> head(cell.output_size(), 2, rng);
  cf::VariableList<float> vars;
  vars.add(cell, "rnn").add(head);
  cf::AdamOptimizer<float> adam(0.02f);
  for (int it = 0; it < 150; ++it) {
    Batch b = make_batch(batch, steps, rng);
    vars.zero_grad();
    auto r = cf::dynamic_rnn(cell, b.x);
    const cf::Matrix<float>& h = cf::output_of(r.final_state);
    auto logits = head(h);
    auto xent = cf::sparse_softmax_cross_entropy_with_logits(b.y, logits);
    auto ds = cell.zero_state(batch);
    const cf::Matrix<float> dh = head.backward(h, xent.mean_gradient());
    if constexpr (std::is_same_v<typename Cell::State, cf::Matrix<float>>)
      ds = dh;
    else
      ds.h = dh;
    cf::dynamic_rnn_backward(cell, r, nullptr, &ds);
    adam.apply_gradients(vars);
  }
  Batch test = make_batch(500, steps, rng);
  cf::RNNOptions inference;
  inference.training = false;
  auto r = cf::dynamic_rnn(cell, test.x, inference);
  return cf::mean_of(cf::in_top_k(head(cf::output_of(r.final_state)), test.y, 1));
}

TEST_CASE("an LSTM learns to remember its first input through 9 noisy steps", "[learnability]") {
  cf::Rng rng(2024);
  const double acc = train_and_test(cf::BasicLSTMCell<float>(2, 8, rng), rng);
  INFO("test accuracy " << acc);
  REQUIRE(acc >= 0.97);
}

TEST_CASE("a GRU learns to remember its first input through 9 noisy steps", "[learnability]") {
  cf::Rng rng(7);
  const double acc = train_and_test(cf::GRUCell<float>(2, 8, rng), rng);
  INFO("test accuracy " << acc);
  REQUIRE(acc >= 0.97);
}

}  // namespace test_learnability
