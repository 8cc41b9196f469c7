#include "dattn/eval/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "dattn/core/error.h"

namespace dattn::eval {

namespace {

constexpr double kWidth = 720, kHeight = 440;
constexpr double kLeft = 70, kRight = 170, kTop = 40, kBottom = 60;  // margins; legend on the right
constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"};

std::string escape_xml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string tick_label(double v) {
  if (std::abs(v) >= 1024 && std::fmod(v, 1024) == 0) return fmt::format("{}K", v / 1024);
  if (std::abs(v) < 1e-12) return "0";
  return fmt::format("{:.4g}", v);
}

// A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about `target` intervals over [lo, hi].
double nice_step(double lo, double hi, int target) {
  const double raw = (hi - lo) / target;
  const double decade = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0})
    if (raw <= m * decade * (1 + 1e-9)) return m * decade;
  return 10 * decade;
}

// Series can coincide (dense and delta at a short length, two modes that find every needle): later series
// are drawn thinner, dashed and with smaller markers of another shape on top of earlier ones, so each stays
// visible.
double line_width(size_t s, size_t n) { return 1.5 + 1.5 * double(n - 1 - s); }
const char* dash_pattern(size_t s) {
  constexpr const char* kDashes[] = {"", "8 4", "3 3", "10 3 2 3"};
  return kDashes[s % std::size(kDashes)];
}
std::string marker(size_t s, double x, double y, double r, const char* color) {
  switch (s % 4) {
    case 0: return fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{:.1f}\" fill=\"{}\"/>\n", x, y, r, color);
    case 1:
      return fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>\n", x - r,
                         y - r, 2 * r, 2 * r, color);
    case 2:
      return fmt::format("<polygon points=\"{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}\" fill=\"{}\"/>\n", x, y - 1.3 * r,
                         x - 1.2 * r, y + r, x + 1.2 * r, y + r, color);
    default:
      return fmt::format("<polygon points=\"{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}\" fill=\"{}\"/>\n", x,
                         y - 1.4 * r, x + 1.4 * r, y, x, y + 1.4 * r, x - 1.4 * r, y, color);
  }
}

}  // namespace

std::string render_svg_line_plot(const PlotSpec& spec) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  auto to_x = [&](double x) { return spec.log2_x ? std::log2(x) : x; };
  for (const PlotSeries& s : spec.series) {
    DATTN_CHECK(s.x.size() == s.y.size(), "plot series '{}' has {} x values and {} y values", s.name, s.x.size(),
                s.y.size());
    for (size_t i = 0; i < s.x.size(); ++i) {
      DATTN_CHECK(!spec.log2_x || s.x[i] > 0, "plot series '{}': x = {} on a log axis", s.name, s.x[i]);
      if (!std::isfinite(s.y[i])) continue;
      x_lo = std::min(x_lo, to_x(s.x[i]));
      x_hi = std::max(x_hi, to_x(s.x[i]));
      y_lo = std::min(y_lo, s.y[i]);
      y_hi = std::max(y_hi, s.y[i]);
    }
  }
  if (!(x_lo <= x_hi)) x_lo = 0, x_hi = 1;
  if (!(y_lo <= y_hi)) y_lo = 0, y_hi = 1;
  if (spec.y_min < spec.y_max) y_lo = spec.y_min, y_hi = spec.y_max;
  if (x_hi == x_lo) x_lo -= 1, x_hi += 1;
  if (y_hi == y_lo) y_lo -= 0.5, y_hi += 0.5;
  const bool fixed_y = spec.y_min < spec.y_max;
  const double y_step = nice_step(y_lo, y_hi, 5);
  if (!fixed_y) {  // widen a fitted range to whole ticks, so every tick label is a round value
    y_lo = std::floor(y_lo / y_step + 1e-9) * y_step;
    y_hi = std::ceil(y_hi / y_step - 1e-9) * y_step;
  }
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (to_x(x) - x_lo) / (x_hi - x_lo) * plot_w; };
  auto py = [&](double y) { return kTop + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n",
      kWidth, kHeight);
  svg += fmt::format("<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
                     kLeft + plot_w / 2, escape_xml(spec.title));
  // y ticks: the multiples of a round step inside the range; x ticks: the distinct x values of the data
  for (double t = std::ceil(y_lo / y_step - 1e-9); t * y_step <= y_hi + y_step * 1e-9; t += 1) {
    const double v = t * y_step, y = py(v);
    svg += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", kLeft, y,
                       kLeft + plot_w, y);
    svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", kLeft - 6, y + 4, tick_label(v));
  }
  std::vector<double> xs;
  for (const PlotSeries& s : spec.series) xs.insert(xs.end(), s.x.begin(), s.x.end());
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  const size_t stride = std::max<size_t>(1, xs.size() / 12);  // at most about 12 labels
  for (size_t i = 0; i < xs.size(); i += stride)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(xs[i]),
                       kTop + plot_h + 18, tick_label(xs[i]));
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n", kLeft,
                     kTop, plot_w, plot_h);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", kLeft + plot_w / 2,
                     kHeight - 15, escape_xml(spec.x_label));
  svg += fmt::format("<text x=\"16\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0})\">{1}</text>\n",
                     kTop + plot_h / 2, escape_xml(spec.y_label));

  for (size_t s = 0; s < spec.series.size(); ++s) {
    const PlotSeries& series = spec.series[s];
    const char* color = kColors[s % std::size(kColors)];
    std::string points;
    for (size_t i = 0; i < series.x.size(); ++i)
      if (std::isfinite(series.y[i])) points += fmt::format("{:.1f},{:.1f} ", px(series.x[i]), py(series.y[i]));
    const double width = line_width(s, spec.series.size()), radius = 2 + 0.75 * width;
    svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{:.1f}\" stroke-dasharray=\"{}\" "
                       "points=\"{}\"/>\n",
                       color, width, dash_pattern(s), points);
    for (size_t i = 0; i < series.x.size(); ++i)
      if (std::isfinite(series.y[i])) svg += marker(s, px(series.x[i]), py(series.y[i]), radius, color);
    const double ly = kTop + 10 + 20 * double(s);
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"{4:.1f}\" "
        "stroke-dasharray=\"{5}\"/>\n",
        kWidth - kRight + 15, ly, kWidth - kRight + 40, color, width, dash_pattern(s));
    svg += marker(s, kWidth - kRight + 27.5, ly, radius, color);
    svg += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", kWidth - kRight + 46, ly + 4, escape_xml(series.name));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace dattn::eval
