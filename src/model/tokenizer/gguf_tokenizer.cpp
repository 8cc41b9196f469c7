// A Tokenizer from a GGUF file's tokenizer.ggml.* metadata. The metadata is turned into the tokenizer.json
// and tokenizer_config.json that describe the same tokenizer, so the one BPE implementation serves both:
//  - "gpt2": byte-level BPE (vocab + merges) with the pre-tokenizer regexes llama.cpp names by
//    tokenizer.ggml.pre (llama-vocab.cpp);
//  - "llama": SentencePiece vocabularies (scores, <0xXX> byte fallback); a pair merges when the joined
//    piece is in the vocabulary, earlier the higher that piece's score, as llama.cpp's SPM tokenizer does.
#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/io/gguf.h"
#include "dattn/model/tokenizer.h"
#include "gguf_tokenizer.h"

namespace dattn::tokenizer_detail {
namespace {

using nlohmann::json;

enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

json split(std::string_view regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
}
json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

// llama.cpp's pre-tokenizer types as tokenizers pipelines (the same splits, written as the Hugging Face
// tokenizer.json of those models writes them).
json byte_level_pre_tokenizer(std::string_view pre) {
  constexpr std::string_view kLlama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  constexpr std::string_view kQwen2 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  constexpr std::string_view kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "smaug-bpe")
    return {{"type", "Sequence"}, {"pretokenizers", {split(kLlama3), byte_level(false)}}};
  if (pre == "qwen2" || pre == "deepseek-r1-qwen")
    return {{"type", "Sequence"}, {"pretokenizers", {split(kQwen2), byte_level(false)}}};
  if (pre == "smollm" || pre == "starcoder" || pre == "refact")
    return {{"type", "Sequence"},
            {"pretokenizers", {split(R"(\p{N})"), split(kGpt2), byte_level(false)}}};
  if (pre == "gpt-2" || pre == "gpt2") return {{"type", "Sequence"}, {"pretokenizers", {split(kGpt2), byte_level(false)}}};
  if (pre == "default")
    return {{"type", "Sequence"},
            {"pretokenizers",
             {split(R"([\p{P}\$\+<=>\^~\|]+)"), split(kGpt2), split(R"(\p{N}+)"), split("[0-9][0-9][0-9]"),
              byte_level(false)}}};
  fail("tokenizer.ggml.pre '{}' is not supported (default, llama-bpe, qwen2, smollm, gpt-2, starcoder)", pre);
}

json template_processor(std::optional<std::string> bos, int64_t bos_id, std::optional<std::string> eos, int64_t eos_id) {
  json single = json::array(), special = json::object();
  if (bos) {
    single.push_back({{"SpecialToken", {{"id", *bos}, {"type_id", 0}}}});
    special[*bos] = {{"id", *bos}, {"ids", {bos_id}}, {"tokens", {*bos}}};
  }
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (eos) {
    single.push_back({{"SpecialToken", {{"id", *eos}, {"type_id", 0}}}});
    special[*eos] = {{"id", *eos}, {"ids", {eos_id}}, {"tokens", {*eos}}};
  }
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", special}};
}

// Merges of a SentencePiece vocabulary: every split of a normal piece into two pieces of the vocabulary,
// ranked by the joined piece's score (higher first), then by its id.
json spm_merges(const std::vector<std::string_view>& tokens, const std::vector<float>& scores,
                const std::vector<int64_t>& types, const std::map<std::string_view, int64_t>& ids) {
  struct Merge {
    float score;
    int64_t id;
    size_t cut;
  };
  std::vector<Merge> merges;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (types[id] != kNormal && types[id] != kUserDefined) continue;
    const std::string_view piece = tokens[id];
    for (size_t cut = 1; cut < piece.size(); ++cut) {
      if ((uint8_t(piece[cut]) & 0xC0) == 0x80) continue;  // inside a UTF-8 character
      if (ids.count(piece.substr(0, cut)) && ids.count(piece.substr(cut)))
        merges.push_back({scores[id], int64_t(id), cut});
    }
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score != b.score ? a.score > b.score : a.id < b.id; });
  json out = json::array();
  for (const Merge& m : merges) {
    const std::string_view piece = tokens[size_t(m.id)];
    out.push_back(json::array({std::string(piece.substr(0, m.cut)), std::string(piece.substr(m.cut))}));
  }
  return out;
}

}  // namespace

GgufTokenizerFiles gguf_tokenizer_files(const io::GgufHeader& h) {
  auto str = [&](std::string_view key) { return std::string(h.at(key).as_string(key)); };
  auto optional_id = [&](std::string_view key) -> std::optional<int64_t> {
    const io::GgufValue* v = h.find(key);
    if (!v) return std::nullopt;
    return v->as_int(key);
  };
  auto flag = [&](std::string_view key, bool fallback) {
    const io::GgufValue* v = h.find(key);
    return v ? v->as_bool(key) : fallback;
  };
  const std::string model = str("tokenizer.ggml.model");
  const std::vector<std::string_view> tokens = h.at("tokenizer.ggml.tokens").as_strings("tokenizer.ggml.tokens");
  std::vector<int64_t> types(tokens.size(), kNormal);
  if (const io::GgufValue* t = h.find("tokenizer.ggml.token_type")) types = t->as_ints("tokenizer.ggml.token_type");
  DATTN_CHECK(types.size() == tokens.size(), "tokenizer.ggml.token_type has {} entries for {} tokens", types.size(),
              tokens.size());

  auto token_at = [&](std::string_view key) -> std::optional<std::string> {
    const std::optional<int64_t> id = optional_id(key);
    if (!id) return std::nullopt;
    DATTN_CHECK(*id >= 0 && uint64_t(*id) < tokens.size(), "{} {} is not a token id (vocabulary of {})", key, *id,
                tokens.size());
    return std::string(tokens[size_t(*id)]);
  };

  // Every string once (the first id wins, as a JSON vocabulary would keep one), control and user-defined
  // tokens also as added tokens so they are matched whole in the text.
  json vocab = json::object(), added = json::array();
  std::map<std::string_view, int64_t> ids;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (!ids.emplace(tokens[id], int64_t(id)).second) continue;
    vocab[std::string(tokens[id])] = id;
    if (types[id] == kControl || types[id] == kUserDefined || types[id] == kUnknown)
      added.push_back({{"id", id}, {"content", std::string(tokens[id])}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", types[id] != kUserDefined}});
  }

  json tok;
  tok["version"] = "1.0";
  tok["added_tokens"] = added;
  const std::optional<std::string> bos = token_at("tokenizer.ggml.bos_token_id");
  const std::optional<std::string> eos = token_at("tokenizer.ggml.eos_token_id");
  if (model == "gpt2") {
    const std::vector<std::string_view> merges = h.at("tokenizer.ggml.merges").as_strings("tokenizer.ggml.merges");
    json merge_list = json::array();
    for (std::string_view m : merges) merge_list.push_back(std::string(m));
    tok["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}, {"byte_fallback", false},
                    {"fuse_unk", false}, {"ignore_merges", false}};
    const io::GgufValue* pre = h.find("tokenizer.ggml.pre");
    tok["pre_tokenizer"] = byte_level_pre_tokenizer(pre ? pre->as_string("tokenizer.ggml.pre") : "default");
    tok["decoder"] = byte_level(true);
    // Qwen2's released tokenizer composes text to NFC first (llama.cpp does not; transformers does)
    const bool qwen2 = pre && pre->as_string("tokenizer.ggml.pre") == "qwen2";
    tok["normalizer"] = qwen2 ? json{{"type", "NFC"}} : json(nullptr);
  } else if (model == "llama") {
    std::vector<float> scores(tokens.size(), 0.0f);
    if (const io::GgufValue* s = h.find("tokenizer.ggml.scores")) scores = s->as_floats("tokenizer.ggml.scores");
    DATTN_CHECK(scores.size() == tokens.size(), "tokenizer.ggml.scores has {} entries for {} tokens", scores.size(),
                tokens.size());
    json m = {{"type", "BPE"}, {"vocab", vocab}, {"merges", spm_merges(tokens, scores, types, ids)},
              {"byte_fallback", true}, {"fuse_unk", true}, {"ignore_merges", false}};
    if (const std::optional<std::string> unk = token_at("tokenizer.ggml.unknown_token_id")) m["unk_token"] = *unk;
    tok["model"] = m;
    json replace_space = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}};
    tok["normalizer"] = flag("tokenizer.ggml.add_space_prefix", true)
                            ? json{{"type", "Sequence"},
                                   {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}}, replace_space}}}
                            : replace_space;
    tok["pre_tokenizer"] = nullptr;
    json decoders = {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                     {{"type", "ByteFallback"}},
                     {{"type", "Fuse"}}};
    if (flag("tokenizer.ggml.add_space_prefix", true))
      decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    tok["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  } else {
    fail("tokenizer.ggml.model '{}' is not supported (gpt2, llama)", model);
  }
  // llama.cpp adds BOS unless told otherwise for SentencePiece vocabularies, not for byte-level ones
  const bool add_bos = flag("tokenizer.ggml.add_bos_token", model == "llama") && bos;
  const bool add_eos = flag("tokenizer.ggml.add_eos_token", false) && eos;
  tok["post_processor"] =
      add_bos || add_eos ? template_processor(add_bos ? bos : std::nullopt, optional_id("tokenizer.ggml.bos_token_id").value_or(0),
                                              add_eos ? eos : std::nullopt, optional_id("tokenizer.ggml.eos_token_id").value_or(0))
                         : json(nullptr);

  json config = json::object();
  config["bos_token"] = bos ? json(*bos) : json(nullptr);
  if (eos) config["eos_token"] = *eos;
  if (const io::GgufValue* t = h.find("tokenizer.chat_template")) config["chat_template"] = t->as_string("tokenizer.chat_template");
  json generation = json::object();
  if (const std::optional<int64_t> eot = optional_id("tokenizer.ggml.eot_token_id")) generation["eos_token_id"] = {*eot};
  return {tok.dump(), config.dump(), generation.dump()};
}

}  // namespace dattn::tokenizer_detail
