#include "json_fields.h"

#include "dattn/core/error.h"
#include "dattn/io/json_input.h"
#include "utf8.h"

namespace dattn::tokenizer_detail {

std::string json_type_name(const Json& value) { return value.type_name(); }

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

void require_object(const Json& value, std::string_view path) {
  if (!value.is_object()) fail("tokenizer: {} must be an object, got {}", path, json_type_name(value));
}

void require_array(const Json& value, std::string_view path) {
  if (!value.is_array()) fail("tokenizer: {} must be an array, got {}", path, json_type_name(value));
}

const Json& require_field(const Json& object, std::string_view key, std::string_view path) {
  require_object(object, path.empty() ? "the top level" : path);
  const auto it = object.find(key);
  if (it == object.end()) fail("tokenizer: missing field {}", join_path(path, key));
  return *it;
}

const Json* optional_field(const Json& object, std::string_view key, std::string_view path) {
  require_object(object, path.empty() ? "the top level" : path);
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string require_string(const Json& object, std::string_view key, std::string_view path) {
  const Json& value = require_field(object, key, path);
  if (!value.is_string()) fail("tokenizer: {} must be a string, got {}", join_path(path, key), json_type_name(value));
  return value.get<std::string>();
}

std::optional<std::string> optional_string(const Json& object, std::string_view key, std::string_view path) {
  const Json* value = optional_field(object, key, path);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) fail("tokenizer: {} must be a string, got {}", join_path(path, key), json_type_name(*value));
  return value->get<std::string>();
}

bool bool_or(const Json& object, std::string_view key, std::string_view path, bool fallback) {
  const Json* value = optional_field(object, key, path);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) fail("tokenizer: {} must be a boolean, got {}", join_path(path, key), json_type_name(*value));
  return value->get<bool>();
}

int64_t int_or(const Json& object, std::string_view key, std::string_view path, int64_t fallback) {
  const Json* value = optional_field(object, key, path);
  if (value == nullptr) return fallback;
  if (!value->is_number_integer()) fail("tokenizer: {} must be an integer, got {}", join_path(path, key), json_excerpt(*value));
  return value->get<int64_t>();
}

int32_t as_token_id(const Json& value, std::string_view path) {
  if (!value.is_number_integer()) fail("tokenizer: {} must be an integer token id, got {}", path, json_excerpt(value));
  // Unsigned values above INT64_MAX would wrap in get<int64_t>(); they are out of range anyway.
  if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(kMaxTokenId)) {
    fail("tokenizer: {} = {} is not a token id in [0, {}]", path, json_excerpt(value), kMaxTokenId);
  }
  const int64_t id = value.get<int64_t>();
  if (id < 0 || id > kMaxTokenId) fail("tokenizer: {} = {} is not a token id in [0, {}]", path, id, kMaxTokenId);
  return static_cast<int32_t>(id);
}

std::string component_type(const Json& object, std::string_view path) {
  require_object(object, path);
  return require_string(object, "type", path);
}

std::string require_single_char(const Json& object, std::string_view key, std::string_view path) {
  std::string value = require_string(object, key, path);
  if (value.empty() || utf8_char_length(value, 0) != value.size()) {
    fail("tokenizer: {} must be a single character, got '{}'", join_path(path, key), excerpt(value));
  }
  return value;
}

}  // namespace dattn::tokenizer_detail
