#include "embedded_model.h"

#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include "dattn/core/error.h"

namespace dattn::cli {

std::filesystem::path embedded_model_dir() {
  namespace fs = std::filesystem;
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("DATTN_MODEL"); env && *env) tried.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) tried.push_back(exe.parent_path() / "../../../models/dattn-tiny-16k");
  tried.push_back(fs::path(DATTN_SOURCE_DIR) / "models/dattn-tiny-16k");
  std::string places;
  for (const fs::path& dir : tried) {
    if (fs::exists(dir / "config.json", ec)) return dir.lexically_normal();
    places += (places.empty() ? "" : ", ") + dir.lexically_normal().string();
  }
  fail("the embedded model was not found (looked in {}); pass --model DIR or set DATTN_MODEL", places);
}

}  // namespace dattn::cli
