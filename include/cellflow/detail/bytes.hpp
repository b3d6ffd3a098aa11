// Byte-level helpers of the file formats (io/zip.hpp, io/npy.hpp): little-endian fields read
// from and appended to byte buffers, arrays of IEEE floats converted from and to little-endian
// bytes whatever the host's byte order, and file bytes made safe to quote in an error message.
// Internal: no public names. Needs nothing but the standard library (no zlib, no Eigen).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cellflow/core/error.hpp"

namespace cellflow::detail {

inline bool host_little_endian() {
  const std::uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

/// The unsigned little-endian integer of 2, 4 or 8 bytes at `p`.
inline std::uint16_t read_le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
inline std::uint32_t read_le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 24);
}
inline std::uint64_t read_le64(const std::uint8_t* p) {
  return std::uint64_t(read_le32(p)) | (std::uint64_t(read_le32(p + 4)) << 32);
}

/// Appends the low 16 (32) bits of `v` as 2 (4) little-endian bytes.
inline void append_le16(std::vector<std::uint8_t>& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}
inline void append_le32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  append_le16(out, v & 0xffffu);
  append_le16(out, v >> 16);
}

/// Copies `count` little-endian elements of type E from `src` into `dst`.
template <class E>
void decode_le(const std::uint8_t* src, std::size_t count, E* dst) {
  if (count == 0) return;
  if (host_little_endian()) {
    std::memcpy(dst, src, count * sizeof(E));
    return;
  }
  for (std::size_t k = 0; k < count; ++k) {
    std::uint8_t b[sizeof(E)];
    for (std::size_t j = 0; j < sizeof(E); ++j) b[j] = src[k * sizeof(E) + sizeof(E) - 1 - j];
    std::memcpy(dst + k, b, sizeof(E));
  }
}

/// Appends `count` elements of type E to `out` as little-endian bytes.
template <class E>
void encode_le(const E* src, std::size_t count, std::vector<std::uint8_t>& out) {
  const std::size_t at = out.size();
  out.resize(at + count * sizeof(E));
  if (count == 0) return;
  if (host_little_endian()) {
    std::memcpy(out.data() + at, src, count * sizeof(E));
    return;
  }
  for (std::size_t k = 0; k < count; ++k) {
    std::uint8_t b[sizeof(E)];
    std::memcpy(b, src + k, sizeof(E));
    for (std::size_t j = 0; j < sizeof(E); ++j) out[at + k * sizeof(E) + j] = b[sizeof(E) - 1 - j];
  }
}

/// "0x0000abcd".
inline std::string hex32(std::uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s = "0x00000000";
  for (int k = 0; k < 8; ++k) s[static_cast<std::size_t>(9 - k)] = digits[(v >> (4 * k)) & 0xfu];
  return s;
}

/// A string safe to print in a message: bytes outside printable ASCII as \xNN, a backslash as
/// "\\", at most `max` characters, then "... (N bytes)".
inline std::string printable(const std::string& s, std::size_t max = 160) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t k = 0; k < s.size(); ++k) {
    if (out.size() >= max) {
      out += concat("... (", s.size(), " bytes)");
      break;
    }
    const auto c = static_cast<unsigned char>(s[k]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

}  // namespace cellflow::detail
