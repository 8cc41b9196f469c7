// Typed access to tokenizer.json fields: every wrong type or missing field becomes a dattn::Error that
// names the field's path (e.g. "pre_tokenizer.pretokenizers[1].behavior").
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dattn::tokenizer_detail {

using Json = nlohmann::json;

// Largest token id accepted; real vocabularies are far below it, and it bounds id-indexed tables.
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

std::string json_type_name(const Json& value);
std::string join_path(std::string_view parent, std::string_view key);

const Json& require_field(const Json& object, std::string_view key, std::string_view path);
// The field when present and not null.
const Json* optional_field(const Json& object, std::string_view key, std::string_view path);

std::string require_string(const Json& object, std::string_view key, std::string_view path);
std::optional<std::string> optional_string(const Json& object, std::string_view key, std::string_view path);
bool bool_or(const Json& object, std::string_view key, std::string_view path, bool fallback);
int64_t int_or(const Json& object, std::string_view key, std::string_view path, int64_t fallback);
// A token id in [0, kMaxTokenId].
int32_t as_token_id(const Json& value, std::string_view path);
// The "type" string of a component object.
std::string component_type(const Json& object, std::string_view path);
// A single Unicode character given as a string (e.g. Metaspace's replacement).
std::string require_single_char(const Json& object, std::string_view key, std::string_view path);

void require_object(const Json& value, std::string_view path);
void require_array(const Json& value, std::string_view path);

}  // namespace dattn::tokenizer_detail
