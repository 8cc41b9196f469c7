// Where the embedded default model (models/dattn-tiny-16k, docs/RESULTS.md) is found at run time.
#pragma once
#include <filesystem>

namespace dattn::cli {

// $DATTN_MODEL if set, else models/dattn-tiny-16k beside the build tree (three levels above the dattn
// binary in build/src/cli), else in the source tree this binary was built from. Throws dattn::Error
// listing the places tried when none holds a config.json.
std::filesystem::path embedded_model_dir();

}  // namespace dattn::cli
