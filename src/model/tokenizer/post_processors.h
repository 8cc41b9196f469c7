// Post-processors of tokenizer.json: add special tokens (BOS, ...) around an encoded sequence.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "json_fields.h"

namespace dattn::tokenizer_detail {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Only called with add_special_tokens = true; without it every supported processor leaves ids alone.
  virtual void add_special_tokens(std::vector<int32_t>& ids) const = 0;
  // The id placed before the sequence, if any (the BOS a model expects).
  virtual std::optional<int32_t> leading_special_id() const = 0;
};

// TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence; others throw.
// `has_id` says whether an id exists in the vocabulary or the added tokens.
std::unique_ptr<PostProcessor> parse_post_processor(const Json& spec, std::string_view path,
                                                    const std::function<bool(int32_t)>& has_id, int depth = 0);

}  // namespace dattn::tokenizer_detail
