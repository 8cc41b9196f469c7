#include "dattn/eval/scoring.h"

namespace dattn::eval {

namespace {
// Python's str.strip() whitespace within ASCII: \t \n \v \f \r, the separators 0x1c-0x1f, and space.
bool is_python_space(unsigned char c) { return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == ' '; }

std::string_view strip(std::string_view s) {
  while (!s.empty() && is_python_space(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && is_python_space(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool contains_ignoring_case(const std::string& lowered_haystack, std::string_view needle) {
  return lowered_haystack.find(ascii_lower(needle)) != std::string::npos;
}
}  // namespace

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

std::string postprocess_prediction(std::string_view prediction) {
  std::string cleaned(strip(prediction));
  for (char& c : cleaned)
    if (static_cast<unsigned char>(c) <= 0x1f) c = '\n';
  return std::string(strip(cleaned));
}

double string_match_all(std::string_view prediction, std::span<const std::string> references) {
  if (references.empty()) return 0.0;
  const std::string lowered = ascii_lower(prediction);
  int found = 0;
  for (const std::string& r : references) found += contains_ignoring_case(lowered, r) ? 1 : 0;
  return double(found) / double(references.size());
}

double string_match_part(std::string_view prediction, std::span<const std::string> references) {
  const std::string lowered = ascii_lower(prediction);
  for (const std::string& r : references)
    if (contains_ignoring_case(lowered, r)) return 1.0;
  return 0.0;
}

}  // namespace dattn::eval
