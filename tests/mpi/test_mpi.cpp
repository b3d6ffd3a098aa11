// The data-parallel tests, one program run under mpirun (tests/mpi/CMakeLists.txt: 2 ranks, one
// ctest per case): `mpirun -np 2 cellflow_mpi_tests <case>`. A case throws on failure (every
// rank checks what it can see); the exit code is 0 only when every rank passed. Each rank
// computes the single-process reference itself, so the comparisons need no communication.
//
//   equivalence  2 ranks at global batch B take the steps 1 process takes at B: Model::train_step
//                with GradientAllreduce (LSTM stack, GRU stack; sequence_length; an uneven split;
//                buckets overlapped or not; several buckets or one), allreduce_gradients after a
//                hand-written backward pass, and mpi::fit against fit (uneven last batches,
//                validation, clipping). double within 1e-12 relative; float within a bound
//                measured here (see kFloatBound).
//   broadcast    weights and the state of Adam, Momentum, RMSProp, Adagrad from rank 0 reach every rank
//   sharding     every example exactly once per epoch across the ranks, each global batch whole
//   resume       a distributed run resumed from rank 0's checkpoint (loaded by every rank) ends
//                bitwise where the uninterrupted run ends; only rank 0 writes files
//   mismatch     a different model or learning rate on one rank: every rank throws the same
//                ConsistencyError naming the rank and the difference
//   stop         stop_training or set_learning_rate on one rank only: every rank stops at the
//                same step, rank 0's learning rate stands
//   communicator Environment(comm): a duplicate of the world, a communicator of one rank
//   abort        a rank that throws mid-training aborts the job with its message (the ctest
//                checks the output and that the job ends; see CMakeLists.txt)
#include <cellflow/cellflow.hpp>
#include <cellflow/distributed/mpi.hpp>

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace cf = cellflow;

namespace {

// Largest relative difference between two models' weights: per variable, max |a - b| / max |b|.
template <class T>
double weight_difference(cf::Model<T>& a, cf::Model<T>& b) {
  double worst = 0;
  for (std::size_t k = 0; k < a.variables().size(); ++k) {
    const auto& x = *a.variables()[k].value;
    const auto& y = *b.variables()[k].value;
    const double scale = std::max(1e-300, static_cast<double>(y.cwiseAbs().maxCoeff()));
    worst = std::max(worst, static_cast<double>((x - y).cwiseAbs().maxCoeff()) / scale);
  }
  return worst;
}

template <class T>
bool same_bits(cf::Model<T>& a, cf::Model<T>& b) {
  for (std::size_t k = 0; k < a.variables().size(); ++k)
    if (*a.variables()[k].value != *b.variables()[k].value) return false;
  return true;
}

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("FAILED: " + what);
}

template <class T>
cf::data::Dataset<T> make_data(cf::Index n, cf::Index time, cf::Index depth, int classes, bool lengths,
                               std::uint64_t seed) {
  cf::Rng rng(seed);
  cf::data::Dataset<T> d;
  d.images.resize(n, time, depth);
  for (cf::Index i = 0; i < d.images.size(); ++i) d.images.data()[i] = static_cast<T>(rng.uniform(-1.0, 1.0));
  for (cf::Index i = 0; i < n; ++i)
    d.labels.push_back(static_cast<int>(rng.below(static_cast<std::uint64_t>(classes))));
  if (lengths)
    for (cf::Index i = 0; i < n; ++i)
      d.lengths.push_back(1 + static_cast<cf::Index>(rng.below(static_cast<std::uint64_t>(time))));
  return d;
}

// This rank's rows [start, start + count) of a data set.
template <class T>
void take(const cf::data::Dataset<T>& d, cf::Index start, cf::Index count, cf::Tensor3<T>& x, std::vector<int>& y,
          std::vector<cf::Index>& lengths) {
  std::vector<cf::Index> idx;
  for (cf::Index i = 0; i < count; ++i) idx.push_back(start + i);
  cf::data::gather(d, idx, x, y, lengths);
}

// k steps of train_step on one global batch split over the ranks, against one process.
template <class T>
double train_step_difference(const cf::mpi::Environment& mpi, const std::vector<cf::CellConfig>& cells, bool lengths,
                             cf::Index batch, cf::mpi::AllreduceOptions options, int steps) {
  const cf::Index time = 6, depth = 3;
  const auto data = make_data<T>(batch, time, depth, 4, lengths, 11);
  cf::Rng rng_ref(1), rng_mine(100 + static_cast<unsigned>(mpi.rank()));  // rank 1 starts elsewhere
  cf::Model<T> reference(depth, cells, 4, rng_ref);
  cf::Model<T> model(depth, cells, 4, rng_mine);
  if (mpi.is_root()) model = reference;
  cf::mpi::broadcast_variables(model.variables(), mpi);
  expect(same_bits(model, reference), "broadcast_variables gives every rank rank 0's weights");

  const auto [start, count] = cf::data::shard_range(batch, mpi.rank(), mpi.size());
  cf::Tensor3<T> x;
  std::vector<int> y;
  std::vector<cf::Index> len;
  take(data, start, count, x, y, len);

  cf::AdamOptimizer<T> adam_ref(0.01), adam(0.01);
  cf::TrainOptions one;
  one.batch_threads = 1;
  if (lengths) one.sequence_length = data.lengths;
  cf::TrainOptions mine = one;
  if (lengths) mine.sequence_length = len;
  cf::mpi::GradientAllreduce<T> allreduce(model, mpi, options);
  mine.gradient_hook = &allreduce;
  for (int s = 0; s < steps; ++s) {
    const auto a = reference.train_step(data.images, data.labels, adam_ref, one);
    const auto b = model.train_step(x, y, adam, mine);
    expect(std::abs(a.loss - b.loss) <= 1e-5 * std::abs(a.loss), "the step's loss is the global batch's");
    expect(std::abs(a.accuracy - b.accuracy) < 1e-12, "the step's accuracy is the global batch's");
  }
  return weight_difference(model, reference);
}

// The float bound: 2 ranks sum two partial sums where one process sums the whole batch in one
// order; after a few Adam steps (whose update divides by sqrt(v), amplifying tiny differences
// in small gradients) the weights differ by this much relative at most (measured: see
// docs/distributed.md).
constexpr double kFloatBound = 2e-5;

void case_equivalence(const cf::mpi::Environment& mpi) {
  cf::LSTMOptions<double> peep;
  peep.use_peepholes = true;
  peep.num_proj = 3;
  const std::vector<std::vector<cf::CellConfig>> stacks{
      {cf::BasicLSTM(5), cf::LSTM(4, peep)}, {cf::GRU(5), cf::GRU(4)}, {cf::GRU(5), cf::BasicLSTM(4)}};
  cf::mpi::AllreduceOptions per_layer;  // one bucket per layer, started as each layer finishes
  per_layer.bucket_bytes = 0;
  cf::mpi::AllreduceOptions one_bucket;  // everything in one bucket, after backward
  one_bucket.overlap = false;
  double worst_double = 0, worst_float = 0;
  for (const auto& cells : stacks)
    for (const bool lengths : {false, true})
      for (const cf::Index batch : {cf::Index(8), cf::Index(7)}) {  // 4 + 4, 4 + 3
        for (const auto& o : {per_layer, one_bucket, cf::mpi::AllreduceOptions{}}) {
          const double d = train_step_difference<double>(mpi, cells, lengths, batch, o, 4);
          worst_double = std::max(worst_double, d);
          expect(d <= 1e-12, "double train_step within 1e-12 of one process (got " + std::to_string(d) + ")");
        }
        const double f = train_step_difference<float>(mpi, cells, lengths, batch, per_layer, 4);
        worst_float = std::max(worst_float, f);
        expect(f <= kFloatBound, "float train_step within kFloatBound of one process (got " + std::to_string(f) + ")");
      }

  // allreduce_gradients after a backward pass written by hand (mean over each rank's examples).
  {
    const cf::Index batch = 7, time = 5, depth = 3;
    const auto data = make_data<double>(batch, time, depth, 3, true, 5);
    cf::Rng r1(3), r2(3);
    cf::Model<double> reference(depth, {cf::GRU(4)}, 3, r1), model(depth, {cf::GRU(4)}, 3, r2);
    const auto [start, count] = cf::data::shard_range(batch, mpi.rank(), mpi.size());
    cf::Tensor3<double> x;
    std::vector<int> y;
    std::vector<cf::Index> len;
    take(data, start, count, x, y, len);
    cf::AdamOptimizer<double> adam_ref(0.01), adam(0.01);
    cf::TrainOptions one;
    one.batch_threads = 1;
    one.sequence_length = data.lengths;
    cf::TrainOptions mine = one;
    mine.sequence_length = len;
    for (int s = 0; s < 3; ++s) {
      reference.train_step(data.images, data.labels, adam_ref, one);
      cf::GradientDescentOptimizer<double> none(0.0);  // train_step leaves the gradients in place
      model.train_step(x, y, none, mine);
      cf::mpi::allreduce_gradients(model.variables(), count, mpi);
      adam.apply_gradients(model.variables());
    }
    const double d = weight_difference(model, reference);
    worst_double = std::max(worst_double, d);
    expect(d <= 1e-12, "allreduce_gradients within 1e-12 of one process");
  }

  // mpi::fit against fit: 23 examples in batches of 5 (6, 6, 6, 5 after array_split), shared
  // 3 + 3 or 3 + 2; lengths, validation, clipping, 3 epochs.
  {
    const auto train = make_data<double>(23, 6, 3, 4, true, 21);
    const auto test = make_data<double>(9, 6, 3, 4, true, 22);
    cf::FitOptions options;
    options.epochs = 3;
    options.batch_size = 5;
    options.seed = 9;
    options.clip_norm = 1.0;
    options.verbose = false;
    options.batch_threads = 1;
    cf::Rng r1(4), r2(mpi.is_root() ? 4 : 41);  // rank 0 starts where the reference does; fit broadcasts it
    cf::Model<double> reference(3, {cf::BasicLSTM(5), cf::GRU(4)}, 4, r1),
        model(3, {cf::BasicLSTM(5), cf::GRU(4)}, 4, r2);
    cf::AdamOptimizer<double> adam_ref(0.01), adam(0.01);
    const cf::History h_ref = cf::fit(reference, adam_ref, train, test, options);
    const cf::History h = cf::mpi::fit(mpi, model, adam, train, test, options);
    const double d = weight_difference(model, reference);
    worst_double = std::max(worst_double, d);
    expect(d <= 1e-12, "mpi::fit within 1e-12 of fit (got " + std::to_string(d) + ")");
    expect(h.epochs.size() == 3, "three epochs");
    for (std::size_t e = 0; e < h.epochs.size(); ++e) {
      const auto &a = h_ref.epochs[e], &b = h.epochs[e];
      expect(std::abs(a.loss - b.loss) <= 1e-12 * std::abs(a.loss), "epoch loss is the global one");
      expect(std::abs(a.accuracy - b.accuracy) <= 1e-12, "epoch accuracy is the global one");
      expect(std::abs(a.val_loss - b.val_loss) <= 1e-12 * std::abs(a.val_loss), "val_loss over the whole set");
      expect(std::abs(a.val_accuracy - b.val_accuracy) <= 1e-12, "val_accuracy over the whole set");
      expect(std::abs(a.last_batch_accuracy - b.last_batch_accuracy) <= 1e-12, "last batch accuracy");
      expect(a.examples == b.examples && a.steps == b.steps, "examples and steps counted globally");
    }
  }
  if (mpi.is_root())
    std::printf("equivalence: largest relative weight difference from one process: double %.3g, float %.3g\n",
                worst_double, worst_float);
}

void case_broadcast(const cf::mpi::Environment& mpi) {
  cf::Rng rng(7 + static_cast<unsigned>(mpi.rank()));
  cf::Model<float> model(3, {cf::GRU(6), cf::BasicLSTM(5)}, 4, rng);
  cf::AdamOptimizer<float> adam(0.01f);
  const auto data = make_data<float>(6, 4, 3, 4, false, 2);
  if (mpi.is_root())  // rank 0 has trained two steps: Adam has moments and a step count
    for (int s = 0; s < 2; ++s) model.train_step(data.images, data.labels, adam);
  cf::mpi::broadcast_variables(model.variables(), mpi, 0, &adam);
  const std::string mine = cf::mpi::describe(model, &adam);
  std::vector<double> sums{0};
  for (const auto& v : model.variables()) sums[0] += static_cast<double>(v.value->cast<double>().sum());
  std::vector<double> root = sums;
  cf::mpi::broadcast_values(root, mpi);
  expect(sums[0] == root[0], "every rank holds rank 0's weights");
  cf::mpi::check_same_everywhere(mpi, mine);  // the optimizer's step and hyper-parameters agree
  const auto state = adam.export_state(model.variables());
  expect(state.counters.at("step") == 2 || state.scalars.count("beta1_power") == 1, "Adam's state arrived");
  // One more step on every rank gives the same weights everywhere.
  model.train_step(data.images, data.labels, adam);
  std::vector<double> after{0};
  for (const auto& v : model.variables()) after[0] += static_cast<double>(v.value->cast<double>().sum());
  std::vector<double> after_root = after;
  cf::mpi::broadcast_values(after_root, mpi);
  expect(after[0] == after_root[0], "a step from the broadcast state is the same on every rank");
  if (mpi.is_root()) std::printf("broadcast: weights and Adam's state reached every rank\n");

  // The other optimizers' states travel the same way (their kind, options and slots by name).
  // Every rank made its optimizer with other hyper-parameters: rank 0's replace them.
  const float other = mpi.is_root() ? 0.0f : 1.0f;
  cf::MomentumOptimizer<float> momentum(0.05f + other, 0.9f - other * 0.5f, !mpi.is_root());
  cf::RMSPropOptimizer<float> rmsprop(0.01f + other, 0.9f, 0.5f, 1e-6f, mpi.is_root());
  cf::AdagradOptimizer<float> adagrad(0.1f + other, 0.1f + other);
  for (cf::Optimizer<float>* opt : std::vector<cf::Optimizer<float>*>{&momentum, &rmsprop, &adagrad}) {
    cf::Rng r(7 + static_cast<unsigned>(mpi.rank()));
    cf::Model<float> m(3, {cf::GRU(6), cf::BasicLSTM(5)}, 4, r);
    if (mpi.is_root())
      for (int s = 0; s < 2; ++s) m.train_step(data.images, data.labels, *opt);
    cf::mpi::broadcast_variables(m.variables(), mpi, 0, opt);
    cf::mpi::check_same_everywhere(mpi, cf::mpi::describe(m, opt));  // kind, options, step agree
    expect(opt->export_state(m.variables()).counters.at("step") == 2, opt->kind() + "'s state arrived");
    m.train_step(data.images, data.labels, *opt);
    std::vector<double> mine_sum{0};
    for (const auto& v : m.variables()) mine_sum[0] += static_cast<double>(v.value->cast<double>().sum());
    std::vector<double> root_sum = mine_sum;
    cf::mpi::broadcast_values(root_sum, mpi);
    expect(mine_sum[0] == root_sum[0], "a " + opt->kind() + " step from the broadcast state is the same on every rank");
  }
  if (mpi.is_root()) std::printf("broadcast: Momentum, RMSProp and Adagrad states reached every rank\n");
}

void case_sharding(const cf::mpi::Environment& mpi) {
  for (const cf::Index n : {cf::Index(103), cf::Index(20), cf::Index(7)}) {
    cf::data::ShuffleBatches all(n, 10, 5), mine(n, 10, 5);
    for (int e = 0; e < 3; ++e) {
      const auto whole = all.epoch();
      const auto part = mine.epoch(mpi.rank(), mpi.size());
      expect(whole.size() == part.size(), "as many batches on every rank");
      for (std::size_t b = 0; b < whole.size(); ++b) {
        // Rank r's part, sent to every rank: together the parts are the global batch, in order.
        std::vector<double> flags(static_cast<std::size_t>(n), 0.0);
        for (const cf::Index i : part[b]) flags[static_cast<std::size_t>(i)] += 1;
        cf::mpi::sum_everywhere(flags, mpi);
        std::vector<double> expected(static_cast<std::size_t>(n), 0.0);
        for (const cf::Index i : whole[b]) expected[static_cast<std::size_t>(i)] += 1;
        expect(flags == expected, "the ranks' parts of a batch are the batch, each example once");
        const auto [start, count] =
            cf::data::shard_range(static_cast<cf::Index>(whole[b].size()), mpi.rank(), mpi.size());
        expect(std::equal(part[b].begin(), part[b].end(), whole[b].begin() + start) &&
                   static_cast<cf::Index>(part[b].size()) == count,
               "each rank takes its contiguous part");
      }
    }
  }
  if (mpi.is_root()) std::printf("sharding: every example once per epoch, every batch whole\n");
}

std::string shared_dir(const cf::mpi::Environment& mpi) {
  std::vector<double> id{static_cast<double>(getpid())};
  cf::mpi::broadcast_values(id, mpi);
  const std::string dir = "/tmp/cellflow_mpi_test_" + std::to_string(static_cast<long>(id[0]));
  if (mpi.is_root()) mkdir(dir.c_str(), 0700);
  MPI_Barrier(mpi.comm());
  return dir;
}

void case_resume(const cf::mpi::Environment& mpi) {
  const std::string dir = shared_dir(mpi);
  const auto train = make_data<float>(40, 5, 3, 3, true, 31);
  cf::FitOptions options;
  options.epochs = 3;
  options.batch_size = 8;
  options.seed = 12;
  options.verbose = false;
  options.batch_threads = 1;
  cf::Rng r1(5);
  cf::Model<float> whole(3, {cf::BasicLSTM(6), cf::BasicLSTM(6)}, 3, r1);
  cf::AdamOptimizer<float> adam(0.01f);
  cf::ModelCheckpoint checkpoints(dir + "/ckpt-{epoch}.cf");
  cf::CSVLogger csv(dir + "/log.csv");
  cf::mpi::fit(mpi, whole, adam, train, options, checkpoints, csv);

  // Every rank loads rank 0's checkpoint of epoch 1 into a model built from another seed.
  cf::Rng r2(50 + static_cast<unsigned>(mpi.rank()));
  cf::Model<float> resumed(3, {cf::BasicLSTM(6), cf::BasicLSTM(6)}, 3, r2);
  cf::AdamOptimizer<float> adam2(0.5f);  // the checkpoint's hyper-parameters replace these
  const auto info = resumed.load_weights(dir + "/ckpt-1.cf", &adam2);
  options.initial_epoch = cf::epochs_trained(info);
  options.epochs = 3 - options.initial_epoch;
  expect(options.initial_epoch == 1, "the checkpoint says 1 epoch");
  cf::mpi::fit(mpi, resumed, adam2, train, options);
  expect(same_bits(resumed, whole), "the resumed run ends bitwise where the uninterrupted one ends");
  MPI_Barrier(mpi.comm());
  if (mpi.is_root()) {
    for (const char* f : {"/ckpt-1.cf", "/ckpt-2.cf", "/ckpt-3.cf", "/log.csv"}) {
      expect(access((dir + f).c_str(), F_OK) == 0, std::string("rank 0 wrote ") + f);
      std::remove((dir + f).c_str());
    }
    rmdir(dir.c_str());
    std::printf("resume: a run resumed from rank 0's checkpoint ends bitwise where the uninterrupted one ends\n");
  }
}

void case_mismatch(const cf::mpi::Environment& mpi) {
  const auto train = make_data<float>(16, 4, 3, 3, false, 41);
  cf::FitOptions options;
  options.epochs = 1;
  options.batch_size = 4;
  options.verbose = false;
  const auto expect_consistency_error = [&](cf::Model<float>& model, cf::AdamOptimizer<float>& adam,
                                            const std::string& needle) {
    try {
      cf::mpi::fit(mpi, model, adam, train, options);
    } catch (const cf::mpi::ConsistencyError& e) {
      const std::string m = e.what();
      expect(m.find("rank 1 differs from rank 0") != std::string::npos && m.find(needle) != std::string::npos,
             "the message names the rank and the difference: " + m);
      if (mpi.is_root()) std::printf("mismatch: every rank stopped with: %s\n", e.what());
      return;
    }
    throw std::runtime_error("FAILED: no ConsistencyError for " + needle);
  };
  {
    cf::Rng rng(1);
    cf::Model<float> model(3, {cf::GRU(mpi.rank() == 0 ? 8 : 6)}, 3, rng);
    cf::AdamOptimizer<float> adam(0.01f);
    expect_consistency_error(model, adam, "gru_cell/gates/kernel' [11, 16]");
  }
  {
    cf::Rng rng(1);
    cf::Model<float> model(3, {cf::GRU(8)}, 3, rng);
    cf::AdamOptimizer<float> adam(mpi.rank() == 0 ? 0.01f : 0.02f);
    expect_consistency_error(model, adam, "learning_rate");
  }
  {
    cf::Rng rng(1);
    cf::Model<float> model(3, {cf::GRU(8)}, 3, rng);
    cf::RMSPropOptimizer<float> rmsprop(0.01f, 0.9f, 0.0f, 1e-10f, mpi.rank() == 1);
    try {
      cf::mpi::fit(mpi, model, rmsprop, train, options);
      throw std::runtime_error("FAILED: no ConsistencyError for RMSProp's centered option");
    } catch (const cf::mpi::ConsistencyError& e) {
      expect(std::string(e.what()).find("centered") != std::string::npos, std::string("names the option: ") + e.what());
    }
  }
  {  // the same variables, another activation: the layer lines differ
    cf::Rng rng(1);
    cf::Model<float> model(3, {cf::BasicRNN(8, mpi.rank() == 0 ? cf::ActivationKind::relu : cf::ActivationKind::tanh)},
                           3, rng);
    cf::AdamOptimizer<float> adam(0.01f);
    expect_consistency_error(model, adam, "layer 0 BasicRNNCell num_units 8 activation 1");
  }
}

// Callbacks that decide on one rank alone: a stop from rank 0's on_batch_end, a stop from rank
// 1's on_epoch_end, a learning rate set on rank 1 only. Every rank stops at the same step, with
// the same history and weights, and rank 0's learning rate stands; nothing hangs.
void case_stop(const cf::mpi::Environment& mpi) {
  const auto train = make_data<float>(40, 4, 3, 3, false, 61);
  cf::FitOptions options;
  options.epochs = 5;
  options.batch_size = 4;
  options.verbose = false;
  options.batch_threads = 1;
  const auto same_everywhere = [&](double v, const std::string& what) {
    std::vector<double> root{v};
    cf::mpi::broadcast_values(root, mpi);
    expect(root[0] == v, what + " is the same on every rank");
  };
  {
    cf::Rng rng(1);
    cf::Model<float> model(3, {cf::GRU(6)}, 3, rng);
    cf::AdamOptimizer<float> adam(0.01f);
    cf::LambdaCallback limit;
    limit.batch_end = [](cf::FitContext& ctx, const cf::BatchLogs& b) {
      if (ctx.is_root() && b.epoch == 2 && b.batch == 3) ctx.stop_training("time limit on rank 0");
    };
    const cf::History h = cf::mpi::fit(mpi, model, adam, train, options, limit);
    expect(h.stopped_early && h.epochs.size() == 2 && h.epochs.back().steps == 3,
           "rank 0's mid-epoch stop ends every rank after the same step");
    expect(h.stop_reason == (mpi.is_root() ? "time limit on rank 0" : "another rank stopped training"),
           "the stop reason: " + h.stop_reason);
    double sum = 0;
    for (const auto& v : model.variables()) sum += static_cast<double>(v.value->cast<double>().sum());
    same_everywhere(sum, "the weights after a stop");
  }
  {
    cf::Rng rng(1);
    cf::Model<float> model(3, {cf::GRU(6)}, 3, rng);
    cf::AdamOptimizer<float> adam(0.01f);
    cf::LambdaCallback odd;
    odd.epoch_end = [](cf::FitContext& ctx, const cf::EpochLogs& e) {
      if (ctx.rank() == 1) ctx.set_learning_rate(0.5);  // ignored: rank 0's rate stands
      if (ctx.rank() == 1 && e.epoch == 3) ctx.stop_training("rank 1 had enough");
    };
    const cf::History h = cf::mpi::fit(mpi, model, adam, train, options, odd);
    expect(h.stopped_early && h.epochs.size() == 3, "rank 1's stop at an epoch's end ends every rank there");
    expect(adam.learning_rate() == 0.01f, "rank 0's learning rate stands");
    same_everywhere(h.epochs.back().loss, "the last epoch's loss");
  }
  if (mpi.is_root()) std::printf("stop: a stop on one rank stops every rank at the same step\n");
}

// Environment(comm) wraps communicators the application made: a duplicate of the world trains as
// the world does, and a communicator of one rank (MPI_Comm_split by rank) trains exactly as
// cellflow::fit in one process.
void case_communicator(const cf::mpi::Environment& mpi) {
  const auto train = make_data<double>(24, 5, 3, 3, true, 71);
  cf::FitOptions options;
  options.epochs = 2;
  options.batch_size = 6;
  options.verbose = false;
  options.batch_threads = 1;
  const auto run = [&](const cf::mpi::Environment* env) {
    cf::Rng rng(3);
    cf::Model<double> model(3, {cf::GRU(5)}, 3, rng);
    cf::AdamOptimizer<double> adam(0.01);
    if (env)
      cf::mpi::fit(*env, model, adam, train, options);
    else
      cf::fit(model, adam, train, options);
    return model;
  };
  MPI_Comm dup = MPI_COMM_NULL, alone = MPI_COMM_NULL;
  MPI_Comm_dup(mpi.comm(), &dup);
  MPI_Comm_split(mpi.comm(), mpi.rank(), 0, &alone);
  {
    const cf::mpi::Environment world_copy(dup), single(alone);
    expect(world_copy.size() == mpi.size() && world_copy.rank() == mpi.rank(), "the duplicate has the world's ranks");
    expect(single.size() == 1 && single.rank() == 0 && single.is_root(), "a communicator of one rank");
    cf::Model<double> on_world = run(&mpi), on_copy = run(&world_copy), on_one = run(&single), plain = run(nullptr);
    expect(same_bits(on_copy, on_world), "a duplicate of the world trains as the world does, bitwise");
    expect(same_bits(on_one, plain), "one rank trains as fit in one process, bitwise");
    expect(weight_difference(on_world, plain) <= 1e-12, "the world's 2 ranks as one process within 1e-12");
  }  // the environments are gone before the communicators they wrap
  MPI_Comm_free(&dup);
  MPI_Comm_free(&alone);
  if (mpi.is_root()) std::printf("communicator: wrapped communicators train as expected\n");
}

void case_abort(const cf::mpi::Environment& mpi) {
  const auto train = make_data<float>(32, 4, 3, 3, false, 51);
  cf::FitOptions options;
  options.epochs = 50;
  options.batch_size = 4;
  options.verbose = false;
  cf::Rng rng(1);
  cf::Model<float> model(3, {cf::GRU(8)}, 3, rng);
  cf::AdamOptimizer<float> adam(0.01f);
  cf::LambdaCallback fail;
  fail.batch_end = [&](cf::FitContext& ctx, const cf::BatchLogs& b) {
    if (ctx.rank() == 1 && b.epoch == 2 && b.batch == 3) throw cf::IOError("injected failure on rank 1");
  };
  cf::mpi::fit(mpi, model, adam, train, options, fail);
  std::printf("FAILED: rank %d finished training although rank 1 failed\n", mpi.rank());
}

}  // namespace

int main(int argc, char** argv) {
  cf::mpi::Environment mpi(argc, argv);
  const std::map<std::string, void (*)(const cf::mpi::Environment&)> cases{{"equivalence", case_equivalence},
                                                                           {"broadcast", case_broadcast},
                                                                           {"sharding", case_sharding},
                                                                           {"resume", case_resume},
                                                                           {"mismatch", case_mismatch},
                                                                           {"abort", case_abort},
                                                                           {"stop", case_stop},
                                                                           {"communicator", case_communicator}};
  if (argc != 2 || cases.count(argv[1]) == 0) {
    if (mpi.is_root()) {
      std::fprintf(stderr, "usage: mpirun -np 2 %s CASE\ncases:", argv[0]);
      for (const auto& c : cases) std::fprintf(stderr, " %s", c.first.c_str());
      std::fprintf(stderr, "\n");
    }
    return 2;
  }
  if (mpi.size() < 2) {
    if (mpi.is_root()) std::fprintf(stderr, "%s: run with mpirun -np 2 (or more)\n", argv[0]);
    return 2;
  }
  return mpi.run([&] { cases.at(argv[1])(mpi); });
}
