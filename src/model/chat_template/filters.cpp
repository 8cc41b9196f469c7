// Jinja's filters that chat templates use, with transformers' tojson (json.dumps, ensure_ascii=False).
#include <algorithm>
#include <cmath>

#include "dattn/core/error.h"
#include "interpreter.h"
#include "text.h"

namespace dattn::chat_template_detail {
namespace {

using Filter = Value (*)(Interpreter&, const Value&, CallArgs&);

const Value* arg(const CallArgs& args, size_t index, std::string_view name) { return args.get(index, name); }

bool flag(const CallArgs& args, size_t index, std::string_view name) {
  const Value* v = args.get(index, name);
  return v != nullptr && truthy(*v);
}

// An attribute path "a.b" or index of an item, as selectattr/map/sort/join take it.
Value item_attribute(Interpreter& interp, const Value& item, const Value& attribute, SourcePos pos) {
  if (attribute.kind() == Value::Kind::integer) return get_item(interp, item, attribute, pos);
  if (!attribute.is_string()) interp.error(pos, fmt::format("attribute must be a string, got {}", type_name(attribute)));
  Value current = item;
  for (const std::string& part : py_split(attribute.as_string(), std::string("."), -1)) {
    if (current.is_undefined()) return current;
    current = get_item(interp, current, Value::string(part), pos);
  }
  return current;
}

Value f_trim(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"chars"});
  const Value* chars = arg(args, 0, "chars");
  std::optional<std::string> set;
  if (chars != nullptr && !chars->is_none()) set = to_str(*chars);
  return Value::string(py_strip(to_str(v), set, true, true));
}

Value f_length(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  switch (v.kind()) {
    case Value::Kind::undefined: return Value::integer(0);
    case Value::Kind::string: return Value::integer(static_cast<int64_t>(code_point_count(v.as_string())));
    case Value::Kind::list: return Value::integer(static_cast<int64_t>(v.as_list().size()));
    case Value::Kind::dict: return Value::integer(static_cast<int64_t>(v.as_dict().items.size()));
    default: interp.error(args.pos, fmt::format("object of type '{}' has no len()", type_name(v)));
  }
}

Value f_tojson(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"ensure_ascii", "indent", "separators", "sort_keys"});
  // transformers' signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
  const Value* indent_arg = arg(args, 1, "indent");
  const bool ensure_ascii = flag(args, 0, "ensure_ascii");
  int indent = -1;
  std::string indent_text;
  if (indent_arg != nullptr && !indent_arg->is_none()) {
    if (indent_arg->kind() != Value::Kind::integer) interp.error(args.pos, fmt::format("tojson: indent must be an integer, got {}", type_name(*indent_arg)));
    indent = static_cast<int>(std::clamp<int64_t>(indent_arg->as_int(), 0, 64));
  }
  std::string item_sep = indent >= 0 ? "," : ", ", key_sep = ": ";
  if (const Value* separators = arg(args, 2, "separators"); separators != nullptr && !separators->is_none()) {
    if (!separators->is_list() || separators->as_list().size() != 2 || !separators->as_list()[0].is_string() ||
        !separators->as_list()[1].is_string()) {
      interp.error(args.pos, "tojson: separators must be two strings");
    }
    item_sep = separators->as_list()[0].as_string();
    key_sep = separators->as_list()[1].as_string();
  }
  std::string json;
  try {
    json = to_json(v, indent, item_sep, key_sep, flag(args, 3, "sort_keys"), interp.options().max_output_bytes);
  } catch (const Error& e) {
    interp.error(args.pos, e.what());
  }
  interp.check_size(json.size(), args.pos);
  return Value::string(ensure_ascii ? ascii_escape(json) : json);
}

Value f_items(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) interp.error(args.pos, fmt::format("items: can only get item pairs from a mapping, got {}", type_name(v)));
  ValueList items;
  for (const auto& [key, value] : v.as_dict().items) items.push_back(Value::list({Value::string(key), value}, true));
  return Value::list(std::move(items));
}

Value f_string(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  return Value::string(to_str(v));
}

Value f_upper(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  return Value::string(py_upper(to_str(v)));
}

Value f_lower(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  return Value::string(py_lower(to_str(v)));
}

Value f_capitalize(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  return Value::string(py_capitalize(to_str(v)));
}

Value f_title(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  return Value::string(py_title(to_str(v)));
}

Value f_replace(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"old", "new", "count"});
  const Value* old = arg(args, 0, "old");
  const Value* replacement = arg(args, 1, "new");
  if (old == nullptr || replacement == nullptr) interp.error(args.pos, "replace needs old and new");
  const Value* count = arg(args, 2, "count");
  const std::string out = py_replace(to_str(v), to_str(*old), to_str(*replacement),
                                     count && count->kind() == Value::Kind::integer ? count->as_int() : -1,
                                     interp.options().max_output_bytes);
  interp.check_size(out.size(), args.pos);
  return Value::string(out);
}

Value f_default(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"default_value", "boolean"});
  const Value* fallback = arg(args, 0, "default_value");
  const bool replace = v.is_undefined() || (flag(args, 1, "boolean") && !truthy(v));
  if (!replace) return v;
  return fallback ? *fallback : Value::string("");
}

Value f_first(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  const ValueList items = iterate(interp, v, args.pos);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  const ValueList items = iterate(interp, v, args.pos);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value f_join(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"d", "attribute"});
  const Value* separator = arg(args, 0, "d");
  const Value* attribute = arg(args, 1, "attribute");
  const std::string sep = separator ? to_str(*separator) : "";
  std::string out;
  bool first = true;
  for (const Value& item : iterate(interp, v, args.pos)) {
    if (!first) out += sep;
    out += to_str(attribute ? item_attribute(interp, item, *attribute, args.pos) : item);
    first = false;
    interp.check_size(out.size(), args.pos);
  }
  return Value::string(std::move(out));
}

Value f_list(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  return Value::list(iterate(interp, v, args.pos));
}

// select/reject(test, args...) and selectattr/rejectattr(attribute, test, args...).
Value select_items(Interpreter& interp, const Value& v, CallArgs& args, bool by_attribute, bool keep) {
  size_t next = 0;
  Value attribute;
  if (by_attribute) {
    if (args.positional.empty()) interp.error(args.pos, fmt::format("{} needs an attribute", args.callee));
    attribute = args.positional[next++];
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) interp.error(args.pos, fmt::format("{}: the test name must be a string", args.callee));
    test = args.positional[next++].as_string();
  }
  CallArgs test_args;
  test_args.callee = "test " + test;
  test_args.pos = args.pos;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next), args.positional.end());
  test_args.keyword = args.keyword;
  ValueList out;
  for (const Value& item : iterate(interp, v, args.pos)) {
    const Value subject = by_attribute ? item_attribute(interp, item, attribute, args.pos) : item;
    const bool passes = test.empty() ? truthy(subject) : apply_test(interp, test, subject, test_args);
    if (passes == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_select(Interpreter& interp, const Value& v, CallArgs& args) { return select_items(interp, v, args, false, true); }
Value f_reject(Interpreter& interp, const Value& v, CallArgs& args) { return select_items(interp, v, args, false, false); }
Value f_selectattr(Interpreter& interp, const Value& v, CallArgs& args) { return select_items(interp, v, args, true, true); }
Value f_rejectattr(Interpreter& interp, const Value& v, CallArgs& args) { return select_items(interp, v, args, true, false); }

Value f_map(Interpreter& interp, const Value& v, CallArgs& args) {
  ValueList out;
  const Value* attribute = nullptr;
  for (const auto& [key, value] : args.keyword) {
    if (key == "attribute") attribute = &value;
  }
  if (attribute != nullptr) {
    const Value* fallback = nullptr;
    for (const auto& [key, value] : args.keyword) {
      if (key == "default") fallback = &value;
      else if (key != "attribute") interp.error(args.pos, fmt::format("map: unknown keyword argument '{}'", key));
    }
    for (const Value& item : iterate(interp, v, args.pos)) {
      Value mapped = item_attribute(interp, item, *attribute, args.pos);
      out.push_back(mapped.is_undefined() && fallback ? *fallback : mapped);
    }
    return Value::list(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string()) interp.error(args.pos, "map needs a filter name or attribute=");
  const std::string filter = args.positional[0].as_string();
  for (const Value& item : iterate(interp, v, args.pos)) {
    CallArgs filter_args;
    filter_args.callee = "filter " + filter;
    filter_args.pos = args.pos;
    filter_args.positional.assign(args.positional.begin() + 1, args.positional.end());
    filter_args.keyword = args.keyword;
    out.push_back(apply_filter(interp, filter, item, filter_args));
  }
  return Value::list(std::move(out));
}

Value f_int(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"default", "base"});
  const Value* fallback = arg(args, 0, "default");
  const Value def = fallback ? *fallback : Value::integer(0);
  if (v.kind() == Value::Kind::integer || v.kind() == Value::Kind::boolean) return Value::integer(v.as_int());
  if (v.kind() == Value::Kind::floating) {
    if (!std::isfinite(v.as_double()) || std::fabs(v.as_double()) >= 9.2e18) return def;
    return Value::integer(static_cast<int64_t>(v.as_double()));
  }
  if (v.is_string()) {
    const std::string s = py_strip(v.as_string(), std::nullopt, true, true);
    char* end = nullptr;
    errno = 0;
    const long long parsed = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return Value::integer(parsed);
    // Python's float() of a decimal text ("3.7"); strtod would also take hex, inf and nan.
    if (s.find_first_not_of("0123456789.eE+-") != std::string::npos) return def;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(static_cast<int64_t>(d));
  }
  return def;
}

Value f_float(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"default"});
  const Value* fallback = arg(args, 0, "default");
  if (v.is_number()) return Value::floating(v.as_double());
  if (v.is_string()) {
    const std::string s = py_strip(v.as_string(), std::nullopt, true, true);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value::floating(d);
  }
  return fallback ? *fallback : Value::floating(0.0);
}

Value f_abs(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  if (v.kind() == Value::Kind::floating) return Value::floating(std::fabs(v.as_double()));
  if (!v.is_number()) interp.error(args.pos, fmt::format("bad operand type for abs(): '{}'", type_name(v)));
  if (v.as_int() == INT64_MIN) interp.error(args.pos, "integer overflow");
  return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
}

Value f_safe(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  return v;
}

Value f_indent(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"width", "first", "blank"});
  const Value* width = arg(args, 0, "width");
  std::string pad = "    ";
  if (width != nullptr) {
    if (width->is_string()) pad = width->as_string();
    else if (width->kind() == Value::Kind::integer) pad = std::string(static_cast<size_t>(std::clamp<int64_t>(width->as_int(), 0, 256)), ' ');
  }
  const bool first = flag(args, 1, "first"), blank = flag(args, 2, "blank");
  std::vector<std::string> lines = py_split(to_str(v), std::string("\n"), -1);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    const bool indent_line = (i > 0 || first) && (blank || !py_strip(lines[i], std::nullopt, true, true).empty());
    if (indent_line) out += pad;
    out += lines[i];
    interp.check_size(out.size(), args.pos);
  }
  return Value::string(std::move(out));
}

Value f_reverse(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  ValueList items = iterate(interp, v, args.pos);
  std::reverse(items.begin(), items.end());
  if (v.is_string()) {
    std::string out;
    for (const Value& c : items) out += c.as_string();
    return Value::string(std::move(out));
  }
  return Value::list(std::move(items));
}

// Jinja's sort key: strings compare case-insensitively unless case_sensitive.
bool less_than(Interpreter& interp, const Value& a, const Value& b, bool case_sensitive, SourcePos pos) {
  if (a.is_number() && b.is_number()) return a.as_double() < b.as_double();
  if (a.is_string() && b.is_string()) {
    return case_sensitive ? a.as_string() < b.as_string() : py_lower(a.as_string()) < py_lower(b.as_string());
  }
  interp.error(pos, fmt::format("'<' not supported between instances of '{}' and '{}'", type_name(a), type_name(b)));
}

Value f_sort(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"reverse", "case_sensitive", "attribute"});
  const ValueList items = iterate(interp, v, args.pos);
  const bool reverse = flag(args, 0, "reverse"), case_sensitive = flag(args, 1, "case_sensitive");
  const Value* attribute = arg(args, 2, "attribute");
  std::vector<std::pair<Value, size_t>> keyed;  // the sort key (lowercased unless case_sensitive), position
  for (size_t i = 0; i < items.size(); ++i) {
    Value key = attribute ? item_attribute(interp, items[i], *attribute, args.pos) : items[i];
    if (key.is_string() && !case_sensitive) key = Value::string(py_lower(key.as_string()));
    keyed.emplace_back(std::move(key), i);
  }
  interp.charge(items.size() * 24, args.pos);  // n log n comparisons for n up to max_list_items
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? less_than(interp, b.first, a.first, true, args.pos) : less_than(interp, a.first, b.first, true, args.pos);
  });
  ValueList out;
  for (const auto& entry : keyed) out.push_back(items[entry.second]);
  return Value::list(std::move(out));
}

Value f_dictsort(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) interp.error(args.pos, fmt::format("dictsort: expected a dict, got {}", type_name(v)));
  const bool case_sensitive = flag(args, 0, "case_sensitive"), reverse = flag(args, 2, "reverse");
  const Value* by = arg(args, 1, "by");
  const size_t part = by && by->is_string() && by->as_string() == "value" ? 1 : 0;
  std::vector<std::pair<Value, Value>> keyed;
  for (const auto& [key, value] : v.as_dict().items) {
    Value sort_key = part == 0 ? Value::string(key) : value;
    if (sort_key.is_string() && !case_sensitive) sort_key = Value::string(py_lower(sort_key.as_string()));
    keyed.emplace_back(std::move(sort_key), Value::list({Value::string(key), value}, true));
  }
  interp.charge(keyed.size() * 24, args.pos);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? less_than(interp, b.first, a.first, true, args.pos) : less_than(interp, a.first, b.first, true, args.pos);
  });
  ValueList out;
  for (auto& entry : keyed) out.push_back(std::move(entry.second));
  return Value::list(std::move(out));
}

Value f_unique(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {});
  ValueList out;
  uint64_t work = 0;
  for (const Value& item : iterate(interp, v, args.pos)) {
    if (std::none_of(out.begin(), out.end(), [&](const Value& seen) { return equals(seen, item, &work); })) out.push_back(item);
    interp.charge(work, args.pos);
    work = 0;
  }
  return Value::list(std::move(out));
}

Value f_sum(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"attribute", "start"});
  const Value* attribute = arg(args, 0, "attribute");
  const Value* start = arg(args, 1, "start");
  bool floating = start && start->kind() == Value::Kind::floating;
  double fsum = start ? start->as_double() : 0;
  int64_t isum = start && start->is_number() ? start->as_int() : 0;
  for (const Value& item : iterate(interp, v, args.pos)) {
    const Value x = attribute ? item_attribute(interp, item, *attribute, args.pos) : item;
    if (!x.is_number()) interp.error(args.pos, fmt::format("sum: unsupported operand type '{}'", type_name(x)));
    floating = floating || x.kind() == Value::Kind::floating;
    fsum += x.as_double();
    if (!floating && __builtin_add_overflow(isum, x.as_int(), &isum)) interp.error(args.pos, "integer overflow");
  }
  return floating ? Value::floating(fsum) : Value::integer(isum);
}

Value min_max(Interpreter& interp, const Value& v, CallArgs& args, bool want_max) {
  args.accept(interp, {"case_sensitive", "attribute"});
  const ValueList items = iterate(interp, v, args.pos);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const bool case_sensitive = flag(args, 0, "case_sensitive");
  const Value* attribute = arg(args, 1, "attribute");
  const auto key = [&](const Value& item) { return attribute ? item_attribute(interp, item, *attribute, args.pos) : item; };
  const Value* best = &items[0];
  for (const Value& item : items) {
    if (want_max ? less_than(interp, key(*best), key(item), case_sensitive, args.pos)
                 : less_than(interp, key(item), key(*best), case_sensitive, args.pos)) {
      best = &item;
    }
  }
  return *best;
}

Value f_min(Interpreter& interp, const Value& v, CallArgs& args) { return min_max(interp, v, args, false); }
Value f_max(Interpreter& interp, const Value& v, CallArgs& args) { return min_max(interp, v, args, true); }

Value f_round(Interpreter& interp, const Value& v, CallArgs& args) {
  args.accept(interp, {"precision", "method"});
  if (!v.is_number()) interp.error(args.pos, fmt::format("round: expected a number, got {}", type_name(v)));
  const Value* precision = arg(args, 0, "precision");
  const int digits = precision && precision->kind() == Value::Kind::integer ? static_cast<int>(std::clamp<int64_t>(precision->as_int(), -300, 300)) : 0;
  const Value* method = arg(args, 1, "method");
  const std::string how = method ? to_str(*method) : "common";
  const double scale = std::pow(10.0, digits);
  const double x = v.as_double() * scale;
  double r = 0;
  if (how == "common") r = std::round(x);
  else if (how == "ceil") r = std::ceil(x);
  else if (how == "floor") r = std::floor(x);
  else interp.error(args.pos, "round: method must be common, ceil or floor");
  return Value::floating(r / scale);
}

struct NamedFilter {
  const char* name;
  Filter fn;
};

constexpr NamedFilter kFilters[] = {
    {"abs", f_abs},         {"capitalize", f_capitalize}, {"count", f_length},   {"d", f_default},
    {"dictsort", f_dictsort},
    {"default", f_default}, {"first", f_first},           {"float", f_float},    {"indent", f_indent},
    {"int", f_int},         {"items", f_items},           {"join", f_join},      {"last", f_last},
    {"length", f_length},   {"list", f_list},             {"lower", f_lower},    {"map", f_map},
    {"max", f_max},         {"min", f_min},               {"reject", f_reject},  {"rejectattr", f_rejectattr},
    {"replace", f_replace}, {"reverse", f_reverse},       {"round", f_round},    {"safe", f_safe},
    {"select", f_select},   {"selectattr", f_selectattr}, {"sort", f_sort},      {"string", f_string},
    {"sum", f_sum},         {"title", f_title},           {"tojson", f_tojson},  {"trim", f_trim},
    {"unique", f_unique},   {"upper", f_upper},
};

}  // namespace

Value apply_filter(Interpreter& interp, const std::string& name, const Value& input, CallArgs& args) {
  for (const NamedFilter& filter : kFilters) {
    if (name == filter.name) return filter.fn(interp, input, args);
  }
  interp.error(args.pos, fmt::format("unknown filter '{}'", name));
}

}  // namespace dattn::chat_template_detail
