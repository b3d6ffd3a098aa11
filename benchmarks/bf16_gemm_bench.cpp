// The bf16 product (detail/bf16_gemm.hpp) against cellflow's float product (detail/gemm.hpp)
// at the shapes of the recurrent step: C [M x N] = A [M x K] * W [K x N] with M = 1 (streaming)
// and 150 (a batch), K = 150 and 300 (h, or [x, h] of two 150-unit layers), N = 600 (LSTM's four
// gates) and 450 (GRU's three). Also the memory floor of the batch-1 product: the time to read
// the weights once with a summing loop, at the float size and at the packed bf16 size.
//
// Each measurement cycles over --copies distinct weight matrices (default 4, about the weights
// of a stack of layers), so that the working set is not one matrix sitting in L2. One thread
// unless --threads. Prints JSON lines: first the machine (lscpu's model name and flags, the
// kernel cellflow chooses), then one line per (M, K, N, kernel) with the median time per product
// (min and max of the repeats too), GFLOP/s and, for M = 1, the ratio to the read floor.
//
//   bf16_gemm_bench [--copies 4] [--repeats 15] [--threads 1] [--min-ms 20]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cellflow/core/precision.hpp"
#include "cellflow/detail/bf16_gemm.hpp"
#include "cellflow/detail/gemm.hpp"

namespace cf = cellflow;
namespace detail = cellflow::detail;
using cf::Index;
using cf::Matrix;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  int copies = 4, repeats = 15, threads = 1;
  double min_ms = 20;
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "bf16_gemm_bench: %s\nusage: bf16_gemm_bench [--copies N] [--repeats N] [--threads N] [--min-ms X]\n",
               msg.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage("missing value after " + k);
    const char* v = argv[++i];
    if (k == "--copies")
      a.copies = std::atoi(v);
    else if (k == "--repeats")
      a.repeats = std::atoi(v);
    else if (k == "--threads")
      a.threads = std::atoi(v);
    else if (k == "--min-ms")
      a.min_ms = std::atof(v);
    else
      usage("unknown option " + k);
  }
  if (a.copies < 1 || a.repeats < 1 || a.threads < 1 || !(a.min_ms > 0)) usage("values must be positive");
  return a;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n");
  const auto e = s.find_last_not_of(" \t\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// lscpu's "Model name" and "Flags" lines (empty when lscpu is missing).
void lscpu(std::string& model, std::string& flags) {
  FILE* p = popen("LC_ALL=C lscpu 2>/dev/null", "r");
  if (!p) return;
  char line[8192];
  while (std::fgets(line, sizeof line, p)) {
    const std::string l = line;
    const auto colon = l.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trim(l.substr(0, colon)), value = trim(l.substr(colon + 1));
    if (key == "Model name" && model.empty()) model = value;
    if (key == "Flags") flags = value;
  }
  pclose(p);
}

Matrix<float> random_matrix(Index rows, Index cols, unsigned seed) {
  Matrix<float> m(rows, cols);
  unsigned s = seed * 2654435761u + 1u;
  for (Index i = 0; i < m.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    m.data()[i] = float(int((s >> 8) % 2001) - 1000) / 4000.0f;
  }
  return m;
}

struct Timing {
  double median_s, min_s, max_s;
};

// Runs f (one pass = `per_pass` products) until min_ms has passed, `repeats` times; seconds per
// product.
template <class F>
Timing measure(const Args& args, int per_pass, F f) {
  f();  // warm up
  f();
  const auto start = Clock::now();
  int passes = 0;
  do {
    f();
    ++passes;
  } while (std::chrono::duration<double, std::milli>(Clock::now() - start).count() < args.min_ms / 4);
  const double pass_s = std::chrono::duration<double>(Clock::now() - start).count() / passes;
  const int n = std::max(1, int(args.min_ms / 1e3 / pass_s));
  std::vector<double> t;
  for (int r = 0; r < args.repeats; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / (double(n) * per_pass));
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front(), t.back()};
}

volatile float g_sink;
volatile std::uint32_t g_word_sink;  // keeps the summing loops and products alive

// Sum of n 32-bit words as integers (the read floor of a weight set of 4 n bytes; integers, so
// that the bit patterns of packed bfloat16 pairs cost no subnormal float assists).
std::uint32_t sum_words(const std::uint32_t* p, std::size_t n) {
  std::uint32_t acc[16] = {};
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
  for (; i < n; ++i) acc[0] += p[i];
  std::uint32_t s = 0;
  for (std::uint32_t a : acc) s += a;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  Eigen::setNbThreads(args.threads);
  std::string model, flags;
  lscpu(model, flags);
  std::printf(
      "{\"record\": \"machine\", \"model_name\": \"%s\", \"flags\": \"%s\", \"cpu_has_bf16\": %s, "
      "\"cpu_has_amx_bf16\": "
      "%s, \"bf16_kernel\": \"%s\", \"eigen_simd\": \"%s\", \"threads\": %d, \"copies\": %d}\n",
      json_escape(model).c_str(), json_escape(flags).c_str(), cf::cpu_has_bf16() ? "true" : "false",
      cf::cpu_has_amx_bf16() ? "true" : "false", cf::bf16_kernel_name(), Eigen::SimdInstructionSetsInUse(),
      args.threads, args.copies);
  std::fflush(stdout);

  std::vector<cf::Bf16Kernel> kernels{cf::Bf16Kernel::portable};
  if (cf::cpu_has_bf16()) kernels.insert(kernels.begin(), cf::Bf16Kernel::avx512_bf16);

  for (Index K : {150, 300})
    for (Index N : {600, 450}) {
      std::vector<Matrix<float>> w32;
      std::vector<detail::Bf16Weights> w16;
      for (int c = 0; c < args.copies; ++c) {
        w32.push_back(random_matrix(K, N, unsigned(100 * c + 1)));
        w16.emplace_back(w32.back());
      }
      // The read floors: the same number of matrices, read once each with a summing loop, as
      // float matrices and as packed bf16 ones.
      std::vector<std::vector<std::uint32_t>> raw32, raw16;
      for (int c = 0; c < args.copies; ++c) {
        raw32.emplace_back(std::size_t(K * N));
        std::memcpy(raw32.back().data(), w32[std::size_t(c)].data(), std::size_t(K * N) * sizeof(float));
        raw16.emplace_back(w16[std::size_t(c)].bytes() / sizeof(std::uint32_t));
        std::memcpy(raw16.back().data(), w16[std::size_t(c)].strip(0), w16[std::size_t(c)].bytes());
      }
      auto read_all = [&](const std::vector<std::vector<std::uint32_t>>& set) {
        return measure(args, args.copies, [&] {
          std::uint32_t s = 0;
          for (const auto& w : set) s += sum_words(w.data(), w.size());
          g_word_sink = s;
        });
      };
      const Timing floor32 = read_all(raw32), floor16 = read_all(raw16);
      for (Index M : {1, 150}) {
        const Matrix<float> A = random_matrix(M, K, 7);
        Matrix<float> C(M, N);
        const double flops = 2.0 * double(M) * double(K) * double(N);
        auto report = [&](const char* impl, const Timing& t, std::size_t weight_bytes, const Timing* floor) {
          std::printf(
              "{\"record\": \"product\", \"impl\": \"%s\", \"M\": %ld, \"K\": %ld, \"N\": %ld, \"us\": %.3f, "
              "\"us_min\": "
              "%.3f, \"us_max\": %.3f, \"gflops\": %.2f, \"weight_bytes\": %zu",
              impl, long(M), long(K), long(N), t.median_s * 1e6, t.min_s * 1e6, t.max_s * 1e6,
              flops / t.median_s * 1e-9, weight_bytes);
          if (floor)
            std::printf(", \"read_floor_us\": %.3f, \"over_floor\": %.2f, \"over_fp32_floor\": %.2f",
                        floor->median_s * 1e6, t.median_s / floor->median_s, t.median_s / floor32.median_s);
          std::printf("}\n");
          std::fflush(stdout);
        };
        const Timing t32 = measure(args, args.copies, [&] {
          for (const auto& w : w32) detail::matmul(C, A, w);
          g_sink = C(0, 0);
        });
        report("fp32_gemm", t32, std::size_t(K * N) * sizeof(float), M == 1 ? &floor32 : nullptr);
        for (const cf::Bf16Kernel kernel : kernels) {
          const Timing t16 = measure(args, args.copies, [&] {
            for (const auto& w : w16) detail::bf16_gemm(detail::mview(C), detail::cview(A), w, false, kernel);
            g_sink = C(0, 0);
          });
          report(kernel == cf::Bf16Kernel::avx512_bf16 ? "bf16_avx512" : "bf16_portable", t16, w16[0].bytes(),
                 M == 1 ? &floor16 : nullptr);
        }
        // The per-call conversion of A to bf16 pairs alone (part of every bf16 product above),
        // scalar (the portable kernel's) and AVX-512 (the avx512_bf16 kernel's).
        std::vector<std::uint32_t> packed(std::size_t(M * ((K + 1) / 2)));
        const Timing tpack = measure(args, 1, [&] {
          detail::bf16_impl::pack_a(A.data(), K, 0, M, K, 0, (K + 1) / 2, packed.data());
          g_sink = float(packed[0]);
        });
        double avx_us = -1;
#if CELLFLOW_HAS_BF16_X86
        if (cf::cpu_has_bf16())
          avx_us = measure(args, 1,
                           [&] {
                             detail::bf16_impl::pack_a_avx512(A.data(), K, 0, M, K, 0, (K + 1) / 2, packed.data());
                             g_sink = float(packed[0]);
                           })
                       .median_s *
                   1e6;
#endif
        std::printf("{\"record\": \"pack_a\", \"M\": %ld, \"K\": %ld, \"scalar_us\": %.3f, \"avx512_us\": %.3f}\n",
                    long(M), long(K), tpack.median_s * 1e6, avx_us);
      }
    }
  return 0;
}
