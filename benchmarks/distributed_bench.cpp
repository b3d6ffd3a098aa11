// Data-parallel training over MPI, measured: the seed model's training step (3 x BasicLSTM(150)
// over 28 steps of 28 inputs, dense 10-way head, sparse softmax cross-entropy, Adam 0.001, float)
// on one process or on several ranks sharing a global batch through cf::mpi::GradientAllreduce;
// the compute of one rank at several batch sizes; and a raw MPI_Allreduce micro-benchmark for
// the latency and bandwidth of the cost model. Rank 0 prints one JSON line per measurement.
// benchmarks/distributed.sh runs the matrix; docs/distributed.md explains the figures.
//
//   mpirun -np 1 cellflow_distributed_bench --threads 2                       1 process, 2 slices
//   mpirun -np 2 cellflow_distributed_bench --threads 1 --bucket-bytes 0      2 ranks, per-layer buckets
//   mpirun -np 2 cellflow_distributed_bench --threads 1 --overlap 0           2 ranks, after backward
//   mpirun -np 2 cellflow_distributed_bench --threads 1 --allreduce 0         2 ranks, no exchange (control)
//   mpirun -np 1 cellflow_distributed_bench --mode compute --threads 1 --batches 150,75,38
//   mpirun -np 2 cellflow_distributed_bench --mode allreduce                  8 B ... 32 MB
//   mpirun -np 2 cellflow_distributed_bench --mode overlap                    Iallreduce + busy work + MPI_Test
//   mpirun -np 1 cellflow_distributed_bench --mode pagefault                  a fresh 32 MB buffer
//
// Every training step goes through a timing GradientHook that wraps the allreduce (or, on one
// process and with --allreduce 0, stands in for it and combines nothing); it records when the
// forward pass ends (begin_backward), when each layer's gradients are final (gradients_ready),
// and how long end_backward takes: the forward, backward and exposed-communication parts of a
// step. FLOPs per sample follow cellflow_bench (2*M*N*K per matrix product,
// all steps counted, no input gradient of layer 1 in training): 77.5 MFLOP per seed-model sample.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <sys/mman.h>

#include "cellflow/cellflow.hpp"
#include "cellflow/distributed/mpi.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cf = cellflow;
using cf::Index;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string mode = "train", label;
  int layers = 3, threads = 1, batch_threads = 0, iters = 30, warmup = 5;
  Index hidden = 150, steps = 28, inputs = 28, batch = 150, classes = 10;
  long long bucket_bytes = -1;  // -1: the library's default (4 MB)
  bool overlap = true, allreduce = true;
  std::vector<Index> batches{150, 75, 38, 19, 10, 5, 3};
  std::vector<long long> overlap_bytes{1880440, 7380480};  // the seed model's gradients; a 10x-model layer
  std::vector<int> overlap_tests{0, 1, 2, 3, 5, 10, 100};
  double work_ms = 20;
  long long min_bytes = 8, max_bytes = 32ll << 20;
  std::uint64_t seed = 0;
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "cellflow_distributed_bench: %s\n"
               "usage: cellflow_distributed_bench [--mode train|compute|allreduce|overlap|pagefault] [--label TEXT]\n"
               "  model:     [--layers N] [--hidden N] [--steps N] [--inputs N] [--classes N] [--seed N]\n"
               "  train:     [--batch GLOBAL] [--threads N] [--batch-threads N (0: = --threads)]\n"
               "             [--bucket-bytes N (0: one per layer; default 4 MB)] [--overlap 0|1]\n"
               "             [--allreduce 0|1 (0: every rank steps alone, a control)] [--iters N] [--warmup N]\n"
               "  compute:   [--batches 150,75,...] [--threads N] [--iters N] [--warmup N]  (one process)\n"
               "  allreduce: [--min-bytes N] [--max-bytes N]  (sizes x2 from min to max)\n"
               "  overlap:   [--bytes-list N,N] [--work-ms N] [--tests 0,1,3,...]  (MPI_Test calls during the work)\n"
               "  pagefault: mmap, touch and munmap 32 MB (the cost of a fresh buffer on this machine)\n",
               msg.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage("missing value for " + k);
    const std::string v = argv[++i];
    auto num = [&](const std::string& s) {
      char* end = nullptr;
      const long long x = std::strtoll(s.c_str(), &end, 10);
      if (s.empty() || *end != '\0' || x < 0) usage("bad value for " + k + ": " + s);
      return x;
    };
    if (k == "--mode")
      a.mode = v;
    else if (k == "--label")
      a.label = v;
    else if (k == "--layers")
      a.layers = static_cast<int>(num(v));
    else if (k == "--hidden")
      a.hidden = num(v);
    else if (k == "--steps")
      a.steps = num(v);
    else if (k == "--inputs")
      a.inputs = num(v);
    else if (k == "--classes")
      a.classes = num(v);
    else if (k == "--batch")
      a.batch = num(v);
    else if (k == "--threads")
      a.threads = static_cast<int>(num(v));
    else if (k == "--batch-threads")
      a.batch_threads = static_cast<int>(num(v));
    else if (k == "--bucket-bytes")
      a.bucket_bytes = num(v);
    else if (k == "--overlap")
      a.overlap = num(v) != 0;
    else if (k == "--allreduce")
      a.allreduce = num(v) != 0;
    else if (k == "--iters")
      a.iters = static_cast<int>(num(v));
    else if (k == "--warmup")
      a.warmup = static_cast<int>(num(v));
    else if (k == "--seed")
      a.seed = static_cast<std::uint64_t>(num(v));
    else if (k == "--min-bytes")
      a.min_bytes = num(v);
    else if (k == "--max-bytes")
      a.max_bytes = num(v);
    else if (k == "--work-ms")
      a.work_ms = static_cast<double>(num(v));
    else if (k == "--bytes-list" || k == "--tests") {
      std::vector<long long> list;
      std::size_t at = 0;
      while (at <= v.size()) {
        const std::size_t comma = std::min(v.find(',', at), v.size());
        list.push_back(num(v.substr(at, comma - at)));
        at = comma + 1;
      }
      if (k == "--tests")
        a.overlap_tests.assign(list.begin(), list.end());
      else
        a.overlap_bytes = list;
    } else if (k == "--batches") {
      a.batches.clear();
      std::size_t at = 0;
      while (at <= v.size()) {
        const std::size_t comma = std::min(v.find(',', at), v.size());
        a.batches.push_back(num(v.substr(at, comma - at)));
        at = comma + 1;
      }
    } else
      usage("unknown option " + k);
  }
  if (a.mode != "train" && a.mode != "compute" && a.mode != "allreduce" && a.mode != "overlap" && a.mode != "pagefault")
    usage("--mode: train, compute, allreduce, overlap or pagefault");
  for (const long long b : a.overlap_bytes)
    if (b < 4) usage("--bytes-list: at least 4 bytes each");
  if (a.layers < 1 || a.hidden < 1 || a.steps < 1 || a.inputs < 1 || a.batch < 1 || a.classes < 2 || a.iters < 1 ||
      a.threads < 1)
    usage("sizes, --threads and --iters must be positive");
  for (const Index b : a.batches)
    if (b < 1) usage("--batches: every batch must be positive");
  if (a.min_bytes < 4 || a.max_bytes < a.min_bytes) usage("--min-bytes >= 4 and <= --max-bytes");
  return a;
}

double flops_per_train_sample(const Args& a) {
  const double G = 4, H = static_cast<double>(a.hidden), T = static_cast<double>(a.steps);
  const double I = static_cast<double>(a.inputs), C = static_cast<double>(a.classes);
  double fwd = 0;
  for (int l = 0; l < a.layers; ++l) fwd += 2 * T * ((l == 0 ? I : H) + H) * G * H;
  return 3 * fwd - 2 * T * I * G * H + 3 * (2 * H * C);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

/// Times the parts of a training step; forwards to `inner` (the allreduce), or combines nothing.
class TimedHook final : public cf::GradientHook {
 public:
  explicit TimedHook(cf::GradientHook* inner) : inner_(inner) {}
  Clock::time_point forward_end, backward_end, exchange_end;
  std::vector<Clock::time_point> ready;  // gradients_ready, in the order heard (head, top layer, ...)

  Index begin_backward(const cf::BatchStats& local) override {
    forward_end = Clock::now();
    ready.clear();
    return inner_ ? inner_->begin_backward(local) : local.examples;
  }
  void gradients_ready(std::size_t first, std::size_t last) override {
    ready.push_back(Clock::now());
    if (inner_) inner_->gradients_ready(first, last);
  }
  void end_backward(cf::BatchStats& stats) override {
    backward_end = Clock::now();
    if (inner_) inner_->end_backward(stats);
    exchange_end = Clock::now();
  }

 private:
  cf::GradientHook* inner_;
};

cf::Model<float> build(const Args& a, cf::Rng& rng) {
  return cf::Model<float>(a.inputs,
                          std::vector<cf::CellConfig>(static_cast<std::size_t>(a.layers), cf::BasicLSTM(a.hidden)),
                          a.classes, rng);
}

/// A random global batch (the same on every rank: same seed), and rank `rank`'s rows of it.
void make_batch(const Args& a, Index global, int rank, int ranks, cf::Tensor3<float>& x, std::vector<int>& y) {
  cf::Rng rng(a.seed + 1000);
  cf::Tensor3<float> gx(global, a.steps, a.inputs);
  for (Index k = 0; k < gx.size(); ++k) gx.data()[k] = rng.uniform<float>(0, 1);
  std::vector<int> gy(static_cast<std::size_t>(global));
  for (auto& v : gy) v = static_cast<int>(rng.below(static_cast<std::uint64_t>(a.classes)));
  const auto [start, count] = cf::data::shard_range(global, rank, ranks);
  x.resize(count, a.steps, a.inputs);
  const Index row = a.steps * a.inputs;
  std::copy(gx.data() + start * row, gx.data() + (start + count) * row, x.data());
  y.assign(gy.begin() + start, gy.begin() + start + count);
}

std::string common_fields(const Args& a, const cf::mpi::Environment& mpi, int threads, cf::Model<float>& model) {
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "\"label\": \"%s\", \"mode\": \"%s\", \"ranks\": %d, \"threads\": %d, \"layers\": %d, \"hidden\": %ld, "
                "\"steps\": %ld, \"inputs\": %ld, \"classes\": %ld, \"params\": %ld, \"grad_bytes\": %ld, "
                "\"flops_per_sample\": %.6g, \"iters\": %d, \"warmup\": %d",
                a.label.c_str(), a.mode.c_str(), mpi.size(), threads, a.layers, static_cast<long>(a.hidden),
                static_cast<long>(a.steps), static_cast<long>(a.inputs), static_cast<long>(a.classes),
                static_cast<long>(model.num_parameters()), static_cast<long>(model.num_parameters() * 4),
                flops_per_train_sample(a), a.iters, a.warmup);
  return buf;
}

// ---- --mode train: the global batch over the ranks ----

void run_train(const Args& a, const cf::mpi::Environment& mpi, int threads) {
  cf::Rng rng(a.seed);
  cf::Model<float> model = build(a, rng);
  cf::mpi::broadcast_variables(model.variables(), mpi);
  cf::AdamOptimizer<float> adam(0.001f);
  cf::Tensor3<float> x;
  std::vector<int> y;
  make_batch(a, a.batch, mpi.rank(), mpi.size(), x, y);

  cf::mpi::AllreduceOptions ao;
  if (a.bucket_bytes >= 0) ao.bucket_bytes = static_cast<std::size_t>(a.bucket_bytes);
  ao.overlap = a.overlap;
  cf::mpi::GradientAllreduce<float> allreduce(model, mpi, ao);
  allreduce.set_global_batch(a.batch);
  const bool exchange = a.allreduce && mpi.size() > 1;
  TimedHook timed(exchange ? &allreduce : nullptr);
  cf::TrainOptions o;
  o.batch_threads = a.batch_threads > 0 ? a.batch_threads : threads;
  o.gradient_hook = &timed;

  const std::size_t n = static_cast<std::size_t>(a.iters);
  std::vector<double> step(n), fwd(n), bwd(n), wait(n), lib_wait(n), update(n), bwd_end(n);
  double loss_first = 0, loss_last = 0;
  MPI_Barrier(mpi.comm());
  for (int it = 0; it < a.warmup + a.iters; ++it) {
    const auto t0 = Clock::now();
    const auto r = model.train_step(x, y, adam, o);
    const auto t1 = Clock::now();
    if (it == 0) loss_first = r.loss;
    loss_last = r.loss;
    if (it < a.warmup) continue;
    const auto k = static_cast<std::size_t>(it - a.warmup);
    step[k] = seconds(t0, t1);
    fwd[k] = seconds(t0, timed.forward_end);
    bwd[k] = seconds(timed.forward_end, timed.backward_end);
    wait[k] = seconds(timed.backward_end, timed.exchange_end);
    lib_wait[k] = exchange ? allreduce.last_wait_seconds() : 0.0;
    update[k] = seconds(timed.exchange_end, t1);
    bwd_end[k] = std::chrono::duration<double>(timed.backward_end.time_since_epoch()).count();
  }
  // Skew: how far apart the ranks end their backward passes (steady_clock is one clock for the
  // processes of one machine; across machines this figure means nothing). The first rank to
  // finish waits that long in the allreduce before any byte can travel.
  std::vector<double> end_max = bwd_end, end_min = bwd_end, skew(n);
  MPI_Allreduce(MPI_IN_PLACE, end_max.data(), static_cast<int>(n), MPI_DOUBLE, MPI_MAX, mpi.comm());
  MPI_Allreduce(MPI_IN_PLACE, end_min.data(), static_cast<int>(n), MPI_DOUBLE, MPI_MIN, mpi.comm());
  for (std::size_t k = 0; k < n; ++k) skew[k] = end_max[k] - end_min[k];
  // What packing the gradients into buckets and unpacking them costs: a copy there and back.
  std::vector<float> packed(static_cast<std::size_t>(model.num_parameters()));
  std::vector<double> copy(10);
  for (auto& c : copy) {
    const auto t0 = Clock::now();
    float* at = packed.data();
    for (const auto& v : model.variables()) at = std::copy(v.grad->data(), v.grad->data() + v.grad->size(), at);
    const float* from = packed.data();
    for (auto& v : model.variables()) {
      std::copy(from, from + v.grad->size(), v.grad->data());
      from += v.grad->size();
    }
    c = seconds(t0, Clock::now());
  }
  // A step is as long as its slowest rank's; the parts are rank 0's, the waits every rank's mean.
  std::vector<double> step_max = step, lib_wait_sum = lib_wait, lib_wait_min = lib_wait;
  MPI_Allreduce(MPI_IN_PLACE, step_max.data(), static_cast<int>(n), MPI_DOUBLE, MPI_MAX, mpi.comm());
  MPI_Allreduce(MPI_IN_PLACE, lib_wait_sum.data(), static_cast<int>(n), MPI_DOUBLE, MPI_SUM, mpi.comm());
  // The smallest wait of a step is the wait of the rank that ended its backward pass last: it
  // waits for no other rank's compute, only for the communication that overlap did not hide.
  MPI_Allreduce(MPI_IN_PLACE, lib_wait_min.data(), static_cast<int>(n), MPI_DOUBLE, MPI_MIN, mpi.comm());
  for (auto& w : lib_wait_sum) w /= mpi.size();
  if (!mpi.is_root()) return;

  const double med = median(step_max), sps = static_cast<double>(a.batch) / med;
  std::string buckets = "[";
  if (exchange)
    for (const std::size_t b : allreduce.bucket_bytes())
      buckets += (buckets.size() > 1 ? ", " : "") + std::to_string(b);
  buckets += "]";
  const auto [start, count] = cf::data::shard_range(a.batch, 0, mpi.size());
  (void)start;
  char buf[1600];
  std::snprintf(buf, sizeof buf,
                ", \"batch\": %ld, \"local_batch\": %ld, \"batch_threads\": %d, \"allreduce\": %s, \"overlap\": %s, "
                "\"bucket_option\": %lld, \"buckets\": %s, \"step_ms_median\": %.3f, \"step_ms_min\": %.3f, "
                "\"step_ms_max\": %.3f, \"samples_per_s\": %.2f, \"gflops\": %.2f, \"forward_ms\": %.3f, "
                "\"backward_ms\": %.3f, \"exchange_ms\": %.3f, \"wait_ms_mean\": %.3f, \"wait_ms_median\": %.3f, "
                "\"update_ms\": %.3f, \"skew_ms_median\": %.3f, \"skew_ms_mean\": %.3f, \"copy_ms\": %.3f, "
                "\"loss_first\": %.4f, \"loss_last\": %.4f, \"unhidden_ms_median\": %.3f",
                static_cast<long>(a.batch), static_cast<long>(count), o.batch_threads, exchange ? "true" : "false",
                a.overlap ? "true" : "false", a.bucket_bytes, buckets.c_str(), med * 1e3,
                *std::min_element(step_max.begin(), step_max.end()) * 1e3,
                *std::max_element(step_max.begin(), step_max.end()) * 1e3, sps, flops_per_train_sample(a) * sps / 1e9,
                median(fwd) * 1e3, median(bwd) * 1e3, median(wait) * 1e3, mean(lib_wait_sum) * 1e3,
                median(lib_wait_sum) * 1e3, median(update) * 1e3, median(skew) * 1e3, mean(skew) * 1e3,
                median(copy) * 1e3, loss_first, loss_last, median(lib_wait_min) * 1e3);
  std::printf("{%s%s}\n", common_fields(a, mpi, threads, model).c_str(), buf);
  std::fflush(stdout);
}

// ---- --mode compute: one rank's step at several batch sizes, with its backward timeline ----

void run_compute(const Args& a, const cf::mpi::Environment& mpi, int threads) {
  if (mpi.size() != 1) throw cf::ValueError("--mode compute runs on one process (mpirun -np 1)");
  cf::Rng rng(a.seed);
  cf::Model<float> model = build(a, rng);
  const auto groups = model.gradient_groups();  // head, then the layers from the top down
  for (const Index batch : a.batches) {
    cf::AdamOptimizer<float> adam(0.001f);
    cf::Tensor3<float> x;
    std::vector<int> y;
    make_batch(a, batch, 0, 1, x, y);
    TimedHook timed(nullptr);
    cf::TrainOptions o;
    o.batch_threads = a.batch_threads > 0 ? a.batch_threads : threads;
    o.gradient_hook = &timed;
    const std::size_t n = static_cast<std::size_t>(a.iters);
    std::vector<double> step(n), fwd(n), bwd(n), update(n);
    std::vector<std::vector<double>> ready(groups.size(), std::vector<double>(n));
    for (int it = 0; it < a.warmup + a.iters; ++it) {
      const auto t0 = Clock::now();
      model.train_step(x, y, adam, o);
      const auto t1 = Clock::now();
      if (it < a.warmup) continue;
      const auto k = static_cast<std::size_t>(it - a.warmup);
      step[k] = seconds(t0, t1);
      fwd[k] = seconds(t0, timed.forward_end);
      bwd[k] = seconds(timed.forward_end, timed.backward_end);
      update[k] = seconds(timed.exchange_end, t1);
      for (std::size_t g = 0; g < groups.size() && g < timed.ready.size(); ++g)
        ready[g][k] = seconds(timed.forward_end, timed.ready[g]);
    }
    // Each group's gradient bytes and when (ms after the forward pass) it was final.
    std::string group_bytes = "[", group_ready = "[";
    for (std::size_t g = 0; g < groups.size(); ++g) {
      long long scalars = 0;
      for (std::size_t j = groups[g].first; j < groups[g].second; ++j) scalars += model.variables()[j].value->size();
      char item[64];
      std::snprintf(item, sizeof item, "%s%lld", g ? ", " : "", scalars * 4);
      group_bytes += item;
      std::snprintf(item, sizeof item, "%s%.3f", g ? ", " : "", median(ready[g]) * 1e3);
      group_ready += item;
    }
    group_bytes += "]";
    group_ready += "]";
    const double med = median(step), sps = static_cast<double>(batch) / med;
    char buf[1000];
    std::snprintf(buf, sizeof buf,
                  ", \"batch\": %ld, \"batch_threads\": %d, \"step_ms_median\": %.3f, \"step_ms_min\": %.3f, "
                  "\"step_ms_max\": %.3f, \"samples_per_s\": %.2f, \"gflops\": %.2f, \"forward_ms\": %.3f, "
                  "\"backward_ms\": %.3f, \"update_ms\": %.3f, \"group_bytes\": %s, \"group_ready_ms\": %s",
                  static_cast<long>(batch), o.batch_threads, med * 1e3,
                  *std::min_element(step.begin(), step.end()) * 1e3, *std::max_element(step.begin(), step.end()) * 1e3,
                  sps, flops_per_train_sample(a) * sps / 1e9, median(fwd) * 1e3, median(bwd) * 1e3,
                  median(update) * 1e3, group_bytes.c_str(), group_ready.c_str());
    std::printf("{%s%s}\n", common_fields(a, mpi, threads, model).c_str(), buf);
    std::fflush(stdout);
  }
}

// ---- --mode overlap: how much of a nonblocking allreduce a busy rank hides ----

// For each message size: the blocking MPI_Allreduce, then MPI_Iallreduce followed by --work-ms of
// busy computation during which the rank calls MPI_Test k times (evenly spaced), then MPI_Wait.
// The wait left after the work is what the computation did not hide. Most MPI libraries move a
// nonblocking collective along only inside MPI calls, so k decides how far it gets.
void run_overlap(const Args& a, const cf::mpi::Environment& mpi) {
  std::vector<float> scratch(std::size_t(1) << 18, 1.0f);  // 1 MB the busy loop works on
  volatile float sink = 0;
  const auto busy_until = [&](Clock::time_point end) {
    float acc = 0;
    while (Clock::now() < end)
      for (std::size_t i = 0; i < scratch.size(); i += 16) acc += scratch[i];
    sink = sink + acc;
  };
  const int reps = 20;
  for (const long long bytes : a.overlap_bytes) {
    const int count = static_cast<int>(bytes / 4);
    std::vector<float> buffer(static_cast<std::size_t>(count), 1.0f);
    std::vector<double> blocking;
    for (int r = 0; r < reps + 3; ++r) {
      MPI_Barrier(mpi.comm());
      const auto t0 = Clock::now();
      MPI_Allreduce(MPI_IN_PLACE, buffer.data(), count, MPI_FLOAT, MPI_SUM, mpi.comm());
      if (r >= 3) blocking.push_back(seconds(t0, Clock::now()));
    }
    MPI_Allreduce(MPI_IN_PLACE, blocking.data(), reps, MPI_DOUBLE, MPI_MAX, mpi.comm());
    for (const int tests : a.overlap_tests) {
      std::vector<double> wait;
      for (int r = 0; r < reps + 1; ++r) {
        MPI_Barrier(mpi.comm());
        const auto t0 = Clock::now();
        MPI_Request request;
        MPI_Iallreduce(MPI_IN_PLACE, buffer.data(), count, MPI_FLOAT, MPI_SUM, mpi.comm(), &request);
        const auto work = std::chrono::duration<double>(a.work_ms * 1e-3);
        for (int k = 1; k <= tests; ++k) {
          busy_until(t0 + std::chrono::duration_cast<Clock::duration>(work * (static_cast<double>(k) / (tests + 1))));
          int done = 0;
          MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        }
        busy_until(t0 + std::chrono::duration_cast<Clock::duration>(work));
        const auto t1 = Clock::now();
        MPI_Wait(&request, MPI_STATUS_IGNORE);
        if (r >= 1) wait.push_back(seconds(t1, Clock::now()));
      }
      MPI_Allreduce(MPI_IN_PLACE, wait.data(), reps, MPI_DOUBLE, MPI_MAX, mpi.comm());
      if (mpi.is_root())
        std::printf(
            "{\"label\": \"%s\", \"mode\": \"overlap\", \"ranks\": %d, \"bytes\": %lld, \"work_ms\": %.1f, "
            "\"tests\": %d, \"blocking_us\": %.1f, \"wait_us\": %.1f, \"hidden\": %.3f}\n",
            a.label.c_str(), mpi.size(), bytes, a.work_ms, tests, median(blocking) * 1e6, median(wait) * 1e6,
            1 - median(wait) / median(blocking));
      std::fflush(stdout);
    }
  }
}

// ---- --mode pagefault: what a fresh buffer costs on this machine ----

// mmap, first touch of every 4 KB page, munmap of 32 MB, 5 times: the cost of the fresh temporary
// buffer an MPI library may allocate (and glibc return to the system) for a large message.
void run_pagefault(const Args& a, const cf::mpi::Environment& mpi) {
  if (!mpi.is_root()) return;
  const std::size_t bytes = std::size_t(32) << 20, page = 4096;
  std::vector<double> t;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw cf::Error("mmap failed");
    auto* c = static_cast<volatile char*>(p);
    for (std::size_t i = 0; i < bytes; i += page) c[i] = 1;
    munmap(p, bytes);
    t.push_back(seconds(t0, Clock::now()));
  }
  std::printf(
      "{\"label\": \"%s\", \"mode\": \"pagefault\", \"bytes\": %zu, \"ms_median\": %.3f, "
      "\"us_per_page\": %.3f}\n",
      a.label.c_str(), bytes, median(t) * 1e3, median(t) * 1e6 / static_cast<double>(bytes / page));
  std::fflush(stdout);
}

// ---- --mode allreduce: MPI_Allreduce (float, sum, in place) from min to max bytes ----

void run_allreduce(const Args& a, const cf::mpi::Environment& mpi) {
  std::vector<double> sizes, medians;
  for (long long bytes = a.min_bytes; bytes <= a.max_bytes; bytes *= 2) {
    const int count = static_cast<int>(bytes / 4);
    std::vector<float> buffer(static_cast<std::size_t>(count), 1.0f);
    // Many repetitions of the small sizes, fewer of the large (at least 30).
    const int reps = static_cast<int>(std::clamp<long long>((256ll << 20) / bytes, 30, 2000));
    for (int w = 0; w < 5; ++w) MPI_Allreduce(MPI_IN_PLACE, buffer.data(), count, MPI_FLOAT, MPI_SUM, mpi.comm());
    std::vector<double> t(static_cast<std::size_t>(reps));
    for (int r = 0; r < reps; ++r) {
      MPI_Barrier(mpi.comm());  // every repetition starts together; the slowest rank's time counts
      const auto t0 = Clock::now();
      MPI_Allreduce(MPI_IN_PLACE, buffer.data(), count, MPI_FLOAT, MPI_SUM, mpi.comm());
      t[static_cast<std::size_t>(r)] = seconds(t0, Clock::now());
    }
    MPI_Allreduce(MPI_IN_PLACE, t.data(), reps, MPI_DOUBLE, MPI_MAX, mpi.comm());
    const double med = median(t);
    sizes.push_back(static_cast<double>(bytes));
    medians.push_back(med);
    if (mpi.is_root()) {
      std::sort(t.begin(), t.end());
      std::printf(
          "{\"label\": \"%s\", \"mode\": \"allreduce\", \"ranks\": %d, \"bytes\": %lld, \"reps\": %d, \"us_median\": "
          "%.3f, \"us_min\": %.3f, \"us_p90\": %.3f, \"gbytes_per_s\": %.3f}\n",
          a.label.c_str(), mpi.size(), bytes, reps, med * 1e6, t.front() * 1e6,
          t[static_cast<std::size_t>(0.9 * (reps - 1))] * 1e6, static_cast<double>(bytes) / med / 1e9);
      std::fflush(stdout);
    }
  }
  if (!mpi.is_root() || mpi.size() < 2) return;
  // The ring model t = 2(N-1) alpha + 2(N-1)/N bytes / bandwidth: the constant from the sizes up
  // to 1 KB (latency-bound), the slope by least squares over the sizes from 1 MB to 16 MB
  // (bandwidth-bound; larger sizes measure this machine's page faults as much as MPI: Open MPI
  // takes a fresh temporary buffer of the message's size, see --mode pagefault).
  const double N = mpi.size();
  std::vector<double> small, xs, ys;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    if (sizes[k] <= 1024) small.push_back(medians[k]);
    if (sizes[k] >= (1 << 20) && sizes[k] <= (16 << 20)) {
      xs.push_back(sizes[k]);
      ys.push_back(medians[k]);
    }
  }
  double alpha = small.empty() ? 0.0 : median(small) / (2 * (N - 1)), bandwidth = 0;
  if (xs.size() >= 2) {
    const double mx = mean(xs), my = mean(ys);
    double sxy = 0, sxx = 0;
    for (std::size_t k = 0; k < xs.size(); ++k) {
      sxy += (xs[k] - mx) * (ys[k] - my);
      sxx += (xs[k] - mx) * (xs[k] - mx);
    }
    const double slope = sxy / sxx;  // seconds per byte = 2(N-1)/N / bandwidth
    bandwidth = 2 * (N - 1) / N / slope;
  }
  std::printf(
      "{\"label\": \"%s\", \"mode\": \"allreduce_fit\", \"ranks\": %d, \"alpha_us\": %.3f, "
      "\"bandwidth_gbytes_per_s\": %.3f}\n",
      a.label.c_str(), mpi.size(), alpha * 1e6, bandwidth / 1e9);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);  // before MPI: a usage error ends the process before MPI_Init
  cf::mpi::Environment mpi(argc, argv);
#ifdef _OPENMP
  Eigen::setNbThreads(a.threads);
  const int threads = Eigen::nbThreads();
#else
  const int threads = 1;
#endif
  return mpi.run([&] {
    if (a.mode == "train")
      run_train(a, mpi, threads);
    else if (a.mode == "compute")
      run_compute(a, mpi, threads);
    else if (a.mode == "allreduce")
      run_allreduce(a, mpi);
    else if (a.mode == "overlap")
      run_overlap(a, mpi);
    else
      run_pagefault(a, mpi);
  });
}
