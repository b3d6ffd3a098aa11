// Command-line options for the example programs (mnist_rnn, classify_digit, char_rnn): "--name VALUE" or
// "--name=VALUE", every value checked strictly when it is read.
//
//   support::ArgParser args("mnist_rnn", kUsage);
//   args.integer("--epochs", o.epochs, 0, 100000).positive("--lr", o.lr).path("--csv", o.csv, "a file");
//   args.parse(argc, argv);
//   if (args.given("--csv") && o.epochs == 0) args.fail("--csv needs at least one epoch");
//
// A bad command line is one line on stderr, "<program>: <problem> (see <program> --help)", and
// exit status 2; --help (or -h) prints the usage text and exits with status 0. An option given
// twice keeps its last value.
//
// Values: integers are decimal digits with an optional '-' and nothing else ("3x", " 3", "+3",
// "1e3" are refused), within the bounds given; positive numbers must be finite and > 0 as a float
// ("inf", "nan", "0", "-1", "1e39" are refused); paths must not be empty; choices are exact.
#pragma once

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace support {

class ArgParser {
 public:
  ArgParser(std::string program, std::string usage) : program_(std::move(program)), usage_(std::move(usage)) {}

  /// An integer option in [lo, hi].
  template <class Int>
  ArgParser& integer(const std::string& name, Int& out, long long lo, long long hi) {
    static_assert(std::is_integral_v<Int>, "integer() stores into an integer");
    return add(name, [this, name, &out, lo, hi](const std::string& v) {
      long long x = 0;
      const char* end = v.data() + v.size();
      const auto r = std::from_chars(v.data(), end, x);
      if (v.empty() || r.ec != std::errc() || r.ptr != end || x < lo || x > hi)
        fail(name + " expects an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], given '" + v +
             "'");
      out = static_cast<Int>(x);
    });
  }

  /// A finite number > 0 (stored as a float: a value that overflows or underflows it is refused).
  ArgParser& positive(const std::string& name, float& out) {
    return add(name, [this, name, &out](const std::string& v) {
      char* end = nullptr;
      const double x = v.empty() || std::isspace(static_cast<unsigned char>(v[0])) ? 0.0 : std::strtod(v.c_str(), &end);
      const float f = static_cast<float>(x);
      if (end != v.c_str() + v.size() || !std::isfinite(f) || !(f > 0))
        fail(name + " expects a positive finite number, given '" + v + "'");
      out = f;
    });
  }

  /// A path; `what` says what it names ("a file", "a directory") in the message for an empty one.
  ArgParser& path(const std::string& name, std::string& out, const std::string& what) {
    return add(name, [this, name, &out, what](const std::string& v) {
      if (v.empty()) fail(name + " expects " + what + ", given an empty string");
      out = v;
    });
  }

  /// Any text, the empty string included (char_rnn's --prime).
  ArgParser& text(const std::string& name, std::string& out) {
    return add(name, [&out](const std::string& v) { out = v; });
  }

  /// One of `choices`, exactly.
  ArgParser& choice(const std::string& name, std::string& out, const std::vector<std::string>& choices) {
    return add(name, [this, name, &out, choices](const std::string& v) {
      for (const auto& c : choices)
        if (v == c) {
          out = v;
          return;
        }
      std::string list;
      for (std::size_t k = 0; k < choices.size(); ++k)
        list += (k == 0 ? "" : k + 1 == choices.size() ? " or " : ", ") + choices[k];
      fail(name + " must be " + list + ", given '" + v + "'");
    });
  }

  /// A switch without a value (--name sets `out` to true; --name=... is refused).
  ArgParser& flag(const std::string& name, bool& out) {
    flags_.insert(name);
    return add(name, [&out](const std::string&) { out = true; });
  }

  /// Reads every argument; exits (status 2) at the first bad one, or (status 0) after --help.
  void parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string name = argv[i], value;
      if (name == "--help" || name == "-h") {
        std::fputs(usage_.c_str(), stdout);
        std::exit(0);
      }
      const auto eq = name.find('=');
      const bool inline_value = name.rfind("--", 0) == 0 && eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name.resize(eq);
      }
      const auto it = options_.find(name);
      if (it == options_.end())
        fail(name.rfind("-", 0) == 0 ? "unknown option '" + name + "'" : "unexpected argument '" + name + "'");
      if (flags_.count(name) != 0) {
        if (inline_value) fail(name + " takes no value, given '" + value + "'");
      } else if (!inline_value) {
        if (i + 1 >= argc) fail(name + " needs a value");
        value = argv[++i];
      }
      it->second(value);
      given_.insert(name);
    }
  }

  /// Whether the command line set `name`.
  bool given(const std::string& name) const { return given_.count(name) != 0; }

  /// Ends the program with a command-line error (one line, exit status 2).
  [[noreturn]] void fail(const std::string& problem) const {
    std::fprintf(stderr, "%s: %s (see %s --help)\n", program_.c_str(), problem.c_str(), program_.c_str());
    std::exit(2);
  }

 private:
  ArgParser& add(const std::string& name, std::function<void(const std::string&)> read) {
    options_[name] = std::move(read);
    return *this;
  }

  std::string program_, usage_;
  std::map<std::string, std::function<void(const std::string&)>> options_;
  std::set<std::string> given_, flags_;
};

}  // namespace support
