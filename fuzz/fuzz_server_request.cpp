// libFuzzer target: the request parser of `dattn serve` on arbitrary bytes (the whole input is the body,
// its first byte picks the endpoint). Any outcome but a request within the limits or an ApiError with a
// 4xx status is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dattn/server/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using namespace dattn::server;
  ApiLimits limits;
  limits.model_id = "tiny";
  limits.max_context = 512;
  limits.vocab_size = 100;
  const Endpoint endpoint = data[0] % 2 ? Endpoint::chat : Endpoint::completion;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const CompletionRequest r = parse_completion_request(body, endpoint, limits);
    if (r.max_tokens < 1 || r.max_tokens > limits.max_context) std::abort();
    if (endpoint == Endpoint::chat && r.messages.empty()) std::abort();
    if (r.prompt_ids) {
      for (int32_t id : *r.prompt_ids) {
        if (id < 0 || id >= limits.vocab_size) std::abort();
      }
    }
  } catch (const ApiError& e) {
    if (e.status < 400 || e.status >= 500) std::abort();
  }
  return 0;
}
