// Python string semantics over UTF-8: whitespace is str.isspace(), case mapping is ICU's full mapping
// (as Python's str.upper/lower use the full Unicode mappings).
#include "text.h"

#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <fmt/format.h>

#include "dattn/core/error.h"
#include "utf8.h"
#include "value.h"

namespace dattn::chat_template_detail {
namespace {

using tokenizer_detail::decode_utf8_at;
using tokenizer_detail::is_python_space;

bool is_space_cp(std::string_view cp) { return is_python_space(decode_utf8_at(cp, 0)); }

bool in_chars(std::string_view cp, const std::optional<std::string>& chars) {
  if (!chars) return is_space_cp(cp);
  for (const std::string_view c : code_points(*chars)) {
    if (c == cp) return true;
  }
  return false;
}

std::string join_views(const std::vector<std::string_view>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) out += cps[i];
  return out;
}

}  // namespace

std::string py_strip(std::string_view text, const std::optional<std::string>& chars, bool left, bool right) {
  const std::vector<std::string_view> cps = code_points(text);
  size_t begin = 0, end = cps.size();
  if (left) {
    while (begin < end && in_chars(cps[begin], chars)) ++begin;
  }
  if (right) {
    while (end > begin && in_chars(cps[end - 1], chars)) --end;
  }
  return join_views(cps, begin, end);
}

std::vector<std::string> py_split(std::string_view text, const std::optional<std::string>& sep, long long maxsplit) {
  std::vector<std::string> parts;
  if (sep) {
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<long long>(parts.size()) < maxsplit) {
      const size_t found = text.find(*sep, pos);
      if (found == std::string_view::npos) break;
      parts.emplace_back(text.substr(pos, found - pos));
      pos = found + sep->size();
    }
    parts.emplace_back(text.substr(pos));
    return parts;
  }
  const std::vector<std::string_view> cps = code_points(text);
  size_t i = 0;
  while (true) {
    while (i < cps.size() && is_space_cp(cps[i])) ++i;
    if (i == cps.size()) break;
    if (maxsplit >= 0 && static_cast<long long>(parts.size()) == maxsplit) {
      size_t end = cps.size();
      while (end > i && is_space_cp(cps[end - 1])) --end;
      parts.push_back(join_views(cps, i, end));
      break;
    }
    const size_t start = i;
    while (i < cps.size() && !is_space_cp(cps[i])) ++i;
    parts.push_back(join_views(cps, start, i));
  }
  return parts;
}

std::vector<std::string> py_rsplit(std::string_view text, const std::optional<std::string>& sep, long long maxsplit) {
  if (maxsplit < 0) return py_split(text, sep, maxsplit);
  std::vector<std::string> parts;
  if (sep) {
    size_t end = text.size();
    while (static_cast<long long>(parts.size()) < maxsplit) {
      if (end < sep->size()) break;
      const size_t found = text.rfind(*sep, end - sep->size());
      if (found == std::string_view::npos) break;
      parts.emplace_back(text.substr(found + sep->size(), end - found - sep->size()));
      end = found;
    }
    parts.emplace_back(text.substr(0, end));
  } else {
    const std::vector<std::string_view> cps = code_points(text);
    size_t i = cps.size();
    while (true) {
      while (i > 0 && is_space_cp(cps[i - 1])) --i;
      if (i == 0) break;
      if (static_cast<long long>(parts.size()) == maxsplit) {
        size_t begin = 0;
        while (begin < i && is_space_cp(cps[begin])) ++begin;
        parts.push_back(join_views(cps, begin, i));
        break;
      }
      const size_t end = i;
      while (i > 0 && !is_space_cp(cps[i - 1])) --i;
      parts.push_back(join_views(cps, i, end));
    }
  }
  return {parts.rbegin(), parts.rend()};
}

std::string py_replace(std::string_view text, std::string_view old, std::string_view replacement, long long count,
                       size_t limit) {
  std::string out;
  const auto check = [&]() {
    if (out.size() > limit) fail("replace: the result would exceed {} bytes", limit);
  };
  long long done = 0;
  if (old.empty()) {  // Python inserts the replacement between all characters and at both ends
    const std::vector<std::string_view> cps = code_points(text);
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += replacement;
        ++done;
      }
      if (i < cps.size()) out += cps[i];
      check();
    }
    return out;
  }
  size_t pos = 0;
  while (count < 0 || done < count) {
    const size_t found = text.find(old, pos);
    if (found == std::string_view::npos) break;
    out.append(text.substr(pos, found - pos));
    out.append(replacement);
    pos = found + old.size();
    ++done;
    check();
  }
  out.append(text.substr(pos));
  return out;
}

std::string py_upper(std::string_view text) {
  std::string out;
  icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())))
      .toUpper(icu::Locale::getRoot())
      .toUTF8String(out);
  return out;
}

std::string py_lower(std::string_view text) {
  std::string out;
  icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())))
      .toLower(icu::Locale::getRoot())
      .toUTF8String(out);
  return out;
}

std::string py_capitalize(std::string_view text) {
  const std::vector<std::string_view> cps = code_points(text);
  if (cps.empty()) return {};
  return py_upper(cps[0]) + py_lower(text.substr(cps[0].size()));
}

std::string py_title(std::string_view text) {
  std::string out;
  bool previous_cased = false;
  for (const std::string_view cp : code_points(text)) {
    const UChar32 c = static_cast<UChar32>(decode_utf8_at(cp, 0));
    out += previous_cased ? py_lower(cp) : py_upper(cp);
    previous_cased = u_hasBinaryProperty(c, UCHAR_CASED) != 0;
  }
  return out;
}

std::string ascii_escape(std::string_view json) {
  std::string out;
  for (const std::string_view cp : code_points(json)) {
    if (cp.size() == 1) {
      out += cp;
      continue;
    }
    const char32_t c = decode_utf8_at(cp, 0);
    const auto unit = [&out](unsigned u) { out += fmt::format("\\u{:04x}", u); };
    if (c >= 0x10000) {
      const char32_t v = c - 0x10000;
      unit(0xD800 + (v >> 10));
      unit(0xDC00 + (v & 0x3FF));
    } else {
      unit(static_cast<unsigned>(c));
    }
  }
  return out;
}

}  // namespace dattn::chat_template_detail
