// A dependency-free SVG line plot (axes, ticks, one polyline with markers per series, legend).
#pragma once
#include <string>
#include <vector>

namespace dattn::eval {

struct PlotSeries {
  std::string name;
  std::vector<double> x, y;  // same length; points are drawn in order
};

struct PlotSpec {
  std::string title, x_label, y_label;
  bool log2_x = false;  // context lengths double: space them evenly
  // Fixed y range when y_min < y_max, else fitted to the data.
  double y_min = 0, y_max = 0;
  std::vector<PlotSeries> series;
};

// The whole SVG document. Throws dattn::Error when a series' x and y differ in length or log2_x meets x <= 0.
std::string render_svg_line_plot(const PlotSpec& spec);

}  // namespace dattn::eval
