// The register-blocked product (detail/gemm.hpp) against Eigen's, over shapes that exercise every
// edge: empty dimensions, row counts that leave partial micro tiles, column counts that leave
// partial panels and partial packets, depths spanning several k chunks, strided blocks of larger
// matrices, accumulate and overwrite, A and A^T, and the OpenMP row split.
//
// This file is also built a second time with -march=native (ctest gemm_native) so that the
// AVX-512 / AVX2 tile sizes are checked on machines that have them, and a third time with an
// 8-row x 3-packet tile (ctest gemm_tile_8x3: -DCELLFLOW_GEMM_MR=8 -DCELLFLOW_GEMM_NP=3).
#include <catch2/catch.hpp>

#include <array>
#include <vector>

#include "cellflow/detail/gemm.hpp"

namespace test_gemm {

using cellflow::Index;
using cellflow::Matrix;
namespace detail = cellflow::detail;

template <class T>
Matrix<T> random_matrix(Index rows, Index cols, unsigned seed) {
  Matrix<T> m(rows, cols);
  unsigned s = seed * 2654435761u + 12345u;
  for (Index i = 0; i < m.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    m.data()[i] = T(int((s >> 8) % 2001) - 1000) / T(1000);
  }
  return m;
}

template <class T>
T tolerance(Index K) {
  return (std::is_same<T, float>::value ? T(4e-6) : T(1e-14)) * T(K + 1);
}

// Checks C (+)= op(A) * B on a block of a larger C, so that leading dimensions differ from widths
// and the elements around the block must stay untouched.
template <class T>
void check_shape(Index M, Index N, Index K, bool trans_a, bool accumulate, unsigned seed) {
  const Matrix<T> A_store = random_matrix<T>((trans_a ? K : M) + 3, (trans_a ? M : K) + 5, seed);
  const Matrix<T> B_store = random_matrix<T>(K + 2, N + 7, seed + 1);
  const auto A = A_store.block(1, 2, trans_a ? K : M, trans_a ? M : K);
  const auto B = B_store.block(2, 3, K, N);
  Matrix<T> C_store = random_matrix<T>(M + 4, N + 9, seed + 2);
  const Matrix<T> before = C_store;
  Matrix<T> expected = C_store.block(3, 4, M, N);
  if (trans_a) {
    if (accumulate)
      expected.noalias() += A.transpose() * B;
    else
      expected.noalias() = A.transpose() * B;
  } else {
    if (accumulate)
      expected.noalias() += A * B;
    else
      expected.noalias() = A * B;
  }
  auto C = C_store.block(3, 4, M, N);
  if (trans_a)
    detail::matmul_tn(C, A, B, accumulate);
  else
    detail::matmul(C, A, B, accumulate);
  INFO("M=" << M << " N=" << N << " K=" << K << " trans_a=" << trans_a << " accumulate=" << accumulate);
  const T err = M * N == 0 ? T(0) : (C_store.block(3, 4, M, N) - expected).cwiseAbs().maxCoeff();
  CHECK(err <= tolerance<T>(K));
  // Nothing outside the block was written.
  Matrix<T> outside = C_store - before;
  outside.block(3, 4, M, N).setZero();
  CHECK(outside.cwiseAbs().maxCoeff() == T(0));
}

template <class T>
void check_grid() {
  // Around the register tile's height (6 unless built with another CELLFLOW_GEMM_MR).
  constexpr Index mr = detail::gemm_impl::kMR;
  const std::vector<Index> rows = {0, 1, mr - 1, mr, mr + 1, 2 * mr + 1, 150};
  const std::vector<Index> cols = {0, 1, 3, 8, 15, 16, 17, 33, 64, 65, 150, 600};
  const std::vector<Index> depths = {0, 1, 7, 150, 385, 1100};
  unsigned seed = 1;
  for (Index M : rows)
    for (Index N : cols)
      for (Index K : depths) {
        if (M * N * K > 2000000) continue;
        for (bool trans_a : {false, true})
          for (bool accumulate : {false, true}) check_shape<T>(M, N, K, trans_a, accumulate, ++seed);
      }
}

TEST_CASE("gemm matches Eigen's product on every edge shape, float", "[gemm]") { check_grid<float>(); }

TEST_CASE("gemm matches Eigen's product on every edge shape, double", "[gemm]") { check_grid<double>(); }

TEST_CASE("gemm splits rows over threads with the same result as one thread", "[gemm]") {
  const Index M = 301, N = 600, K = 150;
  const Matrix<double> A = random_matrix<double>(M, K, 7), B = random_matrix<double>(K, N, 8);
  Matrix<double> one(M, N), two(M, N);
  const int saved = Eigen::nbThreads();
  Eigen::setNbThreads(1);
  detail::matmul(one, A, B);
  Eigen::setNbThreads(2);
  detail::matmul(two, A, B);
  Eigen::setNbThreads(saved);
  // Each row's sums run in the same order whichever thread computes it: bitwise equal.
  CHECK((one.array() == two.array()).all());
  const Matrix<double> expected = A * B;
  CHECK((one - expected).cwiseAbs().maxCoeff() <= 1e-12);
}

TEST_CASE("a one-row product equals that row of a larger product bitwise", "[gemm]") {
  // A single row (batch-1 streaming) runs through its own streamed kernel; a stream equals the
  // whole-sequence run bitwise only if every row's sums run in the same order in both kernels.
  for (const bool trans_a : {false, true}) {
    for (const bool accumulate : {false, true}) {
      for (const Index K : {1, 3, 28, 150, 401, 800}) {
        for (const Index N : {1, 15, 16, 17, 600, 1030, 2051}) {
          const Index M = 7;
          const Matrix<float> A = random_matrix<float>(trans_a ? K : M, trans_a ? M : K, unsigned(K + N));
          const Matrix<float> B = random_matrix<float>(K, N, unsigned(K * 3 + N));
          const Matrix<float> C0 = random_matrix<float>(M, N, unsigned(K + 5 * N));
          Matrix<float> all = C0;
          if (trans_a)
            detail::matmul_tn(all, A, B, accumulate);
          else
            detail::matmul(all, A, B, accumulate);
          for (const Index r : {Index(0), Index(4), M - 1}) {
            Matrix<float> row = C0.row(r);
            if (trans_a)
              detail::matmul_tn(row, A.middleCols(r, 1), B, accumulate);
            else
              detail::matmul(row, A.middleRows(r, 1), B, accumulate);
            INFO("K " << K << ", N " << N << ", row " << r << ", trans_a " << trans_a << ", accumulate " << accumulate);
            CHECK((row.array() == all.row(r).array()).all());
          }
        }
      }
    }
  }
}

TEST_CASE("a weight-gradient product prefetches without changing a bit", "[gemm]") {
  // With A transposed, a B of more than 1 MB and at least 48 rows of C, the tiles prefetch the next
  // depth chunk: the sums must stay those of the same rows computed apart (fewer rows: no
  // prefetching) and match Eigen's product.
  for (const bool accumulate : {false, true}) {
    for (const auto& [M, N, K] : {std::array<Index, 3>{53, 150, 2000}, std::array<Index, 3>{48, 600, 500},
                                  std::array<Index, 3>{150, 17, 16000}}) {
      const Matrix<float> A = random_matrix<float>(K, M, unsigned(M + K));
      const Matrix<float> B = random_matrix<float>(K, N, unsigned(N + 3 * K));
      const Matrix<float> C0 = random_matrix<float>(M, N, unsigned(M * N));
      Matrix<float> all = C0;
      detail::matmul_tn(all, A, B, accumulate);
      Matrix<float> parts = C0;
      const Index half = M / 2;
      detail::matmul_tn(parts.topRows(half), A.leftCols(half), B, accumulate);
      detail::matmul_tn(parts.bottomRows(M - half), A.rightCols(M - half), B, accumulate);
      INFO("M " << M << ", N " << N << ", K " << K << ", accumulate " << accumulate);
      CHECK((all.array() == parts.array()).all());
      Matrix<double> expected = A.cast<double>().transpose() * B.cast<double>();
      if (accumulate) expected += C0.cast<double>();
      CHECK((all.cast<double>() - expected).cwiseAbs().maxCoeff() <= 4e-6 * double(K));
    }
  }
}

}  // namespace test_gemm
