// fit (model/fit.hpp) and its callbacks (model/callbacks.hpp): fit equals a hand-written loop of
// Model::train_step over ShuffleBatches bitwise, with a dataset's lengths; epochs numbered from 1
// and continued by initial_epoch (a resumed run equals the uninterrupted one bitwise); the CSV
// log, checkpoints per epoch and of the best epoch, early stopping (patience, restoring the best
// weights), the learning-rate schedule, user callbacks that stop training, a failing callback
// (every callback still sees the epoch, then fit throws and on_train_abort runs), ProgressBar's
// piped output, and the errors for data that does not fit the model (before any step).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/test_util.hpp"

namespace test_fit {

using namespace cellflow_test;

/// n sequences of up to 8 steps of 3 features (lengths 2..8, zero past them); the label is the
/// feature with the largest sum.
cf::data::Dataset<float> make_data(int n, std::uint64_t seed, bool with_lengths = true) {
  cf::Rng rng(seed);
  cf::data::Dataset<float> d;
  d.images = cf::Tensor3<float>(n, 8, 3);
  d.images.setZero();
  for (int i = 0; i < n; ++i) {
    const cf::Index len = with_lengths ? 2 + static_cast<cf::Index>(rng.below(7)) : 8;
    float sum[3] = {0, 0, 0};
    for (cf::Index t = 0; t < len; ++t)
      for (int k = 0; k < 3; ++k) sum[k] += d.images(i, t, k) = rng.uniform(-1.0f, 1.0f);
    d.labels.push_back(sum[0] >= sum[1] && sum[0] >= sum[2] ? 0 : sum[1] >= sum[2] ? 1 : 2);
    if (with_lengths) d.lengths.push_back(len);
  }
  return d;
}

cf::Model<float> make_model(std::uint64_t seed = 5) {
  cf::Rng rng(seed);
  return cf::Model<float>(3, {cf::GRU(6), cf::BasicLSTM(5)}, 3, rng);
}

bool same_weights(const cf::Model<float>& a, const cf::Model<float>& b) {
  if (a.variables().size() != b.variables().size()) return false;
  for (std::size_t k = 0; k < a.variables().size(); ++k)
    if (*a.variables()[k].value != *b.variables()[k].value) return false;
  return true;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

cf::FitOptions quiet(int epochs, cf::Index batch = 16) {
  cf::FitOptions o;
  o.epochs = epochs;
  o.batch_size = batch;
  o.seed = 11;
  o.batch_threads = 1;
  o.verbose = false;
  return o;
}

/// Records what fit told it.
struct Recorder : cf::Callback {
  std::vector<std::string> events;
  std::vector<cf::EpochLogs> epochs;
  std::vector<cf::BatchLogs> batches;
  void on_train_begin(cf::FitContext&) override { events.push_back("train_begin"); }
  void on_epoch_begin(cf::FitContext&, int e) override { events.push_back("epoch_begin " + std::to_string(e)); }
  void on_batch_end(cf::FitContext&, const cf::BatchLogs& b) override { batches.push_back(b); }
  void on_epoch_end(cf::FitContext&, const cf::EpochLogs& e) override {
    events.push_back("epoch_end " + std::to_string(e.epoch));
    epochs.push_back(e);
  }
  void on_train_end(cf::FitContext&, const cf::History&) override { events.push_back("train_end"); }
  void on_train_abort(cf::FitContext&) override { events.push_back("train_abort"); }
};

TEST_CASE("fit equals a hand-written loop of train_step over ShuffleBatches, bitwise", "[fit]") {
  const auto train = make_data(70, 1), val = make_data(30, 2);
  cf::Model<float> a = make_model(), b = make_model();
  cf::AdamOptimizer<float> adam_a(0.01), adam_b(0.01);
  const cf::History h = cf::fit(a, adam_a, train, val, quiet(3));

  cf::Rng order(11);
  cf::data::ShuffleBatches batches(train.size(), 16, order);
  cf::Tensor3<float> x;
  std::vector<int> y;
  std::vector<cf::Index> lengths;
  cf::TrainOptions step;
  step.batch_threads = 1;
  for (int e = 0; e < 3; ++e) {
    double loss_sum = 0;
    cf::Index n = 0;
    for (const auto& idx : batches.epoch()) {
      cf::data::gather(train, idx, x, y, lengths);
      step.sequence_length = lengths;
      const auto r = b.train_step(x, y, adam_b, step);
      loss_sum += r.loss * static_cast<double>(y.size());
      n += static_cast<cf::Index>(y.size());
    }
    cf::InferenceOptions io;
    io.batch_threads = 1;
    const cf::Metrics v = b.evaluate(val, io);
    REQUIRE(h.epochs.size() == 3);
    CHECK(h.epochs[e].epoch == e + 1);
    CHECK(h.epochs[e].epochs == 3);
    CHECK(h.epochs[e].loss == loss_sum / static_cast<double>(n));
    CHECK(h.epochs[e].val_loss == v.loss);
    CHECK(h.epochs[e].val_accuracy == v.accuracy);
    CHECK(h.epochs[e].examples == 70);
    CHECK(h.epochs[e].steps == batches.num_batches());
  }
  CHECK(same_weights(a, b));
  CHECK(a.steps() == b.steps());
}

TEST_CASE("fit draws the batch order from FitOptions::rng when given, else from Rng(seed)", "[fit]") {
  const auto train = make_data(40, 3);
  cf::Model<float> a = make_model(), b = make_model(), c = make_model();
  cf::AdamOptimizer<float> oa(0.01), ob(0.01), oc(0.01);
  cf::FitOptions o = quiet(2);
  cf::fit(a, oa, train, o);
  cf::Rng same(11), other(12);
  o.rng = &same;
  cf::fit(b, ob, train, o);
  CHECK(same_weights(a, b));
  o.rng = &other;
  cf::fit(c, oc, train, o);
  CHECK_FALSE(same_weights(a, c));
}

TEST_CASE("fit numbers epochs from 1, a resumed run (initial_epoch) equals the uninterrupted one", "[fit]") {
  TempDir dir;
  const auto train = make_data(50, 4), val = make_data(20, 5);
  cf::Model<float> whole = make_model();
  cf::AdamOptimizer<float> adam_whole(0.01);
  Recorder rec_whole;
  cf::fit(whole, adam_whole, train, val, quiet(3), rec_whole);
  CHECK(rec_whole.events == std::vector<std::string>{"train_begin", "epoch_begin 1", "epoch_end 1", "epoch_begin 2",
                                                     "epoch_end 2", "epoch_begin 3", "epoch_end 3", "train_end"});

  cf::Model<float> first = make_model();
  cf::AdamOptimizer<float> adam_first(0.01);
  const std::string path = dir.file("ckpt-{epoch}.cf");
  cf::ModelCheckpoint checkpoint(path);
  cf::fit(first, adam_first, train, val, quiet(1), checkpoint);
  CHECK(checkpoint.last_saved() == dir.file("ckpt-1.cf"));
  const auto info = cf::io::read_checkpoint_info(checkpoint.last_saved());
  CHECK(cf::epochs_trained(info) == 1);

  cf::AdamOptimizer<float> adam_resumed(0.5);  // replaced by the file's state
  cf::Model<float> resumed = cf::load_model<float>(checkpoint.last_saved(), &adam_resumed);
  cf::FitOptions o = quiet(2);
  o.initial_epoch = cf::epochs_trained(info);
  Recorder rec;
  const cf::History h = cf::fit(resumed, adam_resumed, train, val, o, rec);
  CHECK(rec.events == std::vector<std::string>{"train_begin", "epoch_begin 2", "epoch_end 2", "epoch_begin 3",
                                               "epoch_end 3", "train_end"});
  REQUIRE(h.epochs.size() == 2);
  CHECK(h.epochs[0].epoch == 2);
  CHECK(h.epochs[1].epochs == 3);
  CHECK(same_weights(resumed, whole));
  CHECK(h.epochs[1].val_loss == rec_whole.epochs[2].val_loss);
}

TEST_CASE("BatchLogs count the batches and examples of the epoch", "[fit]") {
  const auto train = make_data(37, 6, /*with_lengths=*/false);
  cf::Model<float> m = make_model();
  cf::GradientDescentOptimizer<float> sgd(0.1);  // any optimizer
  Recorder rec;
  cf::fit(m, sgd, train, quiet(1, 10), rec);
  REQUIRE(rec.batches.size() == 3);  // 37 / 10 -> 3 batches of 13, 12, 12
  CHECK(rec.batches[0].batch == 1);
  CHECK(rec.batches[0].examples == 13);
  CHECK(rec.batches[2].batch == 3);
  CHECK(rec.batches[2].batches == 3);
  CHECK(rec.batches[2].examples == 37);
  CHECK(rec.batches[2].epoch_examples == 37);
  CHECK_FALSE(rec.epochs[0].has_validation);
  CHECK(std::isnan(rec.epochs[0].val_loss));
  CHECK(rec.epochs[0].learning_rate == Approx(0.1));
}

TEST_CASE("CSVLogger writes a row per epoch, numbered as fit numbers them, append keeps earlier rows", "[fit]") {
  TempDir dir;
  const std::string csv = dir.file("log.csv");
  const auto train = make_data(40, 7), val = make_data(20, 8);
  cf::Model<float> m = make_model();
  cf::AdamOptimizer<float> adam(0.01);
  const cf::History h = cf::fit(m, adam, train, val, quiet(2), cf::CSVLogger(csv));
  auto rows = lines_of(read_text(csv));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == cf::CSVLogger::kHeader);
  CHECK(cellflow_test::starts_with(rows[1], "1,"));
  CHECK(cellflow_test::starts_with(rows[2], "2,"));
  // the loss column is the epoch's loss
  CHECK(std::stod(rows[2].substr(2)) == Approx(h.epochs[1].loss).epsilon(1e-8));

  // A resumed run with append: the row of epoch 1 stays, epoch 2 is replaced, 3 is added.
  cf::FitOptions o = quiet(2);
  o.initial_epoch = 1;
  cf::fit(m, adam, train, val, o, cf::CSVLogger(csv, /*append=*/true));
  rows = lines_of(read_text(csv));
  REQUIRE(rows.size() == 4);
  CHECK(cellflow_test::starts_with(rows[1], "1,"));
  CHECK(cellflow_test::starts_with(rows[2], "2,"));
  CHECK(cellflow_test::starts_with(rows[3], "3,"));

  // Without validation data the val_ columns are empty.
  cf::fit(m, adam, train, quiet(1), cf::CSVLogger(csv));
  rows = lines_of(read_text(csv));
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].find(",,") != std::string::npos);

  // A file with another header is not appended to.
  std::ofstream(dir.file("other.csv")) << "a,b\n1,2\n";
  CHECK_THROWS_WITH(cf::fit(m, adam, train, quiet(1), cf::CSVLogger(dir.file("other.csv"), true)),
                    Catch::Contains("another header"));
  CHECK(read_text(dir.file("other.csv")) == "a,b\n1,2\n");
}

TEST_CASE("ModelCheckpoint saves every epoch, or the best one by a metric", "[fit]") {
  TempDir dir;
  const auto train = make_data(40, 9), val = make_data(20, 10);
  cf::Model<float> m = make_model();
  cf::AdamOptimizer<float> adam(0.01);
  cf::fit(m, adam, train, val, quiet(2), cf::ModelCheckpoint(dir.file("every.cf")));
  const cf::Model<float> loaded = cf::load_model<float>(dir.file("every.cf"));
  CHECK(same_weights(loaded, m));
  CHECK(cf::io::read_checkpoint_info(dir.file("every.cf")).optimizer == "adam");

  // save_best_only: the file holds the epoch with the lowest val_loss.
  cf::Model<float> m2 = make_model();
  cf::AdamOptimizer<float> adam2(0.05);
  cf::ModelCheckpointOptions best;
  best.save_best_only = true;
  best.monitor = "val_loss";
  best.with_optimizer = false;
  Recorder rec;
  cf::fit(m2, adam2, train, val, quiet(4), rec, cf::ModelCheckpoint(dir.file("best.cf"), best));
  int best_epoch = 1;
  for (const auto& e : rec.epochs)
    if (e.val_loss < rec.epochs[static_cast<std::size_t>(best_epoch - 1)].val_loss) best_epoch = e.epoch;
  const auto info = cf::io::read_checkpoint_info(dir.file("best.cf"));
  CHECK(cf::epochs_trained(info) == best_epoch);
  CHECK_FALSE(info.has_optimizer);

  // A monitor that does not exist, or needs validation data fit was not given: before any step.
  cf::Model<float> m3 = make_model();
  const cf::Model<float> before = m3;
  best.monitor = "val_precision";
  CHECK_THROWS_WITH(cf::fit(m3, adam2, train, val, quiet(1), cf::ModelCheckpoint(dir.file("x.cf"), best)),
                    Catch::Contains("cannot monitor 'val_precision'"));
  best.monitor = "val_accuracy";
  CHECK_THROWS_WITH(cf::fit(m3, adam2, train, quiet(1), cf::ModelCheckpoint(dir.file("x.cf"), best)),
                    Catch::Contains("no validation data"));
  CHECK(same_weights(m3, before));
}

TEST_CASE("EarlyStopping stops after `patience` epochs without improvement and restores the best weights", "[fit]") {
  const auto train = make_data(40, 12), val = make_data(20, 13);
  // A learning rate so large that val_loss gets worse after the first epochs.
  cf::Model<float> m = make_model();
  cf::GradientDescentOptimizer<float> sgd(40.0);
  Recorder rec;
  struct Snap : cf::Callback {  // the weights after every epoch
    std::vector<std::vector<double>> weights;
    void on_epoch_end(cf::FitContext& ctx, const cf::EpochLogs&) override { weights.push_back(ctx.weights()); }
  } snap;
  cf::EarlyStopping stop("val_loss", /*patience=*/2, 0, /*restore_best_weights=*/true);
  cf::FitOptions o = quiet(30);
  o.on_nonfinite = cf::NonFinitePolicy::skip;
  const cf::History h = cf::fit(m, sgd, train, val, o, rec, snap, stop);
  REQUIRE(h.stopped_early);
  CHECK_THAT(h.stop_reason, Catch::Contains("val_loss has not improved for 2 epochs"));
  CHECK(stop.stopped_epoch() == static_cast<int>(h.epochs.size()));
  CHECK(stop.stopped_epoch() == stop.best_epoch() + 2);
  CHECK(h.epochs.size() < 30);
  // the best epoch's weights are back
  std::vector<double> now;
  for (const auto& v : m.variables())
    for (cf::Index i = 0; i < v.value->size(); ++i) now.push_back(v.value->data()[i]);
  CHECK(now == snap.weights[static_cast<std::size_t>(stop.best_epoch() - 1)]);

  CHECK_THROWS_AS(cf::EarlyStopping("val_loss", -1), cf::ValueError);
  cf::Model<float> m2 = make_model();
  CHECK_THROWS_WITH(cf::fit(m2, sgd, train, quiet(1), cf::EarlyStopping("val_loss")),
                    Catch::Contains("no validation data"));
}

TEST_CASE("LearningRateScheduler sets the rate before every epoch", "[fit]") {
  const auto train = make_data(30, 14);
  cf::Model<float> m = make_model();
  cf::AdamOptimizer<float> adam(0.01);
  const cf::History h =
      cf::fit(m, adam, train, quiet(3),
              cf::LearningRateScheduler([](int epoch, double lr) { return epoch == 1 ? lr : lr / 2; }));
  CHECK(h.epochs[0].learning_rate == Approx(0.01));
  CHECK(h.epochs[1].learning_rate == Approx(0.005));
  CHECK(h.epochs[2].learning_rate == Approx(0.0025));
  CHECK(adam.learning_rate() == Approx(0.0025f));
  // a schedule returning NaN stops fit with the optimizer's error
  CHECK_THROWS_AS(
      cf::fit(m, adam, train, quiet(1), cf::LearningRateScheduler([](int, double) { return std::nan(""); })),
      cf::ValueError);
}

TEST_CASE("a callback can stop training in the middle of an epoch", "[fit]") {
  const auto train = make_data(64, 15, false);
  cf::Model<float> m = make_model();
  cf::AdamOptimizer<float> adam(0.01);
  cf::LambdaCallback stopper;
  stopper.batch_end = [](cf::FitContext& ctx, const cf::BatchLogs& b) {
    if (b.epoch == 2 && b.batch == 2) ctx.stop_training("enough");
  };
  const cf::History h = cf::fit(m, adam, train, quiet(5), stopper);
  REQUIRE(h.epochs.size() == 2);
  CHECK(h.stopped_early);
  CHECK(h.stop_reason == "enough");
  CHECK(h.epochs[1].steps == 2);
  CHECK(h.epochs[1].examples == 32);
  CHECK(m.steps() == 4 + 2);
}

TEST_CASE("a callback that throws: every callback sees the epoch's end, then fit throws the first error", "[fit]") {
  const auto train = make_data(32, 16);
  cf::Model<float> m = make_model();
  cf::AdamOptimizer<float> adam(0.01);
  struct Failing : cf::Callback {
    void on_epoch_end(cf::FitContext&, const cf::EpochLogs&) override { throw cf::IOError("disk full"); }
  } failing;
  Recorder after;
  CHECK_THROWS_WITH(cf::fit(m, adam, train, quiet(3), failing, after), "disk full");
  CHECK(after.events == std::vector<std::string>{"train_begin", "epoch_begin 1", "epoch_end 1", "train_abort"});
}

TEST_CASE("fit refuses data that does not fit the model before any step", "[fit]") {
  cf::Model<float> m = make_model();
  const cf::Model<float> before = m;
  cf::AdamOptimizer<float> adam(0.01);
  auto bad_label = make_data(20, 17);
  bad_label.labels[7] = 3;
  CHECK_THROWS_WITH(cf::fit(m, adam, bad_label, quiet(1)), Catch::Contains("label 7 is 3, outside [0, 3)"));
  auto bad_depth = make_data(20, 17);
  bad_depth.images = cf::Tensor3<float>(20, 8, 4);
  bad_depth.images.setZero();
  CHECK_THROWS_AS(cf::fit(m, adam, bad_depth, quiet(1)), cf::ShapeError);
  auto bad_lengths = make_data(20, 17);
  bad_lengths.lengths.pop_back();
  CHECK_THROWS_WITH(cf::fit(m, adam, bad_lengths, quiet(1)), Catch::Contains("19 lengths"));
  auto long_lengths = make_data(20, 17);
  long_lengths.lengths[3] = 9;
  CHECK_THROWS_WITH(cf::fit(m, adam, long_lengths, quiet(1)), Catch::Contains("lengths[3] = 9 is outside [0, 8]"));
  auto bad_validation = make_data(20, 18);
  bad_validation.labels.pop_back();
  CHECK_THROWS_AS(cf::fit(m, adam, make_data(20, 17), bad_validation, quiet(1)), cf::ShapeError);
  cf::FitOptions o = quiet(1);
  o.batch_size = 0;
  CHECK_THROWS_WITH(cf::fit(m, adam, make_data(20, 17), o), Catch::Contains("batch_size must be positive"));
  o = quiet(-1);
  CHECK_THROWS_AS(cf::fit(m, adam, make_data(20, 17), o), cf::ValueError);
  CHECK(same_weights(m, before));
  CHECK(m.steps() == 0);
}

TEST_CASE("ProgressBar writes plain lines when the output is not a terminal", "[fit]") {
  TempDir dir;
  const std::string log = dir.file("progress.txt");
  std::FILE* f = std::fopen(log.c_str(), "w");
  REQUIRE(f != nullptr);
  const auto train = make_data(64, 19), val = make_data(16, 20);
  cf::Model<float> m = make_model();
  cf::AdamOptimizer<float> adam(0.01);
  cf::fit(m, adam, train, val, quiet(2, 8), cf::ProgressBar(f));
  std::fclose(f);
  const auto lines = lines_of(read_text(log));
  // per epoch: 3 lines at the quarters (batches 2, 4, 6 of 8) and the summary
  REQUIRE(lines.size() == 8);
  CHECK(cellflow_test::starts_with(lines[0], "  epoch 1/2: 2/8 batches, loss "));
  CHECK(cellflow_test::starts_with(lines[3], "epoch 1/2: loss "));
  CHECK(lines[3].find("val_accuracy") != std::string::npos);
  CHECK(cellflow_test::starts_with(lines[7], "epoch 2/2: loss "));
  CHECK(read_text(log).find('\r') == std::string::npos);
}

TEST_CASE("FitContext::set_weights refuses another number of weights", "[fit]") {
  const auto train = make_data(16, 21);
  cf::Model<float> m = make_model();
  cf::AdamOptimizer<float> adam(0.01);
  cf::LambdaCallback bad;
  bad.train_begin = [](cf::FitContext& ctx) { ctx.set_weights(std::vector<double>(3, 0.0)); };
  CHECK_THROWS_AS(cf::fit(m, adam, train, quiet(1), bad), cf::ShapeError);
}

TEST_CASE("ReduceLROnPlateau lowers the rate after `patience` epochs without improvement", "[fit]") {
  const auto train = make_data(32, 22);
  cf::Model<float> m = make_model();
  cf::GradientDescentOptimizer<float> sgd(0.5);
  // "learning_rate" never improves (it only falls), so every `patience` epochs it is lowered.
  cf::ReduceLROnPlateau plateau("learning_rate", 0.5, /*patience=*/2, 0, /*min_lr=*/0.1, 0, cf::MonitorMode::max);
  const cf::History h = cf::fit(m, sgd, train, quiet(7), plateau);
  // epoch 1 sets the best; epochs 2, 3 do not improve -> 0.25 from epoch 4; 4, 5 -> 0.125 from 6;
  // 6, 7 -> 0.1 (min_lr) after the last epoch
  CHECK(h.epochs[0].learning_rate == Approx(0.5));
  CHECK(h.epochs[3].learning_rate == Approx(0.25));
  CHECK(h.epochs[5].learning_rate == Approx(0.125));
  CHECK(sgd.learning_rate() == Approx(0.1f));
  CHECK(plateau.reductions() == 3);
  CHECK_THROWS_AS(cf::ReduceLROnPlateau("val_loss", 1.5), cf::ValueError);
  CHECK_THROWS_WITH(cf::fit(m, sgd, train, quiet(1), cf::ReduceLROnPlateau("val_loss")),
                    Catch::Contains("no validation data"));
}

}  // namespace test_fit
