// Statement execution and expression evaluation.
#include "interpreter.h"

#include <cmath>
#include <limits>

#include "dattn/core/error.h"

namespace dattn::chat_template_detail {

const Value* CallArgs::get(size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  for (const auto& [key, value] : keyword) {
    if (key == name) return &value;
  }
  return nullptr;
}

void CallArgs::accept(Interpreter& interp, std::initializer_list<std::string_view> names) const {
  if (positional.size() > names.size()) {
    interp.error(pos, fmt::format("{} takes at most {} arguments, got {}", callee, names.size(), positional.size()));
  }
  for (const auto& [key, value] : keyword) {
    bool known = false;
    size_t index = 0;
    for (const std::string_view name : names) {
      if (name == key) known = index >= positional.size();
      ++index;
    }
    if (!known) interp.error(pos, fmt::format("{} got an unexpected or repeated keyword argument '{}'", callee, key));
  }
}

void Interpreter::error(SourcePos pos, const std::string& message) const {
  fail("{}:{}:{}: {}", program_.origin, pos.line, pos.column, message);
}

void Interpreter::check_size(size_t bytes, SourcePos pos) {
  if (bytes > options_.max_output_bytes) {
    error(pos, fmt::format("the rendered text would exceed {} bytes", options_.max_output_bytes));
  }
  charge(bytes / 256, pos);  // copying text is work too
}

void Interpreter::charge(uint64_t units, SourcePos pos) {
  steps_ += units;
  if (steps_ > options_.max_steps) error(pos, fmt::format("the template ran more than {} steps", options_.max_steps));
}

std::string Interpreter::render(ValueDict variables) {
  frames_.clear();
  frames_.emplace_back();
  for (auto& [name, value] : variables.items) frames_[0][name] = std::move(value);
  std::string out;
  exec(program_.body, out);
  return out;
}

Value Interpreter::lookup(const std::string& name) const {
  for (size_t i = frames_.size(); i-- > frame_base_;) {
    const auto it = frames_[i].find(name);
    if (it != frames_[i].end()) return it->second;
  }
  const auto it = frames_[0].find(name);
  if (it != frames_[0].end()) return it->second;
  return Value::undefined(fmt::format("'{}' is undefined", name));
}

void Interpreter::bind(const std::string& name, Value value) { frames_.back()[name] = std::move(value); }

void Interpreter::bind_targets(const std::vector<std::string>& targets, const Value& value, SourcePos pos) {
  if (targets.size() == 1) {
    bind(targets[0], value);
    return;
  }
  const ValueList items = iterate(*this, value, pos);
  if (items.size() != targets.size()) {
    error(pos, fmt::format("cannot unpack {} values into {} names", items.size(), targets.size()));
  }
  for (size_t i = 0; i < targets.size(); ++i) bind(targets[i], items[i]);
}

Interpreter::Flow Interpreter::exec(const Body& body, std::string& out) {
  for (const auto& stmt : body) {
    const Flow flow = exec_stmt(*stmt, out);
    if (flow != Flow::normal) return flow;
  }
  return Flow::normal;
}

Interpreter::Flow Interpreter::exec_stmt(const Stmt& stmt, std::string& out) {
  try {
    return exec_stmt_unchecked(stmt, out);
  } catch (const Error& e) {
    // Errors from value construction or printing carry no position yet: give them the statement's.
    if (std::string_view(e.what()).starts_with(program_.origin + ":")) throw;
    error(stmt.pos, e.what());
  }
}

Interpreter::Flow Interpreter::exec_stmt_unchecked(const Stmt& stmt, std::string& out) {
  step(stmt.pos);
  switch (stmt.kind) {
    case Stmt::Kind::text:
      check_size(out.size() + stmt.text.size(), stmt.pos);
      out += stmt.text;
      break;
    case Stmt::Kind::output: {
      const std::string text = to_str(eval(*stmt.expr), options_.max_output_bytes);
      check_size(out.size() + text.size(), stmt.pos);
      out += text;
      break;
    }
    case Stmt::Kind::if_:
      for (const auto& [condition, body] : stmt.branches) {
        if (truthy(eval(*condition))) return exec(body, out);
      }
      return exec(stmt.else_body, out);
    case Stmt::Kind::for_: exec_for(stmt, out); break;
    case Stmt::Kind::set: exec_set(stmt, eval(*stmt.expr)); break;
    case Stmt::Kind::set_block: {
      std::string text;
      exec(stmt.body, text);
      bind(stmt.targets[0], Value::string(std::move(text)));
      break;
    }
    case Stmt::Kind::macro: bind(stmt.name, make_macro(stmt)); break;
    case Stmt::Kind::break_: return Flow::break_loop;
    case Stmt::Kind::continue_: return Flow::continue_loop;
    case Stmt::Kind::scope: return exec(stmt.body, out);
  }
  return Flow::normal;
}

void Interpreter::exec_set(const Stmt& stmt, const Value& value) {
  if (stmt.target_object) {
    const Value target = lookup(stmt.target_object->name);
    if (target.kind() != Value::Kind::ns) {
      error(stmt.pos, fmt::format("cannot set attribute '{}' of '{}': only a namespace() takes attributes",
                                  stmt.name, stmt.target_object->name));
    }
    if (contains_namespace(value)) {
      error(stmt.pos, fmt::format("cannot store a namespace in namespace '{}' (no reference cycles)", stmt.target_object->name));
    }
    target.namespace_attrs().set(stmt.name, value);
    return;
  }
  bind_targets(stmt.targets, value, stmt.pos);
}

void Interpreter::exec_for(const Stmt& stmt, std::string& out) {
  ValueList items = iterate(*this, eval(*stmt.expr), stmt.expr->pos);
  if (stmt.condition) {  // `for x in xs if cond`: the loop (and loop.length) sees only the kept items
    ValueList kept;
    for (Value& item : items) {
      frames_.emplace_back();
      bind_targets(stmt.targets, item, stmt.pos);
      const bool keep = truthy(eval(*stmt.condition));
      frames_.pop_back();
      if (keep) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec(stmt.else_body, out);
    return;
  }
  // One loop object per loop, updated in place each iteration (as Jinja's LoopContext advances).
  const auto length = static_cast<int64_t>(items.size());
  const auto index = std::make_shared<int64_t>(0);
  ValueDict attrs;
  for (const char* name : {"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0",
                           "previtem", "nextitem"}) {
    attrs.items.emplace_back(name, Value());
  }
  attrs.items.emplace_back("cycle", Value::function("loop.cycle", [index](Interpreter& interp, CallArgs& args) {
    if (args.positional.empty()) interp.error(args.pos, "loop.cycle needs at least one argument");
    return args.positional[static_cast<size_t>(*index) % args.positional.size()];
  }));
  const Value loop = Value::name_space(std::move(attrs));
  auto& fields = loop.namespace_attrs().items;
  frames_.emplace_back();
  for (int64_t i = 0; i < length; ++i) {
    step(stmt.pos);
    *index = i;
    fields[0].second = Value::integer(i + 1);
    fields[1].second = Value::integer(i);
    fields[2].second = Value::integer(length - i);
    fields[3].second = Value::integer(length - i - 1);
    fields[4].second = Value::boolean(i == 0);
    fields[5].second = Value::boolean(i == length - 1);
    fields[6].second = Value::integer(length);
    fields[7].second = Value::integer(1);
    fields[8].second = Value::integer(0);
    fields[9].second = i > 0 ? items[i - 1] : Value::undefined("there is no previous item");
    fields[10].second = i + 1 < length ? items[i + 1] : Value::undefined("there is no next item");
    frames_.back().clear();  // each iteration starts from the enclosing scope again
    bind("loop", loop);
    bind_targets(stmt.targets, items[i], stmt.pos);
    const Flow flow = exec(stmt.body, out);
    if (flow == Flow::break_loop) break;
  }
  frames_.pop_back();
}

Value Interpreter::make_macro(const Stmt& stmt) {
  const Stmt* macro = &stmt;
  return Value::function(stmt.name, [macro](Interpreter& interp, CallArgs& args) {
    if (args.positional.size() > macro->params.size()) {
      interp.error(args.pos, fmt::format("macro '{}' takes not more than {} argument(s)", macro->name, macro->params.size()));
    }
    const size_t saved_base = interp.frame_base_;
    interp.frame_base_ = interp.frames_.size();
    interp.frames_.emplace_back();
    for (size_t i = 0; i < macro->params.size(); ++i) {
      const auto& [name, default_value] = macro->params[i];
      const Value* given = args.get(i, name);
      interp.bind(name, given ? *given : default_value ? interp.eval(*default_value)
                                                       : Value::undefined(fmt::format("'{}' is undefined", name)));
    }
    for (const auto& [key, value] : args.keyword) {
      bool known = false;
      for (const auto& param : macro->params) known = known || param.first == key;
      if (!known) interp.error(args.pos, fmt::format("macro '{}' has no parameter '{}'", macro->name, key));
    }
    std::string out;
    interp.exec(macro->body, out);
    interp.frames_.pop_back();
    interp.frame_base_ = saved_base;
    return Value::string(std::move(out));
  });
}

Value Interpreter::call(const Value& fn, CallArgs& args) {
  if (fn.kind() != Value::Kind::function) {
    if (fn.is_undefined()) error(args.pos, fn.as_string());
    error(args.pos, fmt::format("'{}' object is not callable", type_name(fn)));
  }
  if (++call_depth_ > options_.max_depth) error(args.pos, fmt::format("calls nested deeper than {}", options_.max_depth));
  Value result = fn.as_function()(*this, args);
  --call_depth_;
  return result;
}

CallArgs Interpreter::eval_args(const Expr& expr, size_t first_arg, std::string callee) {
  CallArgs args;
  args.callee = std::move(callee);
  args.pos = expr.pos;
  for (size_t i = first_arg; i < expr.args.size(); ++i) args.positional.push_back(eval(*expr.args[i]));
  for (const auto& [name, value] : expr.kwargs) args.keyword.emplace_back(name, eval(*value));
  return args;
}

Value Interpreter::eval(const Expr& expr) {
  step(expr.pos);
  switch (expr.kind) {
    case Expr::Kind::literal: return expr.value;
    case Expr::Kind::name: return lookup(expr.name);
    case Expr::Kind::list: {
      ValueList items;
      for (const auto& arg : expr.args) items.push_back(eval(*arg));
      return Value::list(std::move(items), expr.is_tuple);
    }
    case Expr::Kind::dict: {
      ValueDict dict;
      for (size_t i = 0; i + 1 < expr.args.size(); i += 2) {
        const Value key = eval(*expr.args[i]);
        if (!key.is_string()) error(expr.args[i]->pos, fmt::format("dict keys must be strings here, got {}", type_name(key)));
        dict.set(key.as_string(), eval(*expr.args[i + 1]));
      }
      return Value::dict(std::move(dict));
    }
    case Expr::Kind::attribute: return get_attribute(*this, eval(*expr.args[0]), expr.name, expr.pos);
    case Expr::Kind::subscript: {
      const Value target = eval(*expr.args[0]);
      return get_item(*this, target, eval(*expr.args[1]), expr.pos);
    }
    case Expr::Kind::slice: {
      const Value target = eval(*expr.args[0]);
      const auto part = [&](size_t i) { return expr.args[i] ? eval(*expr.args[i]) : Value::none(); };
      return slice(*this, target, part(1), part(2), part(3), expr.pos);
    }
    case Expr::Kind::call: {
      const Value fn = eval(*expr.args[0]);
      CallArgs args = eval_args(expr, 1, fn.kind() == Value::Kind::function ? fn.function_name() : "call");
      return call(fn, args);
    }
    case Expr::Kind::filter: {
      const Value input = eval(*expr.args[0]);
      CallArgs args = eval_args(expr, 1, "filter " + expr.name);
      return apply_filter(*this, expr.name, input, args);
    }
    case Expr::Kind::test: {
      const Value input = eval(*expr.args[0]);
      CallArgs args = eval_args(expr, 1, "test " + expr.name);
      return Value::boolean(apply_test(*this, expr.name, input, args) != expr.is_not);
    }
    case Expr::Kind::unary: {
      const Value operand = eval(*expr.args[0]);
      if (expr.name == "not") return Value::boolean(!truthy(operand));
      if (operand.kind() == Value::Kind::floating) return Value::floating(expr.name == "-" ? -operand.as_double() : operand.as_double());
      if (operand.is_number()) {
        if (expr.name == "+") return Value::integer(operand.as_int());
        if (operand.as_int() == std::numeric_limits<int64_t>::min()) error(expr.pos, "integer overflow");
        return Value::integer(-operand.as_int());
      }
      if (operand.is_undefined()) error(expr.pos, operand.as_string());
      error(expr.pos, fmt::format("bad operand type for unary {}: '{}'", expr.name, type_name(operand)));
    }
    case Expr::Kind::binary: return eval_binary(expr);
    case Expr::Kind::chain: {
      Value left = eval(*expr.args[0]);
      Value result;
      for (size_t i = 0; i < expr.ops.size(); ++i) {
        Value right = eval(*expr.args[i + 1]);
        result = apply_binary(expr.ops[i], left, right, expr.pos);
        if (!truthy(result)) return result;
        left = std::move(right);
      }
      return result;
    }
    case Expr::Kind::conditional:
      if (truthy(eval(*expr.args[0]))) return eval(*expr.args[1]);
      return expr.args[2] ? eval(*expr.args[2]) : Value::undefined("the inline if has no else");
  }
  error(expr.pos, "unknown expression");
}

namespace {

bool is_int(const Value& v) { return v.kind() == Value::Kind::integer || v.kind() == Value::Kind::boolean; }

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

Value Interpreter::eval_binary(const Expr& expr) {
  const std::string& op = expr.name;
  const SourcePos pos = expr.pos;
  if (op == "and") {
    Value left = eval(*expr.args[0]);
    return truthy(left) ? eval(*expr.args[1]) : left;
  }
  if (op == "or") {
    Value left = eval(*expr.args[0]);
    return truthy(left) ? left : eval(*expr.args[1]);
  }
  return apply_binary(op, eval(*expr.args[0]), eval(*expr.args[1]), pos);
}

Value Interpreter::apply_binary(const std::string& op, const Value& a, const Value& b, SourcePos pos) {
  if (op == "==" || op == "!=") {
    uint64_t work = 0;
    const bool same = equals(a, b, &work);
    charge(work, pos);
    return Value::boolean(same == (op == "=="));
  }
  if (op == "~") {
    std::string text = to_str(a);
    const std::string right = to_str(b);
    check_size(text.size() + right.size(), pos);
    return Value::string(text + right);
  }
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) error(pos, fmt::format("'in <string>' requires a string as left operand, not {}", type_name(a)));
      found = b.as_string().find(a.as_string()) != std::string::npos;
    } else if (b.is_dict() || b.kind() == Value::Kind::ns) {
      found = a.is_string() && b.as_dict().find(a.as_string()) != nullptr;
    } else if (b.is_list()) {
      uint64_t work = 0;
      for (const Value& item : b.as_list()) {
        if (equals(a, item, &work)) {
          found = true;
          break;
        }
      }
      charge(work, pos);
    } else if (!b.is_undefined()) {
      error(pos, fmt::format("argument of type '{}' is not iterable", type_name(b)));
    }
    return Value::boolean(found == (op == "in"));
  }
  if (a.is_undefined()) error(pos, a.as_string());
  if (b.is_undefined()) error(pos, b.as_string());
  const auto type_error = [&]() {
    error(pos, fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b)));
  };
  if (op == "<" || op == "<=" || op == ">" || op == ">=") {
    int order = 0;
    if (a.is_number() && b.is_number()) {
      order = a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double() ? 1 : 0;
      if (is_int(a) && is_int(b)) order = a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
    } else if (a.is_string() && b.is_string()) {
      order = a.as_string().compare(b.as_string());
    } else {
      error(pos, fmt::format("'{}' not supported between instances of '{}' and '{}'", op, type_name(a), type_name(b)));
    }
    if (op == "<") return Value::boolean(order < 0);
    if (op == "<=") return Value::boolean(order <= 0);
    if (op == ">") return Value::boolean(order > 0);
    return Value::boolean(order >= 0);
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      check_size(a.as_string().size() + b.as_string().size(), pos);
      return Value::string(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list()) {
      if (a.as_list().size() + b.as_list().size() > max_list_items()) error(pos, "list too long");
      ValueList items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return Value::list(std::move(items), a.is_tuple());
    }
    if (a.is_string() || b.is_string()) {
      error(pos, fmt::format("can only concatenate str (not \"{}\") to str", type_name(a.is_string() ? b : a)));
    }
  }
  if (op == "*" && (a.is_string() || a.is_list() || b.is_string() || b.is_list())) {
    const Value& seq = (a.is_string() || a.is_list()) ? a : b;
    const Value& count = (a.is_string() || a.is_list()) ? b : a;
    if (!is_int(count)) type_error();
    const int64_t n = std::max<int64_t>(0, count.as_int());
    if (seq.is_string()) {
      if (n > 0) check_size(seq.as_string().size() * static_cast<uint64_t>(std::min<int64_t>(n, int64_t{1} << 40)), pos);
      std::string out;
      for (int64_t i = 0; i < n; ++i) out += seq.as_string();
      return Value::string(std::move(out));
    }
    if (n > 0 && seq.as_list().size() * static_cast<uint64_t>(std::min<int64_t>(n, int64_t{1} << 40)) > max_list_items()) error(pos, "list too long");
    ValueList items;
    for (int64_t i = 0; i < n; ++i) items.insert(items.end(), seq.as_list().begin(), seq.as_list().end());
    return Value::list(std::move(items), seq.is_tuple());
  }
  if (!a.is_number() || !b.is_number()) type_error();
  if (is_int(a) && is_int(b) && op != "/") {
    const int64_t x = a.as_int(), y = b.as_int();
    int64_t r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) error(pos, "integer overflow");
    } else if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) error(pos, "integer overflow");
    } else if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) error(pos, "integer overflow");
    } else if (op == "//" || op == "%") {
      if (y == 0) error(pos, "integer division or modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) error(pos, "integer overflow");
      const int64_t q = floor_div(x, y);
      r = op == "//" ? q : x - q * y;
    } else if (op == "**") {
      if (y < 0) return Value::floating(std::pow(static_cast<double>(x), static_cast<double>(y)));
      if (x == 0 || x == 1) {
        r = (y == 0 || x == 1) ? 1 : 0;
      } else if (x == -1) {
        r = y % 2 == 0 ? 1 : -1;
      } else {
        r = 1;
        for (int64_t i = 0; i < y; ++i) {  // |x| >= 2: overflows within 64 steps
          if (__builtin_mul_overflow(r, x, &r)) error(pos, "integer overflow");
        }
      }
    }
    return Value::integer(r);
  }
  const double x = a.as_double(), y = b.as_double();
  if (op == "+") return Value::floating(x + y);
  if (op == "-") return Value::floating(x - y);
  if (op == "*") return Value::floating(x * y);
  if (op == "/") {
    if (y == 0) error(pos, "division by zero");
    return Value::floating(x / y);
  }
  if (op == "//" || op == "%") {
    if (y == 0) error(pos, "float division or modulo by zero");
    const double q = std::floor(x / y);
    return Value::floating(op == "//" ? q : x - q * y);
  }
  if (op == "**") return Value::floating(std::pow(x, y));
  type_error();
  return Value();
}

}  // namespace dattn::chat_template_detail
