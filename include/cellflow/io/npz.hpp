// NumPy .npz archives: reading and writing float arrays by name, and loading or saving a
// VariableList by TensorFlow variable name.
//
// A TF1 program exports its weights with
//     np.savez("w.npz", **{v.name[:-2]: sess.run(v) for v in tf.global_variables()})
// (or np.savez_compressed). An .npz file is a ZIP archive with one member "<name>.npy" per array;
// a .npy member is the magic "\x93NUMPY", a version (1.0, 2.0 or 3.0), a little-endian header
// length (2 bytes in 1.0, 4 bytes after), a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (7, 16), } padded with spaces and a newline,
// then the elements in C (row-major) order.
//
// Supported: ZIP members stored (method 0) or deflated (method 8), the zip64 extra field numpy
// writes into every local header, data descriptors (bit 3, written by zipfile on unseekable
// streams); arrays of dtype '<f4' or '<f8' in C order, any rank, 0-D included (Fortran order is
// accepted only where it is the same layout, i.e. at most one dimension above 1). Everything else
// is an IOError naming the operation, the file, the member and what was found: other dtypes
// ('>f4', '<f2', '<i8', '|u1', objects, structured), Fortran order, malformed or oversized
// headers, truncated or trailing data, CRC-32 mismatches, corrupt deflate streams, duplicate
// names, encryption, other compression methods, multi-disk and zip64-directory archives.
//
// Memory: no size field is trusted before it is checked against the real data. The archive
// (file) and the members' total uncompressed size are capped at `kMaxNpzBytes` (4 GiB); a
// stored member's size must equal its bytes; a deflated member may claim at most 1032 times its
// compressed size (deflate's maximum ratio), and its output buffer grows only as decompressed bytes
// arrive; an array is allocated only after its shape times its item size has been checked
// against the member's real data size. A 200-byte file claiming a 10^15-element array costs
// nothing.
//
// Writing: '<f4' for float, '<f8' for double, .npy version 1.0, C order, numpy's header layout
// (padded to 64 bytes); members stored or deflated (zlib level 6, like numpy), without timestamps
// (1980-01-01), so the same arrays always give the same bytes. Files are written to a temporary
// file in the target's directory and renamed over the target: a failed save leaves the previous
// file as it was and removes the temporary. A read-only existing target is refused.
//
// Needs zlib: link `cellflow::io` (not `cellflow::cellflow`) to use this header.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define CELLFLOW_NPZ_POSIX 1
#endif

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"

namespace cellflow::io {

/// The largest .npz archive (file or buffer) read, and the largest total uncompressed size of
/// its members: 4 GiB. Larger archives would need zip64 directories, which are not read.
inline constexpr std::uint64_t kMaxNpzBytes = std::uint64_t(1) << 32;

/// The largest .npy header read (numpy writes 64..128 bytes for a float array).
inline constexpr std::size_t kMaxNpyHeaderBytes = 65536;

/// The most dimensions an array may have (numpy 2's limit).
inline constexpr std::size_t kMaxNpyRank = 64;

/// The element types cellflow reads and writes: little-endian IEEE float32 and float64.
enum class NpyDType { float32, float64 };

/// numpy's descr string: "<f4" or "<f8".
inline const char* npy_descr(NpyDType t) { return t == NpyDType::float32 ? "<f4" : "<f8"; }

/// Bytes per element: 4 or 8.
inline std::size_t npy_itemsize(NpyDType t) { return t == NpyDType::float32 ? 4 : 8; }

namespace detail {
using cellflow::detail::check_scalar;
using cellflow::detail::concat;

static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == 4, "cellflow npz: float must be IEEE binary32");
static_assert(std::numeric_limits<double>::is_iec559 && sizeof(double) == 8, "cellflow npz: double must be IEEE binary64");

/// The number of elements of `shape`, or `limit + 1` when it exceeds `limit` (no overflow).
inline std::uint64_t npy_element_count(const std::vector<Index>& shape, std::uint64_t limit) {
  for (const Index d : shape)
    if (d == 0) return 0;
  std::uint64_t n = 1;
  for (const Index d : shape) {
    const auto u = static_cast<std::uint64_t>(d);
    if (n > limit / u) return limit + 1;
    n *= u;
  }
  return n;
}

/// A string safe to print in a message: bytes outside printable ASCII as \xNN, at most `max` chars.
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

inline std::string hex32(std::uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s = "0x00000000";
  for (int k = 0; k < 8; ++k) s[static_cast<std::size_t>(9 - k)] = digits[(v >> (4 * k)) & 0xfu];
  return s;
}

inline bool host_little_endian() {
  const std::uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
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
}  // namespace detail

/// One array of an .npz archive: its shape (numpy's, so a TF 1-D variable is {n}, a scalar {})
/// and its elements in C order, kept in the dtype they were read or built with.
class NpyArray {
 public:
  /// An empty float64 array of shape [0].
  NpyArray() : shape_{0}, data_(std::vector<double>{}) {}
  /// A '<f4' array; throws ShapeError unless the shape's element count is values.size().
  NpyArray(std::vector<Index> shape, std::vector<float> values) : shape_(std::move(shape)), data_(std::move(values)) {
    check();
  }
  /// A '<f8' array; throws ShapeError unless the shape's element count is values.size().
  NpyArray(std::vector<Index> shape, std::vector<double> values) : shape_(std::move(shape)), data_(std::move(values)) {
    check();
  }

  NpyDType dtype() const { return data_.index() == 0 ? NpyDType::float32 : NpyDType::float64; }
  /// "<f4" or "<f8".
  std::string descr() const { return npy_descr(dtype()); }
  const std::vector<Index>& shape() const { return shape_; }
  std::size_t rank() const { return shape_.size(); }
  /// Number of elements (1 for a 0-D array).
  std::size_t size() const {
    return std::visit([](const auto& v) { return v.size(); }, data_);
  }

  /// The elements when the dtype is float32 (float64), else nullptr.
  const float* float32_data() const {
    const auto* v = std::get_if<std::vector<float>>(&data_);
    return v ? v->data() : nullptr;
  }
  const double* float64_data() const {
    const auto* v = std::get_if<std::vector<double>>(&data_);
    return v ? v->data() : nullptr;
  }

  /// Element k (C order) converted to T (a float64 value rounds to nearest as a float).
  template <class T>
  T value(std::size_t k) const {
    detail::check_scalar<T>();
    if (k >= size())
      throw ValueError(detail::concat("NpyArray::value: index ", k, " out of range for ", size(), " elements"));
    return std::visit([k](const auto& v) { return static_cast<T>(v[k]); }, data_);
  }

  /// Writes the size() elements, converted to T, to `out`.
  template <class T>
  void copy_to(T* out) const {
    detail::check_scalar<T>();
    std::visit(
        [out](const auto& v) {
          for (std::size_t k = 0; k < v.size(); ++k) out[k] = static_cast<T>(v[k]);
        },
        data_);
  }

  /// All elements converted to T, in C order.
  template <class T>
  std::vector<T> values() const {
    std::vector<T> out(size());
    copy_to(out.data());
    return out;
  }

  /// The array as cellflow stores variables: rank 0 -> 1 x 1, rank 1 [n] -> 1 x n,
  /// rank 2 [r, c] -> r x c (row-major). Other ranks throw ShapeError.
  template <class T>
  Matrix<T> to_matrix() const {
    Index rows = 1, cols = 1;
    if (rank() == 1) cols = shape_[0];
    if (rank() == 2) {
      rows = shape_[0];
      cols = shape_[1];
    }
    if (rank() > 2)
      throw ShapeError(detail::concat("NpyArray::to_matrix: rank ", rank(), " array of shape ", shape_string(shape_),
                                      "; a matrix needs rank 0, 1 or 2"));
    Matrix<T> m(rows, cols);
    copy_to(m.data());
    return m;
  }

  /// Same dtype, same shape and the same bytes (NaN payloads and signed zeros included).
  bool bitwise_equal(const NpyArray& other) const {
    if (dtype() != other.dtype() || shape_ != other.shape_ || size() != other.size()) return false;
    const void* a = dtype() == NpyDType::float32 ? static_cast<const void*>(float32_data()) : float64_data();
    const void* b = dtype() == NpyDType::float32 ? static_cast<const void*>(other.float32_data()) : other.float64_data();
    return size() == 0 || std::memcmp(a, b, size() * npy_itemsize(dtype())) == 0;
  }

 private:
  void check() const {
    if (shape_.size() > kMaxNpyRank)
      throw ShapeError(detail::concat("NpyArray: ", shape_.size(), " dimensions, at most ", kMaxNpyRank, " supported"));
    for (const Index d : shape_)
      if (d < 0) throw ShapeError(detail::concat("NpyArray: negative dimension in shape ", shape_string(shape_)));
    const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() / 16;
    const std::uint64_t n = detail::npy_element_count(shape_, limit);
    if (n != size())
      throw ShapeError(detail::concat("NpyArray: shape ", shape_string(shape_), " needs ", n > limit ? "more than " : "",
                                      n > limit ? limit : n, " values, given ", size()));
  }

  std::vector<Index> shape_;
  std::variant<std::vector<float>, std::vector<double>> data_;
};

/// One named array of an archive. The name is numpy's key: the member name without ".npy".
struct NpzEntry {
  std::string name;
  NpyArray array;
};

/// The arrays of an .npz archive by name, in archive order.
class NpzArchive {
 public:
  /// Adds an array. Throws ValueError for an empty name, a name with a NUL byte, a name longer
  /// than 65531 bytes (a ZIP name holds 65535 bytes with ".npy"), or a name already present.
  NpzArchive& add(const std::string& name, NpyArray array) {
    if (name.empty()) throw ValueError("NpzArchive::add: empty array name");
    if (name.find('\0') != std::string::npos)
      throw ValueError(detail::concat("NpzArchive::add: array name '", detail::printable(name), "' contains a NUL byte"));
    if (name.size() > 65531)
      throw ValueError(detail::concat("NpzArchive::add: array name of ", name.size(),
                                      " bytes; a ZIP member name (with \".npy\") holds at most 65535"));
    if (index_.count(name) != 0)
      throw ValueError(detail::concat("NpzArchive::add: duplicate array name '", detail::printable(name), "'"));
    index_.emplace(name, entries_.size());
    entries_.push_back(NpzEntry{name, std::move(array)});
    return *this;
  }

  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  /// The array with this name, or nullptr.
  const NpyArray* find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second].array;
  }

  /// The array with this name; throws ValueError listing the archive's names if absent.
  const NpyArray& at(const std::string& name) const {
    if (const NpyArray* a = find(name)) return *a;
    std::string known;
    for (const auto& e : entries_) known += "\n  " + detail::printable(e.name);
    throw ValueError(detail::concat("NpzArchive::at: no array named '", detail::printable(name), "'; the archive has ",
                                    entries_.size(), " arrays", entries_.empty() ? "" : ":", known));
  }

  /// The names in archive order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) out.push_back(e.name);
    return out;
  }

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  std::vector<NpzEntry> entries_;
  std::map<std::string, std::size_t> index_;
};

/// What load_npz accepts besides an exact match.
struct NpzLoadOptions {
  /// Ignore arrays that are not variables of the model (a TF1 dump of tf.global_variables()
  /// holds Adam slots, beta powers and an int64 global_step). Such members are still checked as
  /// ZIP members (sizes, CRC-32) but not decoded, so their dtype does not matter.
  bool allow_extra = false;
};

namespace detail {

constexpr std::uint32_t kZipLocalSig = 0x04034b50u;       // "PK\3\4"
constexpr std::uint32_t kZipCentralSig = 0x02014b50u;     // "PK\1\2"
constexpr std::uint32_t kZipEndSig = 0x06054b50u;         // "PK\5\6"
constexpr std::uint32_t kZipDescriptorSig = 0x08074b50u;  // "PK\7\8"
constexpr std::uint32_t kZip64LocatorSig = 0x07064b50u;   // "PK\6\7"
constexpr std::uint32_t kZipNoValue32 = 0xffffffffu;      // "see the zip64 extra field"
constexpr std::uint64_t kDeflateMaxRatio = 1032;          // deflate's largest expansion on inflate
constexpr std::size_t kZlibChunk = std::size_t(1) << 30;  // zlib counts in 32-bit uInt

inline std::uint16_t le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
inline std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 24);
}
inline std::uint64_t le64(const std::uint8_t* p) { return std::uint64_t(le32(p)) | (std::uint64_t(le32(p + 4)) << 32); }

inline void put16(std::vector<std::uint8_t>& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}
inline void put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  put16(out, v & 0xffffu);
  put16(out, v >> 16);
}

inline std::uint32_t crc32_of(const std::uint8_t* p, std::size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const std::size_t chunk = std::min(n, kZlibChunk);
    crc = crc32(crc, p, static_cast<uInt>(chunk));
    p += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

/// The operation and the file (or buffer name) every message starts with.
struct NpzContext {
  std::string op, source;

  [[noreturn]] void fail(const std::string& what) const { throw IOError(concat(op, ": '", source, "': ", what)); }
  [[noreturn]] void fail_member(const std::string& member, const std::string& what) const {
    fail(concat("member '", printable(member), "': ", what));
  }
};

inline std::string npy_descr_meaning(const std::string& d) {
  if (d.size() < 2) return "";
  std::string order;
  if (d[0] == '>') order = "big-endian ";
  else if (d[0] == '=') order = "native-order ";
  else if (d[0] != '<' && d[0] != '|') return "";
  const std::string digits = d.substr(2);
  if (digits.empty() && d[1] != 'O') return "";
  int bytes = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9' || bytes > 1000) return "";
    bytes = bytes * 10 + (c - '0');
  }
  const std::string bits = std::to_string(8 * bytes);
  switch (d[1]) {
    case 'f': return " (" + order + "float" + bits + ")";
    case 'i': return " (" + order + "int" + bits + ")";
    case 'u': return " (" + order + "uint" + bits + ")";
    case 'c': return " (" + order + "complex" + bits + ")";
    case 'b': return " (bool)";
    case 'O': return " (Python objects, pickled)";
    case 'S': return " (byte strings)";
    case 'U': return " (unicode strings)";
    case 'V': return " (raw void records)";
    case 'M': return " (datetime64)";
    case 'm': return " (timedelta64)";
    default: return "";
  }
}

/// A parsed Python literal of a .npy header. Only what numpy writes is accepted: dicts, tuples,
/// lists, strings, integers, True, False, None.
struct PyLiteral {
  enum class Kind { string, integer, boolean, none, tuple, list, dict };
  Kind kind = Kind::none;
  std::string text;               // string: its characters; integer: its digits with sign
  bool flag = false;              // boolean: its value
  std::vector<PyLiteral> items;   // tuple/list: elements; dict: key, value, key, value, ...
};

class PyLiteralParser {
 public:
  PyLiteralParser(const std::string& text, const NpzContext& ctx, const std::string& member)
      : s_(text), ctx_(ctx), member_(member) {}

  PyLiteral parse_all() {
    PyLiteral v = value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected characters after the dict");
    return v;
  }

  [[noreturn]] void fail(const std::string& what) const {
    ctx_.fail_member(member_, concat("malformed .npy header: ", what, " at header byte ", pos_, " (header: \"",
                                     printable(s_, 200), "\")"));
  }

 private:
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool at(char c) {
    skip_ws();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  void expect(char c, const char* context) {
    if (!at(c)) fail(concat("expected '", c, "' ", context, pos_ < s_.size() ? "" : " but the header ended"));
    ++pos_;
  }
  bool word(const char* w) {
    const std::size_t n = std::strlen(w);
    if (s_.compare(pos_, n, w) != 0) return false;
    const std::size_t end = pos_ + n;
    if (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_')) return false;
    pos_ = end;
    return true;
  }

  PyLiteral value(int depth) {
    if (depth > 16) fail("nested more than 16 levels deep");
    skip_ws();
    if (pos_ >= s_.size()) fail("expected a value but the header ended");
    const char c = s_[pos_];
    PyLiteral v;
    if (c == '\'' || c == '"') {
      v.kind = PyLiteral::Kind::string;
      v.text = string_literal();
    } else if (c == '-' || c == '+' || (c >= '0' && c <= '9')) {
      v.kind = PyLiteral::Kind::integer;
      if (c == '-' || c == '+') v.text += s_[pos_++];
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') fail("expected a digit");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') v.text += s_[pos_++];
      if (pos_ < s_.size() && (s_[pos_] == 'L' || s_[pos_] == 'l')) ++pos_;  // Python 2 long
    } else if (c == '(' || c == '[') {
      ++pos_;
      const char close = c == '(' ? ')' : ']';
      bool comma = false;
      while (!at(close)) {
        v.items.push_back(value(depth + 1));
        if (at(',')) {
          ++pos_;
          comma = true;
        } else if (!at(close)) {
          fail(concat("expected ',' or '", close, "'"));
        }
      }
      ++pos_;
      if (c == '(' && v.items.size() == 1 && !comma) return std::move(v.items[0]);  // (x) is x
      v.kind = c == '(' ? PyLiteral::Kind::tuple : PyLiteral::Kind::list;
    } else if (c == '{') {
      ++pos_;
      v.kind = PyLiteral::Kind::dict;
      while (!at('}')) {
        v.items.push_back(value(depth + 1));
        expect(':', "after a dict key");
        v.items.push_back(value(depth + 1));
        if (at(',')) {
          ++pos_;
        } else if (!at('}')) {
          fail("expected ',' or '}'");
        }
      }
      ++pos_;
    } else if (word("True")) {
      v.kind = PyLiteral::Kind::boolean;
      v.flag = true;
    } else if (word("False")) {
      v.kind = PyLiteral::Kind::boolean;
    } else if (word("None")) {
      v.kind = PyLiteral::Kind::none;
    } else {
      fail(concat("unexpected character '", printable(std::string(1, c)), "'"));
    }
    return v;
  }

  std::string string_literal() {
    const char quote = s_[pos_++];
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\') {
        if (++pos_ >= s_.size()) break;
      }
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) fail("unterminated string");
    ++pos_;
    return out;
  }

  const std::string& s_;
  const NpzContext& ctx_;
  const std::string& member_;
  std::size_t pos_ = 0;
};

/// Parses one .npy member (`bytes`, `n` bytes: header and data).
inline NpyArray parse_npy(const std::uint8_t* bytes, std::size_t n, const NpzContext& ctx, const std::string& member) {
  const auto fail = [&](const std::string& what) { ctx.fail_member(member, what); };
  static const std::uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (n < 10) fail(concat("truncated .npy data: ", n, " bytes, the smallest .npy header takes 10"));
  if (std::memcmp(bytes, magic, 6) != 0) {
    std::string found;
    for (int k = 0; k < 6; ++k) found += static_cast<char>(bytes[k]);
    fail(concat("not a .npy array: the data starts with \"", printable(found), "\", expected \"\\x93NUMPY\""));
  }
  const int major = bytes[6], minor = bytes[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    fail(concat("unsupported .npy format version ", major, ".", minor, " (cellflow reads 1.0, 2.0 and 3.0)"));
  const std::size_t prefix = major == 1 ? 10 : 12;
  if (n < prefix) fail(concat("truncated .npy data: ", n, " bytes, a version ", major, ".0 header takes at least ", prefix));
  const std::uint64_t hlen = major == 1 ? le16(bytes + 8) : le32(bytes + 8);
  if (hlen > kMaxNpyHeaderBytes)
    fail(concat(".npy header length ", hlen, " (bytes 8..", prefix - 1, ") exceeds the ", kMaxNpyHeaderBytes,
                "-byte limit (corrupt header?)"));
  if (hlen > n - prefix)
    fail(concat("truncated .npy header: it claims ", hlen, " bytes, the member has ", n - prefix, " after the ",
                prefix, "-byte prefix"));
  const std::string header(reinterpret_cast<const char*>(bytes + prefix), static_cast<std::size_t>(hlen));

  PyLiteralParser parser(header, ctx, member);
  const PyLiteral dict = parser.parse_all();
  if (dict.kind != PyLiteral::Kind::dict) parser.fail("the header is not a Python dict literal");
  const PyLiteral *descr = nullptr, *fortran = nullptr, *shape = nullptr;
  const auto bad = [&](const std::string& what) {
    fail(concat("malformed .npy header: ", what, " (header: \"", printable(header, 200), "\")"));
  };
  for (std::size_t k = 0; k + 1 < dict.items.size(); k += 2) {
    const PyLiteral& key = dict.items[k];
    if (key.kind != PyLiteral::Kind::string) bad("a key is not a string");
    const PyLiteral** slot = key.text == "descr"           ? &descr
                             : key.text == "fortran_order" ? &fortran
                             : key.text == "shape"         ? &shape
                                                           : nullptr;
    if (slot == nullptr)
      bad(concat("unexpected key '", printable(key.text),
                 "' (a .npy header has exactly 'descr', 'fortran_order' and 'shape')"));
    if (*slot != nullptr) bad(concat("key '", key.text, "' appears twice"));
    *slot = &dict.items[k + 1];
  }
  if (descr == nullptr) bad("no 'descr' key");
  if (fortran == nullptr) bad("no 'fortran_order' key");
  if (shape == nullptr) bad("no 'shape' key");
  if (fortran->kind != PyLiteral::Kind::boolean) bad("'fortran_order' is not True or False");
  if (shape->kind != PyLiteral::Kind::tuple) bad("'shape' is not a tuple");
  if (shape->items.size() > kMaxNpyRank)
    bad(concat("'shape' has ", shape->items.size(), " dimensions, at most ", kMaxNpyRank, " are supported"));
  std::vector<Index> dims;
  for (const PyLiteral& d : shape->items) {
    if (d.kind != PyLiteral::Kind::integer) bad("'shape' holds something other than integers");
    if (d.text[0] == '-' && d.text.find_first_not_of("-0") != std::string::npos)
      bad(concat("negative dimension ", printable(d.text), " in 'shape'"));
    std::uint64_t v = 0;
    for (const char c : d.text) {
      if (c < '0' || c > '9') continue;
      const auto digit = static_cast<std::uint64_t>(c - '0');
      if (v > (static_cast<std::uint64_t>(std::numeric_limits<Index>::max()) - digit) / 10)
        bad(concat("dimension ", printable(d.text), " in 'shape' is too large"));
      v = v * 10 + digit;
    }
    dims.push_back(static_cast<Index>(v));
  }

  if (descr->kind == PyLiteral::Kind::list)
    fail("unsupported dtype: a structured dtype (a list of fields); cellflow reads '<f4' (float32) and '<f8' (float64)");
  if (descr->kind != PyLiteral::Kind::string) bad("'descr' is not a string");
  NpyDType dtype = NpyDType::float32;
  if (descr->text == "<f8") {
    dtype = NpyDType::float64;
  } else if (descr->text != "<f4") {
    fail(concat("unsupported dtype '", printable(descr->text), "'", npy_descr_meaning(descr->text),
                "; cellflow reads '<f4' (float32) and '<f8' (float64)"));
  }
  if (fortran->flag && std::count_if(dims.begin(), dims.end(), [](Index d) { return d > 1; }) > 1)
    fail(concat("Fortran (column-major) order, shape ", shape_string(dims),
                "; cellflow reads C order (save np.ascontiguousarray(a))"));

  const std::uint64_t available = n - prefix - hlen;
  const std::size_t item = npy_itemsize(dtype);
  const std::uint64_t count = npy_element_count(dims, available / item);
  if (count > available / item)
    fail(concat("truncated array data: shape ", shape_string(dims), " of '", npy_descr(dtype), "' needs more than ",
                available, " bytes, the member holds ", available, " after its header"));
  if (count * item != available)
    fail(concat(available - count * item, " bytes after the array data (shape ", shape_string(dims), " of '",
                npy_descr(dtype), "' takes ", count * item, " bytes, the member holds ", available,
                " after its header)"));
  const std::uint8_t* data = bytes + prefix + hlen;
  const auto elements = static_cast<std::size_t>(count);
  if (dtype == NpyDType::float32) {
    std::vector<float> v(elements);
    decode_le(data, elements, v.data());
    return NpyArray(std::move(dims), std::move(v));
  }
  std::vector<double> v(elements);
  decode_le(data, elements, v.data());
  return NpyArray(std::move(dims), std::move(v));
}

/// zlib's raw inflate of one member: exactly `csize` input bytes must decode to exactly `usize`
/// bytes. The output grows only as bytes arrive (never beyond usize + 1).
inline std::vector<std::uint8_t> inflate_member(const std::uint8_t* in, std::uint64_t csize, std::uint64_t usize,
                                                const NpzContext& ctx, const std::string& member) {
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) ctx.fail_member(member, "cannot initialise zlib");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&zs};
  const std::uint64_t cap = usize + 1;  // one byte more than promised detects an overlong stream
  std::vector<std::uint8_t> out(static_cast<std::size_t>(std::min<std::uint64_t>(cap, std::max<std::uint64_t>(65536, 2 * csize))));
  std::uint64_t produced = 0, in_left = csize;
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(in_left, kZlibChunk));
      zs.next_in = const_cast<Bytef*>(in);  // zlib's API is not const-correct; it does not write
      zs.avail_in = static_cast<uInt>(chunk);
      in += chunk;
      in_left -= chunk;
    }
    if (produced == out.size())
      out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(cap, 2 * static_cast<std::uint64_t>(out.size()))));
    const auto room = static_cast<std::size_t>(std::min<std::uint64_t>(out.size() - produced, kZlibChunk));
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(room);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (produced > usize)
      ctx.fail_member(member, concat("the deflate stream decompresses to more than the ", usize,
                                     " bytes the archive promises"));
    if (rc == Z_STREAM_END) break;
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0)
      ctx.fail_member(member, concat("corrupt deflate stream: the ", csize, " compressed bytes end before the stream does (",
                                     produced, " of ", usize, " bytes decompressed; truncated?)"));
    ctx.fail_member(member, concat("corrupt deflate stream (zlib error ", rc, ": ",
                                   zs.msg != nullptr ? zs.msg : zError(rc), ") after ", produced, " decompressed bytes"));
  }
  const std::uint64_t left = zs.avail_in + in_left;
  if (left != 0)
    ctx.fail_member(member, concat("corrupt deflate stream: ", left, " of its ", csize,
                                   " compressed bytes follow the end of the stream"));
  if (produced != usize)
    ctx.fail_member(member, concat("the deflate stream decompresses to ", produced, " bytes, the archive promises ", usize));
  out.resize(static_cast<std::size_t>(produced));
  return out;
}

/// One central-directory entry, its sizes resolved (zip64) and its local header checked.
struct ZipMember {
  std::string name;
  std::size_t entry = 0;
  std::uint16_t flags = 0, method = 0;
  std::uint32_t crc = 0;
  std::uint64_t csize = 0, usize = 0, local_offset = 0, data_offset = 0, span_end = 0;
};

/// Finds the zip64 extended-information field (id 0x0001) in an extra field; `ok` is false when
/// the extra field is malformed (a record running past its end).
struct ExtraScan {
  const std::uint8_t* zip64 = nullptr;
  std::size_t zip64_len = 0;
  bool ok = true;
};
inline ExtraScan scan_extra(const std::uint8_t* p, std::size_t len) {
  ExtraScan s;
  std::size_t off = 0;
  while (len - off >= 4) {  // fewer than 4 trailing bytes are padding (zipalign writes some)
    const std::uint16_t id = le16(p + off), size = le16(p + off + 2);
    if (size > len - off - 4) {
      s.ok = false;
      return s;
    }
    if (id == 0x0001 && s.zip64 == nullptr) {
      s.zip64 = p + off + 4;
      s.zip64_len = size;
    }
    off += 4 + std::size_t(size);
  }
  return s;
}

/// Replaces the 32-bit fields equal to 0xffffffff, in order, by the zip64 field's 64-bit values.
/// Returns false when the zip64 field is absent or too short.
inline bool resolve_zip64(const ExtraScan& extra, std::initializer_list<std::uint64_t*> fields) {
  std::size_t off = 0;
  for (std::uint64_t* f : fields) {
    if (*f != kZipNoValue32) continue;
    if (extra.zip64 == nullptr || extra.zip64_len - off < 8) return false;
    *f = le64(extra.zip64 + off);
    off += 8;
  }
  return true;
}

inline const char* zip_method_name(unsigned m) {
  switch (m) {
    case 1: return " (shrink)";
    case 6: return " (implode)";
    case 9: return " (deflate64)";
    case 12: return " (bzip2)";
    case 14: return " (LZMA)";
    case 93: return " (zstd)";
    case 95: return " (xz)";
    case 99: return " (AES encryption)";
    default: return "";
  }
}

/// Reads the central directory and checks each member's local header; returns the members in
/// central-directory order.
inline std::vector<ZipMember> read_zip_directory(const std::uint8_t* data, std::size_t size, const NpzContext& ctx) {
  if (size == 0) ctx.fail("empty (0 bytes), not an .npz archive");
  if (size >= 6 && std::memcmp(data, "\x93NUMPY", 6) == 0)
    ctx.fail("this is a single .npy array, not an .npz archive (numpy: np.savez / np.load)");
  if (size < 22)
    ctx.fail(concat("not an .npz (ZIP) archive: ", size,
                    " bytes, too short for the 22-byte end-of-central-directory record"));
  if (static_cast<std::uint64_t>(size) > kMaxNpzBytes)
    ctx.fail(concat(size, " bytes, larger than the ", kMaxNpzBytes, "-byte limit on an .npz archive"));

  // The end-of-central-directory record: the last 22 bytes, or earlier when a comment follows it.
  std::size_t eocd = size;
  const std::size_t lowest = size - 22 > 65535 ? size - 22 - 65535 : 0;
  for (std::size_t pos = size - 22 + 1; pos-- > lowest;) {
    if (le32(data + pos) == kZipEndSig && pos + 22 + le16(data + pos + 20) == size) {
      eocd = pos;
      break;
    }
  }
  if (eocd == size)
    ctx.fail("not an .npz (ZIP) archive: no end-of-central-directory record (\"PK\\5\\6\") at its end "
             "(truncated, or not a ZIP file)");
  if (eocd >= 20 && le32(data + eocd - 20) == kZip64LocatorSig)
    ctx.fail("zip64 end-of-central-directory record (an archive over 4 GiB or with over 65535 members): not supported");
  const std::uint8_t* e = data + eocd;
  const unsigned disk = le16(e + 4), cd_disk = le16(e + 6), n_disk = le16(e + 8), n_total = le16(e + 10);
  const std::uint64_t cd_size = le32(e + 12), cd_offset = le32(e + 16);
  if (disk != 0 || cd_disk != 0 || n_disk != n_total)
    ctx.fail(concat("multi-disk (split) ZIP archive (end-of-central-directory record at offset ", eocd, ": disk ", disk,
                    ", directory disk ", cd_disk, ", ", n_disk, " of ", n_total, " entries on this disk): not supported"));
  if (cd_offset + cd_size != eocd)
    ctx.fail(concat("the central directory (offset ", cd_offset, ", ", cd_size,
                    " bytes, from the end-of-central-directory record at offset ", eocd,
                    ") does not end where that record starts (truncated, or bytes added to the archive)"));
  if (std::uint64_t(n_total) * 46 > cd_size)
    ctx.fail(concat("the end-of-central-directory record at offset ", eocd, " declares ", n_total,
                    " members, but a central directory of ", cd_size, " bytes holds at most ", cd_size / 46));

  std::vector<ZipMember> members;
  members.reserve(n_total);  // n_total * 46 <= cd_size <= size: bounded by the real data
  std::map<std::string, std::size_t> seen;
  std::uint64_t total = 0;
  std::size_t pos = static_cast<std::size_t>(cd_offset);
  for (std::size_t k = 0; k < n_total; ++k) {
    const std::string where = concat("central directory entry ", k, " at offset ", pos);
    if (eocd - pos < 46)
      ctx.fail(concat(where, ": truncated (", eocd - pos, " bytes left in the directory, an entry takes at least 46)"));
    const std::uint8_t* p = data + pos;
    if (le32(p) != kZipCentralSig)
      ctx.fail(concat(where, ": signature ", hex32(le32(p)), ", expected ", hex32(kZipCentralSig), " (\"PK\\1\\2\")"));
    ZipMember m;
    m.entry = k;
    m.flags = le16(p + 8);
    m.method = le16(p + 10);
    m.crc = le32(p + 16);
    m.csize = le32(p + 20);
    m.usize = le32(p + 24);
    const std::size_t name_len = le16(p + 28), extra_len = le16(p + 30), comment_len = le16(p + 32);
    const unsigned disk_start = le16(p + 34);
    m.local_offset = le32(p + 42);
    if (eocd - pos - 46 < name_len + extra_len + comment_len)
      ctx.fail(concat(where, ": its name, extra field and comment (", name_len + extra_len + comment_len,
                      " bytes) run past the end of the central directory"));
    m.name.assign(reinterpret_cast<const char*>(p + 46), name_len);
    if (m.name.empty()) ctx.fail(concat(where, ": empty member name"));
    const auto fail = [&](const std::string& what) { ctx.fail_member(m.name, concat(what, " (", where, ")")); };
    const ExtraScan extra = scan_extra(p + 46 + name_len, extra_len);
    if (!extra.ok) fail("malformed extra field in the central directory");
    if (!resolve_zip64(extra, {&m.usize, &m.csize, &m.local_offset}))
      fail("sizes or offset of 0xffffffff without a zip64 extra field holding them");
    if (disk_start != 0) fail(concat("starts on disk ", disk_start, ": multi-disk archives are not supported"));
    if (m.name.find('\0') != std::string::npos) fail("the name contains a NUL byte");
    if ((m.flags & 0x0001u) != 0) fail("encrypted: cellflow reads unencrypted archives only");
    if ((m.flags & ~0x080eu) != 0)
      fail(concat("unsupported ZIP flags ", hex32(m.flags), " (cellflow knows bits 1-3 and 11)"));
    if (m.method != 0 && m.method != 8)
      fail(concat("compression method ", m.method, zip_method_name(m.method),
                  " is not supported; cellflow reads stored (0) and deflated (8) members"));
    if (m.name.size() <= 4 || m.name.compare(m.name.size() - 4, 4, ".npy") != 0)
      fail(m.name.size() == 4 && m.name == ".npy" ? std::string("an empty array name")
                                                  : std::string("not a .npy array: every member of an .npz archive is "
                                                                "named \"<array name>.npy\""));
    const auto [it, fresh] = seen.emplace(m.name, k);
    if (!fresh) fail(concat("duplicate member name (central directory entries ", it->second, " and ", k, ")"));
    total += m.usize;
    if (total > kMaxNpzBytes)
      fail(concat("the members' total uncompressed size reaches ", total, " bytes, over the ", kMaxNpzBytes,
                  "-byte limit on an .npz archive"));
    if (m.method == 0 && m.csize != m.usize)
      fail(concat("stored (uncompressed) member with a compressed size of ", m.csize, " bytes and an uncompressed size of ",
                  m.usize));
    if (m.method == 8 && m.usize > kDeflateMaxRatio * m.csize)
      fail(concat("claims ", m.usize, " uncompressed bytes from ", m.csize, " compressed bytes; deflate expands at most ",
                  kDeflateMaxRatio, " times (corrupt size field?)"));
    if (m.local_offset >= cd_offset)
      fail(concat("local header offset ", m.local_offset, " is not before the central directory at offset ", cd_offset));
    members.push_back(std::move(m));
    pos += 46 + name_len + extra_len + comment_len;
  }
  if (pos != eocd)
    ctx.fail(concat("the central directory has ", eocd - pos, " bytes after its ", n_total,
                    " entries (wrong entry count in the end-of-central-directory record?)"));

  // Local headers: they must agree with the directory; the data must end before the directory.
  for (ZipMember& m : members) {
    const std::uint64_t lo = m.local_offset;
    const auto fail = [&](const std::string& what) {
      ctx.fail_member(m.name, concat("local header at offset ", lo, ": ", what));
    };
    if (cd_offset - lo < 30) fail(concat("truncated (", cd_offset - lo, " bytes before the central directory, a header takes 30)"));
    const std::uint8_t* p = data + lo;
    if (le32(p) != kZipLocalSig)
      fail(concat("signature ", hex32(le32(p)), ", expected ", hex32(kZipLocalSig), " (\"PK\\3\\4\")"));
    const std::uint16_t flags = le16(p + 6), method = le16(p + 8);
    const std::uint32_t crc = le32(p + 14);
    std::uint64_t csize = le32(p + 18), usize = le32(p + 22);
    const std::size_t name_len = le16(p + 26), extra_len = le16(p + 28);
    if (cd_offset - lo - 30 < name_len + extra_len)
      fail("its name and extra field run into the central directory (truncated?)");
    const std::string name(reinterpret_cast<const char*>(p + 30), name_len);
    if (name != m.name) fail(concat("names the member '", printable(name), "' (the central directory disagrees)"));
    if (method != m.method)
      fail(concat("compression method ", method, ", the central directory says ", m.method));
    if ((flags & 0x0001u) != 0) fail("encrypted: cellflow reads unencrypted archives only");
    if (((flags ^ m.flags) & 0x0008u) != 0) fail("the data-descriptor flag (bit 3) disagrees with the central directory");
    const ExtraScan extra = scan_extra(p + 30 + name_len, extra_len);
    if (!extra.ok) fail("malformed extra field");
    m.data_offset = lo + 30 + name_len + extra_len;
    if (cd_offset - m.data_offset < m.csize)
      fail(concat("its ", m.csize, " bytes of data from offset ", m.data_offset,
                  " run past the start of the central directory at offset ", cd_offset, " (truncated?)"));
    std::uint64_t end = m.data_offset + m.csize;
    if ((m.flags & 0x0008u) == 0) {
      if (!resolve_zip64(extra, {&usize, &csize}))
        fail("sizes of 0xffffffff without a zip64 extra field holding them");
      if (crc != m.crc || csize != m.csize || usize != m.usize)
        fail(concat("CRC-32 ", hex32(crc), ", sizes ", csize, " / ", usize, " (compressed / uncompressed); the central directory says ",
                    hex32(m.crc), ", ", m.csize, " / ", m.usize));
    } else {
      // A data descriptor follows the data: [signature] CRC-32, sizes (8 bytes each with zip64).
      const std::size_t w = extra.zip64 != nullptr ? 8 : 4;
      const auto matches = [&](std::uint64_t at) {
        if (cd_offset - at < 4 + 2 * w) return false;
        const std::uint8_t* d = data + at;
        const std::uint64_t dc = w == 8 ? le64(d + 4) : le32(d + 4), du = w == 8 ? le64(d + 4 + w) : le32(d + 4 + w);
        return le32(d) == m.crc && dc == m.csize && du == m.usize;
      };
      if (cd_offset - end >= 4 && le32(data + end) == kZipDescriptorSig && matches(end + 4))
        end += 4 + 4 + 2 * w;
      else if (matches(end))
        end += 4 + 2 * w;
      else
        fail(concat("the data descriptor after its data (offset ", end,
                    ") is missing or disagrees with the central directory"));
    }
    m.span_end = end;
  }
  // Members must not overlap (overlapping members are a known ZIP-bomb construction).
  std::vector<const ZipMember*> by_offset;
  for (const ZipMember& m : members) by_offset.push_back(&m);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const ZipMember* a, const ZipMember* b) { return a->local_offset < b->local_offset; });
  for (std::size_t k = 1; k < by_offset.size(); ++k)
    if (by_offset[k - 1]->span_end > by_offset[k]->local_offset)
      ctx.fail_member(by_offset[k]->name,
                      concat("its local header at offset ", by_offset[k]->local_offset, " lies inside member '",
                             printable(by_offset[k - 1]->name), "' (offsets ", by_offset[k - 1]->local_offset, " to ",
                             by_offset[k - 1]->span_end, ")"));
  return members;
}

/// Parses a whole archive. Members whose array name `wanted` rejects are checked as ZIP members
/// (sizes, CRC-32) but not decoded and not returned.
inline NpzArchive parse_npz_impl(const std::uint8_t* data, std::size_t size, const NpzContext& ctx,
                                 const std::function<bool(const std::string&)>& wanted = {}) {
  if (data == nullptr && size != 0) ctx.fail(concat("null data pointer with size ", size));
  const std::vector<ZipMember> members = read_zip_directory(data, size, ctx);
  NpzArchive archive;
  for (const ZipMember& m : members) {
    const std::uint8_t* raw = data + m.data_offset;
    std::vector<std::uint8_t> inflated;
    const std::uint8_t* bytes = raw;
    if (m.method == 8) {
      inflated = inflate_member(raw, m.csize, m.usize, ctx, m.name);
      bytes = inflated.data();
    }
    const auto n = static_cast<std::size_t>(m.usize);
    const std::uint32_t crc = crc32_of(bytes, n);
    if (crc != m.crc)
      ctx.fail_member(m.name, concat("CRC-32 mismatch: the archive says ", hex32(m.crc), ", the data gives ", hex32(crc),
                                     " (corrupt file)"));
    std::string name = m.name.substr(0, m.name.size() - 4);
    if (wanted && !wanted(name)) continue;
    archive.add(name, parse_npy(bytes, n, ctx, m.name));
  }
  return archive;
}

struct FileCloser {
  void operator()(std::FILE* f) const noexcept {
    if (f != nullptr) std::fclose(f);
  }
};

inline std::string errno_text(int err) { return err != 0 ? std::strerror(err) : "unknown error"; }

/// The bytes of a file, at most kMaxNpzBytes of them.
inline std::vector<std::uint8_t> read_file_bytes(const NpzContext& ctx) {
  std::error_code ec;
  if (std::filesystem::is_directory(ctx.source, ec)) ctx.fail("is a directory, not an .npz file");
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(ctx.source.c_str(), "rb"));
  if (!f) ctx.fail(concat("cannot open: ", errno_text(errno)));
  std::vector<std::uint8_t> bytes;
  const auto known = std::filesystem::file_size(ctx.source, ec);
  if (!ec) {
    if (known > kMaxNpzBytes) ctx.fail(concat(known, " bytes, larger than the ", kMaxNpzBytes, "-byte limit on an .npz archive"));
    bytes.reserve(static_cast<std::size_t>(known));  // the real size of the file, not a claim
  }
  std::array<std::uint8_t, 65536> chunk{};
  for (;;) {
    errno = 0;
    const std::size_t got = std::fread(chunk.data(), 1, chunk.size(), f.get());
    if (std::ferror(f.get())) ctx.fail(concat("read error: ", errno_text(errno)));
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got));
    if (bytes.size() > kMaxNpzBytes)
      ctx.fail(concat("more than ", kMaxNpzBytes, " bytes, the limit on an .npz archive"));
    if (got < chunk.size()) break;
  }
  return bytes;
}

/// numpy's .npy encoding: version 1.0, header padded with spaces so the data starts at a
/// multiple of 64 bytes, then the elements little-endian.
inline void append_npy(const NpyArray& a, std::vector<std::uint8_t>& out) {
  std::string header = concat("{'descr': '", a.descr(), "', 'fortran_order': False, 'shape': (");
  for (std::size_t k = 0; k < a.rank(); ++k) header += concat(k ? ", " : "", a.shape()[k]);
  header += a.rank() == 1 ? ",), }" : "), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  static const std::uint8_t magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  out.insert(out.end(), magic, magic + 8);
  put16(out, static_cast<std::uint32_t>(header.size()));  // < 2000 bytes for rank <= 64
  out.insert(out.end(), header.begin(), header.end());
  if (a.dtype() == NpyDType::float32)
    encode_le(a.float32_data(), a.size(), out);
  else
    encode_le(a.float64_data(), a.size(), out);
}

/// Raw deflate (no zlib header), as ZIP stores it; level 6, numpy's default.
inline std::vector<std::uint8_t> deflate_raw(const std::uint8_t* in, std::size_t n, const NpzContext& ctx,
                                             const std::string& member) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    ctx.fail_member(member, "cannot initialise zlib");
  struct End {
    z_stream* z;
    ~End() { deflateEnd(z); }
  } end{&zs};
  std::vector<std::uint8_t> out(static_cast<std::size_t>(deflateBound(&zs, static_cast<uLong>(n))) + 64);
  std::size_t produced = 0, in_left = n;
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      const std::size_t chunk = std::min(in_left, kZlibChunk);
      zs.next_in = const_cast<Bytef*>(in);  // zlib's API is not const-correct; it does not write
      zs.avail_in = static_cast<uInt>(chunk);
      in += chunk;
      in_left -= chunk;
    }
    if (produced == out.size()) out.resize(out.size() + 65536);
    const std::size_t room = std::min(out.size() - produced, kZlibChunk);
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(room);
    const int rc = deflate(&zs, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) ctx.fail_member(member, concat("zlib deflate error ", rc));
  }
  out.resize(produced);
  return out;
}

inline std::vector<std::uint8_t> encode_npz_impl(const NpzArchive& archive, bool compress, const NpzContext& ctx) {
  if (archive.size() > 65535)
    ctx.fail(concat(archive.size(), " arrays; an .npz archive without zip64 holds at most 65535"));
  struct Central {
    std::string name;
    std::uint16_t flags, method;
    std::uint32_t crc, csize, usize, offset;
  };
  std::vector<Central> central;
  std::vector<std::uint8_t> out, npy;
  const std::uint64_t limit = 0xfffffffeu;  // 32-bit ZIP fields; 0xffffffff means zip64
  for (const NpzEntry& e : archive) {
    const std::string member = e.name + ".npy";
    npy.clear();
    append_npy(e.array, npy);
    if (npy.size() > limit)
      ctx.fail_member(member, concat(npy.size(), " bytes: members over 4 GiB need zip64, which cellflow does not write"));
    const std::uint32_t crc = crc32_of(npy.data(), npy.size());
    std::vector<std::uint8_t> deflated;
    if (compress) deflated = deflate_raw(npy.data(), npy.size(), ctx, member);
    const std::vector<std::uint8_t>& payload = compress ? deflated : npy;
    const bool ascii = std::all_of(member.begin(), member.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    Central c{member, static_cast<std::uint16_t>(ascii ? 0 : 0x0800), static_cast<std::uint16_t>(compress ? 8 : 0), crc,
              0, static_cast<std::uint32_t>(npy.size()), 0};
    if (out.size() + 30 + member.size() + payload.size() > limit)
      ctx.fail(concat("the archive would exceed 4 GiB; that needs zip64, which cellflow does not write"));
    c.csize = static_cast<std::uint32_t>(payload.size());
    c.offset = static_cast<std::uint32_t>(out.size());
    put32(out, kZipLocalSig);
    put16(out, 20);  // version needed: 2.0 (deflate)
    put16(out, c.flags);
    put16(out, c.method);
    put16(out, 0);       // time 00:00:00
    put16(out, 0x0021);  // date 1980-01-01: no timestamps, reproducible bytes
    put32(out, c.crc);
    put32(out, c.csize);
    put32(out, c.usize);
    put16(out, static_cast<std::uint32_t>(member.size()));
    put16(out, 0);
    out.insert(out.end(), member.begin(), member.end());
    out.insert(out.end(), payload.begin(), payload.end());
    central.push_back(std::move(c));
  }
  const std::size_t cd_offset = out.size();
  for (const Central& c : central) {
    put32(out, kZipCentralSig);
    put16(out, 0x0314);  // made by: Unix, ZIP 2.0
    put16(out, 20);
    put16(out, c.flags);
    put16(out, c.method);
    put16(out, 0);
    put16(out, 0x0021);
    put32(out, c.crc);
    put32(out, c.csize);
    put32(out, c.usize);
    put16(out, static_cast<std::uint32_t>(c.name.size()));
    put16(out, 0);  // extra
    put16(out, 0);  // comment
    put16(out, 0);  // disk
    put16(out, 0);  // internal attributes
    put32(out, 0100644u << 16);  // external attributes: regular file, rw-r--r--
    put32(out, c.offset);
    out.insert(out.end(), c.name.begin(), c.name.end());
  }
  if (out.size() > limit) ctx.fail("the archive would exceed 4 GiB; that needs zip64, which cellflow does not write");
  const std::size_t cd_size = out.size() - cd_offset;
  put32(out, kZipEndSig);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<std::uint32_t>(central.size()));
  put16(out, static_cast<std::uint32_t>(central.size()));
  put32(out, static_cast<std::uint32_t>(cd_size));
  put32(out, static_cast<std::uint32_t>(cd_offset));
  put16(out, 0);
  return out;
}

/// Writes `bytes` to a new temporary file next to ctx.source and renames it over ctx.source.
inline void write_file_atomically(const std::vector<std::uint8_t>& bytes, const NpzContext& ctx) {
  namespace fs = std::filesystem;
  if (ctx.source.empty()) ctx.fail("empty path");
  fs::path target(ctx.source);
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(target, ec))) {  // replace the file the link points to, keep the link
    target = fs::canonical(target, ec);
    if (ec) ctx.fail(concat("a symbolic link whose target cannot be resolved: ", ec.message()));
  }
  const fs::file_status st = fs::status(target, ec);
  const bool exists = fs::exists(st);
  if (exists) {
    if (fs::is_directory(st)) ctx.fail("is a directory");
    if (!fs::is_regular_file(st)) ctx.fail("exists and is not a regular file (a device, pipe or socket); not replacing it");
    const fs::perms write = fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write;
    if ((st.permissions() & write) == fs::perms::none) ctx.fail("the existing file is read-only; not replacing it");
#if defined(CELLFLOW_NPZ_POSIX)
    errno = 0;
    if (::access(target.c_str(), W_OK) != 0)
      ctx.fail(concat("the existing file is not writable (", errno_text(errno), "); not replacing it"));
#endif
  }
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (target.filename().empty()) ctx.fail("the path names no file");
  if (!fs::is_directory(dir, ec)) ctx.fail(concat("the directory '", dir.string(), "' does not exist"));

  // A fresh temporary name in the same directory (so the rename stays on one file system).
  static const char digits[] = "0123456789abcdef";
  std::uint64_t seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  try {
    std::random_device rd;
    seed ^= (std::uint64_t(rd()) << 32) ^ rd();
  } catch (...) {  // no entropy source: the clock alone will do, names are tried exclusively
  }
  std::mt19937_64 gen(seed ^ reinterpret_cast<std::uintptr_t>(&seed));
  struct Remove {  // removes the temporary unless it was renamed over the target
    fs::path path;
    bool armed = false;
    ~Remove() {
      std::error_code ignored;
      if (armed) fs::remove(path, ignored);
    }
  } remove_tmp;
  fs::path tmp;
  std::unique_ptr<std::FILE, FileCloser> f;  // declared after remove_tmp: closed before removal
  for (int attempt = 0; attempt < 100 && !f; ++attempt) {
    std::string suffix;
    std::uint64_t r = gen();
    for (int k = 0; k < 12; ++k, r >>= 4) suffix += digits[r & 0xf];
    tmp = dir / ("." + target.filename().string() + ".tmp-" + suffix);
    errno = 0;
    f.reset(std::fopen(tmp.string().c_str(), "wbx"));  // "x": fail if it exists (C11, C++17)
    if (!f && errno != EEXIST)
      ctx.fail(concat("cannot create the temporary file '", tmp.string(), "': ", errno_text(errno)));
  }
  if (!f) ctx.fail(concat("cannot create a temporary file in '", dir.string(), "'"));
  remove_tmp.path = tmp;
  remove_tmp.armed = true;

  std::size_t done = 0;
  while (done < bytes.size()) {
    errno = 0;
    const std::size_t chunk = std::min<std::size_t>(bytes.size() - done, std::size_t(1) << 24);
    const std::size_t wrote = std::fwrite(bytes.data() + done, 1, chunk, f.get());
    if (wrote != chunk) ctx.fail(concat("cannot write the temporary file '", tmp.string(), "': ", errno_text(errno)));
    done += wrote;
  }
  errno = 0;
  if (std::fflush(f.get()) != 0) ctx.fail(concat("cannot write the temporary file '", tmp.string(), "': ", errno_text(errno)));
#if defined(CELLFLOW_NPZ_POSIX)
  errno = 0;
  if (::fsync(::fileno(f.get())) != 0)
    ctx.fail(concat("cannot sync the temporary file '", tmp.string(), "': ", errno_text(errno)));
#endif
  errno = 0;
  if (std::fclose(f.release()) != 0)
    ctx.fail(concat("cannot close the temporary file '", tmp.string(), "': ", errno_text(errno)));
  if (exists) fs::permissions(tmp, st.permissions(), ec);  // keep the old file's mode; best effort
  fs::rename(tmp, target, ec);
  if (ec) ctx.fail(concat("cannot rename the temporary file '", tmp.string(), "' over it: ", ec.message()));
  remove_tmp.armed = false;
}

template <class T>
void assign_npz_impl(VariableList<T>& vars, const NpzArchive& archive, const NpzLoadOptions& opt, const NpzContext& ctx) {
  check_scalar<T>();
  std::vector<std::string> missing, wrong, extra;
  for (const VariableRef<T>& v : vars) {
    const NpyArray* a = archive.find(v.name);
    if (a == nullptr)
      missing.push_back(concat("missing: ", v.name, " ", shape_string(v.shape)));
    else if (a->shape() != v.shape)
      wrong.push_back(concat("wrong shape: ", v.name, ": expected ", shape_string(v.shape), ", given ",
                             shape_string(a->shape()), " (", a->descr(), ")"));
    else if (static_cast<std::size_t>(v.value->size()) != a->size())
      wrong.push_back(concat("wrong shape: ", v.name, ": the model stores ", shape_string(v.shape), " as ",
                             v.value->rows(), "x", v.value->cols(), ", given ", a->size(), " values"));
  }
  if (!opt.allow_extra)
    for (const NpzEntry& e : archive)
      if (vars.find(e.name) == nullptr)
        extra.push_back(concat("extra: ", printable(e.name), " ", shape_string(e.array.shape()), " (", e.array.descr(),
                               ") is not a variable of the model"));
  const std::size_t problems = missing.size() + wrong.size() + extra.size();
  if (problems != 0) {
    std::string msg = concat(ctx.op, ": '", ctx.source, "': the archive does not match the model's ", vars.size(),
                             " variables (", problems, problems == 1 ? " problem" : " problems", "):");
    for (const auto* list : {&missing, &wrong, &extra})
      for (const std::string& line : *list) msg += "\n  " + line;
    if (!extra.empty()) msg += "\n(NpzLoadOptions::allow_extra = true ignores extra arrays)";
    if (missing.empty() && extra.empty()) throw ShapeError(msg);
    throw ValueError(msg);
  }
  for (VariableRef<T>& v : vars) archive.find(v.name)->copy_to(v.value->data());
}

}  // namespace detail

/// Parses an .npz archive held in memory. `source` names it in error messages (a file name, or
/// e.g. "<buffer>"). Throws IOError for anything malformed or unsupported.
inline NpzArchive parse_npz(const std::uint8_t* data, std::size_t size, const std::string& source = "<buffer>") {
  return detail::parse_npz_impl(data, size, detail::NpzContext{"parse_npz", source});
}

/// Reads an .npz file (np.savez or np.savez_compressed). Throws IOError naming the file.
inline NpzArchive read_npz(const std::string& path) {
  const detail::NpzContext ctx{"read_npz", path};
  const std::vector<std::uint8_t> bytes = detail::read_file_bytes(ctx);
  return detail::parse_npz_impl(bytes.data(), bytes.size(), ctx);
}

/// The bytes of an .npz archive of `archive`: members "<name>.npy", deflated when `compress`
/// (np.savez_compressed) or stored (np.savez). Deterministic.
inline std::vector<std::uint8_t> encode_npz(const NpzArchive& archive, bool compress = true) {
  return detail::encode_npz_impl(archive, compress, detail::NpzContext{"encode_npz", "<buffer>"});
}

/// Writes `archive` to `path` atomically (temporary file + rename). Throws IOError naming the
/// file: missing directory, read-only or non-regular existing target, write errors.
inline void write_npz(const std::string& path, const NpzArchive& archive, bool compress = true) {
  const detail::NpzContext ctx{"write_npz", path};
  detail::write_file_atomically(detail::encode_npz_impl(archive, compress, ctx), ctx);
}

/// The variables as an archive: name -> value in TF's shape ({n} or {rows, cols}), '<f4' for
/// float and '<f8' for double.
template <class T>
NpzArchive to_npz_archive(const VariableList<T>& vars) {
  detail::check_scalar<T>();
  NpzArchive archive;
  for (const VariableRef<T>& v : vars) {
    const auto n = static_cast<std::size_t>(v.value->size());
    archive.add(v.name, NpyArray(v.shape, std::vector<T>(v.value->data(), v.value->data() + n)));
  }
  return archive;
}

/// Copies the arrays of `archive` into the variables of the same name. All or nothing: every
/// variable must be present with exactly its TF shape, and (unless opt.allow_extra) every array
/// must be a variable; otherwise nothing is assigned and one exception lists every problem,
/// naming `source`: ShapeError when only shapes differ, ValueError when names are missing or extra.
/// float64 arrays are rounded to nearest when T is float.
template <class T>
void assign_npz(VariableList<T>& vars, const NpzArchive& archive, const std::string& source = "<archive>",
                const NpzLoadOptions& opt = {}) {
  detail::assign_npz_impl(vars, archive, opt, detail::NpzContext{"assign_npz", source});
}

/// Loads a TF1 weight export (np.savez / np.savez_compressed of {variable name: value}) into
/// `vars`, as assign_npz does (all or nothing). Read errors are IOErrors naming the file and member.
template <class T>
void load_npz(VariableList<T>& vars, const std::string& path, const NpzLoadOptions& opt = {}) {
  const detail::NpzContext ctx{"load_npz", path};
  const std::vector<std::uint8_t> bytes = detail::read_file_bytes(ctx);
  std::function<bool(const std::string&)> wanted;
  if (opt.allow_extra) wanted = [&vars](const std::string& name) { return vars.find(name) != nullptr; };
  const NpzArchive archive = detail::parse_npz_impl(bytes.data(), bytes.size(), ctx, wanted);
  detail::assign_npz_impl(vars, archive, opt, ctx);
}

/// Saves `vars` as an .npz archive numpy reads with np.load: one array per variable under its
/// TF name, '<f4' for float and '<f8' for double, deflated when `compress`. Atomic (temporary
/// file + rename): on failure the previous file is unchanged.
template <class T>
void save_npz(const VariableList<T>& vars, const std::string& path, bool compress = true) {
  const detail::NpzContext ctx{"save_npz", path};
  detail::write_file_atomically(detail::encode_npz_impl(to_npz_archive(vars), compress, ctx), ctx);
}

}  // namespace cellflow::io
