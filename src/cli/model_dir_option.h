// --model takes a model directory or a Hugging Face repo id (org/name) found in the local cache.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "dattn/core/error.h"
#include "dattn/model/hub_cache.h"

namespace dattn::cli {

// A CLI11 transform: replaces the value by the directory it names, or reports why there is none.
inline CLI::Validator model_dir_resolver() {
  return CLI::Validator(
      [](std::string& value) {
        try {
          value = model::resolve_model_dir(value).string();
          return std::string();
        } catch (const Error& e) {
          return std::string(e.what());
        }
      },
      "DIR|ORG/NAME", "model directory");
}

}  // namespace dattn::cli
