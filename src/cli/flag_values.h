// Turning flag text into values with the flag, the value and the allowed range in every refusal.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace dattn::cli {

// "4096,8192" -> {4096, 8192}, each an integer in [min, max]; throws dattn::Error naming the flag, the item
// and the range (also for an empty list).
std::vector<int64_t> parse_int_list(std::string_view flag, std::string_view text, int64_t min, int64_t max);

// A CLI11 check that the option's value is an integer in [min, max]; its message names the value and the
// range, and CLI11 prefixes the flag.
CLI::Validator int_range(int64_t min, int64_t max);

// A CLI11 check for an unsigned 64-bit integer (a seed): "-1" or "2^64" is refused, not wrapped or clamped.
CLI::Validator uint64_value();

// A CLI11 check for a positive finite number (floating point) at most max.
CLI::Validator positive_number(double max);

}  // namespace dattn::cli
