// A small register-blocked matrix product for the shapes of recurrent networks, written on
// Eigen's packet primitives (so it vectorises for whatever SIMD Eigen targets: SSE, AVX,
// AVX-512, NEON, ...).
//
// Why not Eigen's own product: Eigen's general GEMM packs both operands into panels on every
// call. Recurrent products are many small calls (one per time step) against the same weight
// matrix, and Eigen's kernel reaches about two thirds of what the FMA units allow at these sizes
// on AVX-512 machines. This kernel reads the right operand in place (row-major rows are already
// contiguous panels), broadcasts the left operand, and keeps an MR x NP-packet tile of C in
// registers. Only the last, partial column panel is copied into a zero-padded buffer.
//
// Every product is C = (or +=) op(A) * B with row-major, unit-inner-stride operands, op(A) = A
// or A^T. Results differ from Eigen's only by floating-point summation order (the sum over k runs
// in ascending order here, in chunks).
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "cellflow/core/types.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

// Full unrolling of the register-tile loops: without it GCC at -O2 keeps the tile in memory.
#if defined(__clang__)
#define CELLFLOW_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define CELLFLOW_UNROLL _Pragma("GCC unroll 16")
#else
#define CELLFLOW_UNROLL
#endif

namespace cellflow::detail {

/// Read-only row-major view: element (i, j) at data[i * stride + j].
template <class T>
struct ConstView {
  const T* data;
  Index rows, cols, stride;
};

/// Writable row-major view.
template <class T>
struct MutView {
  T* data;
  Index rows, cols, stride;
};

template <class X>
constexpr void check_row_major_view() {
  static_assert(
      static_cast<bool>(X::Flags & Eigen::RowMajorBit) || X::ColsAtCompileTime == 1 || X::RowsAtCompileTime == 1,
      "cellflow::detail::gemm: operands must be row-major");
  static_assert(X::InnerStrideAtCompileTime == 1 || X::InnerStrideAtCompileTime == Eigen::Dynamic,
                "cellflow::detail::gemm: operands need unit inner stride");
}

/// A view of a row-major Eigen matrix or block of one (inner stride 1).
template <class X>
ConstView<typename X::Scalar> cview(const Eigen::DenseBase<X>& x) {
  check_row_major_view<X>();
  eigen_assert(x.derived().innerStride() == 1);
  return {x.derived().data(), x.rows(), x.cols(), x.cols() == 0 ? 0 : x.derived().outerStride()};
}

template <class X>
MutView<typename X::Scalar> mview(Eigen::DenseBase<X>& x) {
  check_row_major_view<X>();
  eigen_assert(x.derived().innerStride() == 1);
  return {x.derived().data(), x.rows(), x.cols(), x.cols() == 0 ? 0 : x.derived().outerStride()};
}

template <class X>
MutView<typename X::Scalar> mview(Eigen::DenseBase<X>&& x) {
  return mview(x);
}

namespace gemm_impl {

template <class T>
using Packet = typename Eigen::internal::packet_traits<T>::type;

template <class T>
constexpr int packet_size() {
  return Eigen::internal::packet_traits<T>::size;
}

// Register tile: MR rows by NP packets. 32 vector registers (AVX-512, NEON/SVE) hold a 6 x 4
// tile plus the 4 loaded B packets and a broadcast; 16 registers (SSE, AVX2) a 6 x 2 tile.
// -DCELLFLOW_GEMM_MR=<rows> -DCELLFLOW_GEMM_NP=<packets> choose another tile, for measuring on a
// new CPU (docs/performance.md: 8 x 3 and 12 x 2 ran as fast as 6 x 4 on AMD Zen); every
// translation unit of a program must see the same values.
#ifndef CELLFLOW_GEMM_MR
#define CELLFLOW_GEMM_MR 6
#endif
#ifndef CELLFLOW_GEMM_NP
#define CELLFLOW_GEMM_NP (EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS >= 32 ? 4 : 2)
#endif
constexpr int kMR = CELLFLOW_GEMM_MR;
constexpr int kNP = CELLFLOW_GEMM_NP;
static_assert(kMR >= 1 && kMR <= 16 && kNP >= 1 && kNP <= 8,
              "CELLFLOW_GEMM_MR must be 1..16 rows and CELLFLOW_GEMM_NP 1..8 packets");

// Depth of one k chunk: the B panel of a chunk (kc x NP packets) stays in L2 while every row
// block of A streams past it.
#ifndef CELLFLOW_GEMM_KC
#define CELLFLOW_GEMM_KC 384
#endif
constexpr Index kMaxKC = CELLFLOW_GEMM_KC;

// Prefetching the next k chunk (weight gradients, A transposed): when B holds more than
// kPrefetchBytes (it then comes from memory, not from a cache that kept it since the last call)
// and C has at least kPrefetchMinRows rows (fewer leave too few multiply-adds per line to hide
// the memory behind).
constexpr double kPrefetchBytes = 1 << 20;
constexpr Index kPrefetchMinRows = 8 * kMR;

// Prefetches the lines of `rows` rows (row_bytes each, ld_bytes apart) from `base` into L2, one
// line per step().
class RowPrefetcher {
 public:
  RowPrefetcher(const void* base, Index ld_bytes, Index row_bytes, Index rows)
      : base_(static_cast<const char*>(base)), ld_(ld_bytes), row_(row_bytes), rows_(rows) {}
  bool done() const { return r_ >= rows_; }
  EIGEN_ALWAYS_INLINE void step() {
    if (r_ < rows_) {
#if defined(__GNUC__)
      __builtin_prefetch(base_ + r_ * ld_ + off_, 0, 2);
#endif
      off_ += 64;
      if (off_ >= row_) {
        off_ = 0;
        ++r_;
      }
    }
  }

 private:
  const char* base_;
  Index ld_, row_, rows_, r_ = 0, off_ = 0;
};

// Two prefetchers in turn: the first's lines, then the second's.
struct PrefetchPair {
  RowPrefetcher first, second;
  EIGEN_ALWAYS_INLINE void step() {
    if (!first.done())
      first.step();
    else
      second.step();
  }
};

// C(r, p) (+)= sum_k a(r, k) * b(k, p) for r < MR, p < NP; the tile stays in registers.
// TransA: a(r, k) = A[k * lda + r]; otherwise A[r * lda + k].
// Tail: the last packet's column block is read from Bt (rows of L, zero-padded) and written to Ct
// (rows of L) instead of B and C: a panel whose last packet is the matrix's partial one.
// Prefetch: one line of *pf is prefetched per k.
template <class T, int MR, int NP, bool TransA, bool Tail = false, bool Prefetch = false>
EIGEN_ALWAYS_INLINE void micro_tile(Index kc, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc,
                                    bool load_c, const T* Bt = nullptr, T* Ct = nullptr, PrefetchPair* pf = nullptr) {
  using P = Packet<T>;
  constexpr int L = packet_size<T>();
  P acc[MR][NP];
  CELLFLOW_UNROLL
  for (int r = 0; r < MR; ++r) {
    CELLFLOW_UNROLL
    for (int p = 0; p < NP; ++p) acc[r][p] = Eigen::internal::pset1<P>(T(0));
  }
  for (Index k = 0; k < kc; ++k) {
    if constexpr (Prefetch) pf->step();
    P b[NP];
    const T* brow = B + k * ldb;
    CELLFLOW_UNROLL
    for (int p = 0; p < NP; ++p) b[p] = Eigen::internal::ploadu<P>((Tail && p == NP - 1) ? Bt + k * L : brow + p * L);
    CELLFLOW_UNROLL
    for (int r = 0; r < MR; ++r) {
      const P a = Eigen::internal::pset1<P>(TransA ? A[k * lda + r] : A[r * lda + k]);
      CELLFLOW_UNROLL
      for (int p = 0; p < NP; ++p) acc[r][p] = Eigen::internal::pmadd(a, b[p], acc[r][p]);
    }
  }
  // The chunk's product is summed from zero, then added to C: accumulating twice into the same C
  // gives exactly twice the product, as Eigen's C += A * B does.
  CELLFLOW_UNROLL
  for (int r = 0; r < MR; ++r) {
    CELLFLOW_UNROLL
    for (int p = 0; p < NP; ++p) {
      T* c = (Tail && p == NP - 1) ? Ct + r * L : C + r * ldc + p * L;
      Eigen::internal::pstoreu(c, load_c ? Eigen::internal::padd(Eigen::internal::ploadu<P>(c), acc[r][p]) : acc[r][p]);
    }
  }
}

// One tile of `rows` (1 <= rows < MR) rows, dispatched to the tile of that height.
template <class T, int NP, bool TransA, bool Tail, int R = kMR - 1>
void partial_tile(Index rows, Index kc, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc, bool load_c,
                  const T* Bt, T* Ct) {
  if constexpr (R >= 1) {
    if (rows == R)
      micro_tile<T, R, NP, TransA, Tail>(kc, A, lda, B, ldb, C, ldc, load_c, Bt, Ct);
    else
      partial_tile<T, NP, TransA, Tail, R - 1>(rows, kc, A, lda, B, ldb, C, ldc, load_c, Bt, Ct);
  }
}

// Row blocks of one column panel: full MR-row tiles, then one tile of the leftover rows.
template <class T, int NP, bool TransA>
void panel_rows(Index i0, Index i1, Index kc, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc,
                bool load_c, PrefetchPair* pf) {
  auto a_at = [&](Index i) { return TransA ? A + i : A + i * lda; };
  Index i = i0;
  for (; i + kMR <= i1; i += kMR) {
    if constexpr (TransA) {  // (only weight gradients prefetch: see gemm_rows)
      if (pf) {
        micro_tile<T, kMR, NP, true, false, true>(kc, a_at(i), lda, B, ldb, C + i * ldc, ldc, load_c, nullptr, nullptr,
                                                  pf);
        continue;
      }
    }
    micro_tile<T, kMR, NP, TransA>(kc, a_at(i), lda, B, ldb, C + i * ldc, ldc, load_c);
  }
  if (i < i1)
    partial_tile<T, NP, TransA, false>(i1 - i, kc, a_at(i), lda, B, ldb, C + i * ldc, ldc, load_c, nullptr, nullptr);
}

// The last panel, whose last packet holds the w < L columns that do not fill a packet: those
// columns of B (the chunk's kc rows) are in the zero-padded [kc x L] bbuf, and each row tile's
// columns of C go through the padded [MR x L] cbuf.
template <class T, int NP, bool TransA>
void tail_panel_rows(Index i0, Index i1, Index kc, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc,
                     bool load_c, Index w, const T* bbuf, T* cbuf, PrefetchPair* pf) {
  constexpr int L = packet_size<T>();
  auto a_at = [&](Index i) { return TransA ? A + i : A + i * lda; };
  T* ctail = C + (NP - 1) * L;  // the partial columns of C, relative to the panel's start
  for (Index i = i0; i < i1; i += kMR) {
    const Index rows = std::min<Index>(kMR, i1 - i);
    for (Index r = 0; r < rows; ++r)
      for (Index j = 0; j < L; ++j) cbuf[r * L + j] = (load_c && j < w) ? ctail[(i + r) * ldc + j] : T(0);
    if (rows < kMR)
      partial_tile<T, NP, TransA, true>(rows, kc, a_at(i), lda, B, ldb, C + i * ldc, ldc, load_c, bbuf, cbuf);
    else if (TransA && pf)
      micro_tile<T, kMR, NP, TransA, true, TransA>(kc, a_at(i), lda, B, ldb, C + i * ldc, ldc, load_c, bbuf, cbuf, pf);
    else
      micro_tile<T, kMR, NP, TransA, true>(kc, a_at(i), lda, B, ldb, C + i * ldc, ldc, load_c, bbuf, cbuf);
    for (Index r = 0; r < rows; ++r)
      for (Index j = 0; j < w; ++j) ctail[(i + r) * ldc + j] = cbuf[r * L + j];
  }
}

// A panel of np packets (1 <= np <= kNP), the last one the partial packet when tail.
template <class T, bool TransA, int NP = kNP>
void panel_rows_np(int np, bool tail, Index i0, Index i1, Index kc, const T* A, Index lda, const T* B, Index ldb, T* C,
                   Index ldc, bool load_c, Index w, const T* bbuf, T* cbuf, PrefetchPair* pf = nullptr) {
  if constexpr (NP >= 1) {
    if (np != NP)
      panel_rows_np<T, TransA, NP - 1>(np, tail, i0, i1, kc, A, lda, B, ldb, C, ldc, load_c, w, bbuf, cbuf, pf);
    else if (tail)
      tail_panel_rows<T, NP, TransA>(i0, i1, kc, A, lda, B, ldb, C, ldc, load_c, w, bbuf, cbuf, pf);
    else
      panel_rows<T, NP, TransA>(i0, i1, kc, A, lda, B, ldb, C, ldc, load_c, pf);
  }
}

// (unpacket_traits<P> of a SIMD type P: GCC says the vector type's attributes are ignored in the
// template argument, as it does inside Eigen, whose headers silence it the same way.)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif
// Whether the packet type of T loads and stores a partial packet under a lane mask (Eigen: float
// on AVX and AVX-512), which lets a single-row product read its last, partial packet of B in place.
template <class T>
constexpr bool masked_tail() {
  return Eigen::internal::unpacket_traits<Packet<T>>::masked_load_available &&
         Eigen::internal::unpacket_traits<Packet<T>>::masked_store_available;
}

// One row of C, columns [0, n_full) (whole packets) and, when w > 0 (only with masked_tail<T>()),
// the w < L columns after them; k chunk [k0, k0 + kc): the product of a single sequence (batch-1
// streaming), where every weight is read once per call and the time is the time to stream B from
// the cache that holds it. B is read row after row, in long contiguous runs the hardware
// prefetchers follow, into a block of C's columns kept in a small buffer (the partial packet read
// with a lane mask, in the same pass). For every element the sum runs over k in the same order,
// from zero, as in the register tiles, so the result is bitwise the same as for the same row
// inside a larger product (masked-off lanes are zeros and never stored).
template <class T, bool TransA>
void gemm_row_chunk(Index n_full, Index w, Index k0, Index kc, const T* A, Index lda, const T* B, Index ldb, T* C,
                    bool load_c) {
  using P = Packet<T>;
  constexpr int L = packet_size<T>();
  constexpr Index NB = 1024;  // columns per block: the block (4 KB of floats) stays in L1
  alignas(64) T acc[NB + L];
  auto a_at = [&](Index k) { return TransA ? A[k * lda] : A[k]; };
  eigen_assert(w == 0 || masked_tail<T>());
  for (Index j0 = 0; j0 < n_full || (j0 == n_full && w > 0); j0 += NB) {
    const Index nb = std::min(NB, n_full - j0);
    const bool tail = w > 0 && j0 + nb == n_full;  // the partial packet follows this block
    std::fill(acc, acc + nb + (tail ? L : 0), T(0));
    // The partial packet, k rows from b (masked lanes read as zero): acc[nb, nb + L) += a_k b_k.
    auto tail_step = [&](const P* a, int rows, const T* b) {
      if constexpr (masked_tail<T>()) {
        using Mask = typename Eigen::internal::unpacket_traits<P>::mask_t;
        const Mask mask = static_cast<Mask>((Index(1) << w) - 1);
        P c = Eigen::internal::pload<P>(acc + nb);
        for (int r = 0; r < rows; ++r)
          c = Eigen::internal::pmadd(a[r], Eigen::internal::ploadu<P>(b + r * ldb + nb, mask), c);
        Eigen::internal::pstore(acc + nb, c);
      }
    };
    Index k = k0;
    for (; k + 4 <= k0 + kc; k += 4) {
      const P a[4] = {Eigen::internal::pset1<P>(a_at(k)), Eigen::internal::pset1<P>(a_at(k + 1)),
                      Eigen::internal::pset1<P>(a_at(k + 2)), Eigen::internal::pset1<P>(a_at(k + 3))};
      const T* b0 = B + k * ldb + j0;
      for (Index j = 0; j < nb; j += L) {
#if defined(__GNUC__)
        if (k + 12 <= k0 + kc) __builtin_prefetch(b0 + 8 * ldb + j);
#endif
        P c = Eigen::internal::pload<P>(acc + j);
        c = Eigen::internal::pmadd(a[0], Eigen::internal::ploadu<P>(b0 + j), c);
        c = Eigen::internal::pmadd(a[1], Eigen::internal::ploadu<P>(b0 + ldb + j), c);
        c = Eigen::internal::pmadd(a[2], Eigen::internal::ploadu<P>(b0 + 2 * ldb + j), c);
        c = Eigen::internal::pmadd(a[3], Eigen::internal::ploadu<P>(b0 + 3 * ldb + j), c);
        Eigen::internal::pstore(acc + j, c);
      }
      if (tail) tail_step(a, 4, b0);
    }
    for (; k < k0 + kc; ++k) {
      const P a = Eigen::internal::pset1<P>(a_at(k));
      const T* b = B + k * ldb + j0;
      for (Index j = 0; j < nb; j += L)
        Eigen::internal::pstore(
            acc + j, Eigen::internal::pmadd(a, Eigen::internal::ploadu<P>(b + j), Eigen::internal::pload<P>(acc + j)));
      if (tail) tail_step(&a, 1, b);
    }
    T* c = C + j0;
    for (Index j = 0; j < nb; j += L) {
      const P v = Eigen::internal::pload<P>(acc + j);
      Eigen::internal::pstoreu(c + j, load_c ? Eigen::internal::padd(Eigen::internal::ploadu<P>(c + j), v) : v);
    }
    if constexpr (masked_tail<T>()) {
      if (tail) {
        using Mask = typename Eigen::internal::unpacket_traits<P>::mask_t;
        const Mask mask = static_cast<Mask>((Index(1) << w) - 1);
        const P v = Eigen::internal::pload<P>(acc + nb);
        Eigen::internal::pstoreu(c + nb,
                                 load_c ? Eigen::internal::padd(Eigen::internal::ploadu<P>(c + nb, mask), v) : v, mask);
      }
    }
    if (tail) break;
  }
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// Rows [i0, i1) of C, all columns, all of K.
template <class T, bool TransA>
void gemm_rows(Index i0, Index i1, Index N, Index K, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc,
               bool accumulate) {
  constexpr int L = packet_size<T>();
  if (i1 <= i0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (Index i = i0; i < i1; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
    return;
  }
  const Index chunks = (K + kMaxKC - 1) / kMaxKC;
  const Index kc_even = (K + chunks - 1) / chunks;
  const Index n_full = (N / L) * L, w = N - n_full;
  // Column panels: the packets (full ones, then the partial one) cut into as few panels of at most
  // kNP packets as possible, their widths as even as possible (37 packets: seven of 4 and three of
  // 3, not nine of 4 and one of 1: a narrow panel reads a broadcast of A per multiply-add).
  const Index packets = n_full / L + (w > 0 ? 1 : 0);
  const Index panels = (packets + kNP - 1) / kNP;
  const bool prefetch = i1 - i0 >= kPrefetchMinRows && double(K) * double(N) * double(sizeof(T)) > kPrefetchBytes;
  // Scratch for the partial packet: kMaxKC x L of B and kMR x L of C.
  alignas(64) T bbuf[kMaxKC * L];
  alignas(64) T cbuf[kMR * L];
  for (Index k0 = 0; k0 < K; k0 += kc_even) {
    const Index kc = std::min(kc_even, K - k0);
    const bool load_c = accumulate || k0 > 0;
    const T* a = TransA ? A + k0 * lda : A + k0;
    const T* b = B + k0 * ldb;
    const T* a_i0 = TransA ? a + i0 : a + i0 * lda;
    if (i1 - i0 == 1 && masked_tail<T>()) {  // a single row, its partial packet read in place
      gemm_row_chunk<T, TransA>(n_full, w, k0, kc, TransA ? A + i0 : A + i0 * lda, lda, B, ldb, C + i0 * ldc, load_c);
      continue;
    }
    if (w > 0) {
      for (Index k = 0; k < kc; ++k) {
        T* dst = bbuf + k * L;
        const T* src = b + k * ldb + n_full;
        for (Index c = 0; c < L; ++c) dst[c] = c < w ? src[c] : T(0);
      }
    }
    if (i1 - i0 == 1) {  // a single row: the full packets streamed through gemm_row_chunk
      gemm_row_chunk<T, TransA>(n_full, 0, k0, kc, TransA ? A + i0 : A + i0 * lda, lda, B, ldb, C + i0 * ldc, load_c);
      if (w > 0)
        panel_rows_np<T, TransA>(1, true, 0, 1, kc, a_i0, lda, b + n_full, ldb, C + i0 * ldc + n_full, ldc, load_c, w,
                                 bbuf, cbuf);
      continue;
    }
    // A weight gradient (A transposed, its K and B's running over all steps' rows, B too large to
    // have stayed in cache, enough rows of C): the full row tiles prefetch the next chunk's rows of
    // A and B into L2 while they compute this chunk, one line per k, so that the next chunk does
    // not start by waiting for memory.
    const Index next = TransA && prefetch ? std::min(kc_even, K - (k0 + kc)) : 0;
    PrefetchPair pf{
        RowPrefetcher(next > 0 ? a_i0 + kc * lda : a_i0, lda * Index(sizeof(T)), (i1 - i0) * Index(sizeof(T)), next),
        RowPrefetcher(next > 0 ? b + kc * ldb : b, ldb * Index(sizeof(T)), N * Index(sizeof(T)), next)};
    for (Index q = 0, first = 0; q < panels; ++q) {
      const Index np = packets / panels + (q < packets % panels ? 1 : 0);  // wider panels first
      const bool tail = q + 1 == panels && w > 0;
      const Index begin = first * L;
      first += np;
      panel_rows_np<T, TransA>(int(np), tail, 0, i1 - i0, kc, a_i0, lda, b + begin, ldb, C + i0 * ldc + begin, ldc,
                               load_c, w, bbuf, cbuf, next > 0 ? &pf : nullptr);
    }
  }
}

}  // namespace gemm_impl

/// C = op(A) * B, or C += op(A) * B when accumulate. op(A) is A, or A^T when trans_a (then A is
/// stored [K x M]). All operands row-major with unit inner stride; C must not alias A or B.
/// Runs on the calling thread, or splits C's rows over OpenMP threads when called outside a
/// parallel region with Eigen::nbThreads() > 1 and enough work.
template <class T>
void gemm(MutView<T> C, ConstView<T> A, bool trans_a, ConstView<T> B, bool accumulate) {
  const Index M = C.rows, N = C.cols, K = trans_a ? A.rows : A.cols;
  eigen_assert((trans_a ? A.cols : A.rows) == M && B.rows == K && B.cols == N);
  auto run = [&](Index i0, Index i1) {
    if (trans_a)
      gemm_impl::gemm_rows<T, true>(i0, i1, N, K, A.data, A.stride, B.data, B.stride, C.data, C.stride, accumulate);
    else
      gemm_impl::gemm_rows<T, false>(i0, i1, N, K, A.data, A.stride, B.data, B.stride, C.data, C.stride, accumulate);
  };
#ifdef _OPENMP
  const int threads = omp_in_parallel() ? 1 : Eigen::nbThreads();
  if (threads > 1 && double(M) * double(N) * double(K) >= 2e6 && M >= 2 * gemm_impl::kMR) {
    // Row blocks of whole micro tiles, one contiguous range per thread.
    const Index tiles = (M + gemm_impl::kMR - 1) / gemm_impl::kMR;
#pragma omp parallel num_threads(threads)
    {
      const Index t = omp_get_thread_num(), n = omp_get_num_threads();
      const Index begin = std::min(M, (tiles * t / n) * gemm_impl::kMR);
      const Index end = std::min(M, (tiles * (t + 1) / n) * gemm_impl::kMR);
      run(begin, end);
    }
    return;
  }
#endif
  run(0, M);
}

}  // namespace cellflow::detail

namespace cellflow::detail {

/// dst = a * b, or dst += a * b when accumulate; row-major Eigen matrices or blocks of them.
template <class D, class A, class B>
void matmul(D&& dst, const A& a, const B& b, bool accumulate = false) {
  gemm(mview(dst), cview(a), false, cview(b), accumulate);
}

/// dst = a^T * b, or dst += a^T * b when accumulate.
template <class D, class A, class B>
void matmul_tn(D&& dst, const A& a, const B& b, bool accumulate = false) {
  gemm(mview(dst), cview(a), true, cview(b), accumulate);
}

}  // namespace cellflow::detail
