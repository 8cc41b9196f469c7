// Variable tracking, after RULER's scripts/data/synthetic/variable_tracking.py: a chain
// "VAR A = 12345", "VAR B = VAR A ", ... hidden between copies of a noise paragraph; the answer is every
// variable of the chain. A smaller solved example (three-letter names, fitted to 500 tokens) comes first.
#include <algorithm>

#include "dattn/core/error.h"
#include "dattn/eval/rng.h"
#include "ruler_builders.h"

namespace dattn::eval::detail {

namespace {

constexpr std::string_view kNoise =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.\n";
constexpr std::string_view kTemplate =
    "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\n"
    "Question: Find all variables that are assigned the value {query} in the text above.";
constexpr std::string_view kAnswerPrefix =
    " Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are "
    "assgined the value {query}, they are: ";

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// The template RULER uses for its few-shot example: whitespace collapsed and the last word before the
// answer prefix dropped (meant to remove a chat tag; with the base template it drops "above.").
std::string icl_template() {
  std::vector<std::string> words;
  const std::string_view t = kTemplate;
  for (size_t i = 0; i < t.size();) {
    while (i < t.size() && (t[i] == ' ' || t[i] == '\n')) ++i;
    const size_t b = i;
    while (i < t.size() && t[i] != ' ' && t[i] != '\n') ++i;
    if (i > b) words.emplace_back(t.substr(b, i - b));
  }
  words.pop_back();
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? " " : "") + words[i];
  return out + std::string(kAnswerPrefix);
}

struct Chain {
  std::vector<std::string> vars;
  std::vector<std::string> statements;
};

std::vector<Chain> make_chains(DeterministicRng& rng, int64_t num_chains, int64_t num_hops, int64_t name_length) {
  auto random_name = [&] {
    std::string name;
    for (int64_t i = 0; i < name_length; ++i) name.push_back(char('A' + rng.below(26)));
    return name;
  };
  std::vector<std::string> names;
  const size_t needed = size_t(num_chains * (num_hops + 1));
  while (names.size() < needed) {  // distinct names
    std::string n = random_name();
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(std::move(n));
  }
  std::vector<Chain> chains;
  for (int64_t c = 0; c < num_chains; ++c) {
    Chain chain;
    chain.vars.assign(names.begin() + c * (num_hops + 1), names.begin() + (c + 1) * (num_hops + 1));
    chain.statements.push_back("VAR " + chain.vars[0] + " = " + std::to_string(rng.between(10000, 99998)));
    for (int64_t j = 0; j < num_hops; ++j)
      chain.statements.push_back("VAR " + chain.vars[size_t(j + 1)] + " = VAR " + chain.vars[size_t(j)] + " ");
    chains.push_back(std::move(chain));
  }
  return chains;
}

BuiltSample build_vt(uint64_t seed, int64_t num_noises, int64_t num_chains, int64_t num_hops, bool is_icl) {
  DeterministicRng rng(seed);
  const int64_t hops = is_icl ? std::min<int64_t>(10, num_hops) : num_hops;
  auto chains = make_chains(rng, num_chains, hops, is_icl ? 3 : 5);
  std::vector<std::string> sentences(static_cast<size_t>(num_noises), std::string(kNoise));
  if (sentences.size() <= chains[0].statements.size()) {
    // RULER: too few noise paragraphs to separate the statements, so split them into sentences
    std::vector<std::string> split;
    for (const std::string& s : sentences) {
      size_t b = 0;
      for (size_t dot = s.find('.'); ; dot = s.find('.', b)) {
        std::string piece = s.substr(b, dot == std::string::npos ? std::string::npos : dot - b);
        const bool blank = piece.find_first_not_of(" \t\n") == std::string::npos;
        split.push_back(blank ? piece : piece + ".");
        if (dot == std::string::npos) break;
        b = dot + 1;
      }
    }
    sentences = std::move(split);
    for (Chain& c : chains)
      if (c.statements.size() >= sentences.size()) c.statements.resize(sentences.size() - 1);
  }
  for (const Chain& chain : chains) {
    auto positions = rng.sample_indices(int64_t(sentences.size()), int64_t(chain.statements.size()));
    std::sort(positions.begin(), positions.end());
    for (size_t j = 0; j < positions.size(); ++j)
      sentences.insert(sentences.begin() + positions[j] + int64_t(j), chain.statements[j]);
  }
  std::string context;
  for (size_t i = 0; i < sentences.size(); ++i) context += (i ? " " : "") + sentences[i];
  context = replace_all(context, ". \n", ".\n");

  const std::string value = chains[0].statements[0].substr(chains[0].statements[0].rfind('=') + 2);
  std::string templ = is_icl ? icl_template() : std::string(kTemplate) + std::string(kAnswerPrefix);
  templ = replace_all(templ, "{query}", value);
  templ = replace_all(templ, "{num_v}", std::to_string(hops + 1));
  const size_t at = templ.find("{context}");
  BuiltSample sample;
  sample.input = templ.replace(at, 9, context);
  sample.outputs = chains[0].vars;
  return sample;
}

}  // namespace

SizedTask vt_task(uint64_t seed, int64_t num_chains, int64_t num_hops, const TokenCounter& counter) {
  // The solved example: RULER fits it to max_seq_length 500 with 30 tokens to generate.
  SizedTask example_task;
  example_task.min_size = 1;
  const uint64_t example_seed = mix_seed({seed, 0x1C1ull});
  example_task.build = [=](int64_t size) { return build_vt(example_seed, size, num_chains, num_hops, true); };
  std::string example;
  try {
    const FittedSample fitted = fit_to_budget(example_task, counter, 500 - 30, "vt example");
    example = fitted.sample.input + " ";
    for (size_t i = 0; i < fitted.sample.outputs.size(); ++i) example += (i ? " " : "") + fitted.sample.outputs[i];
  } catch (const Error&) {  // a tokenizer with very long tokens counts: keep the smallest example
    BuiltSample smallest = example_task.build(1);
    example = smallest.input + " ";
    for (size_t i = 0; i < smallest.outputs.size(); ++i) example += (i ? " " : "") + smallest.outputs[i];
  }
  SizedTask task;
  task.min_size = 1;
  task.build = [=](int64_t size) {
    BuiltSample sample = build_vt(seed, size, num_chains, num_hops, false);
    sample.input = " " + example + "\n\n" + "\n\n" + sample.input;  // as RULER prepends the example
    return sample;
  };
  return task;
}

}  // namespace dattn::eval::detail
