// Chat prompts for the llama3, llama31, mistral and chatml layouts, as their published templates
// render them (tool calling left out).
#include "dattn/core/error.h"
#include "tokenizer_impl.h"
#include "utf8.h"

namespace dattn {

std::string_view chat_family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::llama3: return "llama3";
    case ChatFamily::llama31: return "llama31";
    case ChatFamily::mistral: return "mistral";
    case ChatFamily::chatml: return "chatml";
  }
  return "unknown";
}

ChatFamily parse_chat_family(std::string_view name) {
  for (const ChatFamily family : {ChatFamily::llama3, ChatFamily::llama31, ChatFamily::mistral, ChatFamily::chatml}) {
    if (chat_family_name(family) == name) return family;
  }
  fail("unknown chat family '{}' (expected llama3, llama31, mistral or chatml)", name);
}

namespace tokenizer_detail {
namespace {

// Jinja's |trim: Python's str.strip().
std::string trim(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end && is_python_space(decode_utf8_at(text, begin))) begin += utf8_char_length(text, begin);
  while (end > begin) {
    size_t last = end - 1;
    while (last > begin && (static_cast<unsigned char>(text[last]) & 0xC0) == 0x80) --last;
    if (!is_python_space(decode_utf8_at(text, last))) break;
    end = last;
  }
  return std::string(text.substr(begin, end - begin));
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

void require_tokens(const TokenizerImpl& impl, ChatFamily family, std::initializer_list<std::string_view> tokens) {
  for (const std::string_view token : tokens) {
    if (!impl.find(token)) {
      fail("chat family {} needs the token {}, which this tokenizer does not have", chat_family_name(family), token);
    }
  }
}

std::string bos_text(const TokenizerImpl& impl) { return impl.bos_id ? impl.token_by_id[*impl.bos_id] : std::string(); }

std::string llama3_turn(std::string_view role, std::string_view content) {
  return "<|start_header_id|>" + std::string(role) + "<|end_header_id|>\n\n" + trim(content) + "<|eot_id|>";
}

std::string format_llama3(const TokenizerImpl& impl, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out = bos_text(impl);
  for (const ChatMessage& message : messages) out += llama3_turn(message.role, message.content);
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string format_llama31(const TokenizerImpl& impl, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  // The template always opens with a system turn carrying its default dates.
  size_t first = 0;
  std::string system;
  if (messages.front().role == "system") {
    system = trim(messages.front().content);
    first = 1;
  }
  std::string out = bos_text(impl) + "<|start_header_id|>system<|end_header_id|>\n\n" +
                    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" + system + "<|eot_id|>";
  for (size_t i = first; i < messages.size(); ++i) out += llama3_turn(messages[i].role, messages[i].content);
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string format_mistral(const TokenizerImpl& impl, const std::vector<ChatMessage>& messages) {
  size_t first = 0;
  std::string system;
  if (messages.front().role == "system") {
    system = messages.front().content;
    first = 1;
  }
  std::string out = bos_text(impl);
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    const bool expect_user = (i - first) % 2 == 0;
    if (message.role != (expect_user ? "user" : "assistant")) {
      fail("chat family mistral needs user and assistant turns alternating from a user turn (after an optional "
           "system message); message {} has role '{}'", i, message.role);
    }
    if (expect_user) {
      const std::string content = i == first && first == 1 ? system + "\n\n" + message.content : message.content;
      out += "[INST] " + content + " [/INST]";
    } else {
      out += message.content + impl.eos_token;
    }
  }
  return out;
}

std::string format_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& message : messages) out += "<|im_start|>" + message.role + "\n" + message.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace

std::optional<ChatFamily> detect_chat_family(const TokenizerImpl& impl) {
  const std::string& tmpl = impl.chat_template;
  if (contains(tmpl, "<|start_header_id|>")) {
    return contains(tmpl, "Cutting Knowledge Date") ? ChatFamily::llama31 : ChatFamily::llama3;
  }
  if (contains(tmpl, "<|im_start|>")) return ChatFamily::chatml;
  if (contains(tmpl, "[INST]")) return ChatFamily::mistral;
  if (impl.find("<|start_header_id|>") && impl.find("<|eot_id|>")) return ChatFamily::llama3;
  if (impl.find("<|im_start|>") && impl.find("<|im_end|>")) return ChatFamily::chatml;
  if (impl.find("[INST]") || (impl.find("<s>") && impl.find("</s>"))) return ChatFamily::mistral;
  return std::nullopt;
}

std::string format_chat(const TokenizerImpl& impl, ChatFamily family, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  if (messages.empty()) fail("chat: no messages to format");
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role.empty()) fail("chat: message {} has an empty role", i);
    if (find_invalid_utf8(messages[i].content)) fail("chat: message {} is not valid UTF-8", i);
  }
  switch (family) {
    case ChatFamily::llama3:
      require_tokens(impl, family, {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"});
      return format_llama3(impl, messages, add_generation_prompt);
    case ChatFamily::llama31:
      require_tokens(impl, family, {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"});
      return format_llama31(impl, messages, add_generation_prompt);
    case ChatFamily::mistral:
      // The layout has no generation prompt: the model answers right after [/INST].
      return format_mistral(impl, messages);
    case ChatFamily::chatml:
      require_tokens(impl, family, {"<|im_start|>", "<|im_end|>"});
      return format_chatml(messages, add_generation_prompt);
  }
  fail("chat: unknown family {}", static_cast<int>(family));
}

}  // namespace tokenizer_detail
}  // namespace dattn
