// Reduced precision (bfloat16 weights) and what this CPU can do for it.
//
// cellflow computes in the scalar type of the model (float or double) and reproduces TensorFlow
// 1.x exactly; that stays the default. `Precision::bf16` is an opt-in for inference only: the
// weight matrices are stored as bfloat16 (1 sign, 8 exponent, 7 fraction bits: the upper half
// of an IEEE float, rounded to nearest even), the left operand of each product is rounded to
// bfloat16 too, and every product, sum and gate is computed in float. A float model evaluated
// this way gives results within about 2^-9 relative per weight of the float ones; they are not
// TensorFlow's.
//
// Which kernel runs the bf16 products (`Bf16Kernel`) is chosen at run time:
//   avx512_bf16  x86-64 CPUs with AVX512-BF16 (the vdpbf16ps instruction: Intel Cooper Lake,
//                Sapphire Rapids and later, AMD Zen 4 and later), detected with cpuid and the
//                OS's saved register state (`cpu_has_bf16`); the library is still compiled for
//                the baseline ISA, with no -march flag needed;
//   portable     every other CPU (AVX2-only x86, ARM, ...) and non-GCC-compatible compilers:
//                the bfloat16 weights are widened to float and multiplied with Eigen's packet
//                FMAs in the same order, so both kernels give the same sums (bitwise for normal
//                numbers; vdpbf16ps flushes subnormal inputs and results to zero, the portable
//                kernel does not).
//
// The choice when bf16 is requested and the CPU lacks AVX512-BF16 (`Bf16Fallback`): by default
// the portable kernel runs (the same numbers, but no faster than float: it exists so that a
// model configured for bf16 runs everywhere); with `Bf16Fallback::refuse` the request throws
// `UnsupportedCpuError`, whose message names the missing instruction and the alternatives.
// Either way bf16 is never silent: it is only used when asked for, and `bf16_kernel_name()`
// says which kernel runs (print it with your results).
//
// AMX tiles (amx_bf16, Sapphire Rapids) are reported by `cpu_has_amx_bf16` but not used yet.
#pragma once

#include <cstdint>
#include <string>

#include "cellflow/core/error.hpp"

#ifndef CELLFLOW_HAS_BF16_X86
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
/// 1 when cellflow compiles the AVX512-BF16 kernel and the cpuid detection (x86 with a
/// GCC-compatible compiler: GCC >= 10, clang >= 9); 0 otherwise, where only the portable kernel
/// exists and `cpu_has_bf16()` is false. Define it to 0 before including cellflow to build
/// without them.
#define CELLFLOW_HAS_BF16_X86 1
#else
#define CELLFLOW_HAS_BF16_X86 0
#endif
#endif
#if CELLFLOW_HAS_BF16_X86
#include <cpuid.h>
#endif

namespace cellflow {

/// The arithmetic of an inference path: `fp32` is the model's own (exact TF 1.x semantics, the
/// default); `bf16` stores the weights as bfloat16 and multiplies with float accumulation.
enum class Precision {
  fp32,  ///< the model's scalar type, TensorFlow's results (default)
  bf16   ///< bfloat16 weights and left operands, float accumulation and gate math (inference)
};

/// Which kernel computes a bf16 product.
enum class Bf16Kernel {
  portable,    ///< bfloat16 widened to float, Eigen packet FMAs: any CPU
  avx512_bf16  ///< vdpbf16ps (x86 AVX512-BF16), chosen when `cpu_has_bf16()`
};

/// What a bf16 request does on a CPU without AVX512-BF16.
enum class Bf16Fallback {
  portable,  ///< run the portable kernel (same results, float speed or slower); the default
  refuse     ///< throw `UnsupportedCpuError`
};

/// The CPU lacks an instruction set that was explicitly required.
class UnsupportedCpuError : public Error {
 public:
  using Error::Error;
};

namespace detail {

#if CELLFLOW_HAS_BF16_X86
// The low 32 bits of XCR0 (the register state the OS saves on a context switch); 0 when the OS
// has not enabled XSAVE (then no AVX state is usable).
inline std::uint32_t os_saved_state() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  if (!(c & (1u << 27))) return 0;  // OSXSAVE
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  (void)hi;
  return lo;
}

inline bool detect_avx512_bf16() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const unsigned max_subleaf = a;
  const bool f = b & (1u << 16), bw = b & (1u << 30), vl = b & (1u << 31);
  if (!(f && bw && vl) || max_subleaf < 1) return false;
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  if (!(a1 & (1u << 5))) return false;  // AVX512_BF16
  // The OS must save SSE, AVX, the opmask registers and both halves of the 32 ZMM registers.
  constexpr std::uint32_t kZmmState = (1u << 1) | (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7);
  return (os_saved_state() & kZmmState) == kZmmState;
}

inline bool detect_amx_bf16() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tile = d & (1u << 24), bf16 = d & (1u << 22);
  constexpr std::uint32_t kTileState = (1u << 17) | (1u << 18);  // XTILECFG, XTILEDATA
  return tile && bf16 && (os_saved_state() & kTileState) == kTileState;
}
#else
inline bool detect_avx512_bf16() { return false; }
inline bool detect_amx_bf16() { return false; }
#endif

}  // namespace detail

/// Whether this CPU and OS can run AVX512-BF16 (vdpbf16ps) with AVX512F/BW/VL: cpuid leaf 7
/// subleaf 1 EAX bit 5, and the OS saves the ZMM and opmask state (XCR0). Always false off x86 or
/// with a compiler that cannot build the kernel. Detected once, then cached.
inline bool cpu_has_bf16() {
  static const bool has = detail::detect_avx512_bf16();
  return has;
}

/// Whether this CPU reports AMX tiles with bf16 (amx_tile, amx_bf16) and the OS has enabled
/// their state in XCR0. Informational: cellflow has no AMX kernel yet (a process must also ask
/// Linux for the tile data permission before using them).
inline bool cpu_has_amx_bf16() {
  static const bool has = detail::detect_amx_bf16();
  return has;
}

/// The name of a kernel: "avx512_bf16" or "portable".
inline const char* to_string(Bf16Kernel kernel) {
  return kernel == Bf16Kernel::avx512_bf16 ? "avx512_bf16" : "portable";
}

namespace detail {

// choose_bf16_kernel for a CPU that has (or lacks) AVX512-BF16: separate so that tests can check
// the refusal on any machine.
inline Bf16Kernel choose_bf16_kernel_for(bool has_bf16, Bf16Fallback fallback) {
  if (has_bf16) return Bf16Kernel::avx512_bf16;
  if (fallback == Bf16Fallback::refuse)
    throw UnsupportedCpuError(
        "cellflow: Precision::bf16 was requested with Bf16Fallback::refuse, but this CPU lacks AVX512-BF16 "
        "(the vdpbf16ps instruction; cpuid leaf 7 subleaf 1 EAX bit 5, with AVX512F/BW/VL and OS support)" +
        std::string(CELLFLOW_HAS_BF16_X86 ? "" : ", or this build cannot use it (not x86 with GCC or clang)") +
        ". Use Precision::fp32 (exact, the default), or Bf16Fallback::portable to run the bf16 weights on the "
        "portable kernel (same results, no faster than fp32).");
  return Bf16Kernel::portable;
}

}  // namespace detail

/// The kernel that bf16 products run on this CPU under `fallback`: `avx512_bf16` when
/// `cpu_has_bf16()`, otherwise `portable`, or, with `Bf16Fallback::refuse`, an
/// `UnsupportedCpuError` that says why and what to do instead.
inline Bf16Kernel choose_bf16_kernel(Bf16Fallback fallback = Bf16Fallback::portable) {
  return detail::choose_bf16_kernel_for(cpu_has_bf16(), fallback);
}

/// The name of the kernel bf16 products use on this CPU by default ("avx512_bf16" or
/// "portable"), for logs and benchmark results.
inline const char* bf16_kernel_name() { return to_string(choose_bf16_kernel(Bf16Fallback::portable)); }

}  // namespace cellflow
