// oneDNN peer of cellflow_bench: the seed model's 3-layer recurrent stack run with oneDNN's RNN
// primitives (oneDNN 2.6, the dnnl.hpp C++ API of Debian 12's libdnnl-dev). RNN only: no dense
// head, loss or optimizer (benchmarks/peers/README.md says what that leaves out).
//
//   train   forward_training of layers 1..L, then backward of layers L..1; the gradient enters the
//           top layer at its last time step only (what a head on the final h sends back)
//   infer   forward_inference of layers 1..L
//   stream  batch 1, one time step at a time through the L layers, the state carried over
//
// Cells: lstm (vanilla_lstm), gru (lbr_gru, the linear-before-reset GRU of PyTorch's nn.GRU),
// peephole (vanilla_lstm with peephole weights). --dtype bf16 (infer and stream only) stores the
// weights and the layer data as bfloat16 with f32 bias, cell state and accumulation; the JSON line
// names the implementation oneDNN picked and the ISA it runs on, or the error if it refused.
//
// Build: g++ -std=c++17 -O3 -march=native -DNDEBUG -fopenmp onednn_rnn.cpp -o onednn_rnn -ldnnl
//   onednn_rnn --cell lstm|gru|peephole --threads 2 --iters 30 --warmup 5 [--mode train,infer,stream]
//              [--dtype f32|bf16] [--layers 3] [--hidden 150] [--steps 28] [--inputs 28]
//              [--batch 150] [--stream-steps 2000] [--seed 0]
// Prints one JSON line per mode, with the field names of cellflow_bench.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;
using Clock = std::chrono::steady_clock;
using Args = std::unordered_map<int, memory>;

struct Options {
  std::string cell = "lstm", mode = "train,infer", dtype = "f32";
  long layers = 3, hidden = 150, steps = 28, inputs = 28, batch = 150;
  long threads = 2, iters = 30, warmup = 5, stream_steps = 2000, seed = 0;
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "onednn_rnn: %s\nusage: onednn_rnn [--cell lstm|gru|peephole] [--mode train,infer,stream] "
               "[--dtype f32|bf16] [--layers N] [--hidden N] [--steps N] [--inputs N] [--batch N] [--threads N] "
               "[--iters N] [--warmup N] [--stream-steps N] [--seed N]\n",
               msg.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") usage("help");
    if (i + 1 >= argc) usage("missing value for " + k);
    const std::string v = argv[++i];
    auto num = [&]() {
      char* end = nullptr;
      const long x = std::strtol(v.c_str(), &end, 10);
      if (*end != '\0' || x < 0) usage("bad value for " + k + ": " + v);
      return x;
    };
    if (k == "--cell")
      o.cell = v;
    else if (k == "--mode")
      o.mode = v;
    else if (k == "--dtype")
      o.dtype = v;
    else if (k == "--layers")
      o.layers = num();
    else if (k == "--hidden")
      o.hidden = num();
    else if (k == "--steps")
      o.steps = num();
    else if (k == "--inputs")
      o.inputs = num();
    else if (k == "--batch")
      o.batch = num();
    else if (k == "--threads")
      o.threads = num();
    else if (k == "--iters")
      o.iters = num();
    else if (k == "--warmup")
      o.warmup = num();
    else if (k == "--stream-steps")
      o.stream_steps = num();
    else if (k == "--seed")
      o.seed = num();
    else
      usage("unknown option " + k);
  }
  if (o.cell != "lstm" && o.cell != "gru" && o.cell != "peephole") usage("--cell must be lstm, gru or peephole");
  if (o.dtype != "f32" && o.dtype != "bf16") usage("--dtype must be f32 or bf16");
  if (o.layers < 1 || o.hidden < 1 || o.steps < 1 || o.inputs < 1 || o.batch < 1 || o.iters < 1 || o.threads < 1 ||
      o.stream_steps < 10)
    usage("sizes, --threads and --iters must be positive, --stream-steps at least 10");
  return o;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

/// The network: cell kind, sizes, the plain f32 parameters of every layer.
struct Net {
  Options o;
  bool gru = false, peephole = false;
  long gates = 4, bias_gates = 4;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  // plain f32 parameters per layer: weights_layer ldigo, weights_iter ldigo, bias ldgo, peephole ldgo
  std::vector<memory> w_layer, w_iter, bias, peep;

  explicit Net(const Options& opt) : o(opt) {
    gru = o.cell == "gru";
    peephole = o.cell == "peephole";
    gates = gru ? 3 : 4;
    bias_gates = 4;  // lbr_gru keeps a fourth bias block for the recurrent part of the new gate
    std::mt19937 rng(static_cast<unsigned>(o.seed));
    const float r = 1.0f / std::sqrt(static_cast<float>(o.hidden));
    std::uniform_real_distribution<float> u(-r, r);
    auto filled = [&](const memory::dims& d, tag t) {
      memory m({d, dt::f32, t}, eng);
      float* p = static_cast<float*>(m.get_data_handle());
      for (std::size_t k = 0; k < m.get_desc().get_size() / sizeof(float); ++k) p[k] = u(rng);
      return m;
    };
    for (long l = 0; l < o.layers; ++l) {
      w_layer.push_back(filled({1, 1, in(l), gates, o.hidden}, tag::ldigo));
      w_iter.push_back(filled({1, 1, o.hidden, gates, o.hidden}, tag::ldigo));
      bias.push_back(filled({1, 1, bias_gates, o.hidden}, tag::ldgo));
      peep.push_back(filled({1, 1, 3, o.hidden}, tag::ldgo));
    }
  }
  long in(long l) const { return l == 0 ? o.inputs : o.hidden; }
  const char* algorithm() const { return gru ? "lbr_gru" : peephole ? "vanilla_lstm+peephole" : "vanilla_lstm"; }
};

/// Memory descriptors of one layer's primitive. An empty descriptor means "none" (zero state).
struct Descs {
  memory::desc src_layer, src_iter, src_iter_c, w_layer, w_iter, w_peep, bias, dst_layer, dst_iter, dst_iter_c;
};

Descs descs(const Net& n, long l, long T, long N, dt data, dt c_state, bool with_state) {
  Descs d;
  const long H = n.o.hidden;
  d.src_layer = memory::desc({T, N, n.in(l)}, data, tag::tnc);
  d.dst_layer = memory::desc({T, N, H}, data, tag::tnc);
  d.w_layer = memory::desc({1, 1, n.in(l), n.gates, H}, data, tag::any);
  d.w_iter = memory::desc({1, 1, H, n.gates, H}, data, tag::any);
  d.bias = memory::desc({1, 1, n.bias_gates, H}, dt::f32, tag::ldgo);
  d.w_peep = memory::desc({1, 1, 3, H}, dt::f32, tag::ldgo);
  if (with_state) {
    d.src_iter = d.dst_iter = memory::desc({1, 1, N, H}, data, tag::ldnc);
    if (!n.gru) d.src_iter_c = d.dst_iter_c = memory::desc({1, 1, N, H}, c_state, tag::ldnc);
  }
  return d;
}

constexpr auto kDir = dnnl::rnn_direction::unidirectional_left2right;

dnnl::primitive_desc forward_pd(const Net& n, dnnl::prop_kind prop, const Descs& d) {
  if (n.gru) {
    dnnl::lbr_gru_forward::desc g(prop, kDir, d.src_layer, d.src_iter, d.w_layer, d.w_iter, d.bias, d.dst_layer,
                                  d.dst_iter);
    return dnnl::lbr_gru_forward::primitive_desc(g, n.eng);
  }
  if (n.peephole) {
    dnnl::lstm_forward::desc g(prop, kDir, d.src_layer, d.src_iter, d.src_iter_c, d.w_layer, d.w_iter, d.w_peep, d.bias,
                               d.dst_layer, d.dst_iter, d.dst_iter_c);
    return dnnl::lstm_forward::primitive_desc(g, n.eng);
  }
  dnnl::lstm_forward::desc g(prop, kDir, d.src_layer, d.src_iter, d.src_iter_c, d.w_layer, d.w_iter, d.bias,
                             d.dst_layer, d.dst_iter, d.dst_iter_c);
  return dnnl::lstm_forward::primitive_desc(g, n.eng);
}

/// Forward-training and backward primitive descriptors of one layer (f32, zero initial state).
std::pair<dnnl::primitive_desc, dnnl::primitive_desc> training_pds(const Net& n, const Descs& d) {
  const auto fwd = dnnl::prop_kind::forward_training;
  const auto bwd = dnnl::prop_kind::backward;
  const memory::desc none;
  const memory::desc& dsrc = d.src_layer;  // diff descriptors: plain data, chosen layouts for weights
  const memory::desc& ddst = d.dst_layer;
  if (n.gru) {
    dnnl::lbr_gru_forward::desc f(fwd, kDir, d.src_layer, none, d.w_layer, d.w_iter, d.bias, d.dst_layer, none);
    dnnl::lbr_gru_forward::primitive_desc fpd(f, n.eng);
    dnnl::lbr_gru_backward::desc b(bwd, kDir, d.src_layer, none, d.w_layer, d.w_iter, d.bias, d.dst_layer, none, dsrc,
                                   none, d.w_layer, d.w_iter, d.bias, ddst, none);
    return {fpd, dnnl::lbr_gru_backward::primitive_desc(b, n.eng, fpd)};
  }
  if (n.peephole) {
    dnnl::lstm_forward::desc f(fwd, kDir, d.src_layer, none, none, d.w_layer, d.w_iter, d.w_peep, d.bias, d.dst_layer,
                               none, none);
    dnnl::lstm_forward::primitive_desc fpd(f, n.eng);
    dnnl::lstm_backward::desc b(bwd, kDir, d.src_layer, none, none, d.w_layer, d.w_iter, d.w_peep, d.bias, d.dst_layer,
                                none, none, dsrc, none, none, d.w_layer, d.w_iter, d.w_peep, d.bias, ddst, none, none);
    return {fpd, dnnl::lstm_backward::primitive_desc(b, n.eng, fpd)};
  }
  dnnl::lstm_forward::desc f(fwd, kDir, d.src_layer, none, none, d.w_layer, d.w_iter, d.bias, d.dst_layer, none, none);
  dnnl::lstm_forward::primitive_desc fpd(f, n.eng);
  dnnl::lstm_backward::desc b(bwd, kDir, d.src_layer, none, none, d.w_layer, d.w_iter, d.bias, d.dst_layer, none, none,
                              dsrc, none, none, d.w_layer, d.w_iter, d.bias, ddst, none, none);
  return {fpd, dnnl::lstm_backward::primitive_desc(b, n.eng, fpd)};
}

memory::desc md(const dnnl::primitive_desc& pd, int arg) { return pd.query_md(dnnl::query::exec_arg_md, arg); }

/// A weight in the layout `pd` chose for `arg`, converted from the plain f32 one (a reorder when the
/// layout or data type differs).
struct Weight {
  memory plain, used;
  bool reorder = false;
  Weight(const Net& n, const memory& p, const memory::desc& want) : plain(p), used(p) {
    if (want != p.get_desc()) {
      used = memory(want, n.eng);
      reorder = true;
    }
  }
  void update(const Net& n) {
    if (reorder) dnnl::reorder(plain, used).execute(const_cast<dnnl::stream&>(n.strm), plain, used);
  }
};

void fill_uniform(memory& m, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  float* p = static_cast<float*>(m.get_data_handle());
  for (std::size_t k = 0; k < m.get_desc().get_size() / sizeof(float); ++k) p[k] = u(rng);
}
void zero(memory& m) { std::memset(m.get_data_handle(), 0, m.get_desc().get_size()); }

std::string header(const Net& n, const char* mode, long batch) {
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "{\"impl\": \"onednn\", \"cell\": \"%s\", \"variant\": \"%s\", \"algorithm\": \"%s\", \"mode\": \"%s\", "
      "\"dtype\": \"%s\", \"layers\": %ld, \"hidden\": %ld, \"steps\": %ld, \"inputs\": %ld, \"batch\": %ld, "
      "\"threads\": %ld, \"iters\": %ld, \"warmup\": %ld, \"onednn_version\": \"%d.%d.%d\", \"isa\": \"%s\"",
      n.o.cell.c_str(), n.algorithm(), n.algorithm(), mode, n.o.dtype.c_str(), n.o.layers, n.o.hidden, n.o.steps,
      n.o.inputs, batch, n.o.threads, n.o.iters, n.o.warmup, dnnl::version()->major, dnnl::version()->minor,
      dnnl::version()->patch, isa_name(dnnl::get_effective_cpu_isa()));
  return buf;
}

/// RNN-only matrix-product FLOPs per sample (benchmarks/peers/FLOPS.md): forward, and training
/// without the gradient of the data input.
void flops(const Net& n, double& train, double& infer) {
  const double G = static_cast<double>(n.gates), H = static_cast<double>(n.o.hidden);
  const double T = static_cast<double>(n.o.steps), I = static_cast<double>(n.o.inputs);
  double fwd = 0;
  for (long l = 0; l < n.o.layers; ++l) fwd += 2 * T * (static_cast<double>(n.in(l)) + H) * G * H;
  infer = fwd;
  train = 3 * fwd - 2 * T * I * G * H;
}

std::string run_train(Net& n) {
  const long L = n.o.layers, T = n.o.steps, N = n.o.batch, H = n.o.hidden;
  std::mt19937 rng(static_cast<unsigned>(n.o.seed) + 1);
  struct Layer {
    dnnl::primitive fwd, bwd;
    std::vector<Weight> weights;  // forward w_layer, w_iter, backward w_layer, w_iter
    memory src, dst, ws, diff_src, diff_dst, dw_layer, dw_iter, dbias, dpeep;
    Args fargs, bargs;
  };
  std::vector<Layer> layers(static_cast<std::size_t>(L));
  std::string impl_f, impl_b;
  memory x({{T, N, n.o.inputs}, dt::f32, tag::tnc}, n.eng);
  fill_uniform(x, rng, 0, 1);
  for (long l = 0; l < L; ++l) {
    Layer& y = layers[static_cast<std::size_t>(l)];
    const Descs d = descs(n, l, T, N, dt::f32, dt::f32, false);
    auto pds = training_pds(n, d);
    const dnnl::primitive_desc& f = pds.first;
    const dnnl::primitive_desc& b = pds.second;
    if (l == 0) impl_f = f.impl_info_str(), impl_b = b.impl_info_str();
    y.fwd = dnnl::primitive(f);
    y.bwd = dnnl::primitive(b);
    const std::size_t k = static_cast<std::size_t>(l);
    y.weights.emplace_back(n, n.w_layer[k], md(f, DNNL_ARG_WEIGHTS_LAYER));
    y.weights.emplace_back(n, n.w_iter[k], md(f, DNNL_ARG_WEIGHTS_ITER));
    y.weights.emplace_back(n, n.w_layer[k], md(b, DNNL_ARG_WEIGHTS_LAYER));
    y.weights.emplace_back(n, n.w_iter[k], md(b, DNNL_ARG_WEIGHTS_ITER));
    y.src = l == 0 ? x : layers[k - 1].dst;
    y.dst = memory(d.dst_layer, n.eng);
    y.ws = memory(f.workspace_desc(), n.eng);
    y.diff_src = memory(d.src_layer, n.eng);  // layer 1's data gradient: a mandatory output
    y.dw_layer = memory(md(b, DNNL_ARG_DIFF_WEIGHTS_LAYER), n.eng);
    y.dw_iter = memory(md(b, DNNL_ARG_DIFF_WEIGHTS_ITER), n.eng);
    y.dbias = memory(md(b, DNNL_ARG_DIFF_BIAS), n.eng);
    y.dpeep = memory({{1, 1, 3, H}, dt::f32, tag::ldgo}, n.eng);
    y.fargs = {{DNNL_ARG_SRC_LAYER, y.src},
               {DNNL_ARG_WEIGHTS_LAYER, y.weights[0].used},
               {DNNL_ARG_WEIGHTS_ITER, y.weights[1].used},
               {DNNL_ARG_BIAS, n.bias[k]},
               {DNNL_ARG_DST_LAYER, y.dst},
               {DNNL_ARG_WORKSPACE, y.ws}};
    if (n.peephole) y.fargs[DNNL_ARG_WEIGHTS_PEEPHOLE] = n.peep[k];
  }
  // The head's gradient reaches the top layer's output at the last step only.
  Layer& top = layers.back();
  top.diff_dst = memory({{T, N, H}, dt::f32, tag::tnc}, n.eng);
  zero(top.diff_dst);
  {
    float* p = static_cast<float*>(top.diff_dst.get_data_handle()) + (T - 1) * N * H;
    std::uniform_real_distribution<float> u(-0.01f, 0.01f);
    for (long k = 0; k < N * H; ++k) p[k] = u(rng);
  }
  for (long l = 0; l < L; ++l) {
    Layer& y = layers[static_cast<std::size_t>(l)];
    if (l + 1 < L) y.diff_dst = layers[static_cast<std::size_t>(l + 1)].diff_src;
    y.bargs = {{DNNL_ARG_SRC_LAYER, y.src},
               {DNNL_ARG_WEIGHTS_LAYER, y.weights[2].used},
               {DNNL_ARG_WEIGHTS_ITER, y.weights[3].used},
               {DNNL_ARG_BIAS, n.bias[static_cast<std::size_t>(l)]},
               {DNNL_ARG_DST_LAYER, y.dst},
               {DNNL_ARG_WORKSPACE, y.ws},
               {DNNL_ARG_DIFF_SRC_LAYER, y.diff_src},
               {DNNL_ARG_DIFF_WEIGHTS_LAYER, y.dw_layer},
               {DNNL_ARG_DIFF_WEIGHTS_ITER, y.dw_iter},
               {DNNL_ARG_DIFF_BIAS, y.dbias},
               {DNNL_ARG_DIFF_DST_LAYER, y.diff_dst}};
    if (n.peephole) {
      y.bargs[DNNL_ARG_WEIGHTS_PEEPHOLE] = n.peep[static_cast<std::size_t>(l)];
      y.bargs[DNNL_ARG_DIFF_WEIGHTS_PEEPHOLE] = y.dpeep;
    }
  }
  std::vector<double> t_step, t_fwd, t_bwd, t_reorder;
  int n_reorders = 0;
  for (const Layer& y : layers)
    for (const Weight& w : y.weights) n_reorders += w.reorder;
  for (long it = 0; it < n.o.warmup + n.o.iters; ++it) {
    // A training loop updates plain weights, so the primitives' layouts are refreshed every
    // step; timed apart from the step (weight_reorder_ms).
    auto t0 = Clock::now();
    for (Layer& y : layers)
      for (Weight& w : y.weights) w.update(n);
    n.strm.wait();
    const double reo = ms_since(t0);
    t0 = Clock::now();
    for (Layer& y : layers) y.fwd.execute(n.strm, y.fargs);
    n.strm.wait();
    const double f = ms_since(t0);
    const auto t1 = Clock::now();
    for (long l = L - 1; l >= 0; --l) {
      Layer& y = layers[static_cast<std::size_t>(l)];
      zero(y.dw_layer), zero(y.dw_iter), zero(y.dbias), zero(y.dpeep);  // oneDNN accumulates into them
      y.bwd.execute(n.strm, y.bargs);
    }
    n.strm.wait();
    const double b = ms_since(t1);
    if (it >= n.o.warmup) t_step.push_back(f + b), t_fwd.push_back(f), t_bwd.push_back(b), t_reorder.push_back(reo);
  }
  double check = 0;
  {
    const float* p = static_cast<const float*>(layers.front().dw_iter.get_data_handle());
    for (std::size_t k = 0; k < layers.front().dw_iter.get_desc().get_size() / sizeof(float); ++k)
      check += std::fabs(p[k]);
  }
  double train_flops = 0, infer_flops = 0;
  flops(n, train_flops, infer_flops);
  const double med = median(t_step), sps = static_cast<double>(N) / (med / 1e3);
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                ", \"train_samples_per_s\": %.2f, \"train_ms_median\": %.3f, \"train_ms_min\": %.3f, "
                "\"train_gflops\": %.2f, \"fwd_train_ms_median\": %.3f, \"bwd_ms_median\": %.3f, "
                "\"weight_reorder_ms_median\": %.3f, \"n_weight_reorders\": %d, \"impl_fwd_train\": \"%s\", "
                "\"impl_bwd\": \"%s\", \"layer1_dw_iter_abs_sum\": %.6g, \"finite\": %s",
                sps, med, *std::min_element(t_step.begin(), t_step.end()), train_flops * sps / 1e9, median(t_fwd),
                median(t_bwd), median(t_reorder), n_reorders, impl_f.c_str(), impl_b.c_str(), check,
                std::isfinite(check) && check > 0 ? "true" : "false");
  return header(n, "train", N) + buf +
         ", \"scope\": \"RNN primitives only (no dense head, loss or optimizer); forward_training + backward incl. "
         "zeroing the weight gradients; weight layout reorders timed apart\"}";
}

/// Inference through the stack; returns the JSON line and leaves the top layer's last-step output
/// (converted to f32) in `last`.
std::string run_infer(Net& n, dt data, std::vector<float>& last) {
  const long L = n.o.layers, T = n.o.steps, N = n.o.batch, H = n.o.hidden;
  std::mt19937 rng(static_cast<unsigned>(n.o.seed) + 1);
  memory x({{T, N, n.o.inputs}, dt::f32, tag::tnc}, n.eng);
  fill_uniform(x, rng, 0, 1);
  std::vector<dnnl::primitive> prims;
  std::vector<Args> args;
  std::vector<Weight> weights;
  weights.reserve(static_cast<std::size_t>(2 * L));
  std::string impl;
  memory src = x, x_conv;
  if (data != dt::f32) x_conv = memory({{T, N, n.o.inputs}, data, tag::tnc}, n.eng), src = x_conv;
  memory dst;
  for (long l = 0; l < L; ++l) {
    const std::size_t k = static_cast<std::size_t>(l);
    const Descs d = descs(n, l, T, N, data, dt::f32, false);
    const dnnl::primitive_desc pd = forward_pd(n, dnnl::prop_kind::forward_inference, d);
    if (l == 0) impl = pd.impl_info_str();
    prims.emplace_back(pd);
    weights.emplace_back(n, n.w_layer[k], md(pd, DNNL_ARG_WEIGHTS_LAYER));
    weights.emplace_back(n, n.w_iter[k], md(pd, DNNL_ARG_WEIGHTS_ITER));
    for (std::size_t w = weights.size() - 2; w < weights.size(); ++w) weights[w].update(n);
    dst = memory(d.dst_layer, n.eng);
    Args a = {{DNNL_ARG_SRC_LAYER, src},
              {DNNL_ARG_WEIGHTS_LAYER, weights[weights.size() - 2].used},
              {DNNL_ARG_WEIGHTS_ITER, weights.back().used},
              {DNNL_ARG_BIAS, n.bias[k]},
              {DNNL_ARG_DST_LAYER, dst}};
    if (n.peephole) a[DNNL_ARG_WEIGHTS_PEEPHOLE] = n.peep[k];
    const memory::desc ws = pd.workspace_desc();
    if (ws.get_size() > 0) a[DNNL_ARG_WORKSPACE] = memory(ws, n.eng);
    args.push_back(a);
    src = dst;
  }
  n.strm.wait();
  dnnl::reorder to_data;
  if (data != dt::f32) to_data = dnnl::reorder(x, x_conv);
  std::vector<double> t;
  for (long it = 0; it < n.o.warmup + n.o.iters; ++it) {
    const auto t0 = Clock::now();
    if (data != dt::f32) to_data.execute(n.strm, x, x_conv);  // the caller's f32 input, converted
    for (std::size_t l = 0; l < prims.size(); ++l) prims[l].execute(n.strm, args[l]);
    n.strm.wait();
    if (it >= n.o.warmup) t.push_back(ms_since(t0));
  }
  memory out({{T, N, H}, dt::f32, tag::tnc}, n.eng);
  dnnl::reorder(dst, out).execute(n.strm, dst, out);
  n.strm.wait();
  const float* p = static_cast<const float*>(out.get_data_handle()) + (T - 1) * N * H;
  last.assign(p, p + N * H);
  double train_flops = 0, infer_flops = 0;
  flops(n, train_flops, infer_flops);
  const double med = median(t), sps = static_cast<double>(N) / (med / 1e3);
  char buf[512];
  std::snprintf(buf, sizeof buf,
                ", \"infer_samples_per_s\": %.2f, \"infer_ms_median\": %.3f, \"infer_ms_min\": %.3f, "
                "\"infer_gflops\": %.2f, \"impl_fwd_infer\": \"%s\"",
                sps, med, *std::min_element(t.begin(), t.end()), infer_flops * sps / 1e9, impl.c_str());
  return header(n, "infer", N) + buf;
}

/// Batch 1, one time step at a time through the stack; state kept in ping-pong buffers.
std::string run_stream(Net& n, dt data) {
  const long L = n.o.layers, H = n.o.hidden;
  struct Layer {
    dnnl::primitive prim;
    std::vector<Weight> weights;
    memory dst, h[2], c[2];
    Args args[2];
  };
  std::vector<Layer> layers(static_cast<std::size_t>(L));
  std::string impl, c_type = "f32";
  memory x({{1, 1, n.o.inputs}, dt::f32, tag::tnc}, n.eng), x_conv = x;
  if (data != dt::f32) x_conv = memory({{1, 1, n.o.inputs}, data, tag::tnc}, n.eng);
  for (long l = 0; l < L; ++l) {
    const std::size_t k = static_cast<std::size_t>(l);
    Layer& y = layers[k];
    dt c_state = dt::f32;
    Descs d = descs(n, l, 1, 1, data, c_state, true);
    dnnl::primitive_desc pd;
    try {
      pd = forward_pd(n, dnnl::prop_kind::forward_inference, d);
    } catch (const dnnl::error&) {
      if (data == dt::f32 || n.gru) throw;
      c_state = data, c_type = "bf16";  // some versions want the cell state in the data type
      d = descs(n, l, 1, 1, data, c_state, true);
      pd = forward_pd(n, dnnl::prop_kind::forward_inference, d);
    }
    if (l == 0) impl = pd.impl_info_str();
    y.prim = dnnl::primitive(pd);
    y.weights.emplace_back(n, n.w_layer[k], md(pd, DNNL_ARG_WEIGHTS_LAYER));
    y.weights.emplace_back(n, n.w_iter[k], md(pd, DNNL_ARG_WEIGHTS_ITER));
    for (Weight& w : y.weights) w.update(n);
    y.dst = memory(d.dst_layer, n.eng);
    for (int s = 0; s < 2; ++s) {
      y.h[s] = memory(d.src_iter, n.eng), zero(y.h[s]);
      if (!n.gru) y.c[s] = memory(d.src_iter_c, n.eng), zero(y.c[s]);
    }
    const memory src = l == 0 ? x_conv : layers[k - 1].dst;
    for (int s = 0; s < 2; ++s) {
      Args a = {{DNNL_ARG_SRC_LAYER, src},
                {DNNL_ARG_SRC_ITER, y.h[s]},
                {DNNL_ARG_WEIGHTS_LAYER, y.weights[0].used},
                {DNNL_ARG_WEIGHTS_ITER, y.weights[1].used},
                {DNNL_ARG_BIAS, n.bias[k]},
                {DNNL_ARG_DST_LAYER, y.dst},
                {DNNL_ARG_DST_ITER, y.h[1 - s]}};
      if (!n.gru) a[DNNL_ARG_SRC_ITER_C] = y.c[s], a[DNNL_ARG_DST_ITER_C] = y.c[1 - s];
      if (n.peephole) a[DNNL_ARG_WEIGHTS_PEEPHOLE] = n.peep[k];
      const memory::desc ws = pd.workspace_desc();
      if (ws.get_size() > 0) a[DNNL_ARG_WORKSPACE] = memory(ws, n.eng);
      y.args[s] = a;
    }
  }
  n.strm.wait();
  dnnl::reorder to_data;
  if (data != dt::f32) to_data = dnnl::reorder(x, x_conv);
  std::mt19937 rng(static_cast<unsigned>(n.o.seed) + 2);
  std::uniform_real_distribution<float> u(0, 1);
  float* xp = static_cast<float*>(x.get_data_handle());
  std::vector<double> t;
  for (long step = 0; step < n.o.stream_steps; ++step) {
    for (long d = 0; d < n.o.inputs; ++d) xp[d] = u(rng);
    const auto t0 = Clock::now();
    if (data != dt::f32) to_data.execute(n.strm, x, x_conv);
    for (Layer& y : layers) y.prim.execute(n.strm, y.args[step & 1]);
    n.strm.wait();
    if (step >= n.o.stream_steps / 10) t.push_back(ms_since(t0) * 1e3);
  }
  char buf[512];
  std::snprintf(buf, sizeof buf,
                ", \"stream_us_per_step_median\": %.2f, \"stream_us_per_step_min\": %.2f, \"stream_steps\": %ld, "
                "\"impl_stream\": \"%s\", \"cell_state_dtype\": \"%s\"",
                median(t), *std::min_element(t.begin(), t.end()), n.o.stream_steps, impl.c_str(),
                n.gru ? "none" : c_type.c_str());
  (void)H;
  return header(n, "stream", 1) + buf;
}

std::string json_escape(const std::string& s) {
  std::string r;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') r += '\\';
    if (ch == '\n') {
      r += ' ';
      continue;
    }
    r += ch;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  omp_set_num_threads(static_cast<int>(o.threads));
  Net n(o);
  const bool bf16 = o.dtype == "bf16";
  const dt data = bf16 ? dt::bf16 : dt::f32;
  int status = 0;
  auto attempt = [&](const char* mode, long batch, const std::function<std::string()>& f) {
    try {
      std::printf("%s\n", f().c_str());
    } catch (const dnnl::error& e) {
      std::printf("%s, \"error\": \"oneDNN refused: %s (status %d)\"}\n", header(n, mode, batch).c_str(),
                  json_escape(e.what()).c_str(), static_cast<int>(e.status));
      status = 3;
    }
    std::fflush(stdout);
  };
  if (o.mode.find("train") != std::string::npos) {
    if (bf16)
      std::fprintf(stderr, "onednn_rnn: --dtype bf16 covers infer and stream; train runs in f32 only, skipped\n");
    else
      attempt("train", o.batch, [&] { return run_train(n); });
  }
  if (o.mode.find("infer") != std::string::npos) {
    attempt("infer", o.batch, [&] {
      std::vector<float> out, ref;
      std::string line = run_infer(n, data, out);
      if (bf16) {  // how far bf16 storage moves the top layer's last output from the f32 run
        Options o32 = o;
        o32.iters = 1, o32.warmup = 0, o32.dtype = "f32";
        Net n32(o32);
        run_infer(n32, dt::f32, ref);
        double worst = 0;
        for (std::size_t k = 0; k < out.size(); ++k)
          worst = std::max(worst, static_cast<double>(std::fabs(out[k] - ref[k])));
        char buf[96];
        std::snprintf(buf, sizeof buf, ", \"max_abs_diff_vs_f32\": %.3g", worst);
        line += buf;
      }
      return line + ", \"scope\": \"RNN primitives only: forward_inference of the stack" +
             (bf16 ? std::string(", incl. converting the f32 input to bf16") : std::string()) + "\"}";
    });
  }
  if (o.mode.find("stream") != std::string::npos) {
    attempt("stream", 1, [&] {
      return run_stream(n, data) + ", \"scope\": \"batch 1, one time step through the stack per call, state kept\"}";
    });
  }
  return status;
}
