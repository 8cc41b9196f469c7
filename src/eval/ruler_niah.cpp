// Needle in a haystack, after RULER's scripts/data/synthetic/niah.py: needles "One of the special magic
// {type} for {key} is: {value}." placed at RULER's depths in an essay haystack, between copies of a noise
// paragraph, or among distractor needles; the question asks for the values of some keys.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "dattn/core/error.h"
#include "dattn/eval/rng.h"
#include "ruler_builders.h"

namespace dattn::eval::detail {

namespace {

constexpr std::string_view kNoise =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
constexpr std::string_view kTemplate =
    "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will "
    "quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} "
    "for {query} mentioned in the provided text? The special magic {type_needle_v} for {query} mentioned in "
    "the provided text are";

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

std::string needle_type_name(NeedleType t) {
  switch (t) {
    case NeedleType::numbers: return "numbers";
    case NeedleType::words: return "words";
    case NeedleType::uuids: return "uuids";
  }
  return "";
}

// RULER's random needle values: 7-digit numbers, adjective-noun pairs, version-4 UUIDs.
std::string random_needle(NeedleType type, DeterministicRng& rng) {
  switch (type) {
    case NeedleType::numbers: return std::to_string(rng.between(1000000, 9999999));
    case NeedleType::words: {
      const auto& adjs = adjective_words();
      const auto& nouns = noun_words();
      // index into the sorted adjective-noun product without materialising it
      const uint64_t i = rng.below(uint64_t(adjs.size() * nouns.size()));
      return adjs[i / nouns.size()] + "-" + nouns[i % nouns.size()];
    }
    case NeedleType::uuids: {
      uint64_t hi = rng.next_u64(), lo = rng.next_u64();
      hi = (hi & ~0xF000ull) | 0x4000ull;                         // version 4
      lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // RFC 4122 variant
      return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF,
                         lo >> 48, lo & 0xFFFFFFFFFFFFull);
    }
  }
  return "";
}

std::string format_needle(std::string_view type_name, std::string_view key, std::string_view value) {
  return fmt::format("One of the special magic {} for {} is: {}.", type_name, key, value);
}

// RULER's DEPTHS: np.round(np.linspace(0, 100, 40)).astype(int).
std::vector<int64_t> depths_percent() {
  std::vector<int64_t> depths;
  for (int i = 0; i < 40; ++i) depths.push_back(int64_t(std::nearbyint(i * 100.0 / 39.0)));
  return depths;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out.append(sep);
    out.append(parts[i]);
  }
  return out;
}

}  // namespace

SizedTask niah_task(const NiahConfig& config, uint64_t seed, const Haystack& haystack) {
  const int64_t num_keys = std::max(config.num_keys, config.num_queries);
  SizedTask task;
  const int64_t num_needles = num_keys * config.num_values;
  task.min_size = config.haystack == HaystackType::essay ? 0 : num_needles;
  task.build = [config, seed, num_keys, &haystack](int64_t size) {
    DeterministicRng rng(seed);
    const std::string type_v = needle_type_name(config.value_type);
    std::vector<std::string> keys, needles;
    std::vector<std::vector<std::string>> values;
    for (int64_t k = 0; k < num_keys; ++k) {
      keys.push_back(random_needle(config.key_type, rng));
      values.emplace_back();
      for (int64_t v = 0; v < config.num_values; ++v) {
        values.back().push_back(random_needle(config.value_type, rng));
        needles.push_back(format_needle(type_v, keys.back(), values.back().back()));
      }
    }
    rng.shuffle(needles);

    std::string context;
    if (config.haystack == HaystackType::essay) {
      const std::string text = haystack.first_words(size);
      const auto sentences = split_sentences(text);
      const auto depths = depths_percent();
      std::vector<int64_t> positions;
      for (int64_t pick : rng.sample_indices(int64_t(depths.size()), int64_t(needles.size())))
        positions.push_back(int64_t(double(sentences.size()) * (double(depths[size_t(pick)]) / 100.0)));
      std::sort(positions.begin(), positions.end());
      positions.insert(positions.begin(), 0);
      positions.push_back(int64_t(sentences.size()));
      // Pieces as RULER joins them: the sentences between two insertion points, then a needle.
      std::vector<std::string> pieces;
      for (size_t i = 1; i < positions.size(); ++i) {
        std::string between;
        for (int64_t s = positions[i - 1]; s < positions[i]; ++s) {
          if (s > positions[i - 1]) between.push_back(' ');
          between.append(sentences[size_t(s)]);
        }
        pieces.push_back(std::move(between));
        if (i - 1 < needles.size()) pieces.push_back(needles[i - 1]);
      }
      context = join(pieces, " ");
    } else {
      std::vector<std::string> sentences;
      for (int64_t i = 0; i < size; ++i) {
        if (config.haystack == HaystackType::repeat) {
          sentences.emplace_back(kNoise);
        } else {  // distractor needles with keys and values of their own
          std::string key = random_needle(config.key_type, rng);
          sentences.push_back(format_needle(type_v, key, random_needle(config.value_type, rng)));
        }
      }
      auto indexes = rng.sample_indices(size, int64_t(needles.size()));
      std::sort(indexes.rbegin(), indexes.rend());
      for (size_t i = 0; i < indexes.size(); ++i)
        sentences.insert(sentences.begin() + indexes[i], needles[i]);
      context = join(sentences, "\n");
    }

    BuiltSample sample;
    std::vector<std::string> queries;
    for (int64_t i : rng.sample_indices(num_keys, config.num_queries)) {
      queries.push_back(keys[size_t(i)]);
      for (const std::string& v : values[size_t(i)]) sample.outputs.push_back(v);
    }
    std::string query = queries.back();
    if (queries.size() > 1) {
      queries.pop_back();
      query = join(queries, ", ") + ", and " + query;
    }
    std::string templ(kTemplate);
    std::string type_shown = type_v;
    if (config.num_queries * config.num_values == 1) {  // RULER's singular wording
      templ = replace_all(templ, "Some", "A");
      templ = replace_all(templ, "are all", "is");
      templ = replace_all(templ, "are", "is");
      templ = replace_all(templ, "answers", "answer");
      type_shown.pop_back();
    }
    templ = replace_all(templ, "{type_needle_v}", type_shown);
    templ = replace_all(templ, "{query}", query);
    const size_t at = templ.find("{context}");
    sample.input = templ.replace(at, 9, context);
    return sample;
  };
  return task;
}

}  // namespace dattn::eval::detail
