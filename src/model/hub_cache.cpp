// Resolves "org/name" in the local Hugging Face cache: models--org--name/{refs/main, snapshots/<commit>}.
#include "dattn/model/hub_cache.h"

#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "dattn/core/error.h"
#include "dattn/core/text_file.h"

namespace dattn::model {
namespace fs = std::filesystem;

namespace {

fs::path env_path(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? fs::path(value) : fs::path();
}

// org and name: letters, digits, '-', '_', '.', not starting with '.' (no "..", no absolute paths).
bool is_repo_part(std::string_view part) {
  if (part.empty() || part.front() == '.') return false;
  for (char c : part)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

fs::path hub_cache_dir() {
  if (auto hub = env_path("HF_HUB_CACHE"); !hub.empty()) return hub;
  if (auto home = env_path("HF_HOME"); !home.empty()) return home / "hub";
  if (auto xdg = env_path("XDG_CACHE_HOME"); !xdg.empty()) return xdg / "huggingface" / "hub";
  auto home = env_path("HOME");
  DATTN_CHECK(!home.empty(), "cannot find the Hugging Face cache: HF_HUB_CACHE, HF_HOME and HOME are unset");
  return home / ".cache" / "huggingface" / "hub";
}

fs::path resolve_model_dir(std::string_view spec) {
  const fs::path as_given{std::string(spec)};
  std::error_code ec;
  if (fs::is_directory(as_given, ec)) return as_given;
  if (fs::is_regular_file(as_given, ec)) return as_given;  // a .gguf file; its loader checks the format
  const auto slash = spec.find('/');
  const bool repo_id = slash != std::string_view::npos && spec.find('/', slash + 1) == std::string_view::npos &&
                       is_repo_part(spec.substr(0, slash)) && is_repo_part(spec.substr(slash + 1));
  DATTN_CHECK(repo_id, "model '{}' is not a directory or a file (nor a Hugging Face repo id of the form org/name)", spec);

  const fs::path repo = hub_cache_dir() / fmt::format("models--{}--{}", spec.substr(0, slash), spec.substr(slash + 1));
  DATTN_CHECK(fs::is_directory(repo, ec),
              "model '{}' is not a directory and not in the Hugging Face cache ({} does not exist; "
              "HF_HOME / HF_HUB_CACHE choose the cache, nothing is downloaded)",
              spec, repo.string());
  const fs::path snapshots = repo / "snapshots";
  if (fs::exists(repo / "refs" / "main", ec)) {
    const std::string revision = trimmed(read_text_file(repo / "refs" / "main"));
    const fs::path snapshot = snapshots / revision;
    DATTN_CHECK(!revision.empty() && fs::is_directory(snapshot, ec),
                "model '{}': refs/main names revision '{}' but {} does not exist", spec, revision, snapshot.string());
    return snapshot;
  }
  std::vector<fs::path> found;
  if (fs::is_directory(snapshots, ec))
    for (const auto& entry : fs::directory_iterator(snapshots))
      if (entry.is_directory()) found.push_back(entry.path());
  DATTN_CHECK(found.size() == 1, "model '{}': {} has no refs/main and {} snapshots in {} (need exactly one)", spec,
              repo.string(), found.size(), snapshots.string());
  return found.front();
}

}  // namespace dattn::model
