// Jinja's lexer as transformers configures it (trim_blocks, lstrip_blocks, no trailing newline kept):
// template text becomes data, tag delimiters and expression tokens, with `-`/`+` whitespace control,
// comments and raw blocks applied here.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace dattn::chat_template_detail {

struct SourcePos {
  int line = 1;
  int column = 1;
};

enum class TokenType { data, variable_begin, variable_end, block_begin, block_end, name, string, integer, floating, op, eof };

struct Token {
  TokenType type;
  std::string text;  // data text, name, decoded string literal, number text, operator
  SourcePos pos;
};

// Throws dattn::Error "<origin>:LINE:COL: ..." for unterminated tags, strings or comments and stray
// characters. The source must be valid UTF-8.
std::vector<Token> tokenize(std::string_view source, std::string_view origin);

}  // namespace dattn::chat_template_detail
