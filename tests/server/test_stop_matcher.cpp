// Stop strings over streamed text: generation ends with the first piece after which a stop string occurs;
// the text is cut before the earliest occurrence then, and no byte of a stop string is ever emitted.
#include <gtest/gtest.h>

#include <random>

#include "dattn/server/stop_matcher.h"

namespace dattn::server {
namespace {

// Feeds text in pieces at the given cut points; returns everything emitted.
std::string run(const std::vector<std::string>& stops, const std::vector<std::string>& pieces, bool* stopped = nullptr) {
  StopMatcher m(stops);
  std::string out;
  for (const std::string& piece : pieces) out += m.push(piece);
  out += m.finish();
  if (stopped) *stopped = m.stopped();
  return out;
}

// The oracle: after each piece, search the whole text so far.
std::string expected(const std::vector<std::string>& pieces, const std::vector<std::string>& stops) {
  std::string text;
  for (const std::string& piece : pieces) {
    text += piece;
    size_t cut = std::string::npos;
    for (const std::string& s : stops) cut = std::min(cut, text.find(s));
    if (cut != std::string::npos) return text.substr(0, cut);
  }
  return text;
}

TEST(StopMatcher, CutsBeforeTheStopString) {
  bool stopped = false;
  EXPECT_EQ(run({"END"}, {"hello E", "N", "D world"}, &stopped), "hello ");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(run({"END"}, {"hello EN", "d"}, &stopped), "hello ENd");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(run({"\n\n", "x"}, {"ab\n", "cx\n\n"}), "ab\nc");  // the earliest of several
  EXPECT_EQ(run({"aab"}, {"a", "a", "a", "b"}), "a");            // overlapping prefixes
  EXPECT_EQ(run({"stop"}, {"stop"}), "");
  // "\n" completes first, although "b\nb" would start earlier once the next piece came.
  EXPECT_EQ(run({"b\nb", "\n"}, {"b", "\n", "b"}), "b");
}

TEST(StopMatcher, HoldsBackOnlyPossibleStarts) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.push("xE"), "x");  // "E" could start END
  EXPECT_EQ(m.push("Q"), "EQ");
  EXPECT_EQ(m.push("EN"), "");
  EXPECT_EQ(m.finish(), "EN");
  EXPECT_EQ(m.push("more"), "more");
}

TEST(StopMatcher, MultiByteCharactersStayWhole) {
  // "é" is C3 A9; the stop string "éz" shares the character; pieces are whole characters as the
  // detokenizer delivers them, so nothing held back splits one.
  EXPECT_EQ(run({"\xC3\xA9z"}, {"a\xC3\xA9", "\xC3\xA9", "z"}), "a\xC3\xA9");
  StopMatcher m({"\xC3\xA9z"});
  EXPECT_EQ(m.push("a\xC3\xA9"), "a");
  EXPECT_EQ(m.push("b"), "\xC3\xA9" "b");
}

TEST(StopMatcher, RandomSplitsMatchTheOracle) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab\n";
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    for (int i = 0, n = int(rng() % 30); i < n; ++i) text += alphabet[rng() % alphabet.size()];
    std::vector<std::string> stops;
    for (int s = 0, n = 1 + int(rng() % 3); s < n; ++s) {
      std::string stop;
      for (int i = 0, len = 1 + int(rng() % 4); i < len; ++i) stop += alphabet[rng() % alphabet.size()];
      stops.push_back(stop);
    }
    std::vector<std::string> pieces;
    for (size_t at = 0; at < text.size();) {
      const size_t len = std::min(text.size() - at, size_t(1 + rng() % 5));
      pieces.push_back(text.substr(at, len));
      at += len;
    }
    ASSERT_EQ(run(stops, pieces), expected(pieces, stops)) << "text '" << text << "' stops " << ::testing::PrintToString(stops) << " pieces " << ::testing::PrintToString(pieces);
  }
}

}  // namespace
}  // namespace dattn::server
