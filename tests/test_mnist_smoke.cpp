// Smoke test of the MNIST example's model on the shipped digits: a short training run must learn
// clearly (chance is 10%).
#include <catch2/catch.hpp>

#include "cellflow/io.hpp"
#include "mnist_model.hpp"
#include "support/test_util.hpp"

using namespace cellflow_test;

TEST_CASE("the MNIST example's model learns from a few hundred shipped digits", "[mnist][smoke]") {
  auto data = cf::data::load_mnist_dir<float>(std::string(CELLFLOW_DATA_DIR) + "/mnist-subset");
  REQUIRE(data.train.size() == 8000);
  REQUIRE(data.test.size() == 2000);
  const auto train = cf::data::head(data.train, 600);
  const auto test = cf::data::head(data.test, 500);

  cf::Rng rng(3);
  mnist::Classifier model(mnist::ModelConfig{mnist::CellKind::basic, 2, 48, 28, 10}, 0.01f, rng);
  const double before = model.evaluate(test).accuracy;
  cf::data::ShuffleBatches batches(train.size(), 50, rng);
  cf::Tensor3<float> x;
  std::vector<int> y;
  double first_loss = -1, last_loss = 0;
  for (int epoch = 0; epoch < 6; ++epoch) {
    double loss = 0;
    const auto plan = batches.epoch();
    for (const auto& idx : plan) {
      cf::data::gather(train, idx, x, y);
      loss += model.train_step(x, y).loss;
    }
    loss /= static_cast<double>(plan.size());
    if (first_loss < 0) first_loss = loss;
    last_loss = loss;
  }
  const auto after = model.evaluate(test);
  INFO("test accuracy before " << before << ", after " << after.accuracy << "; train loss " << first_loss << " -> "
                               << last_loss);
  REQUIRE(after.accuracy >= 0.6);
  REQUIRE(last_loss < 0.6 * first_loss);
}
