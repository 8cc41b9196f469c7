#include "dattn/eval/token_counter.h"

#include "dattn/model/tokenizer.h"

namespace dattn::eval {

int64_t TokenizerCounter::count(std::string_view text) const {
  return int64_t(tokenizer_->encode(text, /*add_special_tokens=*/true).size());
}

}  // namespace dattn::eval
