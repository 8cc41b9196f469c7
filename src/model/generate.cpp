#include "dattn/model/generate.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>

#include "dattn/core/error.h"

namespace dattn::model {

std::vector<int32_t> merged_stop_ids(std::span<const int32_t> config_eos, std::span<const int32_t> tokenizer_eos) {
  std::vector<int32_t> ids;
  for (std::span<const int32_t> source : {config_eos, tokenizer_eos})
    for (int32_t id : source)
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}

namespace {
double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}
}  // namespace

GenerateResult generate(InferenceSession& session, std::span<const int32_t> prompt, const GenerateOptions& options) {
  DATTN_CHECK(!prompt.empty(), "the prompt has no tokens");
  DATTN_CHECK(options.max_new_tokens >= 0, "max_new_tokens must be >= 0, got {}", options.max_new_tokens);
  const int64_t room = session.context() - session.position();
  DATTN_CHECK(int64_t(prompt.size()) <= room,
              "the prompt has {} tokens but the context has room for {} (context {}, raise --ctx)", prompt.size(), room,
              session.context());
  Sampler sampler(options.sampling);
  GenerateResult result;
  result.stats.prompt_tokens = int64_t(prompt.size());

  auto start = std::chrono::steady_clock::now();
  PrefillOptions prefill_options;
  prefill_options.on_progress = options.on_prefill_progress;
  std::vector<float> logits = session.prefill(prompt, prefill_options);
  result.stats.prefill_ms = elapsed_ms(start);

  start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    const int32_t token = sampler.sample(logits);
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), token) != options.stop_ids.end()) {
      result.stats.stopped_by_stop_token = true;
      break;
    }
    result.tokens.push_back(token);
    if (options.on_token && !options.on_token(token)) break;
    if (step + 1 == options.max_new_tokens) break;  // the last token needs no forward pass
    if (session.position() >= session.context()) {
      result.stats.stopped_by_context = true;
      break;
    }
    logits = session.decode(token);
    ++result.stats.decode_steps;
  }
  result.stats.decode_ms = elapsed_ms(start);
  result.stats.generated_tokens = int64_t(result.tokens.size());
  return result;
}

uint64_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      // "VmHWM:   123456 kB"
      uint64_t kb = std::stoull(line.substr(6));
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace dattn::model
