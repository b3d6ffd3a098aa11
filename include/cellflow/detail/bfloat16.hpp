// bfloat16 storage: the upper 16 bits of an IEEE-754 binary32 (1 sign, 8 exponent, 7 fraction
// bits), so it has float's range with 8 significant bits.
//
// float -> bfloat16 rounds to nearest, ties to even, on the bit pattern: adding 0x7FFF plus the
// lowest kept bit to the float's bits and truncating does exactly that for every finite value,
// subnormals included, and carries a value that rounds past the largest bfloat16 into infinity.
// Infinities stay infinities. A NaN stays a NaN of the same sign (the quiet bit is set, so a
// signalling NaN whose payload lies in the low 16 bits cannot turn into an infinity).
// bfloat16 -> float is exact (the low 16 bits become zero).
#pragma once

#include <cstdint>
#include <cstring>

namespace cellflow::detail {

/// The bits of x.
inline std::uint32_t float_bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

/// The float with bits u.
inline float bits_float(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

/// x rounded to bfloat16 (nearest, ties to even; NaN stays NaN), as its 16 bits.
inline std::uint16_t float_to_bf16(float x) {
  const std::uint32_t u = float_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
  return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/// The float value of the bfloat16 with bits h (exact).
inline float bf16_to_float(std::uint16_t h) { return bits_float(static_cast<std::uint32_t>(h) << 16); }

/// x rounded to the nearest bfloat16, as a float.
inline float round_to_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }

/// Two bfloat16 in one 32-bit word, `lo` in the low half: the layout of one lane of vdpbf16ps's
/// operands (the element of even index in the low half).
inline std::uint32_t bf16_pair(float lo, float hi) {
  return static_cast<std::uint32_t>(float_to_bf16(lo)) | (static_cast<std::uint32_t>(float_to_bf16(hi)) << 16);
}

}  // namespace cellflow::detail
