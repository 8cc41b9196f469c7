#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/eval/ruler_results.h"
#include "dattn/eval/svg_plot.h"

namespace dattn::eval {

namespace {
nlohmann::json record_json(const RulerRecord& r) {
  nlohmann::json j = {{"task", r.task},     {"length", r.length},           {"mode", r.mode},
          {"sample", r.sample}, {"prompt_tokens", r.prompt_tokens}, {"prediction", r.prediction},
          {"references", r.references}, {"score", r.score},      {"prefill_ms", r.prefill_ms},
          {"decode_ms", r.decode_ms},   {"generated_tokens", r.generated_tokens}};
  if (r.adaptive_dense_layers >= 0) j["adaptive_dense_layers"] = r.adaptive_dense_layers;
  return j;
}

template <typename T>
void add_unique(std::vector<T>& seen, const T& v) {
  if (std::find(seen.begin(), seen.end(), v) == seen.end()) seen.push_back(v);
}
}  // namespace

std::vector<RulerCell> summarize_ruler(const std::vector<RulerRecord>& records) {
  std::vector<std::string> tasks, modes;
  std::vector<int64_t> lengths;
  for (const RulerRecord& r : records) {
    add_unique(tasks, r.task);
    add_unique(lengths, r.length);
    add_unique(modes, r.mode);
  }
  std::vector<RulerCell> cells;
  for (const std::string& task : tasks)
    for (int64_t length : lengths)
      for (const std::string& mode : modes) {
        RulerCell cell{task, length, mode, 0, 0, 0};
        for (const RulerRecord& r : records)
          if (r.task == task && r.length == length && r.mode == mode) {
            cell.score_percent += r.score;
            cell.mean_prefill_ms += r.prefill_ms;
            ++cell.samples;
          }
        if (cell.samples == 0) continue;
        cell.score_percent = cell.score_percent / double(cell.samples) * 100.0;
        cell.mean_prefill_ms /= double(cell.samples);
        cells.push_back(cell);
      }
  const size_t per_task = cells.size();
  for (int64_t length : lengths)
    for (const std::string& mode : modes) {
      RulerCell avg{"average", length, mode, 0, 0, 0};
      int64_t n = 0;
      for (size_t i = 0; i < per_task; ++i)
        if (cells[i].length == length && cells[i].mode == mode) {
          avg.score_percent += cells[i].score_percent;
          avg.mean_prefill_ms += cells[i].mean_prefill_ms;
          avg.samples += cells[i].samples;
          ++n;
        }
      if (n == 0) continue;
      avg.score_percent /= double(n);
      avg.mean_prefill_ms /= double(n);
      cells.push_back(avg);
    }
  return cells;
}

std::string ruler_record_line(const RulerRecord& r) {
  return record_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

RulerRecord parse_ruler_record_line(const std::string& line) {
  try {
    const nlohmann::json j = nlohmann::json::parse(line);
    RulerRecord r;
    r.task = j.at("task").get<std::string>();
    r.length = j.at("length").get<int64_t>();
    r.mode = j.at("mode").get<std::string>();
    r.sample = j.at("sample").get<int64_t>();
    r.prompt_tokens = j.at("prompt_tokens").get<int64_t>();
    r.adaptive_dense_layers = j.value("adaptive_dense_layers", int64_t(-1));
    r.prediction = j.at("prediction").get<std::string>();
    r.references = j.at("references").get<std::vector<std::string>>();
    r.score = j.at("score").get<double>();
    r.prefill_ms = j.at("prefill_ms").get<double>();
    r.decode_ms = j.at("decode_ms").get<double>();
    r.generated_tokens = j.at("generated_tokens").get<int64_t>();
    return r;
  } catch (const nlohmann::json::exception&) {
    fail("not a RULER record line ({} bytes)", line.size());
  }
}

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string ruler_json(const RulerRunInfo& info, const std::vector<RulerRecord>& records,
                       const std::vector<RulerCell>& cells) {
  using nlohmann::json;
  json doc;
  doc["run"] = {{"model", info.model},   {"haystack", info.haystack}, {"seed", info.seed},
                {"window", info.window}, {"sink", info.sink},         {"gamma", info.gamma},
                {"device", info.device}, {"metric", "string_match_all"}};
  json summary = json::array();
  for (const RulerCell& c : cells)
    summary.push_back({{"task", c.task}, {"length", c.length}, {"mode", c.mode}, {"score", c.score_percent},
                       {"samples", c.samples}, {"mean_prefill_ms", c.mean_prefill_ms}});
  doc["summary"] = summary;
  json samples = json::array();
  for (const RulerRecord& r : records) samples.push_back(record_json(r));
  doc["samples"] = samples;
  // invalid UTF-8 in a prediction is replaced rather than thrown on
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string ruler_csv(const std::vector<RulerCell>& cells) {
  std::string csv = "task,length,mode,score,samples,mean_prefill_ms\n";
  for (const RulerCell& c : cells)
    csv += fmt::format("{},{},{},{:.2f},{},{:.1f}\n", csv_field(c.task), c.length, csv_field(c.mode), c.score_percent,
                       c.samples, c.mean_prefill_ms);
  return csv;
}

std::string ruler_plot_svg(const std::vector<RulerCell>& cells, const std::string& title) {
  PlotSpec spec;
  spec.title = title;
  spec.x_label = "context length (tokens)";
  spec.y_label = "RULER accuracy (%), mean over tasks";
  spec.log2_x = true;
  spec.y_min = 0;
  spec.y_max = 100;
  for (const RulerCell& c : cells) {
    if (c.task != "average") continue;
    auto it = std::find_if(spec.series.begin(), spec.series.end(), [&](const PlotSeries& s) { return s.name == c.mode; });
    if (it == spec.series.end()) {
      spec.series.push_back({c.mode, {}, {}});
      it = spec.series.end() - 1;
    }
    it->x.push_back(double(c.length));
    it->y.push_back(c.score_percent);
  }
  return render_svg_line_plot(spec);
}

std::string format_ruler_table(const std::vector<RulerCell>& cells) {
  std::vector<std::string> modes;
  std::vector<std::pair<std::string, int64_t>> rows;
  for (const RulerCell& c : cells) {
    add_unique(modes, c.mode);
    add_unique(rows, std::make_pair(c.task, c.length));
  }
  std::map<std::tuple<std::string, int64_t, std::string>, double> score;
  for (const RulerCell& c : cells) score[{c.task, c.length, c.mode}] = c.score_percent;
  std::string out = fmt::format("{:<18} {:>8}", "task", "length");
  for (const std::string& m : modes) out += fmt::format(" {:>10}", m);
  out += "\n";
  for (const auto& [task, length] : rows) {
    out += fmt::format("{:<18} {:>8}", task, length);
    for (const std::string& m : modes) {
      auto it = score.find({task, length, m});
      out += it == score.end() ? fmt::format(" {:>10}", "-") : fmt::format(" {:>10.2f}", it->second);
    }
    out += "\n";
  }
  return out;
}

}  // namespace dattn::eval
