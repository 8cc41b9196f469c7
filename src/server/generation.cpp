#include "generation.h"

#include <utility>

namespace dattn::server {
namespace {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop_token: return "stop";
    case FinishReason::length:
    case FinishReason::context: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::error: return "error";
    case FinishReason::none: break;
  }
  return "stop";
}

}  // namespace

Generation::Generation(const Tokenizer& tokenizer, std::vector<std::string> stops, Clock::time_point arrival)
    : decoder_(tokenizer, /*skip_special_tokens=*/true), stop_(std::move(stops)), arrival_(arrival) {}

bool Generation::on_event(const TokenEvent& event) {
  std::lock_guard lock(mutex_);
  if (finished_) return false;
  // Runs on the engine's thread: nothing may escape (a decoder error ends this request, not the engine).
  try {
    usage_.prompt_tokens = event.prompt_tokens;
    if (event.token >= 0) {
      if (!first_token_at_) first_token_at_ = Clock::now();
      usage_.completion_tokens = event.completion_tokens;
      text_ += stop_.push(decoder_.push(event.token));
      if (stop_.stopped()) finish_locked("stop");
    }
    if (event.finished && !finished_) {
      if (event.reason == FinishReason::error) error_ = event.error.empty() ? "the engine failed" : event.error;
      text_ += stop_.push(decoder_.finish());
      text_ += stop_.finish();
      finish_locked(stop_.stopped() ? "stop" : finish_reason_name(event.reason));
    }
  } catch (const std::exception& e) {
    error_ = e.what();
    finish_locked("error");
  }
  changed_.notify_all();
  return !finished_ && !abandoned_;
}

void Generation::finish_locked(std::string reason) {
  finished_ = true;
  finished_at_ = Clock::now();
  finish_reason_ = std::move(reason);
}

void Generation::abandon() {
  std::lock_guard lock(mutex_);
  abandoned_ = true;
}

Generation::Update Generation::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return finished_ || !text_.empty(); });
  return {std::exchange(text_, {}), finished_};
}

Generation::Update Generation::take_all() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return finished_; });
  return {std::exchange(text_, {}), true};
}

bool Generation::wait_finished(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return finished_; });
}

std::string Generation::finish_reason() const {
  std::lock_guard lock(mutex_);
  return finish_reason_;
}

std::optional<std::string> Generation::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

Usage Generation::usage() const {
  std::lock_guard lock(mutex_);
  return usage_;
}

std::optional<double> Generation::time_to_first_token_s() const {
  std::lock_guard lock(mutex_);
  if (!first_token_at_) return std::nullopt;
  return std::chrono::duration<double>(*first_token_at_ - arrival_).count();
}

double Generation::elapsed_s() const {
  std::lock_guard lock(mutex_);
  return std::chrono::duration<double>((finished_ ? finished_at_ : Clock::now()) - arrival_).count();
}

}  // namespace dattn::server
