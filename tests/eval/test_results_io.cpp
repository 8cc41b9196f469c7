// The result writers produce files that parse: JSON (nlohmann), CSV (fields and quoting), SVG (an XML
// document with one polyline per mode).
#include <gtest/gtest.h>

#include "dattn/core/error.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dattn/eval/ruler_results.h"
#include "dattn/eval/svg_plot.h"

namespace dattn::eval {
namespace {

std::vector<RulerRecord> sample_records() {
  std::vector<RulerRecord> records;
  for (int64_t length : {1024, 2048})
    for (const char* mode : {"dense", "sparse"})
      for (int64_t i = 0; i < 2; ++i) {
        RulerRecord r;
        r.task = "niah_single_1";
        r.length = length;
        r.mode = mode;
        r.sample = i;
        r.prediction = i == 0 ? "1234567, \"quoted\"\nline" : "wrong";
        r.references = {"1234567"};
        r.score = i == 0 ? 1.0 : 0.0;
        records.push_back(r);
        r.task = "vt";
        r.score = 0.5;
        records.push_back(r);
      }
  return records;
}

TEST(RulerResults, SummaryAveragesSamplesAndTasks) {
  const auto cells = summarize_ruler(sample_records());
  ASSERT_EQ(cells.size(), 2u * 2 * 2 + 2 * 2);  // tasks x lengths x modes + averages
  EXPECT_EQ(cells[0].task, "niah_single_1");
  EXPECT_DOUBLE_EQ(cells[0].score_percent, 50.0);
  EXPECT_EQ(cells[0].samples, 2);
  EXPECT_EQ(cells.back().task, "average");
  EXPECT_DOUBLE_EQ(cells.back().score_percent, 50.0);
  const std::string table = format_ruler_table(cells);
  EXPECT_NE(table.find("niah_single_1"), std::string::npos);
  EXPECT_NE(table.find("50.00"), std::string::npos);
}

TEST(RulerResults, JsonCsvAndSvgParse) {
  const auto records = sample_records();
  const auto cells = summarize_ruler(records);
  RulerRunInfo info;
  info.model = "m";
  info.window = 64;
  const auto doc = nlohmann::json::parse(ruler_json(info, records, cells));
  EXPECT_EQ(doc["run"]["window"], 64);
  EXPECT_EQ(doc["samples"].size(), records.size());
  EXPECT_EQ(doc["samples"][0]["prediction"], records[0].prediction);
  EXPECT_EQ(doc["summary"].size(), cells.size());

  std::istringstream csv(ruler_csv(cells));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "task,length,mode,score,samples,mean_prefill_ms");
  int rows = 0;
  while (std::getline(csv, line)) {
    ++rows;
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 5) << line;
  }
  EXPECT_EQ(rows, int(cells.size()));

  const std::string svg = ruler_plot_svg(cells, "test <plot> & co");
  EXPECT_TRUE(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_TRUE(svg.ends_with("</svg>\n"));
  EXPECT_NE(svg.find("test &lt;plot&gt; &amp; co"), std::string::npos);
  size_t polylines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++polylines;
  EXPECT_EQ(polylines, 2u);  // dense, sparse
  // every opened element is closed: count '<' tags without a '/' against self-closing and closing ones
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '<'), std::count(svg.begin(), svg.end(), '>'));
}

TEST(RulerResults, CsvFieldsAreQuotedWhenNeeded) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
}

// The y tick labels of a fitted range are round values (a step of 1, 2, 2.5 or 5 times a power of ten).
TEST(SvgPlot, FittedYTicksAreRoundValues) {
  PlotSpec spec;
  spec.series.push_back({"a", {1, 2, 3}, {0.13, 0.71, 0.97}});
  const std::string svg = render_svg_line_plot(spec);
  std::vector<std::string> labels;
  const std::string open = "text-anchor=\"end\">";
  for (size_t at = svg.find(open); at != std::string::npos; at = svg.find(open, at + 1)) {
    const size_t begin = at + open.size();
    labels.push_back(svg.substr(begin, svg.find('<', begin) - begin));
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1"}));
}

// Two series with the same points stay distinguishable: the earlier one is drawn wider, the later one
// dashed with other markers on top.
TEST(SvgPlot, CoincidingSeriesStayVisible) {
  PlotSpec spec;
  spec.series.push_back({"dense", {1, 2}, {5, 6}});
  spec.series.push_back({"delta", {1, 2}, {5, 6}});
  const std::string svg = render_svg_line_plot(spec);
  const size_t first = svg.find("<polyline"), second = svg.find("<polyline", first + 1);
  ASSERT_NE(second, std::string::npos);
  const std::string a = svg.substr(first, svg.find('>', first) - first);
  const std::string b = svg.substr(second, svg.find('>', second) - second);
  EXPECT_NE(a.find("stroke-width=\"3.0\""), std::string::npos) << a;
  EXPECT_NE(b.find("stroke-width=\"1.5\""), std::string::npos) << b;
  EXPECT_NE(b.find("stroke-dasharray=\"8 4\""), std::string::npos) << b;
  EXPECT_NE(svg.find("<circle"), std::string::npos);
  EXPECT_NE(svg.find("<rect x="), std::string::npos);  // the second series' square markers
}

TEST(SvgPlot, RejectsMismatchedSeriesAndNonPositiveLogX) {
  PlotSpec spec;
  spec.series.push_back({"bad", {1, 2}, {1}});
  EXPECT_THROW(render_svg_line_plot(spec), Error);
  spec.series = {{"zero", {0, 1}, {1, 2}}};
  spec.log2_x = true;
  EXPECT_THROW(render_svg_line_plot(spec), Error);
}

}  // namespace
}  // namespace dattn::eval
