#include "fixture_paths.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace dattn::test {

std::filesystem::path tokenizer_fixture_dir(const std::string& name) {
  return std::filesystem::path(DATTN_SOURCE_DIR) / "tests" / "fixtures" / "tokenizers" / name;
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

nlohmann::json read_expected(const std::string& name) {
  return nlohmann::json::parse(read_text_file(tokenizer_fixture_dir(name) / "expected.json"));
}

}  // namespace dattn::test
