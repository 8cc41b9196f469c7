#include "dattn/eval/progress_bar.h"

#include <unistd.h>

#include <cmath>

#include <fmt/format.h>

namespace dattn::eval {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = int64_t(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

ProgressBar::ProgressBar(std::FILE* out)
    : out_(out), tty_(isatty(fileno(out)) != 0), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void ProgressBar::update(const EvalProgress& p) {
  const auto now = std::chrono::steady_clock::now();
  const double fraction = p.total > 0 ? std::min(1.0, p.done / p.total) : 0.0;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  // ETA from the work done so far (work is weighted by prompt tokens, so long lengths count more)
  const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : NAN;
  const int decile = int(fraction * 10);
  if (tty_) {
    if (drawn_ && fraction < 1 && now - last_draw_ < std::chrono::milliseconds(100)) return;
    constexpr int kWidth = 30;
    const int filled = int(fraction * kWidth);
    fmt::print(out_, "\r[{}{}] {:5.1f}%  elapsed {}  ETA {}  {:<40.40}", std::string(size_t(filled), '#'),
               std::string(size_t(kWidth - filled), '.'), fraction * 100, format_duration(elapsed),
               format_duration(eta), p.what);
  } else {
    if (decile == last_decile_) return;
    fmt::print(out_, "progress {:5.1f}%  elapsed {}  ETA {}  {}\n", fraction * 100, format_duration(elapsed),
               format_duration(eta), p.what);
  }
  std::fflush(out_);
  last_decile_ = decile;
  last_draw_ = now;
  drawn_ = true;
}

void ProgressBar::finish() {
  if (tty_ && drawn_) fmt::print(out_, "\n");
  drawn_ = false;
}

}  // namespace dattn::eval
