// A progress bar with rate and ETA on stderr: redrawn in place on a terminal, a line every 10% otherwise.
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

#include "dattn/eval/model_eval.h"

namespace dattn::eval {

class ProgressBar {
 public:
  explicit ProgressBar(std::FILE* out = stderr);
  void update(const EvalProgress& progress);
  void finish();  // ends the line on a terminal

 private:
  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_decile_ = -1;
  bool drawn_ = false;
};

// "1h02m", "3m12s", "42s"
std::string format_duration(double seconds);

}  // namespace dattn::eval
