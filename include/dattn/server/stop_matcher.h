// Incremental stop-string matching over streamed text: text that might be the start of a stop string is
// held back until the next piece decides, so no client ever sees part of a stop string.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace dattn::server {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Feeds the next piece of text; returns the text now safe to emit. After a match it returns the text
  // before the stop string and stopped() turns true; later pushes return nothing.
  std::string push(std::string_view piece);
  // The held-back text (no stop string can complete any more).
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // text not emitted yet: a suffix that is a proper prefix of some stop string
  bool stopped_ = false;
};

}  // namespace dattn::server
