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
  std::error_code ec;
  // a DATTN_MODEL that is set is used or refused, never silently replaced by the embedded model
  if (const char* env = std::getenv("DATTN_MODEL"); env && *env) {
    const fs::path dir(env);
    DATTN_CHECK(fs::is_regular_file(dir / "config.json", ec),
                "DATTN_MODEL='{}' is not a model directory (no config.json in it); unset it to use the embedded model",
                dir.string());
    return dir.lexically_normal();
  }
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
