#include "dattn/core/text_file.h"

#include <fstream>
#include <sstream>

#include "dattn/core/error.h"

namespace dattn {

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  DATTN_CHECK(in.good(), "cannot open '{}'", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  DATTN_CHECK(!in.bad(), "cannot read '{}'", path.string());
  return text.str();
}

}  // namespace dattn
