// NumPy's .npy array format: one array, as a whole .npy file or as one member of an .npz
// archive (io/npz.hpp).
//
// A .npy array is the magic "\x93NUMPY", a version (1.0, 2.0 or 3.0), a little-endian header
// length (2 bytes in 1.0, 4 bytes after), a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (7, 16), } padded with spaces and a newline,
// then the elements in C (row-major) order.
//
//   const cellflow::io::NpyArray a = cellflow::io::parse_npy(bytes.data(), bytes.size(), "w.npy");
//   std::vector<std::uint8_t> again = cellflow::io::encode_npy(a);   // numpy's bytes for it
//
// Read: versions 1.0, 2.0 and 3.0; dtype '<f4' or '<f8'; any rank, 0-D and empty arrays
// included; C order (Fortran order only where it is the same layout, i.e. at most one dimension
// above 1). Everything else is an IOError naming the operation, the source and what was found:
// other dtypes ('>f4', '<f2', '<i8', '|u1', objects, structured, each with its meaning), Fortran
// order, a wrong magic or version, a malformed header (with the header byte and the header
// quoted), data shorter or longer than the shape.
//
// Memory: the header is read only up to kMaxNpyHeaderBytes, the shape only up to kMaxNpyRank
// dimensions, and the array is allocated only after its shape times its item size (computed
// without overflow) has been checked against the bytes really present: 200 bytes claiming a
// 10^15-element array cost nothing.
//
// Written: numpy's layout for '<f4' (float) and '<f8' (double), version 1.0, C order, the header
// padded so the data starts at a multiple of 64 bytes: np.load reads it, and the same array
// always gives the same bytes.
//
// Needs no zlib (only io/zip.hpp does).
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/detail/bytes.hpp"

namespace cellflow::io {

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
using cellflow::detail::ByteReader;
using cellflow::detail::ByteWriter;
using cellflow::detail::check_scalar;
using cellflow::detail::concat;
using cellflow::detail::printable;

static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == 4, "cellflow npy: float must be IEEE binary32");
static_assert(std::numeric_limits<double>::is_iec559 && sizeof(double) == 8,
              "cellflow npy: double must be IEEE binary64");

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
}  // namespace detail

/// One array: its shape (numpy's, so a TF 1-D variable is {n}, a scalar {}) and its elements in
/// C order, kept in the dtype they were read or built with.
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

  /// The type the elements are kept in: float32 ("<f4") or float64 ("<f8").
  NpyDType dtype() const { return data_.index() == 0 ? NpyDType::float32 : NpyDType::float64; }
  /// "<f4" or "<f8".
  std::string descr() const { return npy_descr(dtype()); }
  /// numpy's shape: {} for a scalar, {n}, {rows, cols}, ... (a TF 1-D variable is {n}).
  const std::vector<Index>& shape() const { return shape_; }
  /// Number of dimensions (0 for a scalar).
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
  /// The elements when the dtype is float64, else nullptr.
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
    const void* b =
        dtype() == NpyDType::float32 ? static_cast<const void*>(other.float32_data()) : other.float64_data();
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
      throw ShapeError(detail::concat("NpyArray: shape ", shape_string(shape_), " needs ",
                                      n > limit ? "more than " : "", n > limit ? limit : n, " values, given ", size()));
  }

  std::vector<Index> shape_;
  std::variant<std::vector<float>, std::vector<double>> data_;
};

namespace detail {

/// " (big-endian float32)" for ">f4": what a numpy descr means, for messages; "" if unknown.
inline std::string npy_descr_meaning(const std::string& d) {
  if (d.size() < 2) return "";
  std::string order;
  if (d[0] == '>')
    order = "big-endian ";
  else if (d[0] == '=')
    order = "native-order ";
  else if (d[0] != '<' && d[0] != '|')
    return "";
  const std::string digits = d.substr(2);
  if (digits.empty() && d[1] != 'O') return "";
  int bytes = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9' || bytes > 1000) return "";
    bytes = bytes * 10 + (c - '0');
  }
  const std::string bits = std::to_string(8 * bytes);
  switch (d[1]) {
    case 'f':
      return " (" + order + "float" + bits + ")";
    case 'i':
      return " (" + order + "int" + bits + ")";
    case 'u':
      return " (" + order + "uint" + bits + ")";
    case 'c':
      return " (" + order + "complex" + bits + ")";
    case 'b':
      return " (bool)";
    case 'O':
      return " (Python objects, pickled)";
    case 'S':
      return " (byte strings)";
    case 'U':
      return " (unicode strings)";
    case 'V':
      return " (raw void records)";
    case 'M':
      return " (datetime64)";
    case 'm':
      return " (timedelta64)";
    default:
      return "";
  }
}

/// A parsed Python literal of a .npy header. Only what numpy writes is accepted: dicts, tuples,
/// lists, strings, integers, True, False, None.
struct PyLiteral {
  enum class Kind { string, integer, boolean, none, tuple, list, dict };
  Kind kind = Kind::none;
  std::string text;              // string: its characters; integer: its digits with sign
  bool flag = false;             // boolean: its value
  std::vector<PyLiteral> items;  // tuple/list: elements; dict: key, value, key, value, ...
};

/// Parses the header dict; errors are IOErrors "<where>: malformed .npy header: ...".
class PyLiteralParser {
 public:
  PyLiteralParser(const std::string& text, const std::string& where) : s_(text), where_(where) {}

  PyLiteral parse_all() {
    PyLiteral v = value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected characters after the dict");
    return v;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw IOError(concat(where_, ": malformed .npy header: ", what, " at header byte ", pos_, " (header: \"",
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
  const std::string& where_;
  std::size_t pos_ = 0;
};

/// Parses one .npy array (`bytes`, `n` bytes: header and data). Every error is an IOError
/// "<where>: <problem>"; `where` names the operation, the file and, in an archive, the member.
inline NpyArray parse_npy_impl(const std::uint8_t* bytes, std::size_t n, const std::string& where) {
  const auto fail = [&](const std::string& what) { throw IOError(concat(where, ": ", what)); };
  if (n < 10) fail(concat("truncated .npy data: ", n, " bytes, the smallest .npy header takes 10"));
  ByteReader r(bytes, 0, n, where);
  const std::string magic = r.bytes(6, "the magic string");
  if (magic != std::string("\x93NUMPY", 6))
    fail(concat("not a .npy array: the data starts with \"", printable(magic), "\", expected \"\\x93NUMPY\""));
  const int major = r.u8("the major version"), minor = r.u8("the minor version");
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    fail(concat("unsupported .npy format version ", major, ".", minor, " (cellflow reads 1.0, 2.0 and 3.0)"));
  const std::size_t prefix = major == 1 ? 10 : 12;
  if (n < prefix)
    fail(concat("truncated .npy data: ", n, " bytes, a version ", major, ".0 header takes at least ", prefix));
  const std::uint64_t hlen = major == 1 ? r.u16le("the header length") : r.u32le("the header length");
  if (hlen > kMaxNpyHeaderBytes)
    fail(concat(".npy header length ", hlen, " (bytes 8..", prefix - 1, ") exceeds the ", kMaxNpyHeaderBytes,
                "-byte limit (corrupt header?)"));
  if (hlen > r.remaining())
    fail(concat("truncated .npy header: it claims ", hlen, " bytes, the member has ", r.remaining(), " after the ",
                prefix, "-byte prefix"));
  const std::string header = r.bytes(static_cast<std::size_t>(hlen), "the header");

  PyLiteralParser parser(header, where);
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
    fail(
        "unsupported dtype: a structured dtype (a list of fields); cellflow reads '<f4' (float32) and '<f8' (float64)");
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

  const std::uint64_t available = r.remaining();
  const std::size_t item = npy_itemsize(dtype);
  const std::uint64_t count = npy_element_count(dims, available / item);
  if (count > available / item)
    fail(concat("truncated array data: shape ", shape_string(dims), " of '", npy_descr(dtype), "' needs more than ",
                available, " bytes, the member holds ", available, " after its header"));
  if (count * item != available)
    fail(concat(available - count * item, " bytes after the array data (shape ", shape_string(dims), " of '",
                npy_descr(dtype), "' takes ", count * item, " bytes, the member holds ", available,
                " after its header)"));
  const auto elements = static_cast<std::size_t>(count);
  if (dtype == NpyDType::float32) {
    std::vector<float> v(elements);
    r.values_le(elements, v.data(), "the array data");
    return NpyArray(std::move(dims), std::move(v));
  }
  std::vector<double> v(elements);
  r.values_le(elements, v.data(), "the array data");
  return NpyArray(std::move(dims), std::move(v));
}

/// Appends numpy's .npy encoding of `a` to `out`: version 1.0, header padded with spaces so the
/// data starts at a multiple of 64 bytes, then the elements little-endian.
inline void append_npy(const NpyArray& a, ByteWriter& out) {
  std::string header = concat("{'descr': '", a.descr(), "', 'fortran_order': False, 'shape': (");
  for (std::size_t k = 0; k < a.rank(); ++k) header += concat(k ? ", " : "", a.shape()[k]);
  header += a.rank() == 1 ? ",), }" : "), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  out.raw(std::string("\x93NUMPY\x01\x00", 8));
  out.u16le(static_cast<std::uint16_t>(header.size()));  // < 2000 bytes for rank <= 64
  out.raw(header);
  if (a.dtype() == NpyDType::float32)
    out.values_le(a.float32_data(), a.size());
  else
    out.values_le(a.float64_data(), a.size());
}

}  // namespace detail

/// Parses one .npy array held in memory (a .npy file's bytes). `source` names it in error
/// messages ("parse_npy: '<source>': ..."). Throws IOError for anything malformed or unsupported.
inline NpyArray parse_npy(const std::uint8_t* data, std::size_t size, const std::string& source = "<buffer>") {
  const std::string where = detail::concat("parse_npy: '", source, "'");
  if (data == nullptr && size != 0) throw IOError(detail::concat(where, ": null data pointer with size ", size));
  return detail::parse_npy_impl(data, size, where);
}

/// numpy's .npy bytes of `a` (what np.save writes for it). Deterministic.
inline std::vector<std::uint8_t> encode_npy(const NpyArray& a) {
  detail::ByteWriter out;
  detail::append_npy(a, out);
  return out.take();
}

}  // namespace cellflow::io
