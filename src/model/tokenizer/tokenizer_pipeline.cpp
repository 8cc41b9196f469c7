// Encode and decode: added-token split, normalizer, pre-tokenizer, BPE, post-processor; and back.
#include <unordered_map>

#include "dattn/core/error.h"
#include "tokenizer_impl.h"
#include "utf8.h"

namespace dattn::tokenizer_detail {
namespace {

// Words longer than this are not cached (as in `tokenizers`): they are rare and would bloat the cache.
constexpr size_t kMaxCachedWordBytes = 256;

class WordEncoder {
 public:
  explicit WordEncoder(const BpeModel& model) : model_(model) {}
  void encode(const std::string& word, std::vector<int32_t>& out) {
    if (word.size() > kMaxCachedWordBytes) {
      model_.tokenize(word, out);
      return;
    }
    auto [it, inserted] = cache_.try_emplace(word);
    if (inserted) model_.tokenize(word, it->second);
    out.insert(out.end(), it->second.begin(), it->second.end());
  }

 private:
  const BpeModel& model_;
  std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace

std::vector<int32_t> TokenizerImpl::encode(std::string_view text, bool add_special_tokens) const {
  if (const std::optional<size_t> bad = find_invalid_utf8(text)) {
    fail("tokenizer: input text is not valid UTF-8 at byte {} (of {})", *bad, text.size());
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  WordEncoder words(model);
  std::vector<Piece> pieces;
  for (const TextSpan& span : raw_matcher.split(text)) {
    if (span.token_id >= 0) {
      ids.push_back(span.token_id);
      continue;
    }
    std::string normalized(text.substr(span.start, span.end - span.start));
    if (normalizer) normalizer->normalize(normalized);
    for (const TextSpan& inner : normalized_matcher.split(normalized)) {
      if (inner.token_id >= 0) {
        ids.push_back(inner.token_id);
        continue;
      }
      pieces.assign(1, Piece{normalized.substr(inner.start, inner.end - inner.start), span.start == 0 && inner.start == 0});
      if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
      for (const Piece& piece : pieces) words.encode(piece.text, ids);
    }
  }
  if (add_special_tokens && post_processor) post_processor->add_special_tokens(ids);
  return ids;
}

std::string TokenizerImpl::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (id < 0) fail("tokenizer: cannot decode negative token id {}", id);
    if (!has_id(id)) continue;  // `tokenizers` drops ids it does not know
    if (skip_special_tokens && id_special[id]) continue;
    tokens.push_back(token_by_id[id]);
  }
  std::string text;
  if (decoder) {
    decoder->decode_chain(tokens);
    for (const std::string& token : tokens) text += token;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) text += (i == 0 ? "" : " ") + tokens[i];
  }
  return find_invalid_utf8(text) ? utf8_lossy(text) : text;
}

std::string TokenizerImpl::token_to_piece(int32_t id) const {
  if (!has_id(id)) fail("tokenizer: token id {} is not in the vocabulary (size {})", id, token_by_id.size());
  std::string piece = token_by_id[id];
  if (decoder && !id_special[id]) decoder->to_piece(piece);
  return piece;
}

}  // namespace dattn::tokenizer_detail
