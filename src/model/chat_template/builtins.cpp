// Attribute and item access, slicing, iteration, the methods of str and dict, tests and the global
// functions a template can call.
#include <algorithm>
#include <cstring>
#include <ctime>

#include "dattn/core/error.h"
#include "interpreter.h"
#include "text.h"

namespace dattn::chat_template_detail {
namespace {

Value undefined_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(fmt::format("'{} object' has no attribute '{}'", type_name(obj), name));
}

std::optional<std::string> optional_string(Interpreter& interp, const CallArgs& args, size_t index, std::string_view name) {
  const Value* v = args.get(index, name);
  if (v == nullptr || v->is_none()) return std::nullopt;
  if (!v->is_string()) interp.error(args.pos, fmt::format("{}: {} must be a string, got {}", args.callee, name, type_name(*v)));
  return v->as_string();
}

std::string required_string(Interpreter& interp, const CallArgs& args, size_t index, std::string_view name) {
  const std::optional<std::string> s = optional_string(interp, args, index, name);
  if (!s) interp.error(args.pos, fmt::format("{}: missing argument {}", args.callee, name));
  return *s;
}

long long optional_int(Interpreter& interp, const CallArgs& args, size_t index, std::string_view name, long long fallback) {
  const Value* v = args.get(index, name);
  if (v == nullptr || v->is_none()) return fallback;
  if (v->kind() != Value::Kind::integer && v->kind() != Value::Kind::boolean) {
    interp.error(args.pos, fmt::format("{}: {} must be an integer, got {}", args.callee, name, type_name(*v)));
  }
  return v->as_int();
}

Value string_list(std::vector<std::string> parts) {
  ValueList items;
  items.reserve(parts.size());
  for (std::string& part : parts) items.push_back(Value::string(std::move(part)));
  return Value::list(std::move(items));
}

// "prefix" or a tuple of prefixes, as str.startswith takes.
bool affix_matches(Interpreter& interp, const CallArgs& args, const std::string& text, bool prefix) {
  const Value* arg = args.get(0, "prefix");
  if (arg == nullptr) interp.error(args.pos, fmt::format("{} needs an argument", args.callee));
  const auto matches = [&](const Value& v) {
    if (!v.is_string()) interp.error(args.pos, fmt::format("{}: expected a string, got {}", args.callee, type_name(v)));
    const std::string& s = v.as_string();
    if (s.size() > text.size()) return false;
    return prefix ? text.compare(0, s.size(), s) == 0 : text.compare(text.size() - s.size(), s.size(), s) == 0;
  };
  if (arg->is_list()) return std::any_of(arg->as_list().begin(), arg->as_list().end(), matches);
  return matches(*arg);
}

Value string_method(const Value& obj, const std::string& name) {
  static constexpr const char* kMethods[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
                                             "upper", "lower", "title", "capitalize", "replace", "find", "rfind",
                                             "count", "join", "isdigit", "isalpha", "isspace", "splitlines"};
  if (std::none_of(std::begin(kMethods), std::end(kMethods), [&](const char* m) { return name == m; })) {
    return undefined_attribute(obj, name);
  }
  return Value::function("str." + name, [obj, name](Interpreter& interp, CallArgs& args) -> Value {
    const std::string& s = obj.as_string();
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      args.accept(interp, {"chars"});
      return Value::string(py_strip(s, optional_string(interp, args, 0, "chars"), name != "rstrip", name != "lstrip"));
    }
    if (name == "split" || name == "rsplit") {
      args.accept(interp, {"sep", "maxsplit"});
      const std::optional<std::string> sep = optional_string(interp, args, 0, "sep");
      if (sep && sep->empty()) interp.error(args.pos, "str.split: empty separator");
      const long long maxsplit = optional_int(interp, args, 1, "maxsplit", -1);
      return string_list(name == "split" ? py_split(s, sep, maxsplit) : py_rsplit(s, sep, maxsplit));
    }
    if (name == "startswith" || name == "endswith") {
      args.accept(interp, {"prefix"});
      return Value::boolean(affix_matches(interp, args, s, name == "startswith"));
    }
    if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
      args.accept(interp, {});
      if (name == "upper") return Value::string(py_upper(s));
      if (name == "lower") return Value::string(py_lower(s));
      return Value::string(name == "title" ? py_title(s) : py_capitalize(s));
    }
    if (name == "replace") {
      args.accept(interp, {"old", "new", "count"});
      const std::string result = py_replace(s, required_string(interp, args, 0, "old"), required_string(interp, args, 1, "new"),
                                            optional_int(interp, args, 2, "count", -1), interp.options().max_output_bytes);
      interp.check_size(result.size(), args.pos);
      return Value::string(result);
    }
    if (name == "find" || name == "rfind" || name == "count") {
      args.accept(interp, {"sub"});
      const std::string sub = required_string(interp, args, 0, "sub");
      if (name == "count") {
        if (sub.empty()) return Value::integer(static_cast<int64_t>(code_point_count(s)) + 1);
        int64_t n = 0;
        for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size())) ++n;
        return Value::integer(n);
      }
      const size_t pos = name == "find" ? s.find(sub) : s.rfind(sub);
      return Value::integer(pos == std::string::npos ? -1 : static_cast<int64_t>(code_point_count(std::string_view(s).substr(0, pos))));
    }
    if (name == "join") {
      args.accept(interp, {"iterable"});
      const Value* items = args.get(0, "iterable");
      if (items == nullptr) interp.error(args.pos, "str.join needs an argument");
      std::string out;
      bool first = true;
      for (const Value& item : iterate(interp, *items, args.pos)) {
        if (!item.is_string()) interp.error(args.pos, fmt::format("str.join: expected str items, got {}", type_name(item)));
        if (!first) out += s;
        out += item.as_string();
        first = false;
        interp.check_size(out.size(), args.pos);
      }
      return Value::string(std::move(out));
    }
    if (name == "splitlines") {
      args.accept(interp, {});
      std::vector<std::string> lines = py_split(s, std::string("\n"), -1);
      if (!lines.empty() && lines.back().empty()) lines.pop_back();
      for (std::string& line : lines) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
      }
      return string_list(std::move(lines));
    }
    args.accept(interp, {});
    const std::vector<std::string_view> cps = code_points(s);
    const auto all = [&](auto predicate) { return !cps.empty() && std::all_of(cps.begin(), cps.end(), predicate); };
    if (name == "isdigit") return Value::boolean(all([](std::string_view c) { return c.size() == 1 && c[0] >= '0' && c[0] <= '9'; }));
    if (name == "isalpha") return Value::boolean(all([](std::string_view c) { return py_upper(c) != py_lower(c); }));
    return Value::boolean(all([](std::string_view c) { return py_strip(c, std::nullopt, true, true).empty(); }));
  });
}

ValueList dict_items(const ValueDict& dict) {
  ValueList items;
  items.reserve(dict.items.size());
  for (const auto& [key, value] : dict.items) items.push_back(Value::list({Value::string(key), value}, true));
  return items;
}

Value dict_method(const Value& obj, const std::string& name) {
  if (name != "items" && name != "keys" && name != "values" && name != "get") return Value();
  return Value::function("dict." + name, [obj, name](Interpreter& interp, CallArgs& args) -> Value {
    const ValueDict& dict = obj.as_dict();
    if (name == "get") {
      args.accept(interp, {"key", "default"});
      const Value* key = args.get(0, "key");
      if (key == nullptr) interp.error(args.pos, "dict.get needs a key");
      const Value* found = key->is_string() ? dict.find(key->as_string()) : nullptr;
      if (found != nullptr) return *found;
      const Value* fallback = args.get(1, "default");
      return fallback ? *fallback : Value::none();
    }
    args.accept(interp, {});
    if (name == "items") return Value::list(dict_items(dict));
    ValueList out;
    for (const auto& [key, value] : dict.items) out.push_back(name == "keys" ? Value::string(key) : value);
    return Value::list(std::move(out));
  });
}

}  // namespace

Value get_attribute(Interpreter& interp, const Value& obj, const std::string& name, SourcePos pos) {
  switch (obj.kind()) {
    case Value::Kind::undefined: interp.error(pos, obj.as_string());
    case Value::Kind::dict: {
      const Value method = dict_method(obj, name);
      if (!method.is_undefined()) return method;
      const Value* found = obj.as_dict().find(name);
      return found ? *found : undefined_attribute(obj, name);
    }
    case Value::Kind::ns: {
      const Value* found = obj.as_dict().find(name);
      return found ? *found : undefined_attribute(obj, name);
    }
    case Value::Kind::string: return string_method(obj, name);
    default: return undefined_attribute(obj, name);
  }
}

Value get_item(Interpreter& interp, const Value& obj, const Value& key, SourcePos pos) {
  if (obj.is_undefined()) interp.error(pos, obj.as_string());
  if ((obj.is_dict() || obj.kind() == Value::Kind::ns) && key.is_string()) {
    if (const Value* found = obj.as_dict().find(key.as_string())) return *found;
  }
  if ((obj.is_list() || obj.is_string()) && (key.kind() == Value::Kind::integer || key.kind() == Value::Kind::boolean)) {
    const int64_t size = obj.is_list() ? static_cast<int64_t>(obj.as_list().size())
                                       : static_cast<int64_t>(code_point_count(obj.as_string()));
    int64_t index = key.as_int();
    if (index < 0) index += size;
    if (index < 0 || index >= size) return Value::undefined(fmt::format("{} index {} out of range", type_name(obj), key.as_int()));
    if (obj.is_list()) return obj.as_list()[static_cast<size_t>(index)];
    return Value::string(std::string(code_points(obj.as_string())[static_cast<size_t>(index)]));
  }
  if (key.is_string()) return get_attribute(interp, obj, key.as_string(), pos);
  return Value::undefined(fmt::format("'{} object' has no item {}", type_name(obj), repr(key)));
}

Value slice(Interpreter& interp, const Value& obj, const Value& start, const Value& stop, const Value& step, SourcePos pos) {
  if (!obj.is_list() && !obj.is_string()) {
    if (obj.is_undefined()) interp.error(pos, obj.as_string());
    interp.error(pos, fmt::format("'{}' object is not subscriptable", type_name(obj)));
  }
  const auto index_of = [&](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (v.kind() != Value::Kind::integer && v.kind() != Value::Kind::boolean) {
      interp.error(pos, fmt::format("slice {} must be an integer or none, got {}", what, type_name(v)));
    }
    return v.as_int();
  };
  std::vector<std::string_view> cps;
  if (obj.is_string()) cps = code_points(obj.as_string());
  const int64_t size = obj.is_list() ? static_cast<int64_t>(obj.as_list().size()) : static_cast<int64_t>(cps.size());
  const int64_t stride = index_of(step, "step").value_or(1);
  if (stride == 0) interp.error(pos, "slice step cannot be zero");
  // Python's PySlice_AdjustIndices.
  const auto adjust = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t i = *v;
    if (i < 0) {
      i += size;
      if (i < 0) i = stride < 0 ? -1 : 0;
    } else if (i >= size) {
      i = stride < 0 ? size - 1 : size;
    }
    return i;
  };
  const int64_t first = adjust(index_of(start, "start"), stride < 0 ? size - 1 : 0);
  const int64_t last = adjust(index_of(stop, "stop"), stride < 0 ? -1 : size);
  ValueList items;
  std::string text;
  for (int64_t i = first; stride > 0 ? i < last : i > last; i += stride) {
    if (obj.is_list()) items.push_back(obj.as_list()[static_cast<size_t>(i)]);
    else text += cps[static_cast<size_t>(i)];
  }
  if (obj.is_list()) return Value::list(std::move(items), obj.is_tuple());
  return Value::string(std::move(text));
}

ValueList iterate(Interpreter& interp, const Value& v, SourcePos pos) {
  switch (v.kind()) {
    case Value::Kind::undefined: return {};
    case Value::Kind::list: interp.charge(v.as_list().size(), pos); return v.as_list();
    case Value::Kind::dict: {
      interp.charge(v.as_dict().items.size(), pos);
      ValueList keys;
      for (const auto& item : v.as_dict().items) keys.push_back(Value::string(item.first));
      return keys;
    }
    case Value::Kind::string: {
      interp.charge(v.as_string().size(), pos);
      ValueList chars;
      for (const std::string_view cp : code_points(v.as_string())) chars.push_back(Value::string(std::string(cp)));
      return chars;
    }
    default: interp.error(pos, fmt::format("'{}' object is not iterable", type_name(v)));
  }
}

bool apply_test(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args) {
  using K = Value::Kind;
  const auto other = [&]() -> const Value& {
    if (args.positional.empty()) interp.error(args.pos, fmt::format("test '{}' needs an argument", name));
    return args.positional[0];
  };
  const auto compare = [&](const std::string& op) {
    const Value& b = other();
    if (!((v.is_number() && b.is_number()) || (v.is_string() && b.is_string()))) {
      interp.error(args.pos, fmt::format("'{}' not supported between instances of '{}' and '{}'", op, type_name(v), type_name(b)));
    }
    const int order = v.is_string() ? v.as_string().compare(b.as_string())
                                    : (v.as_double() < b.as_double() ? -1 : v.as_double() > b.as_double() ? 1 : 0);
    if (op == "<") return order < 0;
    if (op == "<=") return order <= 0;
    if (op == ">") return order > 0;
    return order >= 0;
  };
  const auto integer_value = [&]() {
    if (v.kind() != K::integer && v.kind() != K::boolean) interp.error(args.pos, fmt::format("test '{}' needs an integer, got {}", name, type_name(v)));
    return v.as_int();
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind() == K::integer;
  if (name == "float") return v.kind() == K::floating;
  if (name == "boolean") return v.kind() == K::boolean;
  if (name == "true") return v.kind() == K::boolean && v.as_bool();
  if (name == "false") return v.kind() == K::boolean && !v.as_bool();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_undefined() || v.is_list() || v.is_dict() || v.is_string();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "callable") return v.kind() == K::function;
  const auto same = [&](const Value& a, const Value& b) {
    uint64_t work = 0;
    const bool result = equals(a, b, &work);
    interp.charge(work, args.pos);
    return result;
  };
  if (name == "equalto" || name == "eq" || name == "==") return same(v, other());
  if (name == "ne" || name == "!=") return !same(v, other());
  if (name == "sameas") return v.kind() == other().kind() && same(v, other());
  if (name == "lt" || name == "lessthan" || name == "<") return compare("<");
  if (name == "le" || name == "<=") return compare("<=");
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(">");
  if (name == "ge" || name == ">=") return compare(">=");
  if (name == "in") {
    const Value& container = other();
    if (container.is_string()) return v.is_string() && container.as_string().find(v.as_string()) != std::string::npos;
    if (container.is_dict()) return v.is_string() && container.as_dict().find(v.as_string()) != nullptr;
    const ValueList items = iterate(interp, container, args.pos);
    return std::any_of(items.begin(), items.end(), [&](const Value& item) { return same(v, item); });
  }
  if (name == "odd") return integer_value() % 2 != 0;
  if (name == "even") return integer_value() % 2 == 0;
  if (name == "divisibleby") {
    const Value& divisor = other();
    if (divisor.kind() != K::integer || divisor.as_int() == 0) interp.error(args.pos, "divisibleby needs a non-zero integer");
    return integer_value() % divisor.as_int() == 0;
  }
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    return name == "lower" ? py_lower(v.as_string()) == v.as_string() : py_upper(v.as_string()) == v.as_string();
  }
  interp.error(args.pos, fmt::format("unknown test '{}'", name));
}

void add_globals(ValueDict& variables) {
  variables.set("raise_exception", Value::function("raise_exception", [](Interpreter& interp, CallArgs& args) -> Value {
    const Value* message = args.get(0, "message");
    interp.error(args.pos, "raise_exception: " + (message ? to_str(*message) : std::string()));
  }));
  variables.set("strftime_now", Value::function("strftime_now", [](Interpreter& interp, CallArgs& args) -> Value {
    args.accept(interp, {"format"});
    const std::string format = required_string(interp, args, 0, "format");
    if (format.size() > 256) interp.error(args.pos, "strftime_now: format longer than 256 bytes");
    if (format.find('\0') != std::string::npos) interp.error(args.pos, "strftime_now: format contains a NUL byte");
    const std::time_t now = interp.options().now.value_or(std::time(nullptr));
    std::tm local{};
    localtime_r(&now, &local);
    std::string out(4096, '\0');
    const size_t length = format.empty() ? 0 : std::strftime(out.data(), out.size(), format.c_str(), &local);
    out.resize(length);
    return Value::string(std::move(out));
  }));
  const auto make_dict = [](Interpreter& interp, CallArgs& args) {
    ValueDict attrs;
    if (args.positional.size() > 1) interp.error(args.pos, fmt::format("{} takes at most one positional argument", args.callee));
    if (!args.positional.empty()) {
      const Value& initial = args.positional[0];
      if (!initial.is_dict()) interp.error(args.pos, fmt::format("{}: expected a dict, got {}", args.callee, type_name(initial)));
      attrs = initial.as_dict();
    }
    for (auto& [key, value] : args.keyword) attrs.set(key, value);
    return attrs;
  };
  variables.set("namespace", Value::function("namespace", [make_dict](Interpreter& interp, CallArgs& args) {
    return Value::name_space(make_dict(interp, args));
  }));
  variables.set("dict", Value::function("dict", [make_dict](Interpreter& interp, CallArgs& args) {
    return Value::dict(make_dict(interp, args));
  }));
  variables.set("range", Value::function("range", [](Interpreter& interp, CallArgs& args) {
    if (args.positional.empty() || args.positional.size() > 3 || !args.keyword.empty()) {
      interp.error(args.pos, "range takes one to three integer arguments");
    }
    int64_t bounds[3] = {0, 0, 1};
    for (size_t i = 0; i < args.positional.size(); ++i) {
      const Value& v = args.positional[i];
      if (v.kind() != Value::Kind::integer && v.kind() != Value::Kind::boolean) interp.error(args.pos, fmt::format("range: expected integers, got {}", type_name(v)));
    }
    if (args.positional.size() == 1) {
      bounds[1] = args.positional[0].as_int();
    } else {
      bounds[0] = args.positional[0].as_int();
      bounds[1] = args.positional[1].as_int();
      if (args.positional.size() == 3) bounds[2] = args.positional[2].as_int();
    }
    if (bounds[2] == 0) interp.error(args.pos, "range step must not be zero");
    ValueList items;
    for (int64_t i = bounds[0]; bounds[2] > 0 ? i < bounds[1] : i > bounds[1]; i += bounds[2]) {
      if (items.size() >= interp.max_list_items()) interp.error(args.pos, "range too long");
      items.push_back(Value::integer(i));
      if ((bounds[2] > 0 && i > INT64_MAX - bounds[2]) || (bounds[2] < 0 && i < INT64_MIN - bounds[2])) break;
    }
    return Value::list(std::move(items));
  }));
}

}  // namespace dattn::chat_template_detail
