// RULER results: one record per (task, length, mode, sample), their summary per cell, and the files
// `dattn eval ruler` writes (results.json, results.csv, plot.svg) and its table.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace dattn::eval {

struct RulerRecord {
  std::string task;
  int64_t length = 0;  // the target length (RULER's max_seq_length)
  std::string mode;    // prefill attention: dense, sparse, recompute, delta
  int64_t sample = 0;
  int64_t prompt_tokens = 0;
  std::string prediction;  // after RULER's postprocessing
  std::vector<std::string> references;
  double score = 0;  // string_match_all, 0..1
  double prefill_ms = 0, decode_ms = 0;
  int64_t generated_tokens = 0;
  int64_t adaptive_dense_layers = -1;  // delta+adaptive: layers the policy made dense (-1: policy off)
};

// Mean score of a (task, length, mode) cell in percent, as RULER reports it (rounded to 2 decimals when
// printed). task "average" is the mean over the tasks of the run at that length and mode.
struct RulerCell {
  std::string task;
  int64_t length = 0;
  std::string mode;
  double score_percent = 0;
  int64_t samples = 0;
  double mean_prefill_ms = 0;
};

// Cells in the order tasks, lengths and modes first appear in the records, then the "average" rows.
std::vector<RulerCell> summarize_ruler(const std::vector<RulerRecord>& records);

// What the run was (echoed into results.json).
struct RulerRunInfo {
  std::string model;
  std::string haystack;
  uint64_t seed = 0;
  int64_t window = 0, sink = 0, gamma = 0;
  std::string device;
};

// The contents of results.json, results.csv (header: task,length,mode,score,samples,mean_prefill_ms) and
// plot.svg (average accuracy vs length, one line per mode); the CLI writes them through OutputFiles.
std::string ruler_json(const RulerRunInfo& info, const std::vector<RulerRecord>& records,
                       const std::vector<RulerCell>& cells);
std::string ruler_csv(const std::vector<RulerCell>& cells);
std::string ruler_plot_svg(const std::vector<RulerCell>& cells, const std::string& title);
// Rows: task x length; columns: modes.
std::string format_ruler_table(const std::vector<RulerCell>& cells);

// One record as a single JSON line (no newline) and back; the parser throws dattn::Error on a bad line.
std::string ruler_record_line(const RulerRecord& r);
RulerRecord parse_ruler_record_line(const std::string& line);

// A CSV field, quoted when it holds a comma, quote or newline.
std::string csv_field(const std::string& value);

}  // namespace dattn::eval
