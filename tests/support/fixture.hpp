// Reader for cellflow's reference fixture files (tests/fixtures/*_reference.txt), written by
// tests/fixtures/generate_reference.py. Header-only, C++17, standard library only.
//
// Format (text; blank lines and lines starting with '#' are ignored between records):
//   case <name>
//   config <key> <value>
//   tensor <name> <rank> <d0> ... <d(rank-1)>
//   <prod(d) numbers on ONE line, row-major>
//   ints <name> <n>
//   <n integers on one line>
//   end
// Any malformed input throws std::runtime_error("<file>:<line>: <what>").
// Numbers are parsed with the classic "C" locale whatever the global locale is.
#ifndef CELLFLOW_TESTS_SUPPORT_FIXTURE_HPP
#define CELLFLOW_TESTS_SUPPORT_FIXTURE_HPP

#include <cstddef>
#include <fstream>
#include <limits>
#include <locale>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cellflow_test {

struct FixtureTensor {
  std::vector<long> shape;     // empty for a rank-0 (scalar) tensor
  std::vector<double> values;  // row-major (C order)

  std::size_t size() const { return values.size(); }
};

struct FixtureCase {
  std::string name;
  std::string file;  // the file the case came from (for messages)
  std::map<std::string, std::string> config;
  std::map<std::string, FixtureTensor> tensors;
  std::map<std::string, std::vector<long long>> ints;

  // Throws std::runtime_error naming the case and the tensor if it is missing.
  const FixtureTensor& tensor(const std::string& tensor_name) const {
    const auto it = tensors.find(tensor_name);
    if (it == tensors.end()) {
      throw std::runtime_error("fixture case '" + name + "' (" + file + "): no tensor '" + tensor_name + "'");
    }
    return it->second;
  }

  bool has(const std::string& tensor_name) const { return tensors.count(tensor_name) != 0; }

  bool has_ints(const std::string& ints_name) const { return ints.count(ints_name) != 0; }

  // Throws std::runtime_error naming the case and the list if it is missing.
  const std::vector<long long>& int_list(const std::string& ints_name) const {
    const auto it = ints.find(ints_name);
    if (it == ints.end()) {
      throw std::runtime_error("fixture case '" + name + "' (" + file + "): no ints '" + ints_name + "'");
    }
    return it->second;
  }

  bool has_config(const std::string& key) const { return config.count(key) != 0; }

  // The raw config value; throws if the key is missing.
  std::string config_str(const std::string& key) const {
    const auto it = config.find(key);
    if (it == config.end()) {
      throw std::runtime_error("fixture case '" + name + "' (" + file + "): no config '" + key + "'");
    }
    return it->second;
  }

  // The config value as a number; throws if missing or not a number (e.g. "none").
  double config_num(const std::string& key) const {
    const std::string text = config_str(key);
    std::istringstream in(text);
    in.imbue(std::locale::classic());
    double v = 0.0;
    in >> v;
    if (in.fail() || !(in >> std::ws).eof()) {
      throw std::runtime_error("fixture case '" + name + "' (" + file + "): config '" + key + "' = '" + text +
                               "' is not a number");
    }
    return v;
  }
};

namespace detail {

inline std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  const std::size_t n = line.size();
  while (i < n) {
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < n && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

inline bool skippable(const std::string& line) {
  for (const char ch : line) {
    if (ch == '#') return true;
    if (ch != ' ' && ch != '\t' && ch != '\r') return false;
  }
  return true;  // blank
}

class FixtureParser {
 public:
  explicit FixtureParser(std::string path) : path_(std::move(path)) {}

  std::map<std::string, FixtureCase> parse() {
    std::ifstream in(path_, std::ios::binary);
    if (!in) fail_at(0, "cannot open file");
    std::map<std::string, FixtureCase> cases;
    FixtureCase current;
    bool in_case = false;
    std::size_t case_line = 0;
    std::string line;
    while (next_line(in, line)) {
      if (skippable(line)) continue;
      const std::vector<std::string> tok = split_ws(line);
      const std::string& kind = tok[0];
      if (!in_case) {
        if (kind != "case") fail("expected 'case <name>', got record '" + kind + "'");
        if (tok.size() != 2) fail("expected 'case <name>'");
        if (cases.count(tok[1]) != 0) fail("duplicate case '" + tok[1] + "'");
        current = FixtureCase{};
        current.name = tok[1];
        current.file = path_;
        in_case = true;
        case_line = line_no_;
      } else if (kind == "end") {
        if (tok.size() != 1) fail("unexpected text after 'end'");
        const std::string name = current.name;
        cases.emplace(name, std::move(current));
        current = FixtureCase{};
        in_case = false;
      } else if (kind == "config") {
        if (tok.size() != 3) fail("expected 'config <key> <value>'");
        if (!current.config.emplace(tok[1], tok[2]).second) {
          fail("duplicate config '" + tok[1] + "' in case '" + current.name + "'");
        }
      } else if (kind == "tensor") {
        read_tensor(in, tok, current);
      } else if (kind == "ints") {
        read_ints(in, tok, current);
      } else if (kind == "case") {
        fail("'case " + (tok.size() > 1 ? tok[1] : std::string()) + "' before 'end' of case '" + current.name +
             "' (started at line " + std::to_string(case_line) + ")");
      } else {
        fail("unknown record '" + kind + "'");
      }
    }
    if (in_case) {
      fail_at(line_no_,
              "missing 'end' for case '" + current.name + "' (started at line " + std::to_string(case_line) + ")");
    }
    return cases;
  }

 private:
  [[noreturn]] void fail_at(std::size_t line, const std::string& what) const {
    const std::string where = line == 0 ? path_ : path_ + ":" + std::to_string(line);
    throw std::runtime_error("fixture " + where + ": " + what);
  }
  [[noreturn]] void fail(const std::string& what) const { fail_at(line_no_, what); }

  bool next_line(std::istream& in, std::string& line) {
    if (!std::getline(in, line)) return false;
    ++line_no_;
    return true;
  }

  static bool parse_long_long(const std::string& text, long long& out) {
    std::istringstream s(text);
    s.imbue(std::locale::classic());
    s >> out;
    return !s.fail() && s.eof();
  }

  static bool parse_double(const std::string& text, double& out) {
    // Non-finite spellings as printed by Python's '%.17g' / C's printf.
    const std::string t = (!text.empty() && (text[0] == '+' || text[0] == '-')) ? text.substr(1) : text;
    const bool neg = !text.empty() && text[0] == '-';
    if (t == "inf" || t == "Inf" || t == "INF" || t == "infinity" || t == "Infinity") {
      out = neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
      return true;
    }
    if (t == "nan" || t == "NaN" || t == "NAN") {
      out = std::numeric_limits<double>::quiet_NaN();
      return true;
    }
    std::istringstream s(text);
    s.imbue(std::locale::classic());
    s >> out;
    return !s.fail() && s.eof();
  }

  long parse_dim(const std::string& text, const char* what) const {
    long long v = 0;
    if (!parse_long_long(text, v) || v < 0 || v > static_cast<long long>(std::numeric_limits<long>::max())) {
      fail(std::string("bad ") + what + " '" + text + "'");
    }
    return static_cast<long>(v);
  }

  // The values line must immediately follow its header line.
  std::vector<std::string> values_line(std::istream& in, const std::string& name) {
    std::string line;
    if (!next_line(in, line)) fail_at(line_no_ + 1, "missing values line for '" + name + "'");
    return split_ws(line);
  }

  void read_tensor(std::istream& in, const std::vector<std::string>& tok, FixtureCase& c) {
    if (tok.size() < 3) fail("expected 'tensor <name> <rank> <dims...>'");
    const std::string& name = tok[1];
    const long rank = parse_dim(tok[2], "rank");
    if (tok.size() != 3 + static_cast<std::size_t>(rank)) {
      fail("tensor '" + name + "': rank " + tok[2] + " but " + std::to_string(tok.size() - 3) + " dimensions given");
    }
    if (c.tensors.count(name) != 0) fail("duplicate tensor '" + name + "' in case '" + c.name + "'");
    FixtureTensor t;
    std::size_t count = 1;
    for (std::size_t k = 3; k < tok.size(); ++k) {
      const long d = parse_dim(tok[k], "dimension");
      t.shape.push_back(d);
      count *= static_cast<std::size_t>(d);
    }
    const std::size_t header_line = line_no_;
    const std::vector<std::string> vals = values_line(in, name);
    if (vals.size() != count) {
      fail("tensor '" + name + "' (header line " + std::to_string(header_line) + "): shape needs " +
           std::to_string(count) + " values, line has " + std::to_string(vals.size()));
    }
    t.values.resize(count);
    for (std::size_t k = 0; k < count; ++k) {
      if (!parse_double(vals[k], t.values[k])) {
        fail("tensor '" + name + "': value " + std::to_string(k) + " '" + vals[k] + "' is not a number");
      }
    }
    c.tensors.emplace(name, std::move(t));
  }

  void read_ints(std::istream& in, const std::vector<std::string>& tok, FixtureCase& c) {
    if (tok.size() != 3) fail("expected 'ints <name> <n>'");
    const std::string& name = tok[1];
    if (c.ints.count(name) != 0) fail("duplicate ints '" + name + "' in case '" + c.name + "'");
    const std::size_t count = static_cast<std::size_t>(parse_dim(tok[2], "count"));
    const std::size_t header_line = line_no_;
    const std::vector<std::string> vals = values_line(in, name);
    if (vals.size() != count) {
      fail("ints '" + name + "' (header line " + std::to_string(header_line) + "): expected " + std::to_string(count) +
           " integers, line has " + std::to_string(vals.size()));
    }
    std::vector<long long> out(count);
    for (std::size_t k = 0; k < count; ++k) {
      if (!parse_long_long(vals[k], out[k])) {
        fail("ints '" + name + "': value " + std::to_string(k) + " '" + vals[k] + "' is not an integer");
      }
    }
    c.ints.emplace(name, std::move(out));
  }

  std::string path_;
  std::size_t line_no_ = 0;
};

}  // namespace detail

// Loads every case of a fixture file, keyed by case name.
inline std::map<std::string, FixtureCase> load_fixture_file(const std::string& path) {
  return detail::FixtureParser(path).parse();
}

}  // namespace cellflow_test

#endif  // CELLFLOW_TESTS_SUPPORT_FIXTURE_HPP
