#include "decoders.h"

#include <optional>

#include "byte_level.h"
#include "dattn/core/error.h"
#include "normalizers.h"
#include "utf8.h"

namespace dattn::tokenizer_detail {
namespace {

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }
  void to_piece(std::string& token) const override {
    for (const auto& step : steps_) step->to_piece(token);
  }
  bool pending_at_end(const std::string& token) const override {
    for (const auto& step : steps_) {
      if (step->pending_at_end(token)) return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

class ByteLevelDecoder final : public Decoder {
 public:
  // All tokens become one byte string; invalid UTF-8 is replaced once, over the whole text.
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (std::string& token : tokens) {
      to_piece(token);
      bytes += token;
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
  // A token made only of mapped characters becomes their bytes; any other token stays as it is.
  void to_piece(std::string& token) const override {
    if (find_invalid_utf8(token)) return;
    std::string bytes;
    for (size_t pos = 0; pos < token.size(); pos += utf8_char_length(token, pos)) {
      const std::optional<uint8_t> byte = char_to_byte(decode_utf8_at(token, pos));
      if (!byte) return;
      bytes += static_cast<char>(*byte);
    }
    token = std::move(bytes);
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) to_piece(token);
  }
  void to_piece(std::string& token) const override {
    if (!find_invalid_utf8(token)) token = pattern_.replace_all(token, content_);
  }

 private:
  Regex pattern_;
  std::string content_;
};

std::optional<uint8_t> byte_token_value(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return std::nullopt;
  uint8_t value = 0;
  for (const char c : token.substr(3, 2)) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return std::nullopt;
    value = static_cast<uint8_t>(value * 16 + digit);
  }
  return value;
}

class ByteFallbackDecoder final : public Decoder {
 public:
  // Runs of <0xXX> tokens become their text when valid UTF-8, else one U+FFFD per byte.
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    size_t pending_count = 0;
    const auto flush = [&] {
      if (pending_count == 0) return;
      if (!find_invalid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending_count; ++i) out.emplace_back(kReplacementChar);
      }
      pending.clear();
      pending_count = 0;
    };
    for (std::string& token : tokens) {
      if (const std::optional<uint8_t> byte = byte_token_value(token)) {
        pending += static_cast<char>(*byte);
        ++pending_count;
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }
  void to_piece(std::string& token) const override {
    if (const std::optional<uint8_t> byte = byte_token_value(token)) token.assign(1, static_cast<char>(*byte));
  }
  bool pending_at_end(const std::string& token) const override { return byte_token_value(token).has_value(); }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
  void to_piece(std::string&) const override {}
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  // Removes up to start_ leading and stop_ trailing copies of the character from every token.
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      if (find_invalid_utf8(token)) continue;
      size_t begin = 0, end = token.size();
      for (size_t i = 0; i < start_ && token.compare(begin, content_.size(), content_) == 0 && begin < end; ++i) {
        begin += content_.size();
      }
      for (size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                         token.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i) {
        end -= content_.size();
      }
      token = token.substr(begin, end - begin);
    }
  }
  void to_piece(std::string&) const override {}  // strips only at the ends of the whole text

 private:
  std::string content_;
  size_t start_, stop_;
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first) : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  // The replacement becomes a space, except in the first token, where it is dropped (the prefix space).
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) replace(tokens[i], i == 0 && strip_first_ ? "" : " ");
  }
  void to_piece(std::string& token) const override { replace(token, " "); }

 private:
  void replace(std::string& token, std::string_view with) const {
    std::string out;
    for (size_t pos = 0; pos < token.size();) {
      if (token.compare(pos, replacement_.size(), replacement_) == 0) {
        out += with;
        pos += replacement_.size();
      } else {
        out += token[pos++];
      }
    }
    token = std::move(out);
  }
  std::string replacement_;
  bool strip_first_;
};

size_t non_negative(const Json& spec, std::string_view key, std::string_view path) {
  const int64_t value = int_or(spec, key, path, 0);
  if (value < 0 || value > 1'000'000) fail("tokenizer: {} = {} must be in [0, 1000000]", join_path(path, key), value);
  return static_cast<size_t>(value);
}

}  // namespace

std::unique_ptr<Decoder> parse_decoder(const Json& spec, std::string_view path, int depth) {
  if (depth > kMaxComponentDepth) fail("tokenizer: {} nests deeper than {} levels", path, kMaxComponentDepth);
  const std::string type = component_type(spec, path);
  if (type == "Sequence") {
    const Json& list = require_field(spec, "decoders", path);
    const std::string list_path = join_path(path, "decoders");
    require_array(list, list_path);
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      steps.push_back(parse_decoder(list[i], list_path + "[" + std::to_string(i) + "]", depth + 1));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(parse_pattern(require_field(spec, "pattern", path), join_path(path, "pattern")),
                                            require_string(spec, "content", path));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(require_single_char(spec, "content", path), non_negative(spec, "start", path),
                                          non_negative(spec, "stop", path));
  }
  if (type == "Metaspace") {
    const std::optional<std::string> scheme = optional_string(spec, "prepend_scheme", path);
    bool strip_first = scheme ? *scheme != "never" : bool_or(spec, "add_prefix_space", path, true);
    if (scheme && *scheme != "always" && *scheme != "first" && *scheme != "never") {
      fail("tokenizer: {}.prepend_scheme must be always, first or never, got '{}'", path, *scheme);
    }
    return std::make_unique<MetaspaceDecoder>(require_single_char(spec, "replacement", path), strip_first);
  }
  fail("tokenizer: unsupported decoder type '{}' at {} (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, "
       "Strip, Metaspace)", type, path);
}

}  // namespace dattn::tokenizer_detail
