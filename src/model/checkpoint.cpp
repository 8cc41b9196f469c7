// Safetensors files and the single-file / sharded checkpoint layouts of save_pretrained.

#include <algorithm>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/core/input_file.h"
#include "dattn/io/json_input.h"
#include "dattn/model/safetensors.h"

namespace dattn::model {

namespace fs = std::filesystem;
using nlohmann::json;

void Checkpoint::add_shard(const fs::path& path) {
  auto shard = std::make_unique<Shard>();
  shard->file = std::make_unique<MappedFile>(path);
  std::span<const std::byte> bytes = shard->file->bytes();
  shard->header = parse_safetensors_header(bytes, bytes.size(), path.string());
  for (const auto& [name, info] : shard->header.tensors) {
    auto [it, inserted] = index_.emplace(name, std::make_pair(shard.get(), &info));
    DATTN_CHECK(inserted, "tensor '{}' is stored twice: in {} and in {}", excerpt(name), it->second.first->path().string(),
                path.string());
  }
  shards_.push_back(std::move(shard));
}

Checkpoint Checkpoint::open_files(const std::vector<fs::path>& files) {
  Checkpoint c;
  for (const fs::path& f : files) c.add_shard(f);
  return c;
}

Checkpoint Checkpoint::from_memory(const fs::path& origin, std::vector<TensorInfo> tensors, std::vector<std::byte> data) {
  Checkpoint c;
  auto shard = std::make_unique<Shard>();
  shard->decoded = std::move(data);
  shard->origin = origin;
  for (TensorInfo& info : tensors) {
    DATTN_CHECK(info.begin <= info.end && info.end <= shard->decoded.size(), "{}: tensor '{}' lies outside its data",
                origin.string(), info.name);
    std::string name = info.name;
    DATTN_CHECK(shard->header.tensors.emplace(name, std::move(info)).second, "{}: tensor '{}' is stored twice",
                origin.string(), name);
  }
  for (const auto& [name, info] : shard->header.tensors) c.index_.emplace(name, std::make_pair(shard.get(), &info));
  c.shards_.push_back(std::move(shard));
  return c;
}

Checkpoint Checkpoint::open(const fs::path& dir) {
  fs::path single = dir / "model.safetensors";
  fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    const json index = read_json_file(index_path, kModelJsonLimits);
    DATTN_CHECK(index.is_object(), "{} must hold a JSON object, got {}", index_path.string(), index.type_name());
    DATTN_CHECK(index.contains("weight_map") && index.at("weight_map").is_object(),
                "{}: field 'weight_map' is missing or not an object", index_path.string());
    const json& weight_map = index.at("weight_map");
    std::set<std::string> shard_names;
    for (const auto& [tensor, file] : weight_map.items()) {
      DATTN_CHECK(file.is_string(), "{}: weight_map['{}'] must be a file name, got {}", index_path.string(),
                  excerpt(tensor), json_excerpt(file));
      std::string name = file.get<std::string>();
      // shard names are plain file names in the same directory; anything else could escape it
      DATTN_CHECK(!name.empty() && name.find('/') == std::string::npos && name.find('\\') == std::string::npos &&
                      name != "." && name != "..",
                  "{}: weight_map['{}'] names '{}', which is not a file in the model directory", index_path.string(),
                  excerpt(tensor), excerpt(name));
      shard_names.insert(name);
    }
    DATTN_CHECK(!shard_names.empty(), "{}: weight_map is empty", index_path.string());
    std::vector<fs::path> files;
    for (const std::string& name : shard_names) {
      DATTN_CHECK(fs::exists(dir / name), "{} lists shard '{}', which is missing", index_path.string(), excerpt(name));
      files.push_back(dir / name);
    }
    Checkpoint c = open_files(files);
    for (const auto& [tensor, file] : weight_map.items()) {
      auto it = c.index_.find(tensor);
      DATTN_CHECK(it != c.index_.end(), "{} maps tensor '{}' to {}, which does not contain it", index_path.string(),
                  excerpt(tensor), excerpt(file.get<std::string>()));
      DATTN_CHECK(it->second.first->path().filename() == file.get<std::string>(),
                  "{} maps tensor '{}' to {}, but it is stored in {}", index_path.string(), excerpt(tensor),
                  excerpt(file.get<std::string>()), it->second.first->path().filename().string());
    }
    return c;
  }
  DATTN_CHECK(fs::exists(single), "no weights in {}: expected model.safetensors or model.safetensors.index.json",
              dir.string());
  return open_files({single});
}

TensorRef Checkpoint::get(const std::string& name) const {
  auto it = index_.find(name);
  DATTN_CHECK(it != index_.end(), "tensor '{}' is missing from the checkpoint", excerpt(name));
  const Shard& shard = *it->second.first;
  const TensorInfo& info = *it->second.second;
  TensorRef ref;
  ref.info = &info;
  ref.bytes = shard.bytes().subspan(size_t(shard.header.data_offset + info.begin), size_t(info.end - info.begin));
  ref.file = &shard.path();
  return ref;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, where] : index_) out.push_back(name);
  return out;
}

uint64_t Checkpoint::data_bytes() const {
  uint64_t total = 0;
  for (const auto& [name, where] : index_) total += where.second->end - where.second->begin;
  return total;
}

void Checkpoint::check_layer_count(int64_t num_layers) const {
  constexpr std::string_view prefix = "model.layers.";
  int64_t last = -1;
  std::string last_name;
  for (const auto& [name, where] : index_) {
    if (!name.starts_with(prefix)) continue;
    const std::string_view rest = std::string_view(name).substr(prefix.size());
    const size_t digits = std::min(rest.find_first_not_of("0123456789"), rest.size());
    if (digits == 0) continue;
    // more digits than any layer count has is certainly past the last layer
    const int64_t layer = digits > 9 ? INT64_MAX : std::stoll(std::string(rest.substr(0, digits)));
    if (layer > last) {
      last = layer;
      last_name = name;
    }
  }
  DATTN_CHECK(last < num_layers,
              "config.json's num_hidden_layers is {} but the checkpoint holds tensor '{}' of a later layer: the config "
              "does not describe these weights",
              num_layers, excerpt(last_name));
  DATTN_CHECK(last == num_layers - 1,
              "config.json's num_hidden_layers is {} but the checkpoint holds {} layers: the config does not describe "
              "these weights",
              num_layers, last + 1);
}

}  // namespace dattn::model
