// RULER's scoring (scripts/eval/synthetic/constants.py, evaluate.py): a prediction is cleaned, then each
// reference counts when it occurs in it as a substring, ignoring case.
#pragma once
#include <span>
#include <string>
#include <string_view>

namespace dattn::eval {

// RULER's postprocess_pred: strip whitespace, turn control characters (0x00-0x1f) into newlines, strip again.
std::string postprocess_prediction(std::string_view prediction);

// The fraction of references found in the prediction (0..1): RULER's string_match_all for one sample.
double string_match_all(std::string_view prediction, std::span<const std::string> references);
// 1 when any reference is found, else 0: RULER's string_match_part for one sample.
double string_match_part(std::string_view prediction, std::span<const std::string> references);

// Case folding as Python's str.lower() does for ASCII; other bytes are kept (the references are ASCII).
std::string ascii_lower(std::string_view text);

}  // namespace dattn::eval
