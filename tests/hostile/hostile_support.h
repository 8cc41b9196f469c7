// Shared pieces of the hostile-input tests: fixture copies to corrupt, hostile documents, the checks
// every refusal must pass (short, names the problem, no raw C++ exception names).
#pragma once
#include <filesystem>
#include <functional>
#include <string>

#include "model_fixtures.h"

namespace dattn::test {

// A fixture with every model file: config, generation config, sharded safetensors with an index,
// tokenizer.json and tokenizer_config.json.
inline constexpr const char* kTokenizerModel = "llama3_tied_sharded";

// Copies fixture `name` into `parent`; returns the copy's path.
std::filesystem::path copy_fixture(const std::string& name, const std::filesystem::path& parent);

// "[[[...]]]" nested `depth` levels.
std::string deeply_nested_json(int depth);

// The message of the dattn::Error that f throws, or a failure when it throws nothing or anything else.
std::string error_of(const std::function<void()>& f);

// The message contains `needle`, is short (a hostile file must not become a huge message) and carries no
// raw C++ exception names (std::bad_alloc, stoll, vector::..., json.exception).
void expect_short_error(const std::string& message, const std::string& needle);

struct CommandResult {
  int exit_code;
  std::string out, err;
};
// Runs `dattn ARGS` with stdout/stderr captured in `dir`.
CommandResult run_dattn(const std::string& args, const std::filesystem::path& dir);

}  // namespace dattn::test
