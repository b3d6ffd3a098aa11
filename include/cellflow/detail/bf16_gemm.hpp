// The bf16 matrix product of the reduced-precision inference path (`Precision::bf16`,
// core/precision.hpp): C = A B or C += A B, with A a row-major float [M x K] (the inputs or the
// state of a batch), B a weight matrix packed once as bfloat16 (`Bf16Weights`), C a row-major
// float [M x N], and every sum in float.
//
// Arithmetic. Both operands are rounded to bfloat16 (nearest, ties to even; A on every call, B
// once when packed), so every product a_ik b_kj is exact in float (8 x 8 significant bits). For
// each k pair (2p, 2p+1) the accumulator takes the odd term, then the even one, each addition
// rounded to float: acc = (acc + a_i,2p+1 b_2p+1,j) + a_i,2p b_2p,j, which is what vdpbf16ps
// does per lane. The pairs are summed in ascending order from zero, in chunks of at most
// kMaxPairs pairs (the chunks of a depth are equal, so they depend on K only), and each chunk's
// sum is added to C. So, as in detail/gemm.hpp: a row of C does not depend on the other rows
// (any batch size, any thread split give each row the same bits), and accumulating twice adds
// exactly twice. Against the exact sum of the rounded operands, the error of an element is at
// most about (K + 2) u sum_k |a_ik b_kj| (+ |C_ij| when accumulating), u = 2^-24.
//
// Kernels (`Bf16Kernel`): avx512_bf16 runs vdpbf16ps on a register tile of 6 rows x 4 strips of
// 16 columns (2 rows x 8 strips when the product has one or two rows: more independent
// accumulators while the weights stream past), packs A with AVX-512 integer operations, is
// compiled with a target attribute (no -march flag needed) and is called only when
// `cpu_has_bf16()`; portable widens the bfloat16 words to float with Eigen's integer packets
// (shift, mask) and uses Eigen's packet multiply-adds in the same order, so both give the same
// bits for normal numbers (vdpbf16ps treats subnormal inputs as zero and flushes subnormal
// results to zero; the portable kernel keeps them).
//
// Layout of the packed weights: K is padded to an even number of rows (pairs of consecutive k)
// and N to whole strips of 16 columns, with zeros. Strip s holds, for every pair p, 16 32-bit
// words, word j = (bf16(B[2p][16s + j]) in the low half, bf16(B[2p + 1][16s + j]) in the high
// half): one 64-byte vector per pair, exactly the right operand vdpbf16ps wants. Memory:
// 4 ceil(K/2) * 16 ceil(N/16) bytes, about half of the float matrix. A is packed per call into a
// small stack buffer of bfloat16 pairs (a row block by a depth chunk): M K conversions against
// 2 M K N flops, and the kernel then broadcasts one word per row and pair. (16 pairs of a strip
// are also the B operand of an AMX tdpbf16ps tile, and the packed A rows its A tile, for a
// later AMX kernel.)
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "cellflow/core/error.hpp"
#include "cellflow/core/precision.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/detail/bfloat16.hpp"
#include "cellflow/detail/gemm.hpp"

#if CELLFLOW_HAS_BF16_X86
#include <immintrin.h>
/// The instruction sets of the AVX512-BF16 kernel, for its functions only.
#define CELLFLOW_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

namespace cellflow::detail {

/// A weight matrix B [K x N] stored as bfloat16 in the layout of the bf16 kernels (header
/// comment): packed once, then used by any number of products `bf16_gemm(C, A, B, ...)`.
class Bf16Weights {
 public:
  /// Columns per strip: one 16-float vector.
  static constexpr Index kStrip = 16;

  /// An empty [0 x 0] matrix.
  Bf16Weights() = default;

  /// Packs the row-major float matrix b [rows x cols], element (k, j) at data[k * stride + j].
  explicit Bf16Weights(ConstView<float> b) {
    pack(b.rows, b.cols, [&](Index k, Index j) { return b.data[k * b.stride + j]; });
  }

  /// Packs any Eigen matrix or expression (row- or column-major; a double is first rounded to
  /// float, then to bfloat16).
  template <class X>
  explicit Bf16Weights(const Eigen::MatrixBase<X>& b) {
    const auto& m = b.derived();
    pack(m.rows(), m.cols(), [&](Index k, Index j) { return static_cast<float>(m.coeff(k, j)); });
  }

  /// A deep copy.
  Bf16Weights(const Bf16Weights& other)
      : rows_(other.rows_), cols_(other.cols_), pairs_(other.pairs_), strips_(other.strips_) {
    allocate();
    if (words() > 0) std::memcpy(data_.get(), other.data_.get(), bytes());
  }

  /// Takes other's storage; other becomes empty.
  Bf16Weights(Bf16Weights&& other) noexcept { swap(other); }

  /// A deep copy.
  Bf16Weights& operator=(const Bf16Weights& other) {
    if (this != &other) {
      Bf16Weights copy(other);
      swap(copy);
    }
    return *this;
  }

  /// Takes other's storage.
  Bf16Weights& operator=(Bf16Weights&& other) noexcept {
    Bf16Weights moved;
    moved.swap(other);
    swap(moved);
    return *this;
  }

  /// K, the depth (rows of B).
  Index rows() const { return rows_; }
  /// N, the columns of B and of the product.
  Index cols() const { return cols_; }
  /// ceil(K / 2): the k pairs.
  Index pairs() const { return pairs_; }
  /// ceil(N / 16): the strips of 16 columns.
  Index strips() const { return strips_; }
  /// 32-bit words of the packed storage (pairs * strips * 16).
  Index words() const { return pairs_ * strips_ * kStrip; }
  /// Bytes of the packed storage (padding included).
  std::size_t bytes() const { return static_cast<std::size_t>(words()) * sizeof(std::uint32_t); }
  /// The words of strip s (64-byte aligned): pair p's 16 words start at p * 16.
  const std::uint32_t* strip(Index s) const { return data_.get() + s * pairs_ * kStrip; }

  /// The stored value of B(k, j), widened to float.
  float value(Index k, Index j) const {
    eigen_assert(k >= 0 && k < rows_ && j >= 0 && j < cols_);
    const std::uint32_t w = strip(j / kStrip)[(k / 2) * kStrip + j % kStrip];
    return bf16_to_float(static_cast<std::uint16_t>(k % 2 ? w >> 16 : w & 0xFFFFu));
  }

  /// The whole matrix as stored, widened to float [K x N].
  Matrix<float> to_float() const {
    Matrix<float> m(rows_, cols_);
    for (Index k = 0; k < rows_; ++k)
      for (Index j = 0; j < cols_; ++j) m(k, j) = value(k, j);
    return m;
  }

 private:
  struct AlignedDelete {
    void operator()(std::uint32_t* p) const { ::operator delete(p, std::align_val_t(64)); }
  };

  void swap(Bf16Weights& other) noexcept {
    std::swap(rows_, other.rows_);
    std::swap(cols_, other.cols_);
    std::swap(pairs_, other.pairs_);
    std::swap(strips_, other.strips_);
    std::swap(data_, other.data_);
  }

  void allocate() {
    data_.reset();
    if (words() > 0) data_.reset(static_cast<std::uint32_t*>(::operator new(bytes(), std::align_val_t(64))));
  }

  template <class Get>
  void pack(Index rows, Index cols, Get get) {
    if (rows < 0 || cols < 0)
      throw ShapeError(
          concat("cellflow: bf16 weights: expected a matrix of non-negative shape, got [", rows, " x ", cols, "]"));
    rows_ = rows;
    cols_ = cols;
    pairs_ = (rows + 1) / 2;
    strips_ = (cols + kStrip - 1) / kStrip;
    allocate();
    for (Index s = 0; s < strips_; ++s) {
      std::uint32_t* out = data_.get() + s * pairs_ * kStrip;
      for (Index p = 0; p < pairs_; ++p)
        for (Index jj = 0; jj < kStrip; ++jj) {
          const Index j = s * kStrip + jj, k = 2 * p;
          const bool in = j < cols;
          const float lo = in ? get(k, j) : 0.0f;
          const float hi = in && k + 1 < rows ? get(k + 1, j) : 0.0f;
          out[p * kStrip + jj] = bf16_pair(lo, hi);
        }
    }
  }

  Index rows_ = 0, cols_ = 0, pairs_ = 0, strips_ = 0;
  std::unique_ptr<std::uint32_t[], AlignedDelete> data_;
};

namespace bf16_impl {

// Depth chunk in k pairs (512 k), and the rows of A packed at a time: the packed A block
// (kRowBlock x kMaxPairs words, 24 KB) lives on the stack.
constexpr Index kMaxPairs = 256;
constexpr Index kRowBlock = 24;

// Row tile and strips per tile of the two kernels.
constexpr int kMR = 6;
constexpr int kNS = 4;
constexpr int kNarrowNS = 8;  // strips per tile when the product has at most 2 rows
// Portable: as many strips as fill detail/gemm.hpp's tile width (kNP packets).
constexpr int kPortableMR = 4;
constexpr int kPortableNS = std::max(1, gemm_impl::kNP* gemm_impl::packet_size<float>() / 16);

// Rows [r0, r0 + rows) of A, pairs [p0, p0 + pc), as bfloat16 pairs: out[r * pc + p]. The k past
// K (odd K) is zero.
inline void pack_a(const float* A, Index lda, Index r0, Index rows, Index K, Index p0, Index pc, std::uint32_t* out) {
  for (Index r = 0; r < rows; ++r) {
    const float* a = A + (r0 + r) * lda;
    std::uint32_t* o = out + r * pc;
    const Index full = std::min(pc, K / 2 - p0);  // pairs with both k inside K
    Index p = 0;
    for (; p < full; ++p) o[p] = bf16_pair(a[2 * (p0 + p)], a[2 * (p0 + p) + 1]);
    for (; p < pc; ++p) o[p] = bf16_pair(a[2 * (p0 + p)], 0.0f);  // the last, odd k
  }
}

// The columns of strip s of the product that exist: 16, or fewer in the last strip.
inline int strip_width(Index s, Index N) {
  return int(std::min<Index>(Bf16Weights::kStrip, N - s * Bf16Weights::kStrip));
}

// ---- portable kernel ----

// The integer packet of T's packet (Eigen's SSE, AVX, AVX-512, NEON, AltiVec and SVE
// packets have one). GCC warns that a vector type's attributes are dropped as a template
// argument; they do not matter here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif
template <class T, bool Vectorized = (gemm_impl::packet_size<T>() > 1)>
struct int_packet {
  using type = typename Eigen::internal::unpacket_traits<gemm_impl::Packet<T>>::integer_packet;
};
template <class T>
struct int_packet<T, false> {  // no SIMD (EIGEN_DONT_VECTORIZE): unused
  using type = int;
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// C(r, s*16 + j) (+)= sum over pairs of the tile, r < MR, s < NS.
template <int MR, int NS>
void tile_portable(Index pc, const std::uint32_t* a, const std::uint32_t* const* b, float* C, Index ldc, Index N,
                   Index s0, bool load_c) {
  using P = gemm_impl::Packet<float>;
  constexpr int L = gemm_impl::packet_size<float>();
  constexpr int PPS = 16 / L;  // packets per strip
  constexpr int NPK = NS * PPS;
  static_assert(16 % L == 0, "a strip is a whole number of packets");
  P acc[MR][NPK];
  CELLFLOW_UNROLL
  for (int r = 0; r < MR; ++r) {
    CELLFLOW_UNROLL
    for (int q = 0; q < NPK; ++q) acc[r][q] = Eigen::internal::pset1<P>(0.0f);
  }
  for (Index p = 0; p < pc; ++p) {
    // B's words widened to float: the even k (low halves) and the odd k (high halves).
    P blo[NPK], bhi[NPK];
    if constexpr (L > 1) {
      using PI = typename int_packet<float>::type;
      const PI high = Eigen::internal::pset1<PI>(static_cast<int>(0xFFFF0000u));
      CELLFLOW_UNROLL
      for (int q = 0; q < NPK; ++q) {
        // int and unsigned int may alias: the words are read as ints.
        const PI w = Eigen::internal::pload<PI>(reinterpret_cast<const int*>(b[q / PPS] + p * 16 + (q % PPS) * L));
        blo[q] = Eigen::internal::preinterpret<P>(Eigen::internal::plogical_shift_left<16>(w));
        bhi[q] = Eigen::internal::preinterpret<P>(Eigen::internal::pand(w, high));
      }
    } else {
      CELLFLOW_UNROLL
      for (int q = 0; q < NPK; ++q) {
        const std::uint32_t w = b[q / PPS][p * 16 + q % PPS];
        blo[q] = bits_float(w << 16);
        bhi[q] = bits_float(w & 0xFFFF0000u);
      }
    }
    CELLFLOW_UNROLL
    for (int r = 0; r < MR; ++r) {
      const std::uint32_t w = a[r * pc + p];
      const P alo = Eigen::internal::pset1<P>(bits_float(w << 16));
      const P ahi = Eigen::internal::pset1<P>(bits_float(w & 0xFFFF0000u));
      CELLFLOW_UNROLL
      for (int q = 0; q < NPK; ++q)
        acc[r][q] = Eigen::internal::pmadd(alo, blo[q], Eigen::internal::pmadd(ahi, bhi[q], acc[r][q]));
    }
  }
  alignas(64) float out[16];
  for (int r = 0; r < MR; ++r)
    for (int s = 0; s < NS; ++s) {
      float* c = C + r * ldc + (s0 + s) * 16;
      const int w = strip_width(s0 + s, N);
      for (int q = 0; q < PPS; ++q) Eigen::internal::pstore(out + q * L, acc[r][s * PPS + q]);
      for (int j = 0; j < w; ++j) c[j] = load_c ? c[j] + out[j] : out[j];
    }
}

// ---- AVX512-BF16 kernel ----

#if CELLFLOW_HAS_BF16_X86
// float_to_bf16 on 16 lanes, the result in the high half of each lane.
CELLFLOW_BF16_TARGET inline __m512i round_bf16_avx512(__m512i u) {
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
  // + 0x7FFF, + 1 more where the lowest kept bit (bit 16) is set (no shifts: GCC 12 warns about
  // the undefined source of their intrinsics).
  const __mmask16 odd = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x10000));
  const __m512i r0 = _mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF));
  const __m512i r = _mm512_mask_add_epi32(r0, odd, r0, _mm512_set1_epi32(1));
  return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
}

// pack_a with AVX-512 integer operations, the same bits as float_to_bf16: 32 floats (16 pairs) at
// a time; the floats past K are loaded as zeros.
CELLFLOW_BF16_TARGET inline void pack_a_avx512(const float* A, Index lda, Index r0, Index rows, Index K, Index p0,
                                               Index pc, std::uint32_t* out) {
  // The high halves of the 32 lanes of two vectors, in order: 16-bit elements 1, 3, ..., 63.
  alignas(64) std::int16_t odd[32];
  for (int i = 0; i < 32; ++i) odd[i] = static_cast<std::int16_t>(2 * i + 1);
  const __m512i index = _mm512_load_si512(odd);

  const Index k0 = 2 * p0, k1 = std::min(K, 2 * (p0 + pc));  // the floats of the chunk
  for (Index r = 0; r < rows; ++r) {
    const float* a = A + (r0 + r) * lda;
    std::uint32_t* o = out + r * pc;
    for (Index k = k0; k < k1; k += 32) {
      const Index n = std::min<Index>(32, k1 - k);
      const __mmask16 m0 = static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
      const __mmask16 m1 = static_cast<__mmask16>(n >= 32 ? 0xFFFFu : n <= 16 ? 0u : (1u << (n - 16)) - 1u);
      const __m512i lo = round_bf16_avx512(_mm512_maskz_loadu_epi32(m0, a + k));
      const __m512i hi = round_bf16_avx512(_mm512_maskz_loadu_epi32(m1, a + k + 16));
      const __m512i words = _mm512_permutex2var_epi16(lo, index, hi);
      const Index w = (n + 1) / 2;  // pairs written
      _mm512_mask_storeu_epi32(o + (k - k0) / 2, static_cast<__mmask16>(w >= 16 ? 0xFFFFu : (1u << w) - 1u), words);
    }
  }
}

template <int MR, int NS>
CELLFLOW_BF16_TARGET void tile_avx512(Index pc, const std::uint32_t* a, const std::uint32_t* const* b, float* C,
                                      Index ldc, Index N, Index s0, bool load_c) {
  __m512 acc[MR][NS];
  CELLFLOW_UNROLL
  for (int r = 0; r < MR; ++r) {
    CELLFLOW_UNROLL
    for (int s = 0; s < NS; ++s) acc[r][s] = _mm512_setzero_ps();
  }
  const std::uint32_t* bs[NS];
  CELLFLOW_UNROLL
  for (int s = 0; s < NS; ++s) bs[s] = b[s];
  for (Index p = 0; p < pc; ++p) {
    __m512bh bv[NS];
    CELLFLOW_UNROLL
    for (int s = 0; s < NS; ++s) bv[s] = (__m512bh)_mm512_load_si512(bs[s] + p * 16);
    CELLFLOW_UNROLL
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[r * pc + p]));
      CELLFLOW_UNROLL
      for (int s = 0; s < NS; ++s) acc[r][s] = _mm512_dpbf16_ps(acc[r][s], av, bv[s]);
    }
  }
  CELLFLOW_UNROLL
  for (int s = 0; s < NS; ++s) {
    const int w = strip_width(s0 + s, N);
    const __mmask16 mask = static_cast<__mmask16>(w >= 16 ? 0xFFFFu : (1u << w) - 1u);
    CELLFLOW_UNROLL
    for (int r = 0; r < MR; ++r) {
      float* c = C + r * ldc + (s0 + s) * 16;
      __m512 v = acc[r][s];
      if (load_c) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, c), v);
      _mm512_mask_storeu_ps(c, mask, v);
    }
  }
}
#endif

// Dispatch of a runtime tile shape (rows <= MR, ns <= NS) to its instantiation.
template <bool Avx, int MR, int NS>
void tile(Index pc, const std::uint32_t* a, const std::uint32_t* const* b, float* C, Index ldc, Index N, Index s0,
          bool load_c) {
#if CELLFLOW_HAS_BF16_X86
  if constexpr (Avx)
    tile_avx512<MR, NS>(pc, a, b, C, ldc, N, s0, load_c);
  else
#endif
    tile_portable<MR, NS>(pc, a, b, C, ldc, N, s0, load_c);
}

template <bool Avx, int MR, int NS>
void tile_rows(int rows, Index pc, const std::uint32_t* a, const std::uint32_t* const* b, float* C, Index ldc, Index N,
               Index s0, bool load_c) {
  if constexpr (MR > 1) {
    if (rows < MR) return tile_rows<Avx, MR - 1, NS>(rows, pc, a, b, C, ldc, N, s0, load_c);
  }
  tile<Avx, MR, NS>(pc, a, b, C, ldc, N, s0, load_c);
}

template <bool Avx, int MR, int NS>
void tile_shape(int rows, int ns, Index pc, const std::uint32_t* a, const std::uint32_t* const* b, float* C, Index ldc,
                Index N, Index s0, bool load_c) {
  if constexpr (NS > 1) {
    if (ns < NS) return tile_shape<Avx, MR, NS - 1>(rows, ns, pc, a, b, C, ldc, N, s0, load_c);
  }
  tile_rows<Avx, MR, NS>(rows, pc, a, b, C, ldc, N, s0, load_c);
}

// Rows [i0, i1) of C (+)= A B.
// Rows [i0, i1) of C (+)= A B with tiles of MR rows x NS strips. The tile shape does not change
// any sum (each element's order is fixed by the header comment), only the speed.
template <bool Avx, int MR, int NS>
void gemm_rows_tiled(Index i0, Index i1, const float* A, Index lda, const Bf16Weights& B, float* C, Index ldc,
                     bool accumulate) {
  const Index K = B.rows(), N = B.cols(), P = B.pairs(), S = B.strips();
  if (i1 <= i0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (Index i = i0; i < i1; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  const Index chunks = (P + kMaxPairs - 1) / kMaxPairs;
  const Index pc_even = (P + chunks - 1) / chunks;
  alignas(64) std::uint32_t abuf[kRowBlock * kMaxPairs];
  for (Index r0 = i0; r0 < i1; r0 += kRowBlock) {
    const Index rows = std::min(kRowBlock, i1 - r0);
    for (Index p0 = 0; p0 < P; p0 += pc_even) {
      const Index pc = std::min(pc_even, P - p0);
      const bool load_c = accumulate || p0 > 0;
#if CELLFLOW_HAS_BF16_X86
      if constexpr (Avx)
        pack_a_avx512(A, lda, r0, rows, K, p0, pc, abuf);
      else
#endif
        pack_a(A, lda, r0, rows, K, p0, pc, abuf);
      for (Index s0 = 0; s0 < S; s0 += NS) {
        const int ns = int(std::min<Index>(NS, S - s0));
        const std::uint32_t* b[NS];
        for (int s = 0; s < NS; ++s) b[s] = B.strip(std::min(s0 + s, S - 1)) + p0 * 16;
        for (Index r = 0; r < rows; r += MR) {
          const int mr = int(std::min<Index>(MR, rows - r));
          tile_shape<Avx, MR, NS>(mr, ns, pc, abuf + r * pc, b, C + (r0 + r) * ldc, ldc, N, s0, load_c);
        }
      }
    }
  }
}

// Rows [i0, i1) of C (+)= A B. One or two rows (streaming) take tiles of 8 strips, so that
// more independent accumulators hide vdpbf16ps's latency while the weights stream past.
template <bool Avx>
void gemm_rows(Index i0, Index i1, const float* A, Index lda, const Bf16Weights& B, float* C, Index ldc,
               bool accumulate) {
  if constexpr (Avx) {
    if (i1 - i0 <= 2)
      gemm_rows_tiled<true, 2, kNarrowNS>(i0, i1, A, lda, B, C, ldc, accumulate);
    else
      gemm_rows_tiled<true, kMR, kNS>(i0, i1, A, lda, B, C, ldc, accumulate);
  } else {
    gemm_rows_tiled<false, kPortableMR, kPortableNS>(i0, i1, A, lda, B, C, ldc, accumulate);
  }
}

}  // namespace bf16_impl

/// C = A B, or C += A B when accumulate: A a row-major float [M x K] view, B packed bf16 weights
/// [K x N], C a row-major float [M x N] view that must not overlap A. Arithmetic in the header
/// comment. Runs `kernel`; asking for `Bf16Kernel::avx512_bf16` on a CPU without it throws
/// UnsupportedCpuError (it is never executed there). Splits C's rows over OpenMP threads like
/// `gemm` (outside a parallel region, Eigen::nbThreads() > 1, enough work): same bits either way.
/// Throws ShapeError when the shapes do not fit.
inline void bf16_gemm(MutView<float> C, ConstView<float> A, const Bf16Weights& B, bool accumulate, Bf16Kernel kernel) {
  if (A.cols != B.rows() || C.rows != A.rows || C.cols != B.cols())
    throw ShapeError(concat("cellflow: bf16 product C [", C.rows, " x ", C.cols, "] = A [", A.rows, " x ", A.cols,
                            "] * B [", B.rows(), " x ", B.cols(), "]: expected A [M x K], B [K x N], C [M x N]"));
  if (kernel == Bf16Kernel::avx512_bf16 && !cpu_has_bf16())
    throw UnsupportedCpuError(
        "cellflow: the avx512_bf16 kernel was requested, but this CPU (or build) lacks AVX512-BF16; use "
        "choose_bf16_kernel() or Bf16Kernel::portable");
  const Index M = C.rows;
  auto run = [&](Index i0, Index i1) {
#if CELLFLOW_HAS_BF16_X86
    if (kernel == Bf16Kernel::avx512_bf16) {
      bf16_impl::gemm_rows<true>(i0, i1, A.data, A.stride, B, C.data, C.stride, accumulate);
      return;
    }
#endif
    bf16_impl::gemm_rows<false>(i0, i1, A.data, A.stride, B, C.data, C.stride, accumulate);
  };
#ifdef _OPENMP
  const int threads = omp_in_parallel() ? 1 : Eigen::nbThreads();
  if (threads > 1 && double(M) * double(B.cols()) * double(B.rows()) >= 2e6 && M >= 2 * bf16_impl::kMR) {
    const Index tiles = (M + bf16_impl::kMR - 1) / bf16_impl::kMR;
#pragma omp parallel num_threads(threads)
    {
      const Index t = omp_get_thread_num(), n = omp_get_num_threads();
      run(std::min(M, (tiles * t / n) * bf16_impl::kMR), std::min(M, (tiles * (t + 1) / n) * bf16_impl::kMR));
    }
    return;
  }
#endif
  run(0, M);
}

/// Not available: the bf16 product takes and gives float only (its sums are float by design);
/// a double model's inputs and state must be converted to float for it.
template <class T>
void bf16_gemm(MutView<T>, ConstView<T>, const Bf16Weights&, bool, Bf16Kernel = Bf16Kernel::portable) {
  static_assert(dependent_false<T>,
                "cellflow: the bf16 product is float-only (float sums by design): convert double operands to float");
}

/// C (+)= A B on this CPU's best kernel (`choose_bf16_kernel()`: avx512_bf16 when the CPU has
/// it, else portable).
inline void bf16_gemm(MutView<float> C, ConstView<float> A, const Bf16Weights& B, bool accumulate) {
  bf16_gemm(C, A, B, accumulate, choose_bf16_kernel());
}

/// dst = a * b, or dst += a * b when accumulate; dst and a row-major float Eigen matrices or
/// blocks of them, b packed bf16 weights; this CPU's best kernel.
template <class D, class A>
void matmul_bf16(D&& dst, const A& a, const Bf16Weights& b, bool accumulate = false) {
  bf16_gemm(mview(dst), cview(a), b, accumulate);
}

}  // namespace cellflow::detail
