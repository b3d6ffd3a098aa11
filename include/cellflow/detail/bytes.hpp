// Bytes in and out of cellflow's file formats: one bounded reader (ByteReader) and one
// appending writer (ByteWriter), used by the checkpoint (io/checkpoint.hpp), .npy (io/npy.hpp),
// ZIP (io/zip.hpp) and IDX (data/idx.hpp) code, so that no format decodes bytes on its own.
//
//   ByteReader r(data, 0, size, "load_checkpoint: 'm.ckpt'", "section MODL", "in the section");
//   const std::uint64_t n = r.u64le("the variable count");   // little-endian
//   const std::uint32_t d = r.u32be("dimension 0");           // big-endian (IDX)
//   const std::string name = r.str32("variable 0 name", false);  // u32 length, then the bytes
//   const std::size_t at = r.counted(n, 4, "variable 0 values"); // n values of 4 bytes: skipped
//
// A reader is a view of [begin, end) of a buffer with a position; offsets (pos(), and those in
// messages) count from the start of the buffer, so they are file offsets when the buffer is the
// file. Nothing is read outside [begin, end): a read that does not fit throws IOError
//   "<context>: <where>: <field> at byte offset <pos> needs <n> bytes, only <r> remain <limit>"
// (<where> and <limit> are optional), and a count that does not fit is compared by division,
// never multiplied, so a lying header cannot overflow or allocate.
//
// Integers are unsigned, assembled byte by byte (the host's byte order does not matter);
// floating-point values keep their bit pattern exactly (signed zeros, infinities, NaN payloads).
//
// Internal (namespace cellflow::detail). Needs nothing but the standard library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"

namespace cellflow::detail {

inline bool host_little_endian() {
  const std::uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

/// "0x0000abcd".
inline std::string hex32(std::uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s = "0x00000000";
  for (int k = 0; k < 8; ++k) s[static_cast<std::size_t>(9 - k)] = digits[(v >> (4 * k)) & 0xfu];
  return s;
}

/// Bytes safe to quote in a message: printable ASCII as it is, a backslash as "\\", every other
/// byte (and `quote`, when given: the quote character around the text) as \xNN; at most `max`
/// characters, then "... (N bytes)".
inline std::string printable(const std::uint8_t* p, std::size_t n, std::size_t max = 160, char quote = '\0') {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t k = 0; k < n; ++k) {
    if (out.size() >= max) {
      out += concat("... (", n, " bytes)");
      break;
    }
    const auto c = static_cast<unsigned char>(p[k]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f && c != static_cast<unsigned char>(quote)) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}
inline std::string printable(const std::string& s, std::size_t max = 160, char quote = '\0') {
  return printable(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), max, quote);
}

/// The unsigned integer type of the same size as E (a float, double or integer type).
template <class E>
struct same_size_unsigned {
  static_assert(std::is_arithmetic_v<E>, "bytes: integers and floating-point values only");
  static_assert(!std::is_floating_point_v<E> || std::numeric_limits<E>::is_iec559,
                "bytes: floating-point values must be IEEE-754");
  using type = std::conditional_t<sizeof(E) == 1, std::uint8_t,
                                  std::conditional_t<sizeof(E) == 2, std::uint16_t,
                                                     std::conditional_t<sizeof(E) == 4, std::uint32_t, std::uint64_t>>>;
  static_assert(sizeof(type) == sizeof(E), "bytes: values of 1, 2, 4 or 8 bytes only");
};

/// The value of type E whose little-endian (big-endian) bytes are at `p`, bit for bit.
template <class E>
E load_le(const std::uint8_t* p) {
  using U = typename same_size_unsigned<E>::type;
  U u = 0;
  for (std::size_t k = sizeof(U); k-- > 0;) u = static_cast<U>((u << 8) | p[k]);
  E x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
template <class E>
E load_be(const std::uint8_t* p) {
  using U = typename same_size_unsigned<E>::type;
  U u = 0;
  for (std::size_t k = 0; k < sizeof(U); ++k) u = static_cast<U>((u << 8) | p[k]);
  E x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

/// A bounded view [begin, end) of a buffer with a read position; see the top of this header.
class ByteReader {
 public:
  /// `context` starts every message (the operation and the file: "load_checkpoint: 'm.ckpt'");
  /// `where` names the region ("section MODL"), `limit` says where its bytes end ("in the
  /// section"); both may be empty.
  ByteReader(const std::uint8_t* data, std::size_t begin, std::size_t end, std::string context, std::string where = {},
             std::string limit = {})
      : data_(data),
        begin_(begin),
        pos_(begin),
        end_(end),
        ctx_(std::move(context)),
        where_(std::move(where)),
        limit_(std::move(limit)) {
    if (begin > end || (data == nullptr && end != 0))
      throw IOError(concat(ctx_, ": invalid byte range [", begin, ", ", end, ") of ",
                           data == nullptr ? "a null buffer" : "a buffer"));
  }

  /// The start of the buffer: every offset counts from here.
  const std::uint8_t* data() const { return data_; }
  /// The remaining() bytes at the position.
  const std::uint8_t* ptr() const { return data_ + pos_; }
  std::size_t begin() const { return begin_; }
  std::size_t pos() const { return pos_; }
  std::size_t end() const { return end_; }
  std::size_t remaining() const { return end_ - pos_; }
  bool at_end() const { return pos_ == end_; }
  const std::string& context() const { return ctx_; }

  /// Throws IOError("<context>: <problem>").
  [[noreturn]] void fail(const std::string& problem) const { throw IOError(concat(ctx_, ": ", problem)); }
  /// Throws IOError("<context>: <where>: <problem>").
  [[noreturn]] void fail_here(const std::string& problem) const { fail(concat(where_prefix(), problem)); }

  /// Throws unless `n` bytes remain; `field` names what they would be.
  void need(std::size_t n, const std::string& field) const {
    if (n > remaining())
      fail_here(concat(field, " at byte offset ", pos_, " needs ", n, " bytes, only ", remaining(), " remain",
                       limit_.empty() ? "" : " ", limit_));
  }

  std::uint8_t u8(const std::string& field) { return get<std::uint8_t>(field, false); }
  std::uint16_t u16le(const std::string& field) { return get<std::uint16_t>(field, false); }
  std::uint32_t u32le(const std::string& field) { return get<std::uint32_t>(field, false); }
  std::uint64_t u64le(const std::string& field) { return get<std::uint64_t>(field, false); }
  std::uint16_t u16be(const std::string& field) { return get<std::uint16_t>(field, true); }
  std::uint32_t u32be(const std::string& field) { return get<std::uint32_t>(field, true); }
  std::uint64_t u64be(const std::string& field) { return get<std::uint64_t>(field, true); }
  /// One little-endian value of type E (an integer, float or double), bit for bit.
  template <class E>
  E le(const std::string& field) {
    return get<E>(field, false);
  }

  /// The little-endian value of type E at absolute `offset` (its bytes within [begin, end)),
  /// without moving. `field` names it in the message when it does not fit.
  template <class E>
  E peek_le(std::size_t offset, const char* field) const {
    if (offset < begin_ || offset > end_ || end_ - offset < sizeof(E))
      fail_here(concat(field, " at byte offset ", offset, " lies outside bytes ", begin_, " to ", end_));
    return load_le<E>(data_ + offset);
  }

  /// Skips `n` bytes; returns the offset where they start.
  std::size_t skip(std::size_t n, const std::string& field) {
    need(n, field);
    const std::size_t at = pos_;
    pos_ += n;
    return at;
  }
  /// Moves to absolute `offset`, which must be in [begin, end].
  void seek(std::size_t offset, const std::string& field) {
    if (offset < begin_ || offset > end_)
      fail_here(concat(field, " at byte offset ", offset, " lies outside bytes ", begin_, " to ", end_));
    pos_ = offset;
  }

  /// `n` raw bytes as a string.
  std::string bytes(std::size_t n, const std::string& field) {
    const std::size_t at = skip(n, field);
    return std::string(reinterpret_cast<const char*>(data_ + at), n);
  }
  /// A string stored as a u32 little-endian byte length, then the bytes. An empty one is an
  /// error unless `allow_empty`.
  std::string str32(const std::string& field, bool allow_empty = true) {
    const std::size_t at = pos_;
    const std::uint32_t len = u32le(concat(field, " length"));
    if (len == 0 && !allow_empty) fail_here(concat(field, " at byte offset ", at, " is empty"));
    return bytes(len, field);
  }

  /// Skips `count` values of `item_bytes` bytes each (checked by division: no overflow); returns
  /// the offset of the first.
  std::size_t counted(std::uint64_t count, std::size_t item_bytes, const std::string& field) {
    if (item_bytes == 0 || count > remaining() / item_bytes)
      fail_here(concat(field, " at byte offset ", pos_, " needs ", count, " values of ", item_bytes, " bytes, only ",
                       remaining(), " bytes remain", limit_.empty() ? "" : " ", limit_));
    return skip(static_cast<std::size_t>(count) * item_bytes, field);
  }
  /// Reads `count` little-endian values of type E into `out`.
  template <class E>
  void values_le(std::size_t count, E* out, const std::string& field) {
    const std::size_t at = counted(count, sizeof(E), field);
    const std::uint8_t* p = data_ + at;
    if (count != 0 && host_little_endian()) {
      std::memcpy(out, p, count * sizeof(E));
      return;
    }
    for (std::size_t k = 0; k < count; ++k) out[k] = load_le<E>(p + k * sizeof(E));
  }

  /// The next `n` bytes as a reader of their own, naming its region `where` and its end `limit`;
  /// this reader moves past them.
  ByteReader sub(std::size_t n, const std::string& field, std::string where, std::string limit) {
    const std::size_t at = skip(n, field);
    return ByteReader(data_, at, at + n, ctx_, std::move(where), std::move(limit));
  }

 private:
  std::string where_prefix() const { return where_.empty() ? std::string() : where_ + ": "; }

  template <class E>
  E get(const std::string& field, bool big_endian) {
    need(sizeof(E), field);
    const E v = big_endian ? load_be<E>(data_ + pos_) : load_le<E>(data_ + pos_);
    pos_ += sizeof(E);
    return v;
  }

  const std::uint8_t* data_;
  std::size_t begin_, pos_, end_;
  std::string ctx_, where_, limit_;
};

/// Appends little-endian values to a byte buffer; lengths written before their content are
/// patched afterwards (begin_length / end_length).
class ByteWriter {
 public:
  std::size_t size() const { return out_.size(); }
  const std::vector<std::uint8_t>& bytes() const { return out_; }
  std::vector<std::uint8_t>& bytes() { return out_; }
  /// The bytes written; the writer is left empty.
  std::vector<std::uint8_t> take() { return std::exchange(out_, {}); }
  void reserve(std::size_t n) { out_.reserve(n); }

  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16le(std::uint16_t v) { le(v); }
  void u32le(std::uint32_t v) { le(v); }
  void u64le(std::uint64_t v) { le(v); }
  /// One value of type E (an integer, float or double), little-endian, bit for bit.
  template <class E>
  void le(E x) {
    using U = typename same_size_unsigned<E>::type;
    U u;
    std::memcpy(&u, &x, sizeof u);
    for (std::size_t k = 0; k < sizeof(U); ++k) out_.push_back(static_cast<std::uint8_t>(u >> (8 * k)));
  }
  /// `count` values of type E, little-endian, bit for bit.
  template <class E>
  void values_le(const E* p, std::size_t count) {
    (void)same_size_unsigned<E>{};
    if (count == 0) return;
    if (host_little_endian()) {
      const std::size_t at = out_.size();
      out_.resize(at + count * sizeof(E));
      std::memcpy(out_.data() + at, p, count * sizeof(E));
      return;
    }
    for (std::size_t k = 0; k < count; ++k) le(p[k]);
  }

  void raw(const std::uint8_t* p, std::size_t n) {
    if (n == 0) return;
    const std::size_t at = out_.size();
    out_.resize(at + n);
    std::memcpy(out_.data() + at, p, n);
  }
  void raw(const std::string& s) { raw(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()); }
  /// A u32 little-endian byte length, then the bytes; ValueError for more than 2^32 - 1 bytes.
  void str32(const std::string& s) {
    if (s.size() > std::numeric_limits<std::uint32_t>::max())
      throw ValueError(concat("ByteWriter::str32: a string of ", s.size(), " bytes; at most 2^32 - 1 fit"));
    u32le(static_cast<std::uint32_t>(s.size()));
    raw(s);
  }

  /// Overwrites the 4 (8) bytes at `at` with `v`, little-endian.
  void patch_u32le(std::size_t at, std::uint32_t v) { patch(at, v); }
  void patch_u64le(std::size_t at, std::uint64_t v) { patch(at, v); }

  /// Writes a u64 placeholder for the length of what follows; returns its offset for end_length.
  std::size_t begin_length() {
    const std::size_t at = out_.size();
    u64le(0);
    return at;
  }
  /// Patches the placeholder at `at` with the number of bytes written after it.
  void end_length(std::size_t at) { patch_u64le(at, out_.size() - (at + 8)); }

 private:
  template <class U>
  void patch(std::size_t at, U v) {
    if (at > out_.size() || out_.size() - at < sizeof(U))
      throw ValueError(concat("ByteWriter: patch of ", sizeof(U), " bytes at offset ", at, " past the end (",
                              out_.size(), " bytes written)"));
    for (std::size_t k = 0; k < sizeof(U); ++k) out_[at + k] = static_cast<std::uint8_t>(v >> (8 * k));
  }

  std::vector<std::uint8_t> out_;
};

}  // namespace cellflow::detail
