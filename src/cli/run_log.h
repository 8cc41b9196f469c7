// The log of an eval run (OUT/NAME.jsonl): its first line the run's settings, then one JSON line per
// finished unit (a RULER sample in one mode, a perplexity mode), each flushed when written, so that an
// interrupted run (Ctrl-C, SIGTERM) loses at most the unit in flight and --resume can continue it.
#pragma once
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dattn::cli {

class RunLog {
 public:
  // resume = false starts a new log. resume = true keeps the units of the log at `path`, which must exist and
  // have been written with the same settings; a line torn by an interruption is dropped.
  RunLog(const std::filesystem::path& path, const nlohmann::json& settings, bool resume);
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;
  ~RunLog();
  const std::vector<std::string>& previous_units() const { return previous_; }
  void append(const std::string& line);  // one line, flushed

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::vector<std::string> previous_;
};

}  // namespace dattn::cli
