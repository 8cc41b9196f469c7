#include "model_fixtures.h"

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dattn/io/npy.h"

namespace dattn::test {

namespace fs = std::filesystem;

fs::path models_dir() { return fs::path(DATTN_SOURCE_DIR) / "tests" / "fixtures" / "models"; }

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(models_dir()))
    if (fs::is_regular_file(entry.path() / "expected.json")) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<LogitsCase> load_cases(const std::string& name) {
  fs::path dir = models_dir() / name;
  nlohmann::json expected = nlohmann::json::parse(read_text(dir / "expected.json"));
  std::vector<LogitsCase> cases;
  for (const auto& c : expected.at("cases")) {
    LogitsCase lc;
    lc.ids = c.at("ids").get<std::vector<int32_t>>();
    npy::Array a = npy::load(dir / c.at("logits").get<std::string>());
    EXPECT_EQ(a.type, npy::ElementType::f32);
    lc.logits.resize(size_t(a.numel()));
    std::memcpy(lc.logits.data(), a.bytes.data(), lc.logits.size() * sizeof(float));
    cases.push_back(std::move(lc));
  }
  return cases;
}

std::shared_ptr<const model::Model> load_fixture_model(const std::string& name) {
  return model::Model::load(models_dir() / name);
}

double relative_l2(const float* a, const float* b, size_t n) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < n; ++i) {
    diff += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
    ref += double(b[i]) * double(b[i]);
  }
  return std::sqrt(diff / ref);
}

double relative_l2(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return relative_l2(a.data(), b.data(), std::min(a.size(), b.size()));
}

TempDir::TempDir() {
  static std::mt19937_64 rng(std::random_device{}());
  path = fs::temp_directory_path() / ("dattn_model_test_" + std::to_string(::getpid()) + "_" + std::to_string(rng()));
  fs::create_directories(path);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

std::vector<uint8_t> safetensors_bytes_with_header(const std::string& header_json, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out(8);
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(n >> (8 * i));
  out.insert(out.end(), header_json.begin(), header_json.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<uint8_t> safetensors_bytes(const std::vector<FakeTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<uint8_t> data;
  for (const FakeTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text += ' ';  // aligned data, as the reference writer pads
  return safetensors_bytes_with_header(text, data);
}

void write_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace dattn::test
