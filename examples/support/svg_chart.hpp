// A small, dependency-free SVG chart of per-epoch training loss and test accuracy: two panels
// side by side, each with its own axis, ticks and points. svg_chart returns the file's text; the
// program writes it (atomically, with support/output_file.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cellflow/core/error.hpp"

namespace support {

struct Series {
  std::string title;
  std::string color;
  std::vector<double> values;  // one per epoch, epochs first_epoch, first_epoch + 1, ...
  bool percent = false;        // format ticks as percentages
  long long first_epoch = 1;   // the number of the epoch of values[0] (a resumed run continues)
};

namespace chart_detail {

inline std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `n` ticks over `span`.
inline double nice_step(double span, int n) {
  const double raw = span / std::max(1, n);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

inline void panel(std::ostringstream& os, const Series& s, double x0, double y0, double w, double h) {
  const std::size_t n = s.values.size();
  double lo = *std::min_element(s.values.begin(), s.values.end());
  double hi = *std::max_element(s.values.begin(), s.values.end());
  if (hi - lo < 1e-9) {
    lo -= 0.5 * std::max(1e-3, std::abs(lo));
    hi += 0.5 * std::max(1e-3, std::abs(hi));
  }
  const double step = nice_step(hi - lo, 5);
  lo = std::floor(lo / step) * step;
  hi = std::ceil(hi / step) * step;
  const double pl = 56, pr = 12, pt = 28, pb = 40;  // padding inside the panel
  const double px = x0 + pl, py = y0 + pt, pw = w - pl - pr, ph = h - pt - pb;
  auto X = [&](std::size_t i) {
    return n <= 1 ? px + pw / 2 : px + pw * static_cast<double>(i) / static_cast<double>(n - 1);
  };
  auto Y = [&](double v) { return py + ph * (1 - (v - lo) / (hi - lo)); };

  os << "<text x='" << x0 + w / 2 << "' y='" << y0 + 18 << "' text-anchor='middle' font-size='14' font-weight='bold'>"
     << s.title << "</text>\n";
  os << "<rect x='" << px << "' y='" << py << "' width='" << pw << "' height='" << ph
     << "' fill='none' stroke='#888'/>\n";
  const int decimals = s.percent ? std::max(0, -static_cast<int>(std::floor(std::log10(step * 100))))
                                 : std::max(0, -static_cast<int>(std::floor(std::log10(step))));
  for (double v = lo; v <= hi + step / 2; v += step) {
    os << "<line x1='" << px << "' x2='" << px + pw << "' y1='" << Y(v) << "' y2='" << Y(v) << "' stroke='#ddd'/>\n";
    os << "<text x='" << px - 6 << "' y='" << Y(v) + 4 << "' text-anchor='end' font-size='11'>"
       << (s.percent ? fmt(v * 100, decimals) + "%" : fmt(v, decimals)) << "</text>\n";
  }
  const std::size_t every = std::max<std::size_t>(1, (n + 9) / 10);
  for (std::size_t i = 0; i < n; i += every)
    os << "<text x='" << X(i) << "' y='" << py + ph + 16 << "' text-anchor='middle' font-size='11'>"
       << s.first_epoch + static_cast<long long>(i) << "</text>\n";
  os << "<text x='" << px + pw / 2 << "' y='" << py + ph + 32 << "' text-anchor='middle' font-size='12'>epoch</text>\n";
  os << "<polyline fill='none' stroke='" << s.color << "' stroke-width='2' points='";
  for (std::size_t i = 0; i < n; ++i) os << X(i) << "," << Y(s.values[i]) << " ";
  os << "'/>\n";
  for (std::size_t i = 0; i < n; ++i)
    os << "<circle cx='" << X(i) << "' cy='" << Y(s.values[i]) << "' r='3' fill='" << s.color << "'><title>epoch "
       << s.first_epoch + static_cast<long long>(i) << ": "
       << (s.percent ? fmt(s.values[i] * 100, 2) + "%" : fmt(s.values[i], 4)) << "</title></circle>\n";
}

}  // namespace chart_detail

/// The SVG text of the panels side by side, under `caption`.
inline std::string svg_chart(const std::string& caption, const std::vector<Series>& panels) {
  if (panels.empty() || panels.front().values.empty()) throw cellflow::ValueError("svg_chart: nothing to plot");
  const double pw = 380, ph = 260, top = 30;
  const double W = pw * static_cast<double>(panels.size()), H = ph + top;
  std::ostringstream os;
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' viewBox='0 0 " << W << " "
     << H << "' font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
  os << "<text x='" << W / 2 << "' y='20' text-anchor='middle' font-size='13' fill='#444'>" << caption << "</text>\n";
  for (std::size_t k = 0; k < panels.size(); ++k)
    chart_detail::panel(os, panels[k], pw * static_cast<double>(k), top, pw, ph);
  os << "</svg>\n";
  return os.str();
}

}  // namespace support
