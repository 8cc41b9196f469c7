// Evaluates a parsed template against its variables, with Jinja's scoping (a for loop's body is a new
// scope each iteration, if blocks are not scopes, macros see the top level) and the bounds of
// ChatTemplateOptions.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ast.h"
#include "dattn/model/chat_template.h"
#include "value.h"

namespace dattn::chat_template_detail {

// The arguments of a call, filter or test (the filtered or tested value is not among them).
struct CallArgs {
  std::string callee;
  SourcePos pos;
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // Argument `index` by position or `name` by keyword, else nullptr.
  const Value* get(size_t index, std::string_view name) const;
  // Throws when more positional arguments than `names` or an unknown keyword was given.
  void accept(Interpreter& interp, std::initializer_list<std::string_view> names) const;
};

class Interpreter {
 public:
  Interpreter(const Program& program, const ChatTemplateOptions& options) : program_(program), options_(options) {}

  // Renders the template with the given top-level variables.
  std::string render(ValueDict variables);

  [[noreturn]] void error(SourcePos pos, const std::string& message) const;
  // Throws when a string or list being built would pass the output bound; building it costs steps.
  void check_size(size_t bytes, SourcePos pos);
  // Counts work (elements scanned, values compared) against max_steps.
  void charge(uint64_t units, SourcePos pos);
  size_t max_list_items() const { return options_.max_output_bytes / 64 + 16; }
  const ChatTemplateOptions& options() const { return options_; }
  // Calls a function value (builtin, method or macro).
  Value call(const Value& fn, CallArgs& args);

 private:
  enum class Flow { normal, break_loop, continue_loop };

  void step(SourcePos pos) { charge(1, pos); }
  Flow exec(const Body& body, std::string& out);
  Flow exec_stmt(const Stmt& stmt, std::string& out);
  Flow exec_stmt_unchecked(const Stmt& stmt, std::string& out);
  void exec_for(const Stmt& stmt, std::string& out);
  void exec_set(const Stmt& stmt, const Value& value);
  Value make_macro(const Stmt& stmt);
  Value eval(const Expr& expr);
  Value eval_binary(const Expr& expr);
  // Every binary operator but the short-circuiting and/or.
  Value apply_binary(const std::string& op, const Value& a, const Value& b, SourcePos pos);
  CallArgs eval_args(const Expr& expr, size_t first_arg, std::string callee);

  Value lookup(const std::string& name) const;
  void bind(const std::string& name, Value value);
  void bind_targets(const std::vector<std::string>& targets, const Value& value, SourcePos pos);

  const Program& program_;
  const ChatTemplateOptions& options_;
  std::vector<std::unordered_map<std::string, Value>> frames_;  // [0]: the top level
  size_t frame_base_ = 0;  // frames below this (but the top level) are hidden: a macro's caller's locals
  uint64_t steps_ = 0;
  int call_depth_ = 0;
};

// Filters, tests, attribute access and the global functions (builtins.cpp).
Value apply_filter(Interpreter& interp, const std::string& name, const Value& input, CallArgs& args);
bool apply_test(Interpreter& interp, const std::string& name, const Value& input, CallArgs& args);
// obj.name: a method of str/dict, a dict entry, a namespace attribute, or an undefined value.
Value get_attribute(Interpreter& interp, const Value& obj, const std::string& name, SourcePos pos);
// obj[key]: item first, then attribute, as Jinja does.
Value get_item(Interpreter& interp, const Value& obj, const Value& key, SourcePos pos);
Value slice(Interpreter& interp, const Value& obj, const Value& start, const Value& stop, const Value& step, SourcePos pos);
// The elements a for loop or a filter iterates over (dict: keys, str: characters, undefined: none).
ValueList iterate(Interpreter& interp, const Value& v, SourcePos pos);
// raise_exception, strftime_now, namespace, range, dict.
void add_globals(ValueDict& variables);

}  // namespace dattn::chat_template_detail
