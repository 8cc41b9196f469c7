// RULER's synthetic tasks (Hsieh et al., "RULER: What's the Real Context Size of Your Long-Context Language
// Models?"), generated in C++ after RULER's public definitions: the same templates (its "base" model
// template, answer prefix included), needle formats, depths, distractors and metrics. Word lists and
// the haystack text are the project's own (docs/EVAL.md says what differs).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dattn/eval/haystack.h"
#include "dattn/eval/token_counter.h"

namespace dattn::eval {

enum class RulerTask : uint8_t {
  niah_single_1, niah_single_2, niah_single_3,
  niah_multikey_1, niah_multikey_2, niah_multikey_3,
  niah_multivalue, niah_multiquery,
  vt, cwe, fwe,
};

std::span<const RulerTask> all_ruler_tasks();
std::string_view ruler_task_name(RulerTask task);
RulerTask parse_ruler_task(std::string_view name);  // throws dattn::Error listing the valid names
// RULER's tokens_to_generate: 128 for the needle tasks, 30 vt, 120 cwe, 50 fwe.
int64_t ruler_tokens_to_generate(RulerTask task);

struct RulerSample {
  RulerTask task = RulerTask::niah_single_1;
  int64_t index = 0;
  std::string input;                 // the whole prompt, ending with the answer prefix
  std::vector<std::string> outputs;  // the reference answers (all of them must appear: string_match_all)
  int64_t prompt_tokens = 0;         // counter.count(input)
  int64_t tokens_to_generate = 0;
  int64_t haystack_size = 0;  // the fitted size: haystack words, noise sentences, distractors or list words
};

struct RulerGeneratorOptions {
  // RULER's max_seq_length: prompt tokens + tokens_to_generate <= target_length. The fitted sample is the
  // longest that fits (binary search on the haystack size), so it falls short by at most one step of
  // the size (a word, a sentence, a distractor needle) except where a task runs out of material (cwe
  // stops at the size of its word list, as RULER does).
  int64_t target_length = 4096;
  uint64_t seed = 42;
  const Haystack* haystack = nullptr;  // nullptr: Haystack::builtin()
};

// Sample `index` of a task: a pure function of (task, index, target_length, seed, haystack, counter).
// Throws dattn::Error when even the smallest instance of the task does not fit target_length.
RulerSample generate_ruler_sample(RulerTask task, int64_t index, const RulerGeneratorOptions& options,
                                  const TokenCounter& counter);

}  // namespace dattn::eval
