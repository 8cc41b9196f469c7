// Streaming detokenization: re-decode a short window of ids and emit only the text that has become
// final, so byte tokens of one character and start-of-text stripping come out as in a full decode.
#include "dattn/model/tokenizer.h"
#include "tokenizer_impl.h"
#include "utf8.h"

namespace dattn {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string StreamDecoder::push(int32_t id) {
  ids_.push_back(id);
  if (tokenizer_->impl_->text_pending(id)) return {};
  const std::span<const int32_t> window(ids_);
  const std::string context = tokenizer_->decode(window.first(read_start_), skip_special_tokens_);
  const std::string text = tokenizer_->decode(window, skip_special_tokens_);
  // Hold back while the window ends inside a character (decode shows it as U+FFFD), adds nothing, or
  // rewrites text already emitted.
  if (text.size() <= context.size() || !text.starts_with(context) || text.ends_with(tokenizer_detail::kReplacementChar)) {
    return {};
  }
  std::string chunk = text.substr(context.size());
  // The next window starts at this chunk's first id, unless decoding from there reads differently
  // (e.g. it would start inside a character split over byte tokens): then the window keeps growing.
  const std::string next_context = tokenizer_->decode(window.subspan(read_start_), skip_special_tokens_);
  if (text.ends_with(next_context)) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(read_start_));
  }
  read_start_ = ids_.size();
  return chunk;
}

std::string StreamDecoder::finish() {
  const std::span<const int32_t> window(ids_);
  const std::string context = tokenizer_->decode(window.first(read_start_), skip_special_tokens_);
  const std::string text = tokenizer_->decode(window, skip_special_tokens_);
  ids_.clear();
  read_start_ = 0;
  if (text.size() <= context.size() || !text.starts_with(context)) return {};
  return text.substr(context.size());
}

}  // namespace dattn
