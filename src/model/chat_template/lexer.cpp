// Tokenizer of Jinja templates with transformers' settings: trim_blocks (a block or comment tag eats
// the newline after it), lstrip_blocks (whitespace before a block or comment tag on its own line goes),
// `{%-`/`-%}` strip all whitespace on that side, `+` turns the stripping off, newlines are normalized to
// \n and one trailing newline of the template is dropped.
#include "lexer.h"

#include <algorithm>

#include "dattn/core/error.h"
#include "utf8.h"

namespace dattn::chat_template_detail {
namespace {

using tokenizer_detail::append_utf8;
using tokenizer_detail::decode_utf8_at;
using tokenizer_detail::is_python_space;
using tokenizer_detail::utf8_char_length;

std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's str.isspace() per character, which Jinja's \s and str.strip() use.
size_t space_length_at(std::string_view text, size_t pos) {
  return is_python_space(decode_utf8_at(text, pos)) ? utf8_char_length(text, pos) : 0;
}

std::string_view rstrip_space(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    if (space_length_at(text, start) == 0) break;
    end = start;
  }
  return text.substr(0, end);
}

size_t skip_space(std::string_view text, size_t pos) {
  while (pos < text.size()) {
    const size_t length = space_length_at(text, pos);
    if (length == 0) break;
    pos += length;
  }
  return pos;
}

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

class Lexer {
 public:
  Lexer(std::string_view source, std::string_view origin) : src_(normalize_newlines(source)), origin_(origin) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      const size_t start = find_tag_start(pos);
      std::string_view data = std::string_view(src_).substr(pos, start - pos);
      if (start == src_.size()) {
        emit_data(data, pos);
        break;
      }
      const char kind = src_[start + 1];
      const char modifier = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (modifier == '-') {
        data = rstrip_space(data);
      } else if (modifier != '+' && kind != '{') {
        const size_t line_begin = data.rfind('\n') == std::string_view::npos ? 0 : data.rfind('\n') + 1;
        if ((line_begin > 0 || line_starting) && line_begin < data.size() &&
            skip_space(data, line_begin) == data.size()) {
          data = data.substr(0, line_begin);
        }
      }
      emit_data(data, pos);
      size_t inner = start + 2 + (modifier == '-' || modifier == '+');
      if (kind == '#') {
        pos = lex_comment(start, inner);
      } else if (kind == '%' && is_raw_begin(inner)) {
        pos = lex_raw(inner);
      } else {
        pos = lex_tag(start, inner, kind == '%');
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    tokens_.push_back({TokenType::eof, "", position(src_.size())});
    return std::move(tokens_);
  }

 private:
  SourcePos position(size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset) - 1;
    const size_t line_start = *it;
    int column = 1;
    for (size_t i = line_start; i < offset && i < src_.size(); ++i) column += (static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80;
    return {static_cast<int>(it - line_starts_.begin()) + 1, column};
  }

  [[noreturn]] void error(size_t offset, const std::string& message) const {
    const SourcePos p = position(offset);
    fail("{}:{}:{}: {}", origin_, p.line, p.column, message);
  }

  size_t find_tag_start(size_t pos) const {
    for (size_t i = pos; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  void emit_data(std::string_view data, size_t offset) {
    if (!data.empty()) tokens_.push_back({TokenType::data, std::string(data), position(offset)});
  }

  // After a tag's end: `-` strips the following whitespace, trim_blocks eats one newline after blocks.
  size_t after_tag_end(size_t pos, char modifier, bool block) const {
    if (modifier == '-') return skip_space(src_, pos);
    if (modifier != '+' && block && pos < src_.size() && src_[pos] == '\n') return pos + 1;
    return pos;
  }

  size_t lex_comment(size_t start, size_t inner) {
    const size_t end = src_.find("#}", inner);
    if (end == std::string::npos) error(start, "unterminated comment (no #})");
    const char modifier = end > inner && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : '\0';
    return after_tag_end(end + 2, modifier, true);
  }

  // `{% raw %}` with optional -/+ and spaces; `inner` is just after `{%` and its modifier.
  bool is_raw_begin(size_t inner) const {
    const size_t word = skip_space(src_, inner);
    if (src_.compare(word, 3, "raw") != 0 || (word + 3 < src_.size() && is_name_char(src_[word + 3]))) return false;
    const size_t rest = skip_space(src_, word + 3);
    return src_.compare(rest, 2, "%}") == 0 || src_.compare(rest, 3, "-%}") == 0;
  }

  size_t lex_raw(size_t inner) {
    const size_t raw_start = inner;
    size_t pos = skip_space(src_, skip_space(src_, inner) + 3);
    if (src_[pos] == '-') pos = skip_space(src_, pos + 3);
    else pos += 2;
    const size_t body = pos;
    for (size_t search = body;; ++search) {
      search = src_.find("{%", search);
      if (search == std::string::npos) error(raw_start, "unterminated raw block (no {% endraw %})");
      const char open_modifier = search + 2 < src_.size() ? src_[search + 2] : '\0';
      size_t word = skip_space(src_, search + 2 + (open_modifier == '-' || open_modifier == '+'));
      if (src_.compare(word, 6, "endraw") != 0) continue;
      const size_t rest = skip_space(src_, word + 6);
      char close_modifier = '\0';
      size_t close = rest;
      if (rest < src_.size() && (src_[rest] == '-' || src_[rest] == '+')) close_modifier = src_[close++];
      if (src_.compare(close, 2, "%}") != 0) continue;
      std::string_view text = std::string_view(src_).substr(body, search - body);
      if (open_modifier == '-') text = rstrip_space(text);
      emit_data(text, body);
      return after_tag_end(close + 2, close_modifier, true);
    }
  }

  size_t lex_tag(size_t start, size_t pos, bool block) {
    tokens_.push_back({block ? TokenType::block_begin : TokenType::variable_begin, "", position(start)});
    const char close = block ? '%' : '}';
    int depth = 0;
    while (true) {
      pos = skip_space(src_, pos);
      if (pos >= src_.size()) error(start, block ? "unterminated block tag (no %})" : "unterminated expression (no }})");
      const char c = src_[pos];
      if (depth == 0) {
        const char modifier = (c == '-' || c == '+') ? c : '\0';
        const size_t end = pos + (modifier != '\0');
        if (end + 1 < src_.size() && src_[end] == close && src_[end + 1] == '}' && (block || modifier != '+')) {
          tokens_.push_back({block ? TokenType::block_end : TokenType::variable_end, "", position(pos)});
          return after_tag_end(end + 2, modifier, block);
        }
      }
      const size_t token_start = pos;
      if (is_name_start(c)) {
        while (pos < src_.size() && is_name_char(src_[pos])) ++pos;
        tokens_.push_back({TokenType::name, src_.substr(token_start, pos - token_start), position(token_start)});
      } else if (is_digit(c)) {
        pos = lex_number(pos);
      } else if (c == '\'' || c == '"') {
        pos = lex_string(pos);
      } else {
        static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
        std::string op(1, c);
        for (const std::string_view two : kTwoChar) {
          if (src_.compare(pos, 2, two) == 0) op = std::string(two);
        }
        if (op.size() == 1 && std::string_view("+-*/%~<>=.,:|()[]{}").find(c) == std::string_view::npos) {
          error(pos, fmt::format("unexpected character '{}' in a tag", std::string(src_.substr(pos, utf8_char_length(src_, pos)))));
        }
        if (c == '(' || c == '[' || c == '{') ++depth;
        if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
        pos += op.size();
        tokens_.push_back({TokenType::op, op, position(token_start)});
      }
    }
  }

  size_t digits(size_t pos) const {
    while (pos < src_.size() && (is_digit(src_[pos]) || (src_[pos] == '_' && pos + 1 < src_.size() && is_digit(src_[pos + 1])))) ++pos;
    return pos;
  }

  size_t lex_number(size_t start) {
    size_t pos = digits(start);
    bool floating = false;
    if (pos + 1 < src_.size() && src_[pos] == '.' && is_digit(src_[pos + 1])) {
      pos = digits(pos + 1);
      floating = true;
    }
    if (pos < src_.size() && (src_[pos] == 'e' || src_[pos] == 'E')) {
      size_t exp = pos + 1;
      if (exp < src_.size() && (src_[exp] == '+' || src_[exp] == '-')) ++exp;
      if (exp < src_.size() && is_digit(src_[exp])) {
        pos = digits(exp);
        floating = true;
      }
    }
    std::string text;
    for (size_t i = start; i < pos; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    tokens_.push_back({floating ? TokenType::floating : TokenType::integer, text, position(start)});
    return pos;
  }

  static int hex_value(char c) {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Python's unicode-escape decoding, which Jinja applies to string literals.
  size_t lex_string(size_t start) {
    const char quote = src_[start];
    std::string value;
    size_t pos = start + 1;
    while (true) {
      if (pos >= src_.size()) error(start, "unterminated string literal");
      const char c = src_[pos];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++pos;
        continue;
      }
      if (pos + 1 >= src_.size()) error(start, "unterminated string literal");
      const char e = src_[pos + 1];
      pos += 2;
      switch (e) {
        case '\n': break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'n': value += '\n'; break;
        case 'r': value += '\r'; break;
        case 't': value += '\t'; break;
        case 'v': value += '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
          const int count = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t code = 0;
          for (int i = 0; i < count; ++i) {
            const int digit = pos < src_.size() ? hex_value(src_[pos]) : -1;
            if (digit < 0) error(pos - 2 - i, fmt::format("truncated \\{} escape in a string literal", e));
            code = code * 16 + static_cast<char32_t>(digit);
            ++pos;
          }
          if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) error(pos, fmt::format("escape \\{} gives an invalid code point", e));
          append_utf8(value, code);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t code = static_cast<char32_t>(e - '0');
            for (int i = 0; i < 2 && pos < src_.size() && src_[pos] >= '0' && src_[pos] <= '7'; ++i) code = code * 8 + (src_[pos++] - '0');
            append_utf8(value, code);
          } else {
            value += '\\';
            pos -= 1;  // the character after the backslash is kept as it is
          }
      }
    }
    tokens_.push_back({TokenType::string, std::move(value), position(start)});
    return pos + 1;
  }

  std::string src_;
  std::string_view origin_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, std::string_view origin) { return Lexer(source, origin).run(); }

}  // namespace dattn::chat_template_detail
