// Smoke test of the seed program's model (3 x LSTM in the README; 2 x LSTM(48) here) on the
// shipped digits: a short training run must learn clearly (chance is 10%). The MNIST example
// program itself is tested by its own ctests (tests/example_*.sh).
#include <catch2/catch.hpp>

#include "cellflow/io.hpp"
#include "support/seed_model.hpp"
#include "support/test_util.hpp"

namespace test_mnist_smoke {

using namespace cellflow_test;

TEST_CASE("the seed program's model learns from a few hundred shipped digits", "[mnist][smoke][long]") {
  auto data = cf::data::load_mnist_dir<float>(std::string(CELLFLOW_DATA_DIR) + "/mnist-subset");
  REQUIRE(data.train.size() == 8000);
  REQUIRE(data.test.size() == 2000);
  const auto train = cf::data::head(data.train, 600);
  const auto test = cf::data::head(data.test, 500);

  cf::Rng rng(3);
  SeedModel model(/*layers=*/2, /*inputs=*/28, /*units=*/48, /*classes=*/10, 0.01f, rng);
  const double before = model.accuracy(test.images, test.labels);
  cf::data::ShuffleBatches batches(train.size(), 50, rng);
  cf::Tensor3<float> x;
  std::vector<int> y;
  double first_loss = -1, last_loss = 0;
  for (int epoch = 0; epoch < 6; ++epoch) {
    double loss = 0;
    const auto plan = batches.epoch();
    for (const auto& idx : plan) {
      cf::data::gather(train, idx, x, y);
      loss += model.train_step(x, y);
    }
    loss /= static_cast<double>(plan.size());
    if (first_loss < 0) first_loss = loss;
    last_loss = loss;
  }
  const double after = model.accuracy(test.images, test.labels);
  INFO("test accuracy before " << before << ", after " << after << "; train loss " << first_loss << " -> "
                               << last_loss);
  REQUIRE(after >= 0.6);
  REQUIRE(last_loss < 0.6 * first_loss);
}

}  // namespace test_mnist_smoke
