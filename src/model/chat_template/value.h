// The values a chat template computes with: Python's types as Jinja sees them (None, bool, int, float,
// str, list/tuple, dict with insertion order, namespace, callables) plus Jinja's Undefined. Strings,
// lists and dicts are shared, so copying a value is cheap; only namespaces are ever mutated.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace dattn::chat_template_detail {

class Value;
using ValueList = std::vector<Value>;

// Lists and dicts nest at most this deep (deeper input or template-built values throw dattn::Error), so
// the recursive printers, comparisons and destructors stay within the stack.
inline constexpr int kMaxValueDepth = 128;
// Default bound of one str()/repr()/tojson text.
inline constexpr size_t kDefaultTextLimit = size_t{64} << 20;

struct ValueDict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);
};

struct CallArgs;
class Interpreter;
using Builtin = std::function<Value(Interpreter&, CallArgs&)>;

class Value {
 public:
  enum class Kind { undefined, none, boolean, integer, floating, string, list, dict, ns, function };

  Value() = default;  // undefined
  static Value undefined(std::string name) { Value v; v.str_ = std::make_shared<const std::string>(std::move(name)); return v; }
  static Value none() { Value v; v.kind_ = Kind::none; return v; }
  static Value boolean(bool b) { Value v; v.kind_ = Kind::boolean; v.int_ = b; return v; }
  static Value integer(int64_t i) { Value v; v.kind_ = Kind::integer; v.int_ = i; return v; }
  static Value floating(double f) { Value v; v.kind_ = Kind::floating; v.float_ = f; return v; }
  static Value string(std::string s) { Value v; v.kind_ = Kind::string; v.str_ = std::make_shared<const std::string>(std::move(s)); return v; }
  static Value list(ValueList items, bool tuple = false);
  static Value dict(ValueDict dict);
  static Value name_space(ValueDict attrs);
  static Value function(std::string name, Builtin fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::undefined; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_list() const { return kind_ == Kind::list; }
  bool is_tuple() const { return kind_ == Kind::list && tuple_; }
  bool is_dict() const { return kind_ == Kind::dict; }
  bool is_number() const { return kind_ == Kind::integer || kind_ == Kind::floating || kind_ == Kind::boolean; }
  int depth() const { return depth_; }  // 0 for scalars, 1 + the deepest element for lists and dicts

  bool as_bool() const { return int_ != 0; }
  int64_t as_int() const { return int_; }  // integer or boolean
  double as_double() const { return kind_ == Kind::floating ? float_ : static_cast<double>(int_); }
  const std::string& as_string() const { return *str_; }  // string, or the name of an undefined
  const ValueList& as_list() const { return *list_; }
  const ValueDict& as_dict() const { return *dict_; }  // dict or namespace
  ValueDict& namespace_attrs() const { return *dict_; }
  const Builtin& as_function() const { return *fn_; }
  const std::string& function_name() const { return *str_; }

 private:
  Kind kind_ = Kind::undefined;
  bool tuple_ = false;
  int depth_ = 0;
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<const std::string> str_;
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<const Builtin> fn_;
};

// Python's truthiness (Undefined is false).
bool truthy(const Value& v);
// Python's type name, for error messages ("str", "dict", "undefined", ...).
std::string type_name(const Value& v);
// Python's str() and repr() of the value; Undefined prints as "". Texts longer than limit throw.
std::string to_str(const Value& v, size_t limit = kDefaultTextLimit);
std::string repr(const Value& v, size_t limit = kDefaultTextLimit);
// Python's float repr: shortest round-trip digits, "1.0", "1e+16", "inf".
std::string float_repr(double f);
// json.dumps(v, ensure_ascii=False, indent=indent, separators=..., sort_keys=sort_keys); indent < 0: none.
std::string to_json(const Value& v, int indent, std::string_view item_sep, std::string_view key_sep, bool sort_keys,
                    size_t limit = kDefaultTextLimit);
// Python's ==; adds the number of values visited to *work when given.
bool equals(const Value& a, const Value& b, uint64_t* work = nullptr);
// Whether a namespace is anywhere inside v (a namespace may not hold one: no reference cycles).
bool contains_namespace(const Value& v);

// Converts JSON to template values (keys keep their order); nesting deeper than kMaxValueDepth throws.
Value from_json(const nlohmann::ordered_json& json, int depth = 0);

// Code points of UTF-8 text (the text is valid UTF-8: it comes from checked input or literals).
std::vector<std::string_view> code_points(std::string_view text);
size_t code_point_count(std::string_view text);

}  // namespace dattn::chat_template_detail
