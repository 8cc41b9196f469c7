// Decoders of tokenizer.json: turn token strings back into text.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "json_fields.h"

namespace dattn::tokenizer_detail {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // One step of `tokenizers`' decode_chain: token strings in, token strings out (bytes may be invalid
  // UTF-8 until the last step; the caller repairs the joined result).
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  // What one token contributes in the middle of a text, as raw bytes (no start-of-text stripping).
  virtual void to_piece(std::string& token) const = 0;
  // Whether the text of this token, at the end of a sequence, may still change when more tokens follow
  // (ByteFallback decodes a whole run of byte tokens at once, all U+FFFD if the run is invalid).
  virtual bool pending_at_end(const std::string&) const { return false; }
};

// Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace; others throw naming the type.
std::unique_ptr<Decoder> parse_decoder(const Json& spec, std::string_view path, int depth = 0);

}  // namespace dattn::tokenizer_detail
