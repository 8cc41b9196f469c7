#include "pre_tokenizers.h"

#include "byte_level.h"
#include "dattn/core/error.h"
#include "normalizers.h"

namespace dattn::tokenizer_detail {
namespace {

// GPT-2's word regex, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Segment {
  size_t start, end;
  bool is_match;
};

class RegexSplitter final : public PreTokenizer {
 public:
  RegexSplitter(Regex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    for (const Piece& piece : pieces) split_piece(piece, pattern_.find_all(piece.text), behavior_, invert_, out);
    pieces = std::move(out);
  }

 private:
  Regex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) words_ = std::make_unique<RegexSplitter>(Regex(kGpt2Pattern), SplitBehavior::isolated, false);
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& piece : pieces) {
        if (piece.text.empty() || piece.text[0] != ' ') piece.text = " " + piece.text;  // not insert(): GCC 12 -Wrestrict false positive
      }
    }
    if (words_) words_->pre_tokenize(pieces);
    for (Piece& piece : pieces) piece.text = bytes_to_byte_level(piece.text);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<RegexSplitter> words_;
};

enum class PrependScheme { always, first, never };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), space_(Regex::literal(" ")) {
    if (split) splitter_ = std::make_unique<RegexSplitter>(Regex::literal(replacement_), SplitBehavior::merged_with_next, false);
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (Piece& piece : pieces) {
      piece.text = space_.replace_all(piece.text, replacement_);
      const bool starts_with_replacement = piece.text.compare(0, replacement_.size(), replacement_) == 0;
      const bool prepend = scheme_ == PrependScheme::always || (scheme_ == PrependScheme::first && piece.at_text_start);
      if (prepend && !starts_with_replacement) piece.text.insert(0, replacement_);
    }
    if (splitter_) splitter_->pre_tokenize(pieces);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  Regex space_;
  std::unique_ptr<RegexSplitter> splitter_;
};

PrependScheme parse_prepend_scheme(const Json& spec, std::string_view path) {
  // Files written before tokenizers 0.19 only have add_prefix_space.
  const std::optional<std::string> scheme = optional_string(spec, "prepend_scheme", path);
  if (!scheme) return bool_or(spec, "add_prefix_space", path, true) ? PrependScheme::always : PrependScheme::never;
  if (*scheme == "always") return PrependScheme::always;
  if (*scheme == "first") return PrependScheme::first;
  if (*scheme == "never") return PrependScheme::never;
  fail("tokenizer: {}.prepend_scheme must be always, first or never, got '{}'", path, *scheme);
}

std::unique_ptr<PreTokenizer> parse_split(const Json& spec, std::string_view path) {
  const std::string pattern_path = join_path(path, "pattern");
  Regex pattern = parse_pattern(require_field(spec, "pattern", path), pattern_path);
  return std::make_unique<RegexSplitter>(std::move(pattern), parse_split_behavior(spec, "behavior", path),
                                         bool_or(spec, "invert", path, false));
}

}  // namespace

SplitBehavior parse_split_behavior(const Json& spec, std::string_view key, std::string_view path) {
  const std::string name = require_string(spec, key, path);
  if (name == "Removed") return SplitBehavior::removed;
  if (name == "Isolated") return SplitBehavior::isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (name == "Contiguous") return SplitBehavior::contiguous;
  fail("tokenizer: {} must be Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous, got '{}'",
       join_path(path, key), name);
}

void split_piece(const Piece& piece, const std::vector<ByteRange>& matches, SplitBehavior behavior, bool invert,
                 std::vector<Piece>& out) {
  const std::string& text = piece.text;
  if (text.empty()) return;
  std::vector<Segment> segments;
  segments.reserve(matches.size() * 2 + 1);
  size_t previous = 0;
  for (const ByteRange& match : matches) {
    if (match.start != previous) segments.push_back({previous, match.start, invert});
    segments.push_back({match.start, match.end, !invert});
    previous = match.end;
  }
  if (previous != text.size()) segments.push_back({previous, text.size(), invert});

  // Each kept range is {start, end}; merging extends the last one.
  std::vector<ByteRange> kept;
  kept.reserve(segments.size());
  switch (behavior) {
    case SplitBehavior::isolated:
      for (const Segment& s : segments) kept.push_back({s.start, s.end});
      break;
    case SplitBehavior::removed:
      for (const Segment& s : segments) {
        if (!s.is_match) kept.push_back({s.start, s.end});
      }
      break;
    case SplitBehavior::merged_with_previous: {
      bool previous_match = false;
      for (const Segment& s : segments) {
        if (s.is_match && !previous_match && !kept.empty()) {
          kept.back().end = s.end;
        } else {
          kept.push_back({s.start, s.end});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::merged_with_next: {
      bool next_match = false;
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !next_match && !kept.empty()) {
          kept.back().start = it->start;
        } else {
          kept.push_back({it->start, it->end});
        }
        next_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
    case SplitBehavior::contiguous: {
      bool previous_match = false;
      for (const Segment& s : segments) {
        if (s.is_match == previous_match && !kept.empty()) {
          kept.back().end = s.end;
        } else {
          kept.push_back({s.start, s.end});
        }
        previous_match = s.is_match;
      }
      break;
    }
  }
  for (const ByteRange& range : kept) {
    if (range.end > range.start) {
      out.push_back({text.substr(range.start, range.end - range.start), piece.at_text_start && range.start == 0});
    }
  }
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Json& spec, std::string_view path, int depth) {
  if (depth > kMaxComponentDepth) fail("tokenizer: {} nests deeper than {} levels", path, kMaxComponentDepth);
  const std::string type = component_type(spec, path);
  if (type == "Sequence") {
    const Json& list = require_field(spec, "pretokenizers", path);
    const std::string list_path = join_path(path, "pretokenizers");
    require_array(list, list_path);
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      steps.push_back(parse_pre_tokenizer(list[i], list_path + "[" + std::to_string(i) + "]", depth + 1));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Split") return parse_split(spec, path);
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(bool_or(spec, "add_prefix_space", path, true),
                                                   bool_or(spec, "use_regex", path, true));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(require_single_char(spec, "replacement", path),
                                                   parse_prepend_scheme(spec, path), bool_or(spec, "split", path, true));
  }
  if (type == "Digits") {
    // Rust's char::is_numeric is the Unicode N categories.
    const bool individual = bool_or(spec, "individual_digits", path, false);
    return std::make_unique<RegexSplitter>(Regex(individual ? R"(\p{N})" : R"(\p{N}+)"), SplitBehavior::isolated, false);
  }
  if (type == "Punctuation") {
    const SplitBehavior behavior =
        spec.contains("behavior") ? parse_split_behavior(spec, "behavior", path) : SplitBehavior::isolated;
    // ASCII punctuation (which includes symbols such as $ + < = > ^ ` | ~) or Unicode P categories.
    return std::make_unique<RegexSplitter>(Regex(R"([\p{P}!-/:-@\[-`{-~])"), behavior, false);
  }
  if (type == "Whitespace") {
    return std::make_unique<RegexSplitter>(Regex(R"(\w+|[^\w\s]+)"), SplitBehavior::removed, true);
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<RegexSplitter>(Regex(R"(\s)"), SplitBehavior::removed, false);
  }
  fail("tokenizer: unsupported pre_tokenizer type '{}' at {} (supported: Sequence, Split, ByteLevel, Metaspace, "
       "Digits, Punctuation, Whitespace, WhitespaceSplit)", type, path);
}

}  // namespace dattn::tokenizer_detail
