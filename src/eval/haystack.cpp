#include "dattn/eval/haystack.h"

#include <fstream>
#include <sstream>

#include "dattn/core/error.h"
#include "dattn/eval/rng.h"
#include "embedded_data.h"

namespace dattn::eval {

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
}  // namespace

const Haystack& Haystack::builtin() {
  static const Haystack haystack = [] {
    std::string text;
    for (std::string_view paragraph : detail::embedded_haystack_paragraphs()) {
      text.append(paragraph);
      text.push_back('\n');
    }
    return from_text(text, "the embedded haystack");
  }();
  return haystack;
}

Haystack Haystack::from_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  DATTN_CHECK(in.good(), "cannot open haystack file '{}'", path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return from_text(buffer.str(), path.string());
}

Haystack Haystack::from_text(std::string_view text, std::string_view origin) {
  Haystack h;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    std::vector<WordSpan> words;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && is_space(line[i])) ++i;
      const size_t b = i;
      while (i < line.size() && !is_space(line[i])) ++i;
      if (i > b) words.push_back({uint32_t(b), uint32_t(i - b)});
    }
    if (!words.empty()) {
      h.total_words_ += int64_t(words.size());
      h.paragraphs_.emplace_back(line);
      h.words_.push_back(std::move(words));
    }
    start = end + 1;
  }
  DATTN_CHECK(h.total_words_ > 0, "{} has no words", origin);
  return h;
}

std::string Haystack::first_words(int64_t n) const {
  std::string out;
  out.reserve(size_t(n) * 6);
  std::vector<size_t> order(paragraphs_.size());
  for (int64_t pass = 0; n > 0; ++pass) {
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    if (pass > 0) {  // later passes reorder the paragraphs so that long haystacks do not simply repeat
      DeterministicRng rng(mix_seed({0x4A757374ull, uint64_t(pass)}));
      rng.shuffle(order);
    }
    for (size_t p : order) {
      for (const WordSpan& w : words_[p]) {
        if (n == 0) return out;
        if (!out.empty()) out.push_back(' ');
        out.append(paragraphs_[p], w.begin, w.length);
        --n;
      }
    }
  }
  return out;
}

std::vector<std::string_view> split_sentences(std::string_view text) {
  std::vector<std::string_view> sentences;
  size_t begin = 0;
  while (begin < text.size() && is_space(text[begin])) ++begin;
  for (size_t i = begin; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '.' && c != '!' && c != '?') continue;
    size_t end = i + 1;
    while (end < text.size() && (text[end] == '"' || text[end] == '\'' || text[end] == ')' || text[end] == ']')) ++end;
    if (end < text.size() && !is_space(text[end])) continue;
    sentences.push_back(text.substr(begin, end - begin));
    begin = end;
    while (begin < text.size() && is_space(text[begin])) ++begin;
    i = begin == 0 ? 0 : begin - 1;
  }
  if (begin < text.size()) {
    size_t end = text.size();
    while (end > begin && is_space(text[end - 1])) --end;
    sentences.push_back(text.substr(begin, end - begin));
  }
  return sentences;
}

}  // namespace dattn::eval
