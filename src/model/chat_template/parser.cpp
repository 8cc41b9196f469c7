// Recursive-descent parser with Jinja's grammar and precedence: conditional < or < and < not <
// comparisons/in < + - < ~ < * / // % < ** < unary - + < postfix (.x [x] (args)) then filters and tests.
#include <algorithm>
#include <charconv>

#include "ast.h"
#include "dattn/core/error.h"

namespace dattn::chat_template_detail {
namespace {

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& origin, int max_depth)
      : tokens_(std::move(tokens)), origin_(origin), max_depth_(max_depth) {}

  Body parse_all() {
    Body body = parse_body({});
    if (current().type != TokenType::eof) error(current().pos, fmt::format("unexpected '{}'", current().text));
    return body;
  }

 private:
  // ---- tokens ----
  const Token& current() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead = 1) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool at_op(std::string_view op) const { return current().type == TokenType::op && current().text == op; }
  bool at_name(std::string_view name) const { return current().type == TokenType::name && current().text == name; }
  bool skip_op(std::string_view op) {
    if (!at_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!at_name(name)) return false;
    advance();
    return true;
  }

  static std::string describe(const Token& token) {
    switch (token.type) {
      case TokenType::data: return "template text";
      case TokenType::variable_begin: return "'{{'";
      case TokenType::variable_end: return "'}}'";
      case TokenType::block_begin: return "'{%'";
      case TokenType::block_end: return "'%}'";
      case TokenType::string: return "a string";
      case TokenType::eof: return "the end of the template";
      default: return "'" + token.text + "'";
    }
  }

  [[noreturn]] void error(SourcePos pos, const std::string& message) const {
    fail("{}:{}:{}: {}", origin_, pos.line, pos.column, message);
  }

  void expect_op(std::string_view op) {
    if (!skip_op(op)) error(current().pos, fmt::format("expected '{}', got {}", op, describe(current())));
  }
  std::string expect_name() {
    if (current().type != TokenType::name) error(current().pos, fmt::format("expected a name, got {}", describe(current())));
    std::string name = current().text;
    advance();
    return name;
  }
  void expect_block_end() {
    if (current().type != TokenType::block_end) error(current().pos, fmt::format("expected '%}}', got {}", describe(current())));
    advance();
  }

  struct DepthGuard {
    Parser& parser;
    DepthGuard(Parser& p, SourcePos pos) : parser(p) {
      if (++parser.depth_ > parser.max_depth_) parser.error(pos, fmt::format("nesting deeper than {} levels", parser.max_depth_));
    }
    ~DepthGuard() { --parser.depth_; }
  };

  // Sets the depth of a node whose children are attached; chains like a+b+c+... or x|f|f|... nest
  // without recursion in the parser, so their depth is bounded here.
  ExprPtr finish(ExprPtr e) {
    int deepest = 0;
    for (const ExprPtr& child : e->args) {
      if (child) deepest = std::max(deepest, child->depth);
    }
    for (const auto& kw : e->kwargs) deepest = std::max(deepest, kw.second->depth);
    e->depth = deepest + 1;
    if (e->depth > max_depth_) error(e->pos, fmt::format("expression nested deeper than {} levels", max_depth_));
    return e;
  }

  ExprPtr node(Expr::Kind kind, SourcePos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }

  // ---- statements ----
  // Parses until a block tag whose first name is in `ends` (left unconsumed: current() is that name).
  Body parse_body(std::initializer_list<std::string_view> ends) {
    Body body;
    while (true) {
      const Token& token = current();
      if (token.type == TokenType::eof) {
        if (ends.size() == 0) return body;
        std::string expected;
        for (const std::string_view end : ends) expected += (expected.empty() ? "" : " or ") + fmt::format("{{% {} %}}", end);
        error(token.pos, "unexpected end of template: expected " + expected);
      }
      if (token.type == TokenType::data) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::text;
        s->pos = token.pos;
        s->text = token.text;
        body.push_back(std::move(s));
        advance();
      } else if (token.type == TokenType::variable_begin) {
        advance();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::output;
        s->pos = token.pos;
        s->expr = parse_tuple(true);
        if (current().type != TokenType::variable_end) error(current().pos, fmt::format("expected '}}}}', got {}", describe(current())));
        advance();
        body.push_back(std::move(s));
      } else if (token.type == TokenType::block_begin) {
        const Token& keyword = peek();
        if (keyword.type == TokenType::name) {
          for (const std::string_view end : ends) {
            if (keyword.text == end) {
              advance();
              return body;
            }
          }
        }
        advance();
        body.push_back(parse_statement(token.pos));
      } else {
        error(token.pos, fmt::format("unexpected {}", describe(token)));
      }
    }
  }

  std::unique_ptr<Stmt> parse_statement(SourcePos pos) {
    DepthGuard guard(*this, pos);
    const Token keyword = current();
    if (keyword.type != TokenType::name) error(keyword.pos, fmt::format("expected a statement name, got {}", describe(keyword)));
    advance();
    auto s = std::make_unique<Stmt>();
    s->pos = keyword.pos;
    const std::string& word = keyword.text;
    if (word == "if") {
      s->kind = Stmt::Kind::if_;
      ExprPtr condition = parse_expression();
      expect_block_end();
      while (true) {
        Body body = parse_body({"elif", "else", "endif"});
        s->branches.emplace_back(std::move(condition), std::move(body));
        const std::string end = expect_name();
        if (end == "elif") {
          condition = parse_expression();
          expect_block_end();
          continue;
        }
        if (end == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"});
          expect_name();
        }
        expect_block_end();
        break;
      }
    } else if (word == "for") {
      s->kind = Stmt::Kind::for_;
      s->targets = parse_targets();
      if (!skip_name("in")) error(current().pos, fmt::format("expected 'in' in the for loop, got {}", describe(current())));
      s->expr = parse_tuple(false);
      if (skip_name("if")) s->condition = parse_expression();
      if (at_name("recursive")) error(current().pos, "recursive for loops are not supported");
      expect_block_end();
      ++loop_depth_;
      s->body = parse_body({"else", "endfor"});
      --loop_depth_;
      if (expect_name() == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"});
        expect_name();
      }
      expect_block_end();
    } else if (word == "set") {
      parse_set(*s);
    } else if (word == "macro") {
      s->kind = Stmt::Kind::macro;
      s->name = expect_name();
      expect_op("(");
      while (!skip_op(")")) {
        if (!s->params.empty()) expect_op(",");
        if (skip_op(")")) break;
        std::string param = expect_name();
        ExprPtr default_value = skip_op("=") ? parse_expression() : nullptr;
        s->params.emplace_back(std::move(param), std::move(default_value));
      }
      expect_block_end();
      s->body = parse_body({"endmacro"});
      expect_name();
      if (current().type == TokenType::name) advance();  // {% endmacro name %}
      expect_block_end();
    } else if (word == "break" || word == "continue") {
      if (loop_depth_ == 0) error(keyword.pos, fmt::format("'{}' outside of a for loop", word));
      s->kind = word == "break" ? Stmt::Kind::break_ : Stmt::Kind::continue_;
      expect_block_end();
    } else if (word == "generation") {
      // transformers' assistant-mask marker: the body renders as it is.
      s->kind = Stmt::Kind::scope;
      expect_block_end();
      s->body = parse_body({"endgeneration"});
      expect_name();
      expect_block_end();
    } else {
      error(keyword.pos, fmt::format("unknown or unsupported statement '{}'", word));
    }
    return s;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> targets;
    const bool parenthesized = skip_op("(");
    do {
      targets.push_back(expect_name());
    } while (skip_op(","));
    if (parenthesized) expect_op(")");
    return targets;
  }

  void parse_set(Stmt& s) {
    if (current().type == TokenType::name && peek().type == TokenType::op && peek().text == ".") {
      s.kind = Stmt::Kind::set;
      s.target_object = node(Expr::Kind::name, current().pos);
      s.target_object->name = expect_name();
      advance();
      s.name = expect_name();
      expect_op("=");
      s.expr = parse_tuple(true);
      expect_block_end();
      return;
    }
    s.targets = parse_targets();
    if (skip_op("=")) {
      s.kind = Stmt::Kind::set;
      s.expr = parse_tuple(true);
      expect_block_end();
      return;
    }
    if (s.targets.size() != 1) error(current().pos, "a block set takes one name");
    s.kind = Stmt::Kind::set_block;
    expect_block_end();
    s.body = parse_body({"endset"});
    expect_name();
    expect_block_end();
  }

  // ---- expressions ----
  // An expression, or several separated by commas (a tuple).
  ExprPtr parse_tuple(bool with_conditional) {
    const SourcePos pos = current().pos;
    ExprPtr first = with_conditional ? parse_expression() : parse_or();
    if (!at_op(",")) return first;
    ExprPtr tuple = node(Expr::Kind::list, pos);
    tuple->is_tuple = true;
    tuple->args.push_back(std::move(first));
    while (skip_op(",")) {
      if (current().type == TokenType::block_end || current().type == TokenType::variable_end || at_op("=")) break;
      tuple->args.push_back(with_conditional ? parse_expression() : parse_or());
    }
    return tuple;
  }

  ExprPtr parse_expression() {
    DepthGuard guard(*this, current().pos);
    ExprPtr expr = parse_or();
    while (at_name("if")) {
      const SourcePos pos = current().pos;
      advance();
      ExprPtr cond = node(Expr::Kind::conditional, pos);
      cond->args.push_back(parse_or());
      cond->args.push_back(std::move(expr));
      cond->args.push_back(skip_name("else") ? parse_expression() : nullptr);
      expr = finish(std::move(cond));
    }
    return expr;
  }

  ExprPtr binary(std::string op, SourcePos pos, ExprPtr left, ExprPtr right) {
    ExprPtr e = node(Expr::Kind::binary, pos);
    e->name = std::move(op);
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return finish(std::move(e));
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (at_name("or")) {
      const SourcePos pos = current().pos;
      advance();
      left = binary("or", pos, std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (at_name("and")) {
      const SourcePos pos = current().pos;
      advance();
      left = binary("and", pos, std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    if (at_name("not")) {
      DepthGuard guard(*this, current().pos);
      ExprPtr e = node(Expr::Kind::unary, current().pos);
      advance();
      e->name = "not";
      e->args.push_back(parse_not());
      return finish(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const SourcePos pos = current().pos;
    ExprPtr first = parse_math1();
    ExprPtr chain = node(Expr::Kind::chain, pos);
    chain->args.push_back(std::move(first));
    while (true) {
      std::string op;
      if (current().type == TokenType::op &&
          (current().text == "==" || current().text == "!=" || current().text == "<" || current().text == "<=" ||
           current().text == ">" || current().text == ">=")) {
        op = current().text;
        advance();
      } else if (at_name("in")) {
        op = "in";
        advance();
      } else if (at_name("not") && peek().type == TokenType::name && peek().text == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      chain->ops.push_back(std::move(op));
      chain->args.push_back(parse_math1());
    }
    if (chain->ops.empty()) return std::move(chain->args[0]);
    if (chain->ops.size() == 1) {
      chain->kind = Expr::Kind::binary;
      chain->name = chain->ops[0];
    }
    return finish(std::move(chain));
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (at_op("+") || at_op("-")) {
      const Token op = current();
      advance();
      left = binary(op.text, op.pos, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (at_op("~")) {
      const SourcePos pos = current().pos;
      advance();
      left = binary("~", pos, std::move(left), parse_math2());
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const Token op = current();
      advance();
      left = binary(op.text, op.pos, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (at_op("**")) {
      const SourcePos pos = current().pos;
      advance();
      left = binary("**", pos, std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this, current().pos);
    ExprPtr e;
    if (at_op("-") || at_op("+")) {
      e = node(Expr::Kind::unary, current().pos);
      e->name = current().text;
      advance();
      e->args.push_back(parse_unary(false));
      e = finish(std::move(e));
    } else {
      e = parse_postfix(parse_primary());
    }
    return with_filter ? parse_filter_expr(std::move(e)) : std::move(e);
  }

  ExprPtr parse_primary() {
    const Token token = current();
    switch (token.type) {
      case TokenType::name: {
        advance();
        ExprPtr e = node(Expr::Kind::literal, token.pos);
        if (token.text == "true" || token.text == "True") e->value = Value::boolean(true);
        else if (token.text == "false" || token.text == "False") e->value = Value::boolean(false);
        else if (token.text == "none" || token.text == "None") e->value = Value::none();
        else {
          e->kind = Expr::Kind::name;
          e->name = token.text;
        }
        return e;
      }
      case TokenType::string: {
        std::string text;
        while (current().type == TokenType::string) {  // adjacent literals concatenate
          text += current().text;
          advance();
        }
        ExprPtr e = node(Expr::Kind::literal, token.pos);
        e->value = Value::string(std::move(text));
        return e;
      }
      case TokenType::integer: {
        advance();
        int64_t value = 0;
        const auto [end, ec] = std::from_chars(token.text.data(), token.text.data() + token.text.size(), value);
        if (ec != std::errc() || end != token.text.data() + token.text.size()) error(token.pos, fmt::format("integer literal {} is too large", token.text));
        ExprPtr e = node(Expr::Kind::literal, token.pos);
        e->value = Value::integer(value);
        return e;
      }
      case TokenType::floating: {
        advance();
        ExprPtr e = node(Expr::Kind::literal, token.pos);
        e->value = Value::floating(std::strtod(token.text.c_str(), nullptr));
        return e;
      }
      case TokenType::op:
        if (token.text == "(") {
          advance();
          if (skip_op(")")) {
            ExprPtr e = node(Expr::Kind::list, token.pos);
            e->is_tuple = true;
            return e;
          }
          ExprPtr inner = parse_expression();
          if (at_op(",")) {
            ExprPtr tuple = node(Expr::Kind::list, token.pos);
            tuple->is_tuple = true;
            tuple->args.push_back(std::move(inner));
            while (skip_op(",")) {
              if (at_op(")")) break;
              tuple->args.push_back(parse_expression());
            }
            inner = std::move(tuple);
          }
          expect_op(")");
          return inner;
        }
        if (token.text == "[") {
          advance();
          ExprPtr e = node(Expr::Kind::list, token.pos);
          while (!skip_op("]")) {
            if (!e->args.empty()) expect_op(",");
            if (skip_op("]")) break;
            e->args.push_back(parse_expression());
          }
          return e;
        }
        if (token.text == "{") {
          advance();
          ExprPtr e = node(Expr::Kind::dict, token.pos);
          while (!skip_op("}")) {
            if (!e->args.empty()) expect_op(",");
            if (skip_op("}")) break;
            e->args.push_back(parse_expression());
            expect_op(":");
            e->args.push_back(parse_expression());
          }
          return e;
        }
        break;
      default: break;
    }
    error(token.pos, fmt::format("expected an expression, got {}", describe(token)));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const SourcePos pos = current().pos;
      if (skip_op(".")) {
        ExprPtr attr = node(Expr::Kind::attribute, pos);
        if (current().type == TokenType::integer) {  // x.0 is x[0]
          attr->kind = Expr::Kind::subscript;
          attr->args.push_back(std::move(e));
          attr->args.push_back(parse_primary());
        } else {
          attr->name = expect_name();
          attr->args.push_back(std::move(e));
        }
        e = finish(std::move(attr));
      } else if (at_op("[")) {
        advance();
        e = parse_subscript(std::move(e), pos);
      } else if (at_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target, SourcePos pos) {
    DepthGuard guard(*this, pos);
    std::vector<ExprPtr> parts;
    bool is_slice = false;
    ExprPtr part = at_op(":") ? nullptr : parse_expression();
    while (skip_op(":")) {
      is_slice = true;
      parts.push_back(std::move(part));
      part = (at_op(":") || at_op("]")) ? nullptr : parse_expression();
    }
    parts.push_back(std::move(part));
    expect_op("]");
    ExprPtr e = node(is_slice ? Expr::Kind::slice : Expr::Kind::subscript, pos);
    e->args.push_back(std::move(target));
    if (parts.size() > 3) error(pos, "a slice has at most three parts");
    while (is_slice && parts.size() < 3) parts.push_back(nullptr);
    for (ExprPtr& p : parts) e->args.push_back(std::move(p));
    return finish(std::move(e));
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!skip_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (skip_op(")")) break;
      if (at_op("*") || at_op("**")) error(current().pos, "*args and **kwargs in calls are not supported");
      if (current().type == TokenType::name && peek().type == TokenType::op && peek().text == "=") {
        std::string name = current().text;
        advance();
        advance();
        call.kwargs.emplace_back(std::move(name), parse_expression());
      } else {
        if (!call.kwargs.empty()) error(current().pos, "a positional argument follows a keyword argument");
        call.args.push_back(parse_expression());
      }
    }
  }

  ExprPtr parse_call(ExprPtr target) {
    DepthGuard guard(*this, current().pos);
    ExprPtr call = node(Expr::Kind::call, target->pos);
    call->args.push_back(std::move(target));
    parse_call_args(*call);
    return finish(std::move(call));
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      const SourcePos pos = current().pos;
      if (skip_op("|")) {
        ExprPtr filter = node(Expr::Kind::filter, pos);
        filter->name = expect_name();
        filter->args.push_back(std::move(e));
        if (at_op("(")) parse_call_args(*filter);
        e = finish(std::move(filter));
      } else if (at_name("is")) {
        advance();
        ExprPtr test = node(Expr::Kind::test, pos);
        test->is_not = skip_name("not");
        test->name = expect_name();
        test->args.push_back(std::move(e));
        const Token& next = current();
        if (at_op("(")) {
          parse_call_args(*test);
        } else if ((next.type == TokenType::name || next.type == TokenType::string || next.type == TokenType::integer ||
                    next.type == TokenType::floating || at_op("[") || at_op("{")) &&
                   !at_name("else") && !at_name("or") && !at_name("and")) {
          if (at_name("is")) error(next.pos, "tests cannot be chained with 'is'");
          test->args.push_back(parse_postfix(parse_primary()));
        }
        e = finish(std::move(test));
      } else if (at_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  const std::string& origin_;
  int max_depth_;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::shared_ptr<const Program> parse_program(std::string_view source, std::string origin, int max_depth) {
  auto program = std::make_shared<Program>();
  program->source = std::string(source);
  program->origin = std::move(origin);
  Parser parser(tokenize(program->source, program->origin), program->origin, max_depth);
  program->body = parser.parse_all();
  return program;
}

}  // namespace dattn::chat_template_detail
