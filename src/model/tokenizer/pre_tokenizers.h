// Pre-tokenizers of tokenizer.json: split normalized text pieces into the words BPE runs on.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "json_fields.h"
#include "regex.h"

namespace dattn::tokenizer_detail {

struct Piece {
  std::string text;
  // Whether the piece starts at offset 0 of the original text (Metaspace's prepend_scheme "first").
  bool at_text_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces pieces by their splits; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

SplitBehavior parse_split_behavior(const Json& spec, std::string_view key, std::string_view path);
// Splits `piece` around `matches` (sorted, non-overlapping byte ranges of piece.text) the way
// NormalizedString::split does, appending the non-empty results to `out`.
void split_piece(const Piece& piece, const std::vector<ByteRange>& matches, SplitBehavior behavior, bool invert,
                 std::vector<Piece>& out);

// Sequence, Split, ByteLevel, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit; others throw.
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Json& spec, std::string_view path, int depth = 0);

}  // namespace dattn::tokenizer_detail
