// Python str operations on UTF-8 text that templates call: strip, split, case mapping, ...
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dattn::chat_template_detail {

// str.strip/lstrip/rstrip: whitespace (str.isspace) or, with chars, any of those characters.
std::string py_strip(std::string_view text, const std::optional<std::string>& chars, bool left, bool right);
// str.split(sep, maxsplit) (sep unset: runs of whitespace, empty parts dropped); maxsplit < 0: no limit.
std::vector<std::string> py_split(std::string_view text, const std::optional<std::string>& sep, long long maxsplit);
// str.rsplit.
std::vector<std::string> py_rsplit(std::string_view text, const std::optional<std::string>& sep, long long maxsplit);
// str.replace; a result longer than limit throws dattn::Error.
std::string py_replace(std::string_view text, std::string_view old, std::string_view replacement, long long count,
                       size_t limit);
std::string py_upper(std::string_view text);
std::string py_lower(std::string_view text);
// str.capitalize and str.title.
std::string py_capitalize(std::string_view text);
std::string py_title(std::string_view text);
// json.dumps' ensure_ascii: non-ASCII as \uXXXX (surrogate pairs above U+FFFF).
std::string ascii_escape(std::string_view json);

}  // namespace dattn::chat_template_detail
