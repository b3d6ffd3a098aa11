// cellflow's side of the peer benchmark (benchmarks/peers/): the seed model's full training step
// (3 x RNN(150) over 28 steps of 28 inputs, dense 10-way head on the top h, sparse softmax
// cross-entropy, Adam), its inference pass, and single-sequence streaming latency. Prints one
// JSON line per configuration, with the same fields as the peers' programs.
//
//   cellflow_bench --cell lstm|gru|peephole --threads 2 --iters 30 --warmup 5
//   cellflow_bench --cell lstm --batch 64 --hidden 256 --steps 100     (sweeps)
//   cellflow_bench --mode stream                                        (batch 1, step by step)
//   cellflow_bench --lengths uniform --skip-ended-rows 0|1              (variable lengths)
//   cellflow_bench --mode infer,stream --dtype bf16                     (bf16 inference)
//
// --lengths full|uniform|longtail: sequence_length of the batch (full: none, every example runs
// --steps). The draw is fixed (benchmarks/peers/torch_varlen.py makes the same one): u_b is the
// b-th output of SplitMix64 seeded with 20261207, as (x >> 11) * 2^-53; with T = --steps and
// lo = max(1, T / 4) (integer division):
//   uniform:  L_b = lo + floor(u_b * (T - lo + 1))        uniform on [T/4, T]
//   longtail: L_b = max(1, ceil(T * u_b^3))              most short (median T/8), a few long
// --skip-ended-rows 1 (default) runs RNNOptions::skip_ended_rows; 0 computes every row, as before.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "cellflow/cellflow.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cf = cellflow;
using cf::Index;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string cell = "lstm", mode = "train,infer";
  int layers = 3, threads = 2, iters = 30, warmup = 5;
  int batch_threads = 0;  // 0: same as --threads
  Index hidden = 150, steps = 28, inputs = 28, batch = 150, classes = 10;
  std::uint64_t seed = 0;
  std::string lengths = "full";
  bool skip_ended_rows = true;
  std::string dtype = "f32";  // f32, or bf16 (Precision::bf16: infer and stream modes only)
};

/// The benchmark's sequence lengths (see the top of this file); empty for "full".
std::vector<Index> draw_lengths(const std::string& kind, Index batch, Index T) {
  std::vector<Index> out;
  if (kind == "full") return out;
  std::uint64_t state = 20261207;
  auto next = [&] {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  const Index lo = std::max<Index>(1, T / 4);
  for (Index b = 0; b < batch; ++b) {
    const double u = static_cast<double>(next() >> 11) * 0x1.0p-53;
    Index L = 0;
    if (kind == "uniform")
      L = lo + static_cast<Index>(std::floor(u * static_cast<double>(T - lo + 1)));
    else
      L = std::max<Index>(1, static_cast<Index>(std::ceil(static_cast<double>(T) * u * u * u)));
    out.push_back(std::min(L, T));
  }
  return out;
}

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "cellflow_bench: %s\nusage: cellflow_bench [--cell lstm|gru|peephole] [--mode train,infer,stream] "
               "[--layers N] [--hidden N] [--steps N] [--inputs N] [--batch N] [--classes N] [--threads N] "
               "[--iters N] [--warmup N] [--seed N] [--batch-threads N (0: = --threads, 1: Eigen's threaded GEMM)] "
               "[--lengths full|uniform|longtail] [--skip-ended-rows 0|1] [--dtype f32|bf16 (bf16: infer, stream)]\n",
               msg.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage("missing value for " + k);
    const std::string v = argv[++i];
    auto num = [&]() {
      char* end = nullptr;
      const long long x = std::strtoll(v.c_str(), &end, 10);
      if (*end != '\0' || x < 0) usage("bad value for " + k + ": " + v);
      return x;
    };
    if (k == "--lengths")
      a.lengths = v;
    else if (k == "--skip-ended-rows")
      a.skip_ended_rows = num() != 0;
    else if (k == "--dtype")
      a.dtype = v;
    else if (k == "--cell")
      a.cell = v;
    else if (k == "--mode")
      a.mode = v;
    else if (k == "--layers")
      a.layers = static_cast<int>(num());
    else if (k == "--hidden")
      a.hidden = num();
    else if (k == "--steps")
      a.steps = num();
    else if (k == "--inputs")
      a.inputs = num();
    else if (k == "--batch")
      a.batch = num();
    else if (k == "--classes")
      a.classes = num();
    else if (k == "--threads")
      a.threads = static_cast<int>(num());
    else if (k == "--batch-threads")
      a.batch_threads = static_cast<int>(num());
    else if (k == "--iters")
      a.iters = static_cast<int>(num());
    else if (k == "--warmup")
      a.warmup = static_cast<int>(num());
    else if (k == "--seed")
      a.seed = static_cast<std::uint64_t>(num());
    else
      usage("unknown option " + k);
  }
  if (a.cell != "lstm" && a.cell != "gru" && a.cell != "peephole") usage("--cell must be lstm, gru or peephole");
  if (a.dtype != "f32" && a.dtype != "bf16") usage("--dtype must be f32 or bf16");
  if (a.dtype == "bf16" && a.mode.find("train") != std::string::npos)
    usage("--dtype bf16 is an inference path: use --mode infer, stream or infer,stream");
  if (a.lengths != "full" && a.lengths != "uniform" && a.lengths != "longtail")
    usage("--lengths must be full, uniform or longtail");
  if (a.layers < 1 || a.hidden < 1 || a.steps < 1 || a.inputs < 1 || a.batch < 1 || a.iters < 1)
    usage("sizes and --iters must be positive");
  return a;
}

cf::MultiRNNCell<float> build(const Args& a, cf::Rng& rng) {
  auto depth = [&](int l) { return l == 0 ? a.inputs : a.hidden; };
  if (a.cell == "gru") {
    std::vector<cf::GRUCell<float>> cells;
    for (int l = 0; l < a.layers; ++l) cells.emplace_back(depth(l), a.hidden, rng);
    return cf::MultiRNNCell<float>(std::move(cells));
  }
  if (a.cell == "peephole") {
    cf::LSTMOptions<float> o;
    o.use_peepholes = true;
    std::vector<cf::LSTMCell<float>> cells;
    for (int l = 0; l < a.layers; ++l) cells.emplace_back(depth(l), a.hidden, o, rng);
    return cf::MultiRNNCell<float>(std::move(cells));
  }
  std::vector<cf::BasicLSTMCell<float>> cells;
  for (int l = 0; l < a.layers; ++l) cells.emplace_back(depth(l), a.hidden, rng);
  return cf::MultiRNNCell<float>(std::move(cells));
}

/// GEMM FLOPs per sample, the peers' convention (benchmarks/peers/FLOPS.md): 2*M*N*K per
/// product, all steps counted, no input gradient of layer 1 in training.
void flops_per_sample(const Args& a, double& train, double& infer) {
  const double G = a.cell == "gru" ? 3 : 4, H = static_cast<double>(a.hidden), T = static_cast<double>(a.steps);
  const double I = static_cast<double>(a.inputs), C = static_cast<double>(a.classes);
  double fwd = 0;
  for (int l = 0; l < a.layers; ++l) fwd += 2 * T * ((l == 0 ? I : H) + H) * G * H;
  const double head = 2 * H * C;
  infer = fwd + head;
  train = 3 * fwd - 2 * T * I * G * H + 3 * head;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
#ifdef _OPENMP
  Eigen::setNbThreads(a.threads);
  const int threads = Eigen::nbThreads();
#else
  const int threads = 1;
#endif
  cf::RNNOptions train_opts;
  train_opts.batch_threads = a.batch_threads > 0 ? a.batch_threads : threads;
  train_opts.skip_ended_rows = a.skip_ended_rows;
  const std::vector<Index> lengths = draw_lengths(a.lengths, a.batch, a.steps);
  if (!lengths.empty()) train_opts.sequence_length = lengths;
  double mean_length = static_cast<double>(a.steps);
  if (!lengths.empty()) {
    mean_length = 0;
    for (Index L : lengths) mean_length += static_cast<double>(L);
    mean_length /= static_cast<double>(lengths.size());
  }
  cf::Rng rng(a.seed);
  cf::MultiRNNCell<float> multi = build(a, rng);
  cf::Dense<float> dense(a.hidden, a.classes, rng);
  cf::VariableList<float> vars;
  vars.add(multi, "rnn").add(dense);
  cf::AdamOptimizer<float> adam(0.001f);

  cf::Tensor3<float> x(a.batch, a.steps, a.inputs);
  for (Index k = 0; k < x.size(); ++k) x.data()[k] = rng.uniform<float>(0, 1);
  std::vector<int> y(static_cast<std::size_t>(a.batch));
  for (auto& v : y) v = static_cast<int>(rng.below(static_cast<std::uint64_t>(a.classes)));

  double train_flops = 0, infer_flops = 0;
  flops_per_sample(a, train_flops, infer_flops);
  std::string rec = "{\"impl\": \"cellflow\", \"cell\": \"" + a.cell + "\", \"variant\": \"" +
                    (a.cell == "lstm"  ? "BasicLSTMCell"
                     : a.cell == "gru" ? "GRUCell(reset-before)"
                                       : "LSTMCell(peepholes)") +
                    "\"";
  char buf[512];
  std::snprintf(buf, sizeof buf,
                ", \"layers\": %d, \"hidden\": %ld, \"steps\": %ld, \"inputs\": %ld, \"batch\": %ld, \"threads\": %d, "
                "\"iters\": %d, \"warmup\": %d, \"batch_threads\": %d",
                a.layers, static_cast<long>(a.hidden), static_cast<long>(a.steps), static_cast<long>(a.inputs),
                static_cast<long>(a.batch), threads, a.iters, a.warmup, train_opts.batch_threads);
  rec += buf;
  std::snprintf(buf, sizeof buf, ", \"lengths\": \"%s\", \"mean_length\": %.3f, \"skip_ended_rows\": %d",
                a.lengths.c_str(), mean_length, a.skip_ended_rows ? 1 : 0);
  rec += buf;
  const cf::Precision precision = a.dtype == "bf16" ? cf::Precision::bf16 : cf::Precision::fp32;
  rec += ", \"dtype\": \"" + a.dtype + "\", \"bf16_kernel\": " +
         (a.dtype == "bf16" ? "\"" + std::string(cf::bf16_kernel_name()) + "\"" : std::string("null"));
  // The float kernel's register tile (detail/gemm.hpp; -DCELLFLOW_GEMM_MR/NP change it).
  std::snprintf(buf, sizeof buf, ", \"gemm_tile\": \"%d rows x %d packets of %d floats\"", cf::detail::gemm_impl::kMR,
                cf::detail::gemm_impl::kNP, cf::detail::gemm_impl::packet_size<float>());
  rec += buf;

  if (a.mode.find("train") != std::string::npos) {
    cf::RNNResult<cf::MultiRNNCell<float>> r;
    auto d_state = multi.zero_state(a.batch);
    std::vector<double> t;
    double loss0 = 0, loss = 0;
    for (int it = 0; it < a.warmup + a.iters; ++it) {
      const auto t0 = Clock::now();
      vars.zero_grad();
      cf::dynamic_rnn_into(r, multi, x, train_opts);
      const cf::Matrix<float>& h = r.final_state.back().h();
      const cf::Matrix<float> logits = dense(h);
      const auto xent = cf::sparse_softmax_cross_entropy_with_logits(y, logits);
      d_state.back().h() = dense.backward(h, xent.mean_gradient());
      cf::dynamic_rnn_backward(multi, r, nullptr, &d_state);
      adam.apply_gradients(vars);
      const double s = seconds_since(t0);
      loss = xent.mean();
      if (it == 0) loss0 = loss;
      if (it >= a.warmup) t.push_back(s);
    }
    const double med = median(t), sps = static_cast<double>(a.batch) / med;
    std::snprintf(buf, sizeof buf,
                  ", \"train_samples_per_s\": %.2f, \"train_ms_median\": %.3f, \"train_ms_min\": %.3f, "
                  "\"train_gflops\": %.2f, \"loss_first\": %.4f, \"loss_last\": %.4f",
                  sps, med * 1e3, *std::min_element(t.begin(), t.end()) * 1e3, train_flops * sps / 1e9, loss0, loss);
    rec += buf;
  }
  if (a.mode.find("infer") != std::string::npos) {
    cf::RNNOptions inference = train_opts;
    inference.training = false;
    inference.precision = precision;
    cf::RNNResult<cf::MultiRNNCell<float>> r;
    std::vector<double> t;
    for (int it = 0; it < a.warmup + a.iters; ++it) {
      const auto t0 = Clock::now();
      cf::dynamic_rnn_into(r, multi, x, inference);
      const cf::Matrix<float> logits = dense(r.final_state.back().h());
      const double s = seconds_since(t0);
      if (logits.rows() != a.batch) return 1;
      if (it >= a.warmup) t.push_back(s);
    }
    const double med = median(t), sps = static_cast<double>(a.batch) / med;
    std::snprintf(buf, sizeof buf,
                  ", \"infer_samples_per_s\": %.2f, \"infer_ms_median\": %.3f, \"infer_ms_min\": %.3f, "
                  "\"infer_gflops\": %.2f",
                  sps, med * 1e3, *std::min_element(t.begin(), t.end()) * 1e3, infer_flops * sps / 1e9);
    rec += buf;
  }
  if (a.mode.find("stream") != std::string::npos) {
    // One sequence, one time step at a time through the whole stack: (a) RNNStream, which keeps
    // its state and buffers between calls; (b) TF's cell(x_t, state), which allocates its small
    // buffers per call. With --dtype bf16 only (a) is bf16 (the stream packs the weights once);
    // (b) and the memory floor stay float.
    const int n = (a.warmup + a.iters) * static_cast<int>(a.steps);
    std::vector<double> t_call, t_into;
    {
      auto state = multi.zero_state(1);
      cf::Matrix<float> xt(1, a.inputs);
      for (int it = 0; it < n; ++it) {
        for (Index d = 0; d < a.inputs; ++d) xt(0, d) = x(0, it % a.steps, d);
        const auto t0 = Clock::now();
        auto step = multi(xt, state);
        state = std::move(step.state);
        const double s = seconds_since(t0);
        if (it >= a.warmup * static_cast<int>(a.steps)) t_call.push_back(s);
      }
    }
    {
      cf::RNNStream<cf::MultiRNNCell<float>> stream(multi, 1, precision);
      cf::Matrix<float> xt(1, a.inputs);
      for (int it = 0; it < n; ++it) {
        for (Index d = 0; d < a.inputs; ++d) xt(0, d) = x(0, it % a.steps, d);
        const auto t0 = Clock::now();
        stream.step(xt);
        const double s = seconds_since(t0);
        if (it >= a.warmup * static_cast<int>(a.steps)) t_into.push_back(s);
      }
    }
    // The memory floor: one streamed step reads every weight of the stack once, so no float32
    // implementation can step faster than this machine reads those bytes where they sit between
    // steps (L2 or L3, by size). Measured here, in the same sitting, with a summing loop over
    // the stack's own weight buffers.
    std::vector<std::pair<const float*, Index>> weights;
    Index weight_floats = 0;
    multi.for_each_variable("rnn", [&](const std::string&, cf::Parameter<float>& p) {
      weights.emplace_back(p.value.data(), p.value.size());
      weight_floats += p.value.size();
    });
    std::vector<double> t_floor;
    float sink = 0;
    for (int it = 0; it < n; ++it) {
      const auto t0 = Clock::now();
      float sum = 0;
      for (const auto& [p, size] : weights) sum += Eigen::Map<const Eigen::VectorXf>(p, size).sum();
      const double s = seconds_since(t0);
      sink += sum;
      if (it >= a.warmup * static_cast<int>(a.steps)) t_floor.push_back(s);
    }
    std::snprintf(buf, sizeof buf,
                  ", \"stream_us_per_step_median\": %.2f, \"stream_us_per_step_min\": %.2f, "
                  "\"stream_call_us_per_step_median\": %.2f, \"stream_floor_us_median\": %.2f, "
                  "\"stream_weight_bytes\": %lld, \"stream_sum_checksum\": %.3g",
                  median(t_into) * 1e6, *std::min_element(t_into.begin(), t_into.end()) * 1e6, median(t_call) * 1e6,
                  median(t_floor) * 1e6, static_cast<long long>(weight_floats) * 4, static_cast<double>(sink));
    rec += buf;
  }
  rec += ", \"scope\": \"full step: forward, loss, backward, Adam; infer: forward to logits\"}";
  std::printf("%s\n", rec.c_str());
  return 0;
}
