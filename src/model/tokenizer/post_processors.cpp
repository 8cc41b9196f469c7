#include "post_processors.h"

#include <map>
#include <string>

#include "dattn/core/error.h"
#include "dattn/io/json_input.h"
#include "normalizers.h"

namespace dattn::tokenizer_detail {
namespace {

// The single-sequence template: runs of fixed ids with the sequence ($A) between them.
class TemplateProcessor final : public PostProcessor {
 public:
  TemplateProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void add_special_tokens(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }
  std::optional<int32_t> leading_special_id() const override {
    if (before_.empty()) return std::nullopt;
    return before_.front();
  }

 private:
  std::vector<int32_t> before_, after_;
};

class NoOpProcessor final : public PostProcessor {
 public:
  void add_special_tokens(std::vector<int32_t>&) const override {}
  std::optional<int32_t> leading_special_id() const override { return std::nullopt; }
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void add_special_tokens(std::vector<int32_t>& ids) const override {
    for (const auto& step : steps_) step->add_special_tokens(ids);
  }
  std::optional<int32_t> leading_special_id() const override {
    for (const auto& step : steps_) {
      if (auto id = step->leading_special_id()) return id;
    }
    return std::nullopt;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

struct TemplatePiece {
  bool is_sequence;
  std::string name;  // "A"/"B" for sequences, the special token's key otherwise
};

// A piece is {"Sequence": {"id": "A", ...}} or {"SpecialToken": {"id": "<s>", ...}}, or the string form
// "$A", "$B:1", "<s>", "<s>:0".
TemplatePiece parse_template_piece(const Json& piece, const std::string& path) {
  if (piece.is_string()) {
    std::string text = piece.get<std::string>();
    if (const size_t colon = text.rfind(':'); colon != std::string::npos && colon > 0 &&
                                               text.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
      text.resize(colon);
    }
    if (text == "$" || text == "$A" || text == "$0") return {true, "A"};
    if (text == "$B" || text == "$1") return {true, "B"};
    if (!text.empty() && text[0] == '$') fail("tokenizer: {} = '{}' names an unknown sequence", path, text);
    return {false, text};
  }
  require_object(piece, path);
  if (const Json* sequence = optional_field(piece, "Sequence", path)) {
    return {true, require_string(*sequence, "id", path + ".Sequence")};
  }
  if (const Json* special = optional_field(piece, "SpecialToken", path)) {
    return {false, require_string(*special, "id", path + ".SpecialToken")};
  }
  fail("tokenizer: {} must be a Sequence or SpecialToken piece, got {}", path, json_excerpt(piece));
}

std::unique_ptr<PostProcessor> parse_template(const Json& spec, std::string_view path,
                                              const std::function<bool(int32_t)>& has_id) {
  std::map<std::string, std::vector<int32_t>> special_ids;
  if (const Json* specials = optional_field(spec, "special_tokens", path)) {
    const std::string specials_path = join_path(path, "special_tokens");
    require_object(*specials, specials_path);
    for (const auto& [key, value] : specials->items()) {
      const std::string entry_path = specials_path + "[\"" + key + "\"]";
      const Json& ids = require_field(value, "ids", entry_path);
      require_array(ids, entry_path + ".ids");
      std::vector<int32_t>& out = special_ids[require_string(value, "id", entry_path)];
      for (size_t i = 0; i < ids.size(); ++i) {
        const int32_t id = as_token_id(ids[i], entry_path + ".ids[" + std::to_string(i) + "]");
        if (!has_id(id)) fail("tokenizer: {}.ids[{}] = {} is not a token of this tokenizer", entry_path, i, id);
        out.push_back(id);
      }
    }
  }
  const std::string single_path = join_path(path, "single");
  const Json& single = require_field(spec, "single", path);
  std::vector<Json> pieces;
  if (single.is_string()) {
    // "<s> $A" form: pieces separated by spaces.
    const std::string text = single.get<std::string>();
    for (size_t pos = 0; pos < text.size();) {
      const size_t space = text.find(' ', pos);
      const size_t end = space == std::string::npos ? text.size() : space;
      if (end > pos) pieces.emplace_back(text.substr(pos, end - pos));
      pos = end + 1;
    }
  } else {
    require_array(single, single_path);
    pieces.assign(single.begin(), single.end());
  }
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const std::string piece_path = single_path + "[" + std::to_string(i) + "]";
    const TemplatePiece piece = parse_template_piece(pieces[i], piece_path);
    if (piece.is_sequence) {
      if (piece.name != "A") fail("tokenizer: {} uses sequence ${} in the single-sequence template", piece_path, piece.name);
      if (seen_sequence) fail("tokenizer: {} repeats $A", piece_path);
      seen_sequence = true;
      continue;
    }
    const auto it = special_ids.find(piece.name);
    if (it == special_ids.end()) fail("tokenizer: {} names special token '{}', missing from special_tokens", piece_path, piece.name);
    std::vector<int32_t>& target = seen_sequence ? after : before;
    target.insert(target.end(), it->second.begin(), it->second.end());
  }
  if (!seen_sequence) fail("tokenizer: {} has no $A sequence", single_path);
  return std::make_unique<TemplateProcessor>(std::move(before), std::move(after));
}

// RobertaProcessing and BertProcessing: "cls": [token, id], "sep": [token, id]; cls $A sep.
std::unique_ptr<PostProcessor> parse_cls_sep(const Json& spec, std::string_view path,
                                             const std::function<bool(int32_t)>& has_id) {
  const auto id_of = [&](const char* key) {
    const std::string field_path = join_path(path, key);
    const Json& pair = require_field(spec, key, path);
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string()) {
      fail("tokenizer: {} must be [token, id], got {}", field_path, json_excerpt(pair));
    }
    const int32_t id = as_token_id(pair[1], field_path + "[1]");
    if (!has_id(id)) fail("tokenizer: {} id {} is not a token of this tokenizer", field_path, id);
    return id;
  };
  return std::make_unique<TemplateProcessor>(std::vector<int32_t>{id_of("cls")}, std::vector<int32_t>{id_of("sep")});
}

}  // namespace

std::unique_ptr<PostProcessor> parse_post_processor(const Json& spec, std::string_view path,
                                                    const std::function<bool(int32_t)>& has_id, int depth) {
  if (depth > kMaxComponentDepth) fail("tokenizer: {} nests deeper than {} levels", path, kMaxComponentDepth);
  const std::string type = component_type(spec, path);
  if (type == "TemplateProcessing") return parse_template(spec, path, has_id);
  if (type == "ByteLevel") return std::make_unique<NoOpProcessor>();  // only adjusts offsets
  if (type == "RobertaProcessing" || type == "BertProcessing") return parse_cls_sep(spec, path, has_id);
  if (type == "Sequence") {
    const Json& list = require_field(spec, "processors", path);
    const std::string list_path = join_path(path, "processors");
    require_array(list, list_path);
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      steps.push_back(parse_post_processor(list[i], list_path + "[" + std::to_string(i) + "]", has_id, depth + 1));
    }
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  fail("tokenizer: unsupported post_processor type '{}' at {} (supported: TemplateProcessing, ByteLevel, "
       "RobertaProcessing, BertProcessing, Sequence)", type, path);
}

}  // namespace dattn::tokenizer_detail
