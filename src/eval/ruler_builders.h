// Internal: each RULER task as a function from its size parameter to a prompt, and the length fitting.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dattn/eval/haystack.h"
#include "dattn/eval/token_counter.h"

namespace dattn::eval::detail {

struct BuiltSample {
  std::string input;
  std::vector<std::string> outputs;
};

// A task instance whose text grows with `size`; build(size) reseeds its generator, so the needles, keys
// and answers are the same at every size and only the amount of distractor text changes.
struct SizedTask {
  int64_t min_size = 0;
  int64_t max_size = INT64_MAX;
  std::function<BuiltSample(int64_t size)> build;
};

enum class NeedleType { numbers, words, uuids };
enum class HaystackType { essay, repeat, needle };

struct NiahConfig {
  HaystackType haystack = HaystackType::essay;
  NeedleType key_type = NeedleType::words;
  NeedleType value_type = NeedleType::numbers;
  int64_t num_keys = 1, num_values = 1, num_queries = 1;
};

SizedTask niah_task(const NiahConfig& config, uint64_t seed, const Haystack& haystack);
// The few-shot example is fitted to 500 tokens with `counter`, as RULER does.
SizedTask vt_task(uint64_t seed, int64_t num_chains, int64_t num_hops, const TokenCounter& counter);
SizedTask cwe_task(uint64_t seed, int64_t target_length);
SizedTask fwe_task(uint64_t seed, int64_t target_length);

struct FittedSample {
  BuiltSample sample;
  int64_t size = 0;
  int64_t tokens = 0;
};
// The largest size in [min_size, max_size] whose prompt has at most `budget` tokens (interpolation
// search with bisection steps; only verified sizes are returned). Throws when min_size does not fit.
FittedSample fit_to_budget(const SizedTask& task, const TokenCounter& counter, int64_t budget, const char* task_name);

// RULER's word sources (its wonderwords lists are replaced by data/words/*.txt).
const std::vector<std::string>& noun_words();
const std::vector<std::string>& adjective_words();
// sorted(set(nouns + adjectives + verbs))
const std::vector<std::string>& common_words();

}  // namespace dattn::eval::detail
