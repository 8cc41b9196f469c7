// `dattn logits`: float32 logits of every position of a token sequence, written as (n_tokens, vocab) .npy.
#include <filesystem>

#include <fmt/format.h>

#include "attention_flags.h"
#include "commands.h"
#include "model_dir_option.h"
#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
#include "dattn/io/npy.h"
#include "dattn/model/session.h"
#include "dattn/model/tokenizer.h"

namespace dattn::cli {
namespace {

struct LogitsFlags {
  std::string model_dir, text, ids, out;
  PrefillFlags prefill;
  int threads = 0;
};

void run_logits(const LogitsFlags& f) {
  check_device(f.prefill.device);
  const model::AttentionPlan plan = attention_plan(f.prefill);

  // --ids are used exactly as given; --text is encoded as transformers' tokenizer(text) does (BOS added)
  std::vector<int32_t> ids =
      f.ids.empty() ? Tokenizer::load(f.model_dir).encode(f.text, /*add_special_tokens=*/true) : parse_token_ids(f.ids);
  DATTN_CHECK(!ids.empty(), "--text encodes to no tokens");

  model::SessionOptions options;
  options.context = int64_t(ids.size());
  options.chunk_size = prefill_chunk(f.prefill);
  options.attention = plan;
  options.num_threads = f.threads;
  std::unique_ptr<model::InferenceSession> session = open_session(f.prefill.device, f.model_dir, options);
  std::vector<float> logits = session->prefill(ids, {.all_logits = true});
  const int64_t vocab = int64_t(logits.size() / ids.size());
  npy::save_f32(f.out, {int64_t(ids.size()), vocab}, logits.data());
  fmt::print(stderr, "wrote {} ({} tokens x {} vocab, float32)\n", f.out, ids.size(), vocab);
}

}  // namespace

void add_logits_command(CLI::App& app) {
  auto f = std::make_shared<LogitsFlags>();
  CLI::App* cmd = app.add_subcommand("logits", "Write the logits of every position as a (n_tokens, vocab) .npy");
  cmd->add_option("--model", f->model_dir, "model directory (config.json, *.safetensors)")
      ->required()
      ->transform(model_dir_resolver());
  auto* text = cmd->add_option("--text", f->text, "text, encoded with the model's tokenizer (BOS added)");
  auto* ids = cmd->add_option("--ids", f->ids, "token ids used as given, e.g. 1,2,3");
  text->excludes(ids);
  ids->excludes(text);
  cmd->add_option("--out", f->out, "output .npy")->required();
  add_prefill_flags(*cmd, f->prefill);
  cmd->add_option("--threads", f->threads, "CPU threads (0 = all cores)");
  cmd->callback([f, text, ids] {
    DATTN_CHECK(text->count() + ids->count() == 1, "give the input with --text or --ids");
    run_logits(*f);
  });
}

}  // namespace dattn::cli
