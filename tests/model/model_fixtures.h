// Access to the model fixtures of tests/fixtures/models (written by tools/make_fixtures.py).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "dattn/model/model.h"

namespace dattn::test {

struct LogitsCase {
  std::vector<int32_t> ids;
  std::vector<float> logits;  // (ids.size(), vocab) from transformers, float32
};

std::filesystem::path models_dir();
std::vector<std::string> fixture_names();  // every model fixture directory
std::vector<LogitsCase> load_cases(const std::string& name);
std::shared_ptr<const model::Model> load_fixture_model(const std::string& name);

// ||a - b|| / ||b||
double relative_l2(const float* a, const float* b, size_t n);
double relative_l2(const std::vector<float>& a, const std::vector<float>& b);

// A scratch directory removed on destruction.
struct TempDir {
  TempDir();
  ~TempDir();
  std::filesystem::path path;
};

// Writes a safetensors file from named f32 tensors (shape, values) and optional raw header override.
struct FakeTensor {
  std::string name;
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
std::vector<uint8_t> safetensors_bytes(const std::vector<FakeTensor>& tensors);
std::vector<uint8_t> safetensors_bytes_with_header(const std::string& header_json, const std::vector<uint8_t>& data);
void write_file(const std::filesystem::path& path, const std::vector<uint8_t>& bytes);
void write_text(const std::filesystem::path& path, const std::string& text);
std::string read_text(const std::filesystem::path& path);

}  // namespace dattn::test
