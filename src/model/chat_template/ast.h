// The parsed template: expression and statement trees, each node with its source position.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lexer.h"
#include "value.h"

namespace dattn::chat_template_detail {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    literal,    // value
    name,       // name
    list,       // args (tuple when is_tuple)
    dict,       // args: key, value, key, value, ...
    attribute,  // args[0].name
    subscript,  // args[0][args[1]]
    slice,      // args[0][args[1]:args[2]:args[3]], missing parts are null
    call,       // args[0](args[1..], kwargs)
    filter,     // name applied to args[0], extra args[1..], kwargs
    test,       // args[0] is name(args[1..]); negated when is_not
    unary,      // name ("not", "-", "+") args[0]
    binary,     // args[0] name args[1]: + - * / // % ** ~ and or in "not in" == != < <= > >=
    chain,      // args[0] ops[0] args[1] ops[1] args[2] ...: a < b < c is a < b and b < c
    conditional // args[1] if args[0] else args[2] (args[2] may be null)
  };
  Kind kind;
  SourcePos pos;
  std::string name;
  Value value;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool is_tuple = false;
  bool is_not = false;
  int depth = 1;  // of the tree below, bounded so that evaluating it cannot exhaust the stack
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind {
    text,       // text
    output,     // {{ expr }}
    if_,        // branches: (condition, body)...; else_body
    for_,       // targets in expr [if condition]: body; else_body
    set,        // targets = expr, or target_object.name = expr
    set_block,  // {% set targets[0] %}body{% endset %}
    macro,      // name(params) body
    break_,
    continue_,
    scope       // a body rendered as it is (generation blocks)
  };
  Kind kind;
  SourcePos pos;
  std::string text;
  std::string name;
  ExprPtr expr;
  ExprPtr condition;
  ExprPtr target_object;
  std::vector<std::string> targets;
  std::vector<std::pair<std::string, ExprPtr>> params;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
};

struct Program {
  std::string source;
  std::string origin;
  Body body;
};

// Parses a template; errors name origin:line:column. max_depth bounds the nesting of expressions and blocks.
std::shared_ptr<const Program> parse_program(std::string_view source, std::string origin, int max_depth);

}  // namespace dattn::chat_template_detail
