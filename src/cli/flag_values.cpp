#include "flag_values.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "dattn/core/error.h"

namespace dattn::cli {
namespace {

bool parse_int(std::string_view text, int64_t& value) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::vector<int64_t> parse_int_list(std::string_view flag, std::string_view text, int64_t min, int64_t max) {
  std::vector<int64_t> values;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string_view item = text.substr(begin, end - begin);
    int64_t value = 0;
    DATTN_CHECK(parse_int(item, value) && value >= min && value <= max,
                "{}: '{:.40}' is not an integer in the allowed range {} .. {}", flag, item, min, max);
    values.push_back(value);
    begin = end + 1;
  }
  DATTN_CHECK(!values.empty(), "{}: no values given", flag);
  return values;
}

CLI::Validator int_range(int64_t min, int64_t max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        int64_t value = 0;
        if (parse_int(text, value) && value >= min && value <= max) return {};
        return fmt::format("'{:.40}' is not an integer in the allowed range {} .. {}", text, min, max);
      },
      fmt::format("INT in [{} .. {}]", min, max));
}

CLI::Validator uint64_value() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (!text.empty() && ec == std::errc() && end == text.data() + text.size()) return {};
        return fmt::format("'{:.40}' is not an integer in the allowed range 0 .. 18446744073709551615", text);
      },
      "UINT64");
}

CLI::Validator positive_number(double max) {
  return CLI::Validator(
      [max](std::string& text) -> std::string {
        double value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (!text.empty() && ec == std::errc() && end == text.data() + text.size() && std::isfinite(value) &&
            value > 0 && value <= max)
          return {};
        return fmt::format("'{:.40}' is not a number in the allowed range (0, {:g}]", text, max);
      },
      fmt::format("NUMBER in (0, {:g}]", max));
}

}  // namespace dattn::cli
