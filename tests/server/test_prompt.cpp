// Chat messages to prompt ids: the model's own template when it has one, plain role lines when not.
#include <gtest/gtest.h>

#include "dattn/core/error.h"
#include "dattn/core/text_file.h"
#include "dattn/server/prompt.h"

namespace dattn::server {
namespace {

const std::string kModel = DATTN_SOURCE_DIR "/models/dattn-tiny-16k";

TEST(ChatPrompt, BaseModelGetsPlainRoleLines) {
  const Tokenizer t = Tokenizer::load(kModel);
  const ChatPrompt prompt(t);
  EXPECT_NE(prompt.describe().find("plain"), std::string::npos);
  EXPECT_EQ(prompt.encode({{"system", "be brief"}, {"user", "And God said"}}),
            t.encode("system: be brief\nuser: And God said\nassistant:", /*add_special_tokens=*/true));
}

TEST(ChatPrompt, TheModelsTemplateWins) {
  const std::string jinja =
      "{{ bos_token }}{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools') }}{% endif %}"
      "[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";
  const Tokenizer t = Tokenizer::from_json(read_text_file(kModel + "/tokenizer.json"),
                                           read_text_file(kModel + "/tokenizer_config.json"), {}, jinja);
  const ChatPrompt prompt(t);
  EXPECT_NE(prompt.describe().find("chat template"), std::string::npos);
  EXPECT_EQ(prompt.encode({{"user", "hi"}}), t.encode("<|begin_of_text|>[user]hi[assistant]", false));
  EXPECT_THROW(prompt.encode({{"tool", "x"}}), Error);  // the template's own refusal: a 400 for the client
}

}  // namespace
}  // namespace dattn::server
