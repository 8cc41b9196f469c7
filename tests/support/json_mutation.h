// Randomised corruption of JSON documents for the bounded fuzz tests of the parsers of user files
// (tokenizer files, config.json, generation_config.json): byte edits of the text and replacements of
// one node by a hostile value.
#pragma once
#include <cstdint>
#include <iterator>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

namespace dattn::test {

// 1-8 byte edits: random bytes, JSON punctuation, deletions, duplicated runs, truncation.
inline std::string mutate_bytes(std::string text, std::mt19937& rng) {
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits && !text.empty(); ++e) {
    const size_t pos = rng() % text.size();
    switch (rng() % 5) {
      case 0: text[pos] = static_cast<char>(rng()); break;
      case 1: text[pos] = "{}[]\":,0-9e\\ "[rng() % 13]; break;
      case 2: text.erase(pos, 1 + rng() % 16); break;
      case 3: text.insert(pos, text.substr(rng() % text.size(), 1 + rng() % 32)); break;
      default: text.resize(pos); break;
    }
  }
  return text;
}

// A value of the wrong type, size or depth for wherever it lands.
inline nlohmann::json hostile_value(std::mt19937& rng) {
  using nlohmann::json;
  switch (rng() % 14) {
    case 0: return nullptr;
    case 1: return -1;
    case 2: return int64_t{1} << 40;
    case 3: return 1e300;
    case 4: return "Ġ";
    case 5: return json::array();
    case 6: return json::object();
    case 7: return true;
    case 8: return json::array({"a", "b"});
    case 9: return int64_t{1} << 62;            // a product with it wraps around
    case 10: return 1e9;                        // integral float, far too large for any count
    case 11: return std::string(4096, 'x');     // long text that must not be echoed whole
    case 12: {                                  // deeper than any parser allows
      json deep = json::array();
      for (int i = 0; i < 100; ++i) deep = json::array({deep});
      return deep;
    }
    default: return json{{"type", "Sequence"}};
  }
}

// Replaces (or, now and then, deletes) one randomly chosen node of the document.
inline void mutate_structure(nlohmann::json& node, std::mt19937& rng, int depth = 0) {
  if ((node.is_object() || node.is_array()) && !node.empty() && (depth < 2 || rng() % 3 != 0)) {
    const size_t index = rng() % node.size();
    if (node.is_object()) {
      auto it = node.begin();
      std::advance(it, index);
      if (rng() % 8 == 0) {
        node.erase(it.key());
      } else {
        mutate_structure(it.value(), rng, depth + 1);
      }
    } else {
      mutate_structure(node[index], rng, depth + 1);
    }
    return;
  }
  node = hostile_value(rng);
}

}  // namespace dattn::test
