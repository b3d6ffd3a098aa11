// CRC-32 (IEEE 802.3, the CRC of zlib, gzip and PNG), table driven, with no zlib: checkpoints
// use it and must work with the zlib-free cellflow::cellflow target.
//
// Parameters: reflected polynomial 0xEDB88320 (0x04C11DB7 bit-reversed), initial value
// 0xFFFFFFFF, reflected input and output, final XOR 0xFFFFFFFF. Check value:
// crc32("123456789") == 0xCBF43926. The running value is the finished CRC, so
//   crc32(b, nb, crc32(a, na)) == crc32(a ++ b)   (same convention as zlib's crc32()).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace cellflow::detail {

/// The 256-entry table of the reflected polynomial, built at compile time.
constexpr std::array<std::uint32_t, 256> make_crc32_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t n = 0; n < 256; ++n) {
    std::uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
    table[n] = c;
  }
  return table;
}

inline constexpr std::array<std::uint32_t, 256> kCrc32Table = make_crc32_table();

/// CRC-32 of `size` bytes at `data`, continuing from `crc` (the CRC of the bytes before them;
/// 0 to start). `data` may be null when `size` is 0.
inline std::uint32_t crc32(const std::uint8_t* data, std::size_t size, std::uint32_t crc = 0) {
  crc = ~crc;
  for (std::size_t k = 0; k < size; ++k) crc = kCrc32Table[(crc ^ data[k]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

}  // namespace cellflow::detail
