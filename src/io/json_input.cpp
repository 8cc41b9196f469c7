#include "dattn/io/json_input.h"

#include "dattn/core/error.h"
#include "dattn/core/input_file.h"
#include "dattn/core/text_file.h"

namespace dattn {
namespace {

// Thrown from the parser callback to stop at the first container past the depth limit.
struct TooDeep {};

// nlohmann's message without its "[json.exception.parse_error.101] " tag, and with the text it quotes
// ("last read: '...'", possibly a whole multi-megabyte string) cut short.
std::string parse_error_reason(const nlohmann::json::parse_error& e) {
  std::string_view what = e.what();
  if (const size_t tag_end = what.find("] "); what.starts_with("[json.exception") && tag_end != what.npos) {
    what.remove_prefix(tag_end + 2);
  }
  return excerpt(what, 200);
}

}  // namespace

nlohmann::json parse_json(std::string_view text, std::string_view origin, const JsonLimits& limits) {
  DATTN_CHECK(text.size() <= limits.max_bytes, "{} is {}, more than the {} allowed", origin, format_bytes(text.size()),
              format_bytes(limits.max_bytes));
  // depth is the number of open containers around the event; object_start/array_start open one more
  const auto depth_guard = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        depth >= limits.max_depth) {
      throw TooDeep{};
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), depth_guard);
  } catch (const TooDeep&) {
    fail("{} nests arrays and objects more than {} levels deep", origin, limits.max_depth);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{} is not valid JSON: {}", origin, parse_error_reason(e));
  } catch (const nlohmann::json::exception& e) {
    fail("{} is not valid JSON: {}", origin, excerpt(e.what(), 200));
  }
}

nlohmann::json read_json_file(const std::filesystem::path& path, const JsonLimits& limits) {
  return parse_json(read_text_file(path, limits.max_bytes, InputKind::regular_file), path.string(), limits);
}

std::string json_excerpt(const nlohmann::json& value, size_t max_bytes) {
  // error_handler replace: a string with invalid UTF-8 is shown, not a second exception
  return excerpt(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), max_bytes);
}

}  // namespace dattn
