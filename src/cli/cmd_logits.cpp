// `dattn logits`: float32 logits of every position of a token sequence, written as (n_tokens, vocab) .npy.
#include <filesystem>

#include <fmt/format.h>

#include "attention_flags.h"
#include "commands.h"
#include "model_dir_option.h"
#include "dattn/attn/params.h"
#include "dattn/core/error.h"
#include "dattn/core/output_files.h"
#include "dattn/io/npy.h"
#include "dattn/model/config.h"
#include "dattn/model/session.h"
#include "dattn/model/tokenizer.h"

namespace dattn::cli {
namespace {

struct LogitsFlags {
  std::string model_dir, text, ids, out;
  PrefillFlags prefill;
  int threads = 0;
};

void run_logits(const LogitsFlags& f, bool ids_given) {
  check_device(f.prefill.device);
  const model::AttentionPlan plan = attention_plan(f.prefill);
  OutputFiles files;
  files.add("--out", f.out);

  // --ids are used exactly as given (an empty list is refused); --text is encoded as transformers'
  // tokenizer(text) does (BOS added)
  std::vector<int32_t> ids =
      ids_given ? parse_token_ids(f.ids) : Tokenizer::load(f.model_dir).encode(f.text, /*add_special_tokens=*/true);
  DATTN_CHECK(!ids.empty(), "--text encodes to no tokens");
  warn_past_model_context(model::load_model_config(f.model_dir), int64_t(ids.size()), "the input");

  model::SessionOptions options;
  options.context = int64_t(ids.size());
  options.chunk_size = prefill_chunk(f.prefill);
  options.attention = plan;
  options.num_threads = f.threads;
  std::unique_ptr<model::InferenceSession> session = open_session(f.prefill.device, f.model_dir, options);
  model::PrefillOptions all_rows;
  all_rows.all_logits = true;
  std::vector<float> logits = session->prefill(ids, all_rows);
  const int64_t vocab = int64_t(logits.size() / ids.size());
  files.stage(f.out, {npy::file_header(npy::ElementType::f32, {int64_t(ids.size()), vocab}),
                      npy::byte_view(logits.data(), logits.size() * sizeof(float))});
  files.commit();
  fmt::print(stderr, "wrote {} ({} tokens x {} vocab, float32)\n", f.out, ids.size(), vocab);
}

}  // namespace

void add_logits_command(CLI::App& app) {
  auto f = std::make_shared<LogitsFlags>();
  CLI::App* cmd = app.add_subcommand("logits", "Write the logits of every position as a (n_tokens, vocab) .npy");
  cmd->add_option("--model", f->model_dir, "model directory (config.json, *.safetensors) or a .gguf file")
      ->required()
      ->transform(model_dir_resolver());
  auto* text = cmd->add_option("--text", f->text, "text, encoded with the model's tokenizer (BOS added)");
  auto* ids = cmd->add_option("--ids", f->ids, "token ids used as given, e.g. 1,2,3");
  text->excludes(ids);
  ids->excludes(text);
  cmd->add_option("--out", f->out, "output .npy")->required();
  add_prefill_flags(*cmd, f->prefill);
  add_threads_flag(*cmd, f->threads);
  cmd->callback([f, text, ids] {
    DATTN_CHECK(text->count() + ids->count() == 1, "give the input with --text or --ids");
    run_logits(*f, ids->count() > 0);
  });
}

}  // namespace dattn::cli
