// Scoring against hand-made cases whose expected values follow RULER's string_match_all / _part
// (substring match, case-insensitive; all: fraction found, part: any found) and postprocess_pred.
#include <gtest/gtest.h>

#include "dattn/eval/scoring.h"

namespace dattn::eval {
namespace {

TEST(RulerScoring, MatchAllIsTheFractionOfReferencesFound) {
  const std::vector<std::string> refs{"1234567", "7654321", "1111111", "2222222"};
  EXPECT_DOUBLE_EQ(string_match_all("The numbers are 1234567 and 7654321.", refs), 0.5);
  EXPECT_DOUBLE_EQ(string_match_all("1234567, 7654321, 1111111, 2222222", refs), 1.0);
  EXPECT_DOUBLE_EQ(string_match_all("none of them", refs), 0.0);
  // substring semantics: a reference inside a longer number still counts, as in RULER
  EXPECT_DOUBLE_EQ(string_match_all("912345678", std::vector<std::string>{"1234567"}), 1.0);
}

TEST(RulerScoring, MatchPartNeedsAnyOneReference) {
  const std::vector<std::string> refs{"paris", "france"};
  EXPECT_DOUBLE_EQ(string_match_part("It is in France.", refs), 1.0);
  EXPECT_DOUBLE_EQ(string_match_part("It is in Spain.", refs), 0.0);
  EXPECT_DOUBLE_EQ(string_match_part("", refs), 0.0);
}

TEST(RulerScoring, CaseIsIgnoredOnBothSides) {
  EXPECT_DOUBLE_EQ(string_match_all("BRAVE-LION", std::vector<std::string>{"brave-lion"}), 1.0);
  EXPECT_DOUBLE_EQ(string_match_all("brave-lion", std::vector<std::string>{"Brave-Lion"}), 1.0);
  EXPECT_DOUBLE_EQ(string_match_all("VAR ABCDE", std::vector<std::string>{"abcde", "FGHIJ"}), 0.5);
  EXPECT_DOUBLE_EQ(string_match_part("UUID 3F2A", std::vector<std::string>{"3f2a"}), 1.0);
}

TEST(RulerScoring, PostprocessStripsAndTurnsControlCharactersIntoNewlines) {
  EXPECT_EQ(postprocess_prediction("  \n 1234567\t8 \n"), "1234567\n8");
  EXPECT_EQ(postprocess_prediction(std::string("a\x01" "b\x1f", 4)), "a\nb");
  EXPECT_EQ(postprocess_prediction("\x1c\x1d text \x1e"), "text");
  EXPECT_EQ(postprocess_prediction(""), "");
  // a newline splitting a reference breaks the match, as in RULER
  EXPECT_DOUBLE_EQ(string_match_all(postprocess_prediction("123\t4567"), std::vector<std::string>{"1234567"}), 0.0);
}

TEST(RulerScoring, NoReferencesScoresZero) {
  EXPECT_DOUBLE_EQ(string_match_all("anything", std::vector<std::string>{}), 0.0);
  EXPECT_DOUBLE_EQ(string_match_part("anything", std::vector<std::string>{}), 0.0);
}

}  // namespace
}  // namespace dattn::eval
