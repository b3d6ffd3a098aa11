// SGEMM throughput of oneDNN's dnnl_sgemm and of Eigen 3.4 on this machine: the "SGEMM peak" of a
// sitting (2048 x 2048 x 2048, the figure "% of peak" divides by) and the rates at the seed
// model's own shapes (the per-step recurrent products, the all-steps input projections and
// weight gradients). Row-major C = op(A) op(B), 2*M*N*K FLOPs per call; each figure is the median
// (and range) of --samples timed samples of at least --min-ms each, after one untimed call.
//
// Build: g++ -std=c++17 -O3 -march=native -DNDEBUG -fopenmp -isystem /usr/include/eigen3 gemm_peak.cpp
//          -o gemm_peak -ldnnl
//   gemm_peak --threads 2 [--backend onednn|eigen|all] [--set square|rnn|all] [--samples 7] [--min-ms 25]
// Prints one JSON line per backend and shape ({"bench": "gemm", ...}).
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

struct Shape {
  std::string id, what;
  long M, N, K;
  char opA, opB;
};

std::vector<Shape> shapes(const std::string& set) {
  std::vector<Shape> s;
  if (set == "square" || set == "all")
    s.push_back({"square", "large square product (practical peak)", 2048, 2048, 2048, 'N', 'N'});
  if (set == "rnn" || set == "all") {
    const long B = 150, T = 28, I = 28, H = 150;
    for (const long G : {4L, 3L}) {
      const std::string c = G == 4 ? "lstm." : "gru.";
      const long GH = G * H;
      s.push_back({c + "f_h", "forward per step: h_{t-1} W_h", B, GH, H, 'N', 'N'});
      s.push_back({c + "f_xall_l1", "forward, input projection of all steps, layer 1", T * B, GH, I, 'N', 'N'});
      s.push_back({c + "f_xall_l23", "forward, input projection of all steps, layers 2-3", T * B, GH, H, 'N', 'N'});
      s.push_back({c + "b_dh", "backward per step: dG W_h^T", B, H, GH, 'N', 'T'});
      s.push_back({c + "b_dxall", "backward, input gradient of all steps: dG W_x^T", T * B, H, GH, 'N', 'T'});
      s.push_back({c + "b_dw_all", "backward, weight gradient over all steps: H^T dG", H, GH, T * B, 'T', 'N'});
      s.push_back({c + "b_dw_l1", "backward, layer 1 input weight gradient: X^T dG", I, GH, T * B, 'T', 'N'});
    }
  }
  return s;
}

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMajor>;
using CMap = Eigen::Map<const RowMajor>;

/// One call C = op(A) op(B) with the chosen backend; A, B stored row-major as op says.
void gemm(const std::string& backend, const Shape& s, const float* a, const float* b, float* c) {
  const long lda = s.opA == 'N' ? s.K : s.M, ldb = s.opB == 'N' ? s.N : s.K;
  if (backend == "onednn") {
    dnnl_sgemm(s.opA, s.opB, s.M, s.N, s.K, 1.0f, a, lda, b, ldb, 0.0f, c, s.N);
    return;
  }
  Map C(c, s.M, s.N);
  const CMap A(a, s.opA == 'N' ? s.M : s.K, s.opA == 'N' ? s.K : s.M);
  const CMap B(b, s.opB == 'N' ? s.K : s.N, s.opB == 'N' ? s.N : s.K);
  if (s.opA == 'N' && s.opB == 'N')
    C.noalias() = A * B;
  else if (s.opA == 'N')
    C.noalias() = A * B.transpose();
  else if (s.opB == 'N')
    C.noalias() = A.transpose() * B;
  else
    C.noalias() = A.transpose() * B.transpose();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "gemm_peak: %s\nusage: gemm_peak [--threads N] [--backend onednn|eigen|all] [--set square|rnn|all] "
               "[--samples N] [--min-ms N]\n",
               msg.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, samples = 7;
  double min_ms = 25;
  std::string backend = "all", set = "all";
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage("missing value for " + k);
    const std::string v = argv[++i];
    if (k == "--threads")
      threads = std::atoi(v.c_str());
    else if (k == "--samples")
      samples = std::atoi(v.c_str());
    else if (k == "--min-ms")
      min_ms = std::atof(v.c_str());
    else if (k == "--backend")
      backend = v;
    else if (k == "--set")
      set = v;
    else
      usage("unknown option " + k);
  }
  if (threads < 1 || samples < 1 || min_ms <= 0) usage("--threads, --samples and --min-ms must be positive");
  if (backend != "onednn" && backend != "eigen" && backend != "all") usage("--backend must be onednn, eigen or all");
  if (set != "square" && set != "rnn" && set != "all") usage("--set must be square, rnn or all");
  omp_set_num_threads(threads);
  Eigen::setNbThreads(threads);
  const std::vector<std::string> backends =
      backend == "all" ? std::vector<std::string>{"onednn", "eigen"} : std::vector<std::string>{backend};
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> u(-1, 1);
  for (const std::string& be : backends) {
    if (be == "onednn")
      std::printf(
          "{\"bench\": \"gemm_info\", \"backend\": \"onednn\", \"threads\": %d, \"info\": \"oneDNN %d.%d.%d "
          "dnnl_sgemm\"}\n",
          threads, dnnl::version()->major, dnnl::version()->minor, dnnl::version()->patch);
    else
      std::printf(
          "{\"bench\": \"gemm_info\", \"backend\": \"eigen\", \"threads\": %d, \"info\": \"Eigen %d.%d.%d, "
          "nbThreads %d, SIMD: %s\"}\n",
          threads, EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION, Eigen::nbThreads(),
          Eigen::SimdInstructionSetsInUse());
    for (const Shape& s : shapes(set)) {
      std::vector<float> a(static_cast<std::size_t>(s.M * s.K)), b(static_cast<std::size_t>(s.K * s.N)),
          c(static_cast<std::size_t>(s.M * s.N));
      for (float& x : a) x = u(rng);
      for (float& x : b) x = u(rng);
      using Clock = std::chrono::steady_clock;
      auto t0 = Clock::now();
      gemm(be, s, a.data(), b.data(), c.data());  // untimed: first touch, kernel selection
      const double first = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      const long calls = std::max(1L, static_cast<long>(min_ms / std::max(first, 1e-3)));
      const double flop = 2.0 * static_cast<double>(s.M) * static_cast<double>(s.N) * static_cast<double>(s.K);
      std::vector<double> gf, us;
      for (int k = 0; k < samples; ++k) {
        t0 = Clock::now();
        for (long r = 0; r < calls; ++r) gemm(be, s, a.data(), b.data(), c.data());
        const double sec = std::chrono::duration<double>(Clock::now() - t0).count() / static_cast<double>(calls);
        gf.push_back(flop / sec / 1e9);
        us.push_back(sec * 1e6);
      }
      std::printf(
          "{\"bench\": \"gemm\", \"backend\": \"%s\", \"threads\": %d, \"shape\": \"%s\", \"what\": \"%s\", "
          "\"M\": %ld, \"N\": %ld, \"K\": %ld, \"opA\": \"%c\", \"opB\": \"%c\", \"mflop\": %.3f, "
          "\"us_per_call\": %.2f, \"gflops_median\": %.2f, \"gflops_min\": %.2f, \"gflops_max\": %.2f, "
          "\"samples\": %d, \"calls_per_sample\": %ld, \"check\": %.4g}\n",
          be.c_str(), threads, s.id.c_str(), s.what.c_str(), s.M, s.N, s.K, s.opA, s.opB, flop / 1e6, median(us),
          median(gf), *std::min_element(gf.begin(), gf.end()), *std::max_element(gf.begin(), gf.end()), samples, calls,
          static_cast<double>(c[0]));
      std::fflush(stdout);
    }
  }
  return 0;
}
