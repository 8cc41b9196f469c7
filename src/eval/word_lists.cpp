#include <algorithm>
#include <set>

#include "embedded_data.h"
#include "ruler_builders.h"

namespace dattn::eval::detail {

namespace {
// Sorted, de-duplicated words of whitespace-separated lines.
std::vector<std::string> sorted_words(std::initializer_list<std::span<const std::string_view>> sources) {
  std::set<std::string> unique;
  for (auto lines : sources)
    for (std::string_view line : lines) {
      size_t i = 0;
      while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
        const size_t b = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
        if (i > b) unique.emplace(line.substr(b, i - b));
      }
    }
  return {unique.begin(), unique.end()};
}
}  // namespace

const std::vector<std::string>& noun_words() {
  static const auto words = sorted_words({embedded_nouns()});
  return words;
}
const std::vector<std::string>& adjective_words() {
  static const auto words = sorted_words({embedded_adjectives()});
  return words;
}
const std::vector<std::string>& common_words() {
  static const auto words = sorted_words({embedded_nouns(), embedded_adjectives(), embedded_verbs()});
  return words;
}

}  // namespace dattn::eval::detail
