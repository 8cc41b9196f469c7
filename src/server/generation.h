// One completion request between the engine and its HTTP handler. The engine's thread delivers token
// events; this turns them into text (incremental detokenizing, stop strings) that the handler's thread
// collects. Shared by both threads through a shared_ptr, so either may finish first.
#pragma once
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dattn/model/tokenizer.h"
#include "dattn/server/api.h"
#include "dattn/server/engine.h"
#include "dattn/server/stop_matcher.h"

namespace dattn::server {

class Generation {
 public:
  using Clock = std::chrono::steady_clock;
  Generation(const Tokenizer& tokenizer, std::vector<std::string> stops, Clock::time_point arrival);

  // The engine callback: false once the request needs no more tokens (stop string, client gone).
  bool on_event(const TokenEvent& event);
  // The client went away: the next event cancels the sequence.
  void abandon();

  struct Update {
    std::string text;      // new text since the last take()
    bool finished = false;
  };
  // Waits until there is new text, the request finished, or the timeout passed.
  Update take(std::chrono::milliseconds timeout);
  Update take_all();  // waits for the end; all the text not taken yet
  bool wait_finished(std::chrono::milliseconds timeout);  // true once finished

  // Valid once finished.
  std::string finish_reason() const;
  std::optional<std::string> error() const;
  Usage usage() const;
  std::optional<double> time_to_first_token_s() const;
  double elapsed_s() const;

 private:
  void finish_locked(std::string reason);

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  StreamDecoder decoder_;
  StopMatcher stop_;
  Clock::time_point arrival_, finished_at_;
  std::optional<Clock::time_point> first_token_at_;
  std::string text_;            // ready for the handler, not taken yet
  bool finished_ = false, abandoned_ = false;
  std::string finish_reason_;
  std::optional<std::string> error_;
  Usage usage_;
};

}  // namespace dattn::server
