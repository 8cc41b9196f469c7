// Locations and contents of the tokenizer fixtures made by tools/make_tokenizer_fixtures.py.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dattn::test {

inline const std::vector<std::string> kTokenizerFixtures = {"llama3_bpe", "qwen2_bpe", "llama2_bpe", "mistral_bpe",
                                                            "metaspace_unk"};

std::filesystem::path tokenizer_fixture_dir(const std::string& name);
std::string read_text_file(const std::filesystem::path& path);
nlohmann::json read_expected(const std::string& name);

}  // namespace dattn::test
