// Parsing tokenizer.json and building the id tables.
#include <map>

#include "dattn/core/error.h"
#include "dattn/io/json_input.h"
#include "tokenizer_impl.h"

namespace dattn::tokenizer_detail {
namespace {

// Unused ids allowed beyond one per token (see finish_tables).
constexpr int64_t kIdSlack = 1024;

AddedToken parse_added_token(const Json& entry, int32_t id, const std::string& path) {
  AddedToken token;
  token.id = id;
  token.content = require_string(entry, "content", path);
  token.special = bool_or(entry, "special", path, false);
  token.lstrip = bool_or(entry, "lstrip", path, false);
  token.rstrip = bool_or(entry, "rstrip", path, false);
  token.single_word = bool_or(entry, "single_word", path, false);
  token.normalized = bool_or(entry, "normalized", path, !token.special);
  return token;
}

}  // namespace

std::unique_ptr<TokenizerImpl> parse_tokenizer_json(std::string_view json_text) {
  const Json root = parse_json(json_text, "tokenizer: tokenizer.json", kTokenizerJsonLimits);
  require_object(root, "tokenizer.json");
  auto impl = std::make_unique<TokenizerImpl>();
  impl->model = BpeModel::parse(require_field(root, "model", ""), "model");
  if (const Json* added = optional_field(root, "added_tokens", "")) {
    require_array(*added, "added_tokens");
    for (size_t i = 0; i < added->size(); ++i) {
      const std::string path = "added_tokens[" + std::to_string(i) + "]";
      const int32_t id = as_token_id(require_field((*added)[i], "id", path), path + ".id");
      impl->added_tokens.push_back(parse_added_token((*added)[i], id, path));
    }
  }
  if (const Json* spec = optional_field(root, "normalizer", "")) impl->normalizer = parse_normalizer(*spec, "normalizer");
  if (const Json* spec = optional_field(root, "pre_tokenizer", "")) {
    impl->pre_tokenizer = parse_pre_tokenizer(*spec, "pre_tokenizer");
  }
  if (const Json* spec = optional_field(root, "decoder", "")) impl->decoder = parse_decoder(*spec, "decoder");
  // The post-processor refers to ids, which are checked once all tokens are known.
  if (const Json* spec = optional_field(root, "post_processor", "")) {
    std::map<int32_t, bool> known;
    for (const auto& [token, id] : impl->model.vocab()) known[id] = true;
    for (const AddedToken& token : impl->added_tokens) known[token.id] = true;
    impl->post_processor =
        parse_post_processor(*spec, "post_processor", [&](int32_t id) { return known.count(id) > 0; });
  }
  // "truncation" and "padding" are ignored: transformers turns both off unless a call asks for them.
  return impl;
}

void merge_config_added_tokens(TokenizerImpl& impl, const Json& config) {
  const Json* decoder = optional_field(config, "added_tokens_decoder", "tokenizer_config.json");
  if (decoder == nullptr) return;
  require_object(*decoder, "tokenizer_config.json added_tokens_decoder");
  for (const auto& [key, entry] : decoder->items()) {
    const std::string path = "tokenizer_config.json added_tokens_decoder[\"" + excerpt(key, 40) + "\"]";
    int64_t id = -1;
    if (key.empty() || key.size() > 9 || key.find_first_not_of("0123456789") != std::string::npos ||
        (id = std::stoll(key)) > kMaxTokenId) {
      fail("tokenizer: {} is not a token id in [0, {}]", path, kMaxTokenId);
    }
    AddedToken token = parse_added_token(entry, static_cast<int32_t>(id), path);
    bool present = false;
    for (const AddedToken& existing : impl.added_tokens) {
      if (existing.id != token.id) continue;
      if (existing.content != token.content) {
        fail("tokenizer: {} says '{}' but tokenizer.json's added token {} is '{}'", path, excerpt(token.content), id,
             excerpt(existing.content));
      }
      present = true;
    }
    if (!present) impl.added_tokens.push_back(std::move(token));
  }
}

void TokenizerImpl::finish_tables() {
  int32_t max_id = -1;
  std::string_view max_token;
  const auto note = [&](int32_t id, std::string_view token) {
    if (id > max_id) max_id = id, max_token = token;
  };
  for (const auto& [token, id] : model.vocab()) note(id, token);
  for (const AddedToken& token : added_tokens) note(token.id, token.content);
  // The id tables cost ~40 bytes per id up to the largest: ids are bounded by the number of tokens (real
  // vocabularies number their tokens densely), so one token with id 2^24 cannot cost 600 MB.
  const int64_t token_count = int64_t(model.vocab().size() + added_tokens.size());
  const int64_t id_bound = 2 * token_count + kIdSlack;
  if (max_id >= id_bound) {
    fail("tokenizer: token '{}' has id {}, far beyond its {} tokens (ids must be below 2 x {} + {} = {})",
         excerpt(max_token, 40), max_id, token_count, token_count, kIdSlack, id_bound);
  }
  const size_t size = static_cast<size_t>(max_id + 1);
  token_by_id.assign(size, std::string());
  id_known.assign(size, 0);
  id_special.assign(size, 0);
  id_by_token.clear();
  id_by_token.reserve(model.vocab().size() + added_tokens.size());
  for (const auto& [token, id] : model.vocab()) {
    if (id_known[id]) fail("tokenizer: model.vocab gives id {} to both '{}' and '{}'", id, excerpt(token_by_id[id]), excerpt(token));
    id_known[id] = 1;
    token_by_id[id] = token;
    id_by_token.emplace(token, id);
  }
  // Added tokens take the id tokenizer.json lists; one already in the vocabulary must agree with it.
  for (const AddedToken& token : added_tokens) {
    if (const auto it = model.vocab().find(token.content); it != model.vocab().end() && it->second != token.id) {
      fail("tokenizer: added token '{}' has id {} but model.vocab gives it id {}", excerpt(token.content), token.id,
           it->second);
    }
    if (id_known[token.id] && token_by_id[token.id] != token.content) {
      fail("tokenizer: added token '{}' reuses id {} of token '{}'", excerpt(token.content), token.id,
           excerpt(token_by_id[token.id]));
    }
    if (const auto it = id_by_token.find(token.content); it != id_by_token.end() && it->second != token.id) {
      fail("tokenizer: added token '{}' is listed with ids {} and {}", excerpt(token.content), it->second, token.id);
    }
    id_known[token.id] = 1;
    token_by_id[token.id] = token.content;
    id_special[token.id] = token.special ? 1 : 0;
    id_by_token[token.content] = token.id;
  }
  // A token listed twice keeps the later entry's options.
  std::map<int32_t, AddedToken> unique;
  for (const AddedToken& token : added_tokens) unique[token.id] = token;
  std::vector<AddedToken> raw, normalized;
  std::vector<std::string> raw_patterns, normalized_patterns;
  for (const auto& [id, token] : unique) {
    if (token.normalized) {
      std::string pattern = token.content;
      if (normalizer) normalizer->normalize(pattern);
      normalized.push_back(token);
      normalized_patterns.push_back(std::move(pattern));
    } else {
      raw.push_back(token);
      raw_patterns.push_back(token.content);
    }
  }
  raw_matcher = AddedTokenMatcher(raw, raw_patterns);
  normalized_matcher = AddedTokenMatcher(normalized, normalized_patterns);
}

}  // namespace dattn::tokenizer_detail
