#include "normalizers.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <vector>

#include "dattn/core/error.h"
#include "dattn/io/json_input.h"
#include "regex.h"
#include "utf8.h"

namespace dattn::tokenizer_detail {
namespace {

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_) step->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);  // as in `tokenizers`: empty pieces stay empty
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override { text = pattern_.replace_all(text, content_); }

 private:
  Regex pattern_;
  std::string content_;
};

class UnicodeFormNormalizer final : public Normalizer {
 public:
  UnicodeFormNormalizer(const icu::Normalizer2* form, std::string name) : form_(form), name_(std::move(name)) {}
  void normalize(std::string& text) const override {
    UErrorCode status = U_ZERO_ERROR;
    const icu::UnicodeString normalized = form_->normalize(icu::UnicodeString::fromUTF8(text), status);
    if (U_FAILURE(status)) fail("tokenizer: {} normalization failed: {}", name_, u_errorName(status));
    text.clear();
    normalized.toUTF8String(text);
  }

 private:
  const icu::Normalizer2* form_;
  std::string name_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end && is_unicode_whitespace(decode_utf8_at(text, begin))) begin += utf8_char_length(text, begin);
    }
    if (right_) {
      while (end > begin) {
        size_t last = end - 1;
        while (last > begin && (static_cast<unsigned char>(text[last]) & 0xC0) == 0x80) --last;
        if (!is_unicode_whitespace(decode_utf8_at(text, last))) break;
        end = last;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    icu::UnicodeString value = icu::UnicodeString::fromUTF8(text);
    value.toLower(icu::Locale::getRoot());
    text.clear();
    value.toUTF8String(text);
  }
};

const icu::Normalizer2* unicode_form(const std::string& type) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* form = nullptr;
  if (type == "NFC") form = icu::Normalizer2::getNFCInstance(status);
  if (type == "NFD") form = icu::Normalizer2::getNFDInstance(status);
  if (type == "NFKC") form = icu::Normalizer2::getNFKCInstance(status);
  if (type == "NFKD") form = icu::Normalizer2::getNFKDInstance(status);
  if (U_FAILURE(status) || form == nullptr) fail("tokenizer: ICU has no {} normalizer: {}", type, u_errorName(status));
  return form;
}

}  // namespace

// Replace patterns (normalizer and decoder) are {"String": s} or {"Regex": r}.
Regex parse_pattern(const Json& spec, std::string_view path) {
  require_object(spec, path);
  if (const Json* text = optional_field(spec, "String", path)) {
    if (!text->is_string()) fail("tokenizer: {}.String must be a string, got {}", path, json_type_name(*text));
    return Regex::literal(text->get<std::string>());
  }
  if (const Json* regex = optional_field(spec, "Regex", path)) {
    if (!regex->is_string()) fail("tokenizer: {}.Regex must be a string, got {}", path, json_type_name(*regex));
    return Regex(regex->get<std::string>());
  }
  fail("tokenizer: {} must have a String or Regex field, got {}", path, json_excerpt(spec));
}

std::unique_ptr<Normalizer> parse_normalizer(const Json& spec, std::string_view path, int depth) {
  if (depth > kMaxComponentDepth) fail("tokenizer: {} nests deeper than {} levels", path, kMaxComponentDepth);
  const std::string type = component_type(spec, path);
  if (type == "Sequence") {
    const Json& list = require_field(spec, "normalizers", path);
    const std::string list_path = join_path(path, "normalizers");
    require_array(list, list_path);
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      steps.push_back(parse_normalizer(list[i], list_path + "[" + std::to_string(i) + "]", depth + 1));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(require_string(spec, "prepend", path));
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(parse_pattern(require_field(spec, "pattern", path), join_path(path, "pattern")),
                                               require_string(spec, "content", path));
  }
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    return std::make_unique<UnicodeFormNormalizer>(unicode_form(type), type);
  }
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(bool_or(spec, "strip_left", path, true), bool_or(spec, "strip_right", path, true));
  }
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  fail("tokenizer: unsupported normalizer type '{}' at {} (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, "
       "NFKD, Strip, Lowercase)", type, path);
}

}  // namespace dattn::tokenizer_detail
