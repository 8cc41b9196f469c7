// How long a prompt is, in the tokens of the model that will read it. Task generators only count; the
// interface lets tests fit samples with a fixture tokenizer or with one token per byte.
#pragma once
#include <cstdint>
#include <string_view>

namespace dattn {
class Tokenizer;
}

namespace dattn::eval {

class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  // Tokens the model is fed for `text` as a whole prompt (special tokens such as BOS included).
  virtual int64_t count(std::string_view text) const = 0;
};

// One token per byte: the trivial tokenizer (tests, and a rough estimate of length for any text).
class ByteTokenCounter final : public TokenCounter {
 public:
  int64_t count(std::string_view text) const override { return int64_t(text.size()); }
};

// A Hugging Face tokenizer, encoding with add_special_tokens = true as the eval feeds the model.
class TokenizerCounter final : public TokenCounter {
 public:
  explicit TokenizerCounter(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
  int64_t count(std::string_view text) const override;

 private:
  const Tokenizer* tokenizer_;
};

}  // namespace dattn::eval
