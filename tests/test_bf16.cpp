// The bf16 path's pieces (core/precision.hpp, detail/bfloat16.hpp, detail/bf16_gemm.hpp):
// float <-> bfloat16 rounding against Eigen's own bfloat16 (an independent implementation) and
// hand-worked edge cases; the packed weight layout; the product of both kernels against a
// double-precision product of the same bf16-rounded operands, within the float summation bound;
// the two kernels against each other; the invariants shared with detail/gemm.hpp (a row does not
// depend on the batch or the thread split, accumulating twice adds twice); CPU detection against
// /proc/cpuinfo; the refusal and shape errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cellflow/core/precision.hpp"
#include "cellflow/detail/bf16_gemm.hpp"

namespace test_bf16 {

using cellflow::Bf16Kernel;
using cellflow::Index;
using cellflow::Matrix;
namespace detail = cellflow::detail;

std::uint16_t eigen_bf16_bits(float x) { return Eigen::numext::bit_cast<std::uint16_t>(Eigen::bfloat16(x)); }

Matrix<float> random_matrix(Index rows, Index cols, unsigned seed) {
  Matrix<float> m(rows, cols);
  unsigned s = seed * 2654435761u + 12345u;
  for (Index i = 0; i < m.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    m.data()[i] = float(int((s >> 8) % 20001) - 10000) / 7919.0f;  // most not bf16-representable
  }
  return m;
}

Matrix<float> rounded(const Matrix<float>& m) {
  return m.unaryExpr([](float x) { return detail::round_to_bf16(x); });
}

std::vector<Bf16Kernel> kernels() {
  std::vector<Bf16Kernel> k{Bf16Kernel::portable};
  if (cellflow::cpu_has_bf16()) k.push_back(Bf16Kernel::avx512_bf16);
  return k;
}

TEST_CASE("bf16: float to bfloat16 rounds to nearest even, keeps NaN, inf and subnormals", "[bf16]") {
  using detail::bits_float;
  using detail::float_to_bf16;
  // Ties: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 (even: 1); 1 + 3 * 2^-8 halfway between
  // 1 + 2^-7 and 1 + 2^-6 (even: 1 + 2^-6); one bit past the tie rounds up.
  CHECK(float_to_bf16(1.0f + 0x1p-8f) == 0x3F80);
  CHECK(float_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3F82);
  CHECK(float_to_bf16(bits_float(0x3F808001u)) == 0x3F81);
  CHECK(float_to_bf16(bits_float(0x3F807FFFu)) == 0x3F80);
  CHECK(float_to_bf16(-1.0f - 0x1p-8f) == 0xBF80);
  CHECK(float_to_bf16(-0.0f) == 0x8000);
  // Infinities stay; the largest float rounds past the largest bfloat16 to infinity.
  CHECK(float_to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(float_to_bf16(-std::numeric_limits<float>::infinity()) == 0xFF80);
  CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);
  CHECK(float_to_bf16(bits_float(0x7F7F7FFFu)) == 0x7F7F);
  // NaN stays NaN, with its sign, even when its payload is only in the dropped low bits.
  for (std::uint32_t nan : {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu, 0xFFC00001u}) {
    const std::uint16_t h = float_to_bf16(bits_float(nan));
    CHECK((h & 0x7F80) == 0x7F80);
    CHECK((h & 0x007F) != 0);
    CHECK((h & 0x8000) == ((nan >> 16) & 0x8000));
    CHECK(std::isnan(detail::bf16_to_float(h)));
  }
  // Subnormals round like any other number: 2^-149 is below half the smallest bfloat16
  // subnormal (2^-133); 0x8000 is a tie to the even 0; 0x18000 a tie to the even 2.
  CHECK(float_to_bf16(bits_float(0x00000001u)) == 0x0000);
  CHECK(float_to_bf16(bits_float(0x00008000u)) == 0x0000);
  CHECK(float_to_bf16(bits_float(0x00008001u)) == 0x0001);
  CHECK(float_to_bf16(bits_float(0x00018000u)) == 0x0002);
  CHECK(float_to_bf16(bits_float(0x807FFFFFu)) == 0x8080);  // the largest subnormal rounds up to the smallest normal
  // Every bfloat16 is a float that converts back to itself (NaNs to a NaN).
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const float x = detail::bf16_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(x))
      REQUIRE(std::isnan(detail::round_to_bf16(x)));
    else
      REQUIRE(float_to_bf16(x) == h);
  }
  // Against Eigen's bfloat16 (an independent implementation) over random bit patterns of every
  // exponent, and patterns near every tie.
  unsigned s = 7;
  for (int i = 0; i < 200000; ++i) {
    s = s * 1664525u + 1013904223u;
    std::uint32_t u = s;
    if (i % 2) u = (u & 0xFFFF0000u) | ((i % 4 == 1) ? 0x8000u : 0x7FFFu + (u >> 31));
    const float x = bits_float(u);
    if (std::isnan(x)) continue;
    INFO("bits " << std::hex << u);
    REQUIRE(float_to_bf16(x) == eigen_bf16_bits(x));
  }
}

TEST_CASE("bf16: the AVX-512 packing of A gives the bits of float_to_bf16", "[bf16]") {
#if CELLFLOW_HAS_BF16_X86
  if (!cellflow::cpu_has_bf16()) return;
  // Rows of random bit patterns (NaNs, infinities, subnormals, ties included) at every length up
  // to 70 (odd ones leave the k past K), in two chunks of pairs.
  Matrix<float> A(3, 70);
  unsigned s = 11;
  for (Index i = 0; i < A.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    std::uint32_t u = s;
    if (i % 3 == 0) u = (u & 0xFFFF0000u) | 0x8000u;  // a tie
    if (i % 7 == 0) u &= 0x807FFFFFu;                 // a subnormal
    if (i % 11 == 0) u |= 0x7F800000u;                // an infinity or a NaN
    A.data()[i] = detail::bits_float(u);
  }
  for (Index K = 1; K <= 70; ++K) {
    const Index pairs = (K + 1) / 2;
    for (Index p0 : {Index(0), pairs / 2}) {
      const Index pc = pairs - p0;
      if (pc == 0) continue;
      std::vector<std::uint32_t> scalar(std::size_t(3 * pc) + 1, 0xDEADBEEFu), simd = scalar;
      detail::bf16_impl::pack_a(A.data(), A.cols(), 0, 3, K, p0, pc, scalar.data());
      detail::bf16_impl::pack_a_avx512(A.data(), A.cols(), 0, 3, K, p0, pc, simd.data());
      INFO("K " << K << " p0 " << p0);
      REQUIRE(simd == scalar);
      REQUIRE(scalar.back() == 0xDEADBEEFu);  // nothing written past the block
    }
  }
#else
  WARN("no AVX512-BF16 kernel in this build");
#endif
}

TEST_CASE("bf16: packed weights round trip for odd K and N not a multiple of 16, padding is zero", "[bf16]") {
  for (Index K : {0, 1, 2, 3, 28, 151}) {
    for (Index N : {0, 1, 15, 16, 17, 33}) {
      INFO("K " << K << " N " << N);
      const Matrix<float> B = random_matrix(K, N, unsigned(K * 100 + N));
      const detail::Bf16Weights W(B);
      REQUIRE(W.rows() == K);
      REQUIRE(W.cols() == N);
      REQUIRE(W.pairs() == (K + 1) / 2);
      REQUIRE(W.strips() == (N + 15) / 16);
      REQUIRE(W.bytes() == std::size_t(4 * ((K + 1) / 2) * 16 * ((N + 15) / 16)));
      REQUIRE(W.to_float() == rounded(B));
      // Padding: columns past N and the k past an odd K hold zeros.
      for (Index s = 0; s < W.strips(); ++s) {
        REQUIRE(reinterpret_cast<std::uintptr_t>(W.strip(s)) % 64 == 0);
        for (Index p = 0; p < W.pairs(); ++p)
          for (Index j = 0; j < 16; ++j) {
            const std::uint32_t w = W.strip(s)[p * 16 + j];
            if (s * 16 + j >= N) REQUIRE(w == 0u);
            if (2 * p + 1 >= K) REQUIRE((w >> 16) == 0u);
          }
      }
      // Copies are deep; a moved-from matrix is empty.
      detail::Bf16Weights copy(W);
      REQUIRE(copy.to_float() == W.to_float());
      detail::Bf16Weights moved(std::move(copy));
      REQUIRE(moved.to_float() == W.to_float());
      REQUIRE(copy.rows() == 0);  // NOLINT(bugprone-use-after-move): documented state
      copy = moved;
      REQUIRE(copy.to_float() == W.to_float());
    }
  }
  // A column-major or double matrix packs the same values (double through float).
  const Matrix<float> B = random_matrix(5, 19, 3);
  const Eigen::MatrixXd Bd = B.cast<double>();
  REQUIRE(detail::Bf16Weights(Bd).to_float() == rounded(B));
  // The layout of one word: B(2p, j) in the low half, B(2p + 1, j) in the high half.
  const detail::Bf16Weights W(B);
  REQUIRE(W.strip(1)[1 * 16 + 2] == detail::bf16_pair(B(2, 18), B(3, 18)));
  // From a strided view (a block of a larger matrix), and a view of negative shape refused.
  const Matrix<float> big = random_matrix(9, 30, 4);
  REQUIRE(detail::Bf16Weights(detail::cview(big.block(2, 3, 5, 19))).to_float() == rounded(big.block(2, 3, 5, 19)));
  CHECK_THROWS_AS(detail::Bf16Weights(detail::ConstView<float>{big.data(), -1, 4, 30}), cellflow::ShapeError);
}

// C (+)= A B on a block of a larger C for one kernel, against double sums of the rounded
// operands. Bound for one element: the float sum takes at most n = 2 ceil(K/2) + chunks + 1
// rounded additions of terms whose magnitudes add up to S = sum_k |a_k b_k| (+ |C_ij| when
// accumulating), so |error| <= n u S / (1 - n u), u = 2^-24 (products are exact).
void check_product(Bf16Kernel kernel, Index M, Index K, Index N, bool accumulate, unsigned seed) {
  const Matrix<float> A_store = random_matrix(M + 2, K + 3, seed);
  const Matrix<float> B = random_matrix(K, N, seed + 1);
  const auto A = A_store.block(1, 2, M, K);
  Matrix<float> C_store = random_matrix(M + 3, N + 5, seed + 2);
  const Matrix<float> before = C_store;
  const detail::Bf16Weights W(B);
  auto C = C_store.block(2, 1, M, N);
  detail::bf16_gemm(detail::mview(C), detail::cview(A), W, accumulate, kernel);

  const Matrix<double> Ar = rounded(A).cast<double>(), Br = rounded(B).cast<double>();
  Matrix<double> ref = Ar * Br;
  Matrix<double> mag = Ar.cwiseAbs() * Br.cwiseAbs();
  const Matrix<double> C0 = before.block(2, 1, M, N).cast<double>();
  if (accumulate) {
    ref += C0;
    mag += C0.cwiseAbs();
  }
  const Index pairs = (K + 1) / 2, chunks = (pairs + 255) / 256;
  const double n = double(2 * pairs + chunks + 1), u = std::ldexp(1.0, -24);
  const double gamma = n * u / (1 - n * u);
  for (Index i = 0; i < M; ++i)
    for (Index j = 0; j < N; ++j) {
      const double err = std::abs(double(C(i, j)) - ref(i, j));
      if (!(err <= gamma * mag(i, j))) {
        FAIL_CHECK("kernel " << cellflow::to_string(kernel) << " M " << M << " K " << K << " N " << N << " accumulate "
                             << accumulate << " C(" << i << ", " << j << ") = " << C(i, j) << ", reference "
                             << ref(i, j) << ", error " << err << " > bound " << gamma * mag(i, j));
        return;
      }
    }
  // Nothing around the block was written.
  Matrix<float> outside = C_store;
  outside.block(2, 1, M, N) = before.block(2, 1, M, N);
  REQUIRE(outside == before);
}

TEST_CASE("bf16: both kernels match the double product of the rounded operands within the float bound", "[bf16]") {
  for (const Bf16Kernel kernel : kernels()) {
    for (Index M = 1; M <= 13; ++M)
      for (Index K : {1, 2, 3, 28, 150, 178})
        for (Index N : {1, 15, 16, 17, 600})
          for (bool accumulate : {false, true}) {
            if (N == 600 && M != 1 && M != 6 && M != 13) continue;  // the wide shape at a few M (time)
            check_product(kernel, M, K, N, accumulate, unsigned(M * 7 + K * 3 + N));
          }
    // Several depth chunks (K = 1030: 515 pairs, 3 chunks of 172), several row blocks of the
    // packed A (M = 30 > 24), an empty depth and empty results.
    check_product(kernel, 30, 1030, 33, true, 5);
    check_product(kernel, 30, 1030, 33, false, 6);
    check_product(kernel, 4, 0, 17, false, 7);
    check_product(kernel, 4, 0, 17, true, 8);
    check_product(kernel, 0, 5, 17, false, 9);
    check_product(kernel, 3, 5, 0, false, 10);
  }
}

TEST_CASE("bf16: the AVX512-BF16 kernel and the portable kernel give the same bits", "[bf16]") {
  if (!cellflow::cpu_has_bf16()) {
    WARN("this CPU lacks AVX512-BF16: only the portable kernel is checked");
    return;
  }
  // Both sum each k pair odd term first, then the even one, each addition rounded (the order of
  // vdpbf16ps), so they agree bitwise on numbers that neither are nor produce subnormals.
  for (Index M : {1, 5, 13})
    for (Index K : {3, 150, 515})
      for (Index N : {17, 600})
        for (bool accumulate : {false, true}) {
          const Matrix<float> A = random_matrix(M, K, unsigned(M + K)), B = random_matrix(K, N, unsigned(K + N));
          const detail::Bf16Weights W(B);
          Matrix<float> fast = random_matrix(M, N, 3), portable = fast;
          detail::bf16_gemm(detail::mview(fast), detail::cview(A), W, accumulate, Bf16Kernel::avx512_bf16);
          detail::bf16_gemm(detail::mview(portable), detail::cview(A), W, accumulate, Bf16Kernel::portable);
          INFO("M " << M << " K " << K << " N " << N << " accumulate " << accumulate);
          CHECK(fast == portable);
        }
}

TEST_CASE("bf16: a row does not depend on the batch or the threads, and accumulating twice adds twice", "[bf16]") {
  const Matrix<float> A = random_matrix(150, 150, 1), B = random_matrix(150, 600, 2);
  const detail::Bf16Weights W(B);
  for (const Bf16Kernel kernel : kernels()) {
    INFO("kernel " << cellflow::to_string(kernel));
    Matrix<float> whole(150, 600);
    detail::bf16_gemm(detail::mview(whole), detail::cview(A), W, false, kernel);
    for (Index i : {0, 5, 6, 23, 24, 149}) {
      Matrix<float> row(1, 600);
      detail::bf16_gemm(detail::mview(row), detail::cview(A.middleRows(i, 1)), W, false, kernel);
      REQUIRE(row == whole.middleRows(i, 1));
    }
    Matrix<float> twice = Matrix<float>::Zero(150, 600);
    detail::bf16_gemm(detail::mview(twice), detail::cview(A), W, true, kernel);
    detail::bf16_gemm(detail::mview(twice), detail::cview(A), W, true, kernel);
    REQUIRE(twice == Matrix<float>(2 * whole));
    const int threads = Eigen::nbThreads();
    Eigen::setNbThreads(2);
    Matrix<float> split(150, 600);
    detail::bf16_gemm(detail::mview(split), detail::cview(A), W, false, kernel);
    Eigen::setNbThreads(threads);
    REQUIRE(split == whole);
  }
  // The default kernel is this CPU's best, through the Eigen-matrix wrapper.
  Matrix<float> via_default(150, 600), via_best(150, 600);
  detail::matmul_bf16(via_default, A, W);
  detail::bf16_gemm(detail::mview(via_best), detail::cview(A), W, false, cellflow::choose_bf16_kernel());
  REQUIRE(via_default == via_best);
}

// The flags line of /proc/cpuinfo's first processor, as " flag1 flag2 ... ", or "" when absent.
std::string cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) return " " + line.substr(line.find(':') + 1) + " ";
  return "";
}

TEST_CASE("bf16: CPU detection agrees with /proc/cpuinfo, and the kernel choice and its refusal", "[bf16]") {
  const std::string flags = cpuinfo_flags();
#if defined(__linux__) && CELLFLOW_HAS_BF16_X86
  REQUIRE(!flags.empty());
  const auto has = [&](const char* f) { return flags.find(std::string(" ") + f + " ") != std::string::npos; };
  CHECK(cellflow::cpu_has_bf16() == (has("avx512_bf16") && has("avx512f") && has("avx512bw") && has("avx512vl")));
  CHECK(cellflow::cpu_has_amx_bf16() == (has("amx_bf16") && has("amx_tile")));
#else
  CHECK_FALSE((CELLFLOW_HAS_BF16_X86 == 0 && cellflow::cpu_has_bf16()));
#endif
  CHECK(cellflow::cpu_has_bf16() == cellflow::cpu_has_bf16());  // cached
  const Bf16Kernel best = cellflow::cpu_has_bf16() ? Bf16Kernel::avx512_bf16 : Bf16Kernel::portable;
  CHECK(cellflow::choose_bf16_kernel() == best);
  CHECK(std::string(cellflow::bf16_kernel_name()) == cellflow::to_string(best));
  if (cellflow::cpu_has_bf16()) {
    CHECK(cellflow::choose_bf16_kernel(cellflow::Bf16Fallback::refuse) == Bf16Kernel::avx512_bf16);
  } else {
    CHECK_THROWS_AS(cellflow::choose_bf16_kernel(cellflow::Bf16Fallback::refuse), cellflow::UnsupportedCpuError);
  }
  // On a CPU without AVX512-BF16: the portable kernel, or a refusal that says what is missing.
  using cellflow::Bf16Fallback;
  CHECK(detail::choose_bf16_kernel_for(false, Bf16Fallback::portable) == Bf16Kernel::portable);
  CHECK(detail::choose_bf16_kernel_for(true, Bf16Fallback::refuse) == Bf16Kernel::avx512_bf16);
  CHECK_THROWS_WITH(detail::choose_bf16_kernel_for(false, Bf16Fallback::refuse),
                    Catch::Contains("lacks AVX512-BF16") && Catch::Contains("Precision::fp32") &&
                        Catch::Contains("Bf16Fallback::portable"));
}

TEST_CASE("bf16: shape errors and an unavailable kernel are refused", "[bf16][errors]") {
  const detail::Bf16Weights W(random_matrix(4, 5, 1));
  Matrix<float> A = random_matrix(3, 4, 2), C(3, 5), wrong_c(3, 6);
  const Matrix<float> wrong_a = random_matrix(3, 5, 3);
  CHECK_THROWS_AS(detail::matmul_bf16(C, wrong_a, W), cellflow::ShapeError);
  CHECK_THROWS_WITH(detail::matmul_bf16(C, wrong_a, W),
                    Catch::Contains("A [3 x 5] * B [4 x 5]") && Catch::Contains("expected A [M x K]"));
  CHECK_THROWS_AS(detail::matmul_bf16(wrong_c, A, W), cellflow::ShapeError);
  if (!cellflow::cpu_has_bf16())
    CHECK_THROWS_AS(detail::bf16_gemm(detail::mview(C), detail::cview(A), W, false, Bf16Kernel::avx512_bf16),
                    cellflow::UnsupportedCpuError);
}

}  // namespace test_bf16
