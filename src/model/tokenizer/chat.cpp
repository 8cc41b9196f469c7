// Chat prompts in the built-in layouts (llama3, llama31, mistral, chatml), rendered by the template
// interpreter, and the family detection that picks one for models without a template.
#include "dattn/core/error.h"
#include "tokenizer_impl.h"

namespace dattn::tokenizer_detail {
namespace {

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

void require_tokens(const TokenizerImpl& impl, ChatFamily family, std::initializer_list<std::string_view> tokens) {
  for (const std::string_view token : tokens) {
    if (!impl.find(token)) {
      fail("chat family {} needs the token {}, which this tokenizer does not have", chat_family_name(family), token);
    }
  }
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
  switch (family) {
    case ChatFamily::llama3:
    case ChatFamily::llama31: require_tokens(impl, family, {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}); break;
    case ChatFamily::chatml: require_tokens(impl, family, {"<|im_start|>", "<|im_end|>"}); break;
    case ChatFamily::mistral: break;
  }
  // BOS is the token the tokenizer puts first (configured or from the post-processor).
  ChatSpecialTokens tokens;
  if (impl.bos_id) tokens.bos_token = impl.token_by_id[*impl.bos_id];
  tokens.eos_token = impl.eos_token;
  return render_chat(ChatTemplate::builtin(family, tokens), messages, add_generation_prompt);
}

}  // namespace dattn::tokenizer_detail
