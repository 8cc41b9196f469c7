// Model directories named by a Hugging Face repo id ("org/name"), found in the local Hugging Face cache
// the way huggingface_hub lays it out; nothing is downloaded.
#pragma once
#include <filesystem>
#include <string_view>

namespace dattn::model {

// The hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub.
std::filesystem::path hub_cache_dir();

// `spec` as a model directory: an existing directory as it is; otherwise a repo id "org/name" resolved to
// <hub cache>/models--org--name/snapshots/<revision of refs/main> (the only snapshot when refs/main is
// absent). Throws dattn::Error naming what was looked for when neither exists.
std::filesystem::path resolve_model_dir(std::string_view spec);

}  // namespace dattn::model
