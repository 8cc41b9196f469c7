// resolve_model_dir: directories as given, repo ids in a Hugging Face cache laid out in a temp folder.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <unistd.h>
#include <string>

#include "dattn/core/error.h"
#include "dattn/model/hub_cache.h"

namespace fs = std::filesystem;
using dattn::model::hub_cache_dir;
using dattn::model::resolve_model_dir;

namespace {

// Sets (or unsets, with nullopt) an environment variable for one test and restores it afterwards.
class EnvVar {
 public:
  EnvVar(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value->c_str(), 1);
    else
      unsetenv(name);
  }
  ~EnvVar() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class HubCache : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = fs::temp_directory_path() / ("dattn_hub_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(home_);
    fs::create_directories(home_);
  }
  void TearDown() override { fs::remove_all(home_); }
  fs::path snapshot(const std::string& repo_folder, const std::string& revision) {
    fs::path dir = home_ / "hub" / repo_folder / "snapshots" / revision;
    fs::create_directories(dir);
    return dir;
  }
  void ref_main(const std::string& repo_folder, const std::string& revision) {
    fs::create_directories(home_ / "hub" / repo_folder / "refs");
    std::ofstream(home_ / "hub" / repo_folder / "refs" / "main") << revision;  // no newline, as the hub writes it
  }
  fs::path home_;
  EnvVar no_hub_cache_{"HF_HUB_CACHE", std::nullopt};
};

std::string error_of(std::string_view spec) {
  try {
    resolve_model_dir(spec);
  } catch (const dattn::Error& e) {
    return e.what();
  }
  return "no error";
}

TEST_F(HubCache, CacheFolderFollowsTheHubsEnvironmentVariables) {
  EnvVar home("HF_HOME", home_.string());
  EXPECT_EQ(hub_cache_dir(), home_ / "hub");
  EnvVar hub("HF_HUB_CACHE", (home_ / "elsewhere").string());
  EXPECT_EQ(hub_cache_dir(), home_ / "elsewhere");
}

TEST_F(HubCache, DefaultsToXdgThenHome) {
  EnvVar no_home("HF_HOME", std::nullopt);
  EnvVar xdg("XDG_CACHE_HOME", (home_ / "xdg").string());
  EXPECT_EQ(hub_cache_dir(), home_ / "xdg" / "huggingface" / "hub");
  EnvVar no_xdg("XDG_CACHE_HOME", std::nullopt);
  EnvVar user_home("HOME", home_.string());
  EXPECT_EQ(hub_cache_dir(), home_ / ".cache" / "huggingface" / "hub");
}

TEST_F(HubCache, ExistingDirectoryIsTakenAsGiven) {
  EXPECT_EQ(resolve_model_dir(home_.string()), home_);
}

TEST_F(HubCache, RepoIdResolvesThroughRefsMain) {
  EnvVar home("HF_HOME", home_.string());
  snapshot("models--org--name", "0123abcd");
  fs::path wanted = snapshot("models--org--name", "4567ef01");
  ref_main("models--org--name", "4567ef01");
  EXPECT_EQ(resolve_model_dir("org/name"), wanted);
}

TEST_F(HubCache, SingleSnapshotWithoutRefsIsUsed) {
  EnvVar home("HF_HOME", home_.string());
  fs::path wanted = snapshot("models--Qwen--Qwen2.5-0.5B", "abc");
  EXPECT_EQ(resolve_model_dir("Qwen/Qwen2.5-0.5B"), wanted);
  snapshot("models--Qwen--Qwen2.5-0.5B", "def");
  EXPECT_NE(error_of("Qwen/Qwen2.5-0.5B").find("has no refs/main and 2 snapshots"), std::string::npos);
}

TEST_F(HubCache, MissingRepoOrSnapshotIsAClearError) {
  EnvVar home("HF_HOME", home_.string());
  std::string missing = error_of("org/absent");
  EXPECT_NE(missing.find("model 'org/absent' is not a directory and not in the Hugging Face cache"), std::string::npos)
      << missing;
  EXPECT_NE(missing.find((home_ / "hub" / "models--org--absent").string()), std::string::npos) << missing;
  ref_main("models--org--stale", "deadbeef");
  EXPECT_NE(error_of("org/stale").find("refs/main names revision 'deadbeef' but"), std::string::npos);
}

TEST_F(HubCache, NeitherDirectoryNorRepoIdIsRejected) {
  for (std::string spec : {"no-such-dir", "a/b/c", "../x", "org/", "/abs/path", "org/na me"})
    EXPECT_NE(error_of(spec).find("is not a directory or a file (nor a Hugging Face repo id of the form org/name)"),
              std::string::npos)
        << spec << ": " << error_of(spec);
}

}  // namespace
