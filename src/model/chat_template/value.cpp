// Python semantics of template values: truthiness, str/repr, json.dumps, equality.
#include "value.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "dattn/core/error.h"
#include "utf8.h"

namespace dattn::chat_template_detail {

using tokenizer_detail::utf8_char_length;

const Value* ValueDict::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void ValueDict::set(std::string key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

namespace {

int nested_depth(int child_depth) {
  if (child_depth + 1 > kMaxValueDepth) fail("a list or dict nested deeper than {} levels", kMaxValueDepth);
  return child_depth + 1;
}

}  // namespace

Value Value::list(ValueList items, bool tuple) {
  Value v;
  int deepest = 0;
  for (const Value& item : items) deepest = std::max(deepest, item.depth_);
  v.depth_ = nested_depth(deepest);
  v.kind_ = Kind::list;
  v.tuple_ = tuple;
  v.list_ = std::make_shared<const ValueList>(std::move(items));
  return v;
}

Value Value::dict(ValueDict dict) {
  Value v;
  int deepest = 0;
  for (const auto& item : dict.items) deepest = std::max(deepest, item.second.depth_);
  v.depth_ = nested_depth(deepest);
  v.kind_ = Kind::dict;
  v.dict_ = std::make_shared<ValueDict>(std::move(dict));
  return v;
}

Value Value::name_space(ValueDict attrs) {
  Value v = dict(std::move(attrs));
  v.kind_ = Kind::ns;
  return v;
}

Value Value::function(std::string name, Builtin fn) {
  Value v;
  v.kind_ = Kind::function;
  v.str_ = std::make_shared<const std::string>(std::move(name));
  v.fn_ = std::make_shared<const Builtin>(std::move(fn));
  return v;
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none: return false;
    case Value::Kind::boolean:
    case Value::Kind::integer: return v.as_int() != 0;
    case Value::Kind::floating: return v.as_double() != 0.0;
    case Value::Kind::string: return !v.as_string().empty();
    case Value::Kind::list: return !v.as_list().empty();
    case Value::Kind::dict: return !v.as_dict().items.empty();
    case Value::Kind::ns:
    case Value::Kind::function: return true;
  }
  return false;
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined: return "undefined";
    case Value::Kind::none: return "NoneType";
    case Value::Kind::boolean: return "bool";
    case Value::Kind::integer: return "int";
    case Value::Kind::floating: return "float";
    case Value::Kind::string: return "str";
    case Value::Kind::list: return v.is_tuple() ? "tuple" : "list";
    case Value::Kind::dict: return "dict";
    case Value::Kind::ns: return "Namespace";
    case Value::Kind::function: return "function";
  }
  return "?";
}

std::string float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0) return std::signbit(f) ? "-0.0" : "0.0";
  // Shortest round-trip digits and exponent, then Python's layout: fixed for 1e-4 <= |f| < 1e16.
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  const std::string sci(buf, result.ptr);
  const size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (const char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out += digits;
    } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
      out += digits;
      out.append(exponent + 1 - digits.size(), '0');
      out += ".0";
    } else {
      out.append(digits, 0, static_cast<size_t>(exponent) + 1);
      out += '.';
      out.append(digits, static_cast<size_t>(exponent) + 1);
    }
    return out;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out.append(digits, 1);
  }
  out += exponent < 0 ? "e-" : "e+";
  const int magnitude = std::abs(exponent);
  if (magnitude < 10) out += '0';
  out += std::to_string(magnitude);
  return out;
}

namespace {

// Python's repr of a str: single quotes unless the text has ' and no ".
std::string string_repr(const std::string& s) {
  const bool double_quote = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char quote = double_quote ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out + quote;
}

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (u < 0x20) {
          out += fmt::format("\\u{:04x}", u);
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void check_limit(const std::string& out, size_t limit) {
  if (out.size() > limit) fail("a text of more than {} bytes", limit);
}

struct JsonWriter {
  int indent;
  std::string_view item_sep, key_sep;
  bool sort_keys;
  size_t limit;
  std::string out;

  void newline(int level) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * level, ' ');
  }

  void write(const Value& v, int level) {
    check_limit(out, limit);
    switch (v.kind()) {
      case Value::Kind::none: out += "null"; return;
      case Value::Kind::boolean: out += v.as_bool() ? "true" : "false"; return;
      case Value::Kind::integer: out += std::to_string(v.as_int()); return;
      case Value::Kind::floating: {
        const double f = v.as_double();
        out += std::isnan(f) ? "NaN" : std::isinf(f) ? (f > 0 ? "Infinity" : "-Infinity") : float_repr(f);
        return;
      }
      case Value::Kind::string: json_string(out, v.as_string()); return;
      case Value::Kind::list: {
        const ValueList& items = v.as_list();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += item_sep;
          if (indent >= 0) newline(level + 1);
          write(items[i], level + 1);
        }
        if (indent >= 0) newline(level);
        out += ']';
        return;
      }
      case Value::Kind::dict: {
        std::vector<const std::pair<std::string, Value>*> items;
        for (const auto& item : v.as_dict().items) items.push_back(&item);
        if (sort_keys) std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
        if (items.empty()) {
          out += "{}";
          return;
        }
        out += '{';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += item_sep;
          if (indent >= 0) newline(level + 1);
          json_string(out, items[i]->first);
          out += key_sep;
          write(items[i]->second, level + 1);
        }
        if (indent >= 0) newline(level);
        out += '}';
        return;
      }
      case Value::Kind::undefined:
      case Value::Kind::ns:
      case Value::Kind::function: fail("tojson: Object of type {} is not JSON serializable", type_name(v));
    }
  }
};

}  // namespace

namespace {

void repr_into(std::string& out, const Value& v, size_t limit) {
  check_limit(out, limit);
  switch (v.kind()) {
    case Value::Kind::list: {
      const ValueList& items = v.as_list();
      out += v.is_tuple() ? "(" : "[";
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ", ";
        repr_into(out, items[i], limit);
      }
      if (v.is_tuple() && items.size() == 1) out += ',';
      out += v.is_tuple() ? ")" : "]";
      return;
    }
    case Value::Kind::dict: {
      out += "{";
      bool first = true;
      for (const auto& [key, item] : v.as_dict().items) {
        out += (first ? "" : ", ") + string_repr(key) + ": ";
        repr_into(out, item, limit);
        first = false;
      }
      out += "}";
      return;
    }
    case Value::Kind::undefined: out += "Undefined"; return;
    case Value::Kind::none: out += "None"; return;
    case Value::Kind::boolean: out += v.as_bool() ? "True" : "False"; return;
    case Value::Kind::integer: out += std::to_string(v.as_int()); return;
    case Value::Kind::floating: out += float_repr(v.as_double()); return;
    case Value::Kind::string: out += string_repr(v.as_string()); return;
    case Value::Kind::ns: out += "<Namespace>"; return;
    case Value::Kind::function: out += "<function " + v.function_name() + ">"; return;
  }
}

}  // namespace

std::string repr(const Value& v, size_t limit) {
  std::string out;
  repr_into(out, v, limit);
  check_limit(out, limit);
  return out;
}

std::string to_str(const Value& v, size_t limit) {
  if (v.is_undefined()) return "";
  if (v.is_string()) return v.as_string();
  return repr(v, limit);
}

std::string to_json(const Value& v, int indent, std::string_view item_sep, std::string_view key_sep, bool sort_keys,
                    size_t limit) {
  JsonWriter writer{indent, item_sep, key_sep, sort_keys, limit, {}};
  writer.write(v, 0);
  check_limit(writer.out, limit);
  return std::move(writer.out);
}

bool contains_namespace(const Value& v) {
  if (v.kind() == Value::Kind::ns) return true;
  if (v.is_list()) return std::any_of(v.as_list().begin(), v.as_list().end(), contains_namespace);
  if (v.is_dict()) {
    return std::any_of(v.as_dict().items.begin(), v.as_dict().items.end(), [](const auto& item) { return contains_namespace(item.second); });
  }
  return false;
}

bool equals(const Value& a, const Value& b, uint64_t* work) {
  if (work != nullptr) ++*work;
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::floating || b.kind() == Value::Kind::floating) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none: return true;
    case Value::Kind::string: return a.as_string() == b.as_string();
    case Value::Kind::list: {
      if (a.is_tuple() != b.is_tuple() || a.as_list().size() != b.as_list().size()) return false;
      for (size_t i = 0; i < a.as_list().size(); ++i) {
        if (!equals(a.as_list()[i], b.as_list()[i], work)) return false;
      }
      return true;
    }
    case Value::Kind::dict: {
      const ValueDict& x = a.as_dict();
      const ValueDict& y = b.as_dict();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [key, item] : x.items) {
        const Value* other = y.find(key);
        if (other == nullptr || !equals(item, *other, work)) return false;
      }
      return true;
    }
    case Value::Kind::ns: return &a.as_dict() == &b.as_dict();
    case Value::Kind::function: return &a.as_function() == &b.as_function();
    default: return false;
  }
}

Value from_json(const nlohmann::ordered_json& json, int depth) {
  if (depth >= kMaxValueDepth) fail("chat template input: JSON nested deeper than {} levels", kMaxValueDepth);
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = json.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) fail("integer {} is too large for a chat template", u);
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::floating(json.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::string(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json(item, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      ValueDict dict;
      for (const auto& [key, item] : json.items()) dict.items.emplace_back(key, from_json(item, depth + 1));
      return Value::dict(std::move(dict));
    }
    default: fail("chat template input: unsupported JSON value {}", json.type_name());
  }
}

std::vector<std::string_view> code_points(std::string_view text) {
  std::vector<std::string_view> out;
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = std::min(utf8_char_length(text, pos), text.size() - pos);
    out.push_back(text.substr(pos, length));
    pos += length;
  }
  return out;
}

size_t code_point_count(std::string_view text) {
  size_t count = 0;
  for (const char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

}  // namespace dattn::chat_template_detail
