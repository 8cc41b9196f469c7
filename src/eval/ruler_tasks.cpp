#include "dattn/eval/ruler_tasks.h"

#include <array>

#include <fmt/format.h>

#include "dattn/core/error.h"
#include "dattn/eval/rng.h"
#include "ruler_builders.h"

namespace dattn::eval {

namespace {

struct TaskInfo {
  RulerTask task;
  std::string_view name;
};
constexpr std::array<TaskInfo, 11> kTasks{{
    {RulerTask::niah_single_1, "niah_single_1"},
    {RulerTask::niah_single_2, "niah_single_2"},
    {RulerTask::niah_single_3, "niah_single_3"},
    {RulerTask::niah_multikey_1, "niah_multikey_1"},
    {RulerTask::niah_multikey_2, "niah_multikey_2"},
    {RulerTask::niah_multikey_3, "niah_multikey_3"},
    {RulerTask::niah_multivalue, "niah_multivalue"},
    {RulerTask::niah_multiquery, "niah_multiquery"},
    {RulerTask::vt, "vt"},
    {RulerTask::cwe, "cwe"},
    {RulerTask::fwe, "fwe"},
}};

// RULER's synthetic.yaml.
detail::NiahConfig niah_config(RulerTask task) {
  using detail::HaystackType;
  using detail::NeedleType;
  detail::NiahConfig c;
  switch (task) {
    case RulerTask::niah_single_1: c.haystack = HaystackType::repeat; break;
    case RulerTask::niah_single_2: break;
    case RulerTask::niah_single_3: c.value_type = NeedleType::uuids; break;
    case RulerTask::niah_multikey_1: c.num_keys = 4; break;
    case RulerTask::niah_multikey_2: c.haystack = HaystackType::needle; break;
    case RulerTask::niah_multikey_3:
      c.haystack = HaystackType::needle;
      c.key_type = c.value_type = NeedleType::uuids;
      break;
    case RulerTask::niah_multivalue: c.num_values = 4; break;
    case RulerTask::niah_multiquery: c.num_queries = 4; break;
    default: fail("{} is not a needle task", ruler_task_name(task));
  }
  return c;
}

}  // namespace

std::span<const RulerTask> all_ruler_tasks() {
  static const std::array<RulerTask, kTasks.size()> tasks = [] {
    std::array<RulerTask, kTasks.size()> t{};
    for (size_t i = 0; i < kTasks.size(); ++i) t[i] = kTasks[i].task;
    return t;
  }();
  return tasks;
}

std::string_view ruler_task_name(RulerTask task) {
  for (const TaskInfo& t : kTasks)
    if (t.task == task) return t.name;
  return "?";
}

RulerTask parse_ruler_task(std::string_view name) {
  for (const TaskInfo& t : kTasks)
    if (t.name == name) return t.task;
  std::string valid;
  for (const TaskInfo& t : kTasks) valid += (valid.empty() ? "" : ", ") + std::string(t.name);
  fail("unknown RULER task '{}' (valid: {})", name, valid);
}

int64_t ruler_tokens_to_generate(RulerTask task) {
  switch (task) {
    case RulerTask::vt: return 30;
    case RulerTask::cwe: return 120;
    case RulerTask::fwe: return 50;
    default: return 128;
  }
}

namespace detail {

FittedSample fit_to_budget(const SizedTask& task, const TokenCounter& counter, int64_t budget, const char* task_name) {
  auto measure = [&](int64_t size) {
    FittedSample f;
    f.size = size;
    f.sample = task.build(size);
    f.tokens = counter.count(f.sample.input);
    return f;
  };
  FittedSample best = measure(task.min_size);
  DATTN_CHECK(best.tokens <= budget,
              "{}: the smallest sample has {} tokens, more than the {} the target length leaves for the prompt",
              task_name, best.tokens, budget);
  // Bracket [lo fits, hi does not]; grow hi from the token rate seen so far, then narrow it by
  // interpolation, every other step by bisection so that a bad estimate cannot stall the search.
  int64_t hi = -1, hi_tokens = 0;
  for (int step = 0;; ++step) {
    const int64_t lo = best.size;
    if (lo >= task.max_size || (hi >= 0 && hi - lo <= 1)) break;
    int64_t guess;
    if (hi < 0) {
      const double rate = best.size > 0 ? double(best.tokens) / double(best.size) : 1.0;
      guess = lo + std::max<int64_t>(1, int64_t(double(budget - best.tokens) / std::max(rate, 1e-3)));
      guess = std::max(guess, lo + 1);
      if (step > 3) guess = std::max(guess, lo * 2);  // the rate keeps underestimating: grow geometrically
      guess = std::min(guess, task.max_size);
    } else if (step % 2 == 0 && hi_tokens > best.tokens) {
      guess = lo + int64_t(double(hi - lo) * double(budget - best.tokens) / double(hi_tokens - best.tokens));
      guess = std::clamp(guess, lo + 1, hi - 1);
    } else {
      guess = lo + (hi - lo) / 2;
    }
    FittedSample f = measure(guess);
    if (f.tokens <= budget) {
      best = std::move(f);
    } else {
      hi = guess;
      hi_tokens = f.tokens;
    }
  }
  return best;
}

}  // namespace detail

RulerSample generate_ruler_sample(RulerTask task, int64_t index, const RulerGeneratorOptions& options,
                                  const TokenCounter& counter) {
  DATTN_CHECK(index >= 0, "sample index must be >= 0, got {}", index);
  const Haystack& haystack = options.haystack ? *options.haystack : Haystack::builtin();
  const uint64_t seed = mix_seed({options.seed, uint64_t(task), uint64_t(index), uint64_t(options.target_length)});
  detail::SizedTask sized;
  switch (task) {
    case RulerTask::vt: sized = detail::vt_task(seed, 1, 4, counter); break;
    case RulerTask::cwe: sized = detail::cwe_task(seed, options.target_length); break;
    case RulerTask::fwe: sized = detail::fwe_task(seed, options.target_length); break;
    default: sized = detail::niah_task(niah_config(task), seed, haystack); break;
  }
  const int64_t to_generate = ruler_tokens_to_generate(task);
  const std::string name(ruler_task_name(task));
  detail::FittedSample fitted =
      detail::fit_to_budget(sized, counter, options.target_length - to_generate, name.c_str());
  RulerSample sample;
  sample.task = task;
  sample.index = index;
  sample.input = std::move(fitted.sample.input);
  sample.outputs = std::move(fitted.sample.outputs);
  sample.prompt_tokens = fitted.tokens;
  sample.tokens_to_generate = to_generate;
  sample.haystack_size = fitted.size;
  return sample;
}

}  // namespace dattn::eval
