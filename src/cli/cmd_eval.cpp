// dattn eval ruler | ppl | fidelity: accuracy, perplexity and per-layer fidelity of the prefill modes
// (docs/EVAL.md). ruler runs on the CPU or the GPU runtime; ppl and fidelity on the CPU runtime.
#include <algorithm>
#include <filesystem>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "attention_flags.h"
#include "commands.h"
#include "dattn/core/error.h"
#include "dattn/core/text_file.h"
#include "dattn/eval/model_eval.h"
#include "dattn/eval/progress_bar.h"
#include "dattn/eval/ruler_results.h"
#include "dattn/eval/svg_plot.h"
#include "dattn/model/config.h"
#include "dattn/model/cuda_session.h"

namespace dattn::cli {

namespace {

using eval::ModelEvalOptions;

struct CommonFlags {
  std::string model_dir;
  std::string attention = "dense,sparse,delta";
  SparsityFlags sparsity;
  int64_t chunk = 0;
  double adaptive_gap = 0;
  int threads = 0;
  std::string out;
};

void add_common(CLI::App* cmd, CommonFlags& f, const std::string& default_out) {
  f.out = default_out;
  cmd->add_option("--model", f.model_dir, "model directory (config.json, *.safetensors, tokenizer.json)")->required();
  cmd->add_option("--attention", f.attention, "prefill modes to compare, comma-separated: dense,sparse,recompute,delta")
      ->capture_default_str();
  add_sparsity_flags(*cmd, f.sparsity);
  cmd->add_option("--chunk", f.chunk, "prefill chunk size in tokens (0 = whole prompt at once)")->capture_default_str();
  cmd->add_option("--adaptive-gap", f.adaptive_gap,
                  "ruler: delta layers whose anchor gap on a prompt's first chunk exceeds this prefill the rest densely "
                  "(0 = off)")
      ->capture_default_str();
  cmd->add_option("--threads", f.threads, "CPU threads (0 = all cores)");
  cmd->add_option("--out", f.out, "directory for results.json, results.csv and plot.svg")->capture_default_str();
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) items.push_back(item);
  return items;
}

std::vector<AttentionMode> parse_modes(const std::string& text) { return parse_mode_list(text); }

ModelEvalOptions eval_options(const CommonFlags& f, eval::ProgressBar& bar) {
  const SparsityFlags& sp = f.sparsity;
  DATTN_CHECK(sp.window >= 1 && sp.sink >= 0 && sp.gamma >= 1, "need --window >= 1, --sink >= 0, --gamma >= 1");
  ModelEvalOptions o;
  o.attention = sp.params(AttentionMode::dense);  // the mode is set per run
  o.chunk_size = f.chunk;
  o.adaptive_gap_threshold = f.adaptive_gap;
  o.num_threads = f.threads;
  o.on_progress = [&bar](const eval::EvalProgress& p) { bar.update(p); };
  return o;
}

// ---- ruler

struct RulerFlags {
  CommonFlags common;
  std::string lengths = "4096,8192,16384";
  std::string tasks;
  int64_t samples = 10;
  uint64_t seed = 42;
  int64_t max_new_tokens = 0;
  std::string haystack_file;
  std::string device = "cpu";
};

void run_ruler_command(const RulerFlags& f) {
  eval::RulerRunOptions run;
  run.lengths.clear();
  for (const std::string& l : split_list(f.lengths)) {
    const int64_t length = std::stoll(l);
    DATTN_CHECK(length > 0, "--lengths: {} is not a positive length", l);
    run.lengths.push_back(length);
  }
  for (const std::string& t : split_list(f.tasks)) run.tasks.push_back(eval::parse_ruler_task(t));
  run.samples = f.samples;
  run.modes = parse_modes(f.common.sparsity.modes(f.common.attention));
  run.seed = f.seed;
  run.max_new_tokens = f.max_new_tokens;
  std::optional<eval::Haystack> haystack;
  if (!f.haystack_file.empty()) haystack = eval::Haystack::from_file(f.haystack_file);
  run.haystack = haystack ? &*haystack : nullptr;

  check_device(f.device);
  DATTN_CHECK(f.device == "cpu" || f.common.adaptive_gap == 0,
              "--adaptive-gap needs the anchor gap, which only the cpu runtime measures (--device cpu)");
  const Tokenizer tokenizer = Tokenizer::load(f.common.model_dir);
  const model::ModelConfig config = model::load_model_config(f.common.model_dir);
  eval::SessionFactory sessions;
  if (f.device == "cuda") {
    sessions = [dir = f.common.model_dir](const model::SessionOptions& options) {
      return model::make_cuda_session(dir, options);
    };
  } else {
    sessions = eval::cpu_sessions(model::Model::load(f.common.model_dir));
  }
  eval::ProgressBar bar;
  const auto records = eval::run_ruler(sessions, config, tokenizer, run, eval_options(f.common, bar));
  bar.finish();
  const auto cells = eval::summarize_ruler(records);
  fmt::print("{}", eval::format_ruler_table(cells));

  const std::filesystem::path out = f.common.out;
  eval::RulerRunInfo info{f.common.model_dir, f.haystack_file.empty() ? "builtin (KJV narrative)" : f.haystack_file,
                          f.seed, f.common.sparsity.window, f.common.sparsity.sink, f.common.sparsity.gamma, f.device};
  eval::write_ruler_json(out / "results.json", info, records, cells);
  eval::write_ruler_csv(out / "results.csv", cells);
  eval::write_ruler_plot(out / "plot.svg", cells,
                         fmt::format("RULER, window {} sink {} gamma {}", f.common.sparsity.window, f.common.sparsity.sink, f.common.sparsity.gamma));
  fmt::print("wrote {}, {}, {}\n", (out / "results.json").string(), (out / "results.csv").string(),
             (out / "plot.svg").string());
}

// ---- ppl

struct PplFlags {
  CommonFlags common;
  std::string text_file;
  int64_t length = 4096;
};

void run_ppl_command(const PplFlags& f) {
  const Tokenizer tokenizer = Tokenizer::load(f.common.model_dir);
  std::vector<int32_t> ids = tokenizer.encode(read_text_file(f.text_file), /*add_special_tokens=*/true);
  DATTN_CHECK(int64_t(ids.size()) >= f.length, "'{}' has {} tokens, fewer than --length {}", f.text_file, ids.size(),
              f.length);
  ids.resize(size_t(f.length));
  const auto modes = parse_modes(f.common.sparsity.modes(f.common.attention));
  eval::ProgressBar bar;
  const auto results =
      eval::run_perplexity(model::Model::load(f.common.model_dir), ids, modes, eval_options(f.common, bar));
  bar.finish();
  const int64_t far = f.common.sparsity.window + f.common.sparsity.sink;
  fmt::print("{:<10} {:>12} {:>14} {:>12} {:>12}\n", "mode", "perplexity", fmt::format("ppl@>={}", far), "nll/token",
             "prefill ms");
  nlohmann::json doc = {{"model", f.common.model_dir}, {"text", f.text_file}, {"length", f.length},
                        {"window", f.common.sparsity.window},   {"sink", f.common.sparsity.sink}, {"gamma", f.common.sparsity.gamma}};
  std::string csv = "mode,perplexity,far_perplexity,mean_nll,tokens_scored,far_tokens_scored,prefill_ms\n";
  for (const auto& r : results) {
    fmt::print("{:<10} {:>12.4f} {:>14.4f} {:>12.5f} {:>12.1f}\n", mode_name(r.mode), r.perplexity, r.far_perplexity,
               r.mean_nll, r.prefill_ms);
    doc["results"].push_back({{"mode", mode_name(r.mode)},
                              {"perplexity", r.perplexity},
                              {"far_perplexity", r.far_tokens_scored ? nlohmann::json(r.far_perplexity) : nullptr},
                              {"mean_nll", r.mean_nll},
                              {"tokens_scored", r.tokens_scored},
                              {"far_tokens_scored", r.far_tokens_scored},
                              {"prefill_ms", r.prefill_ms}});
    csv += fmt::format("{},{:.6f},{:.6f},{:.6f},{},{},{:.1f}\n", mode_name(r.mode), r.perplexity, r.far_perplexity,
                       r.mean_nll, r.tokens_scored, r.far_tokens_scored, r.prefill_ms);
  }
  const std::filesystem::path out = f.common.out;
  eval::write_text_file(out / "ppl.json", doc.dump(2) + "\n");
  eval::write_text_file(out / "ppl.csv", csv);
  fmt::print("wrote {}, {}\n", (out / "ppl.json").string(), (out / "ppl.csv").string());
}

// ---- fidelity

struct FidelityFlags {
  CommonFlags common;
  std::string prompt_file;
  std::string task;
  int64_t length = 8192;
  uint64_t seed = 42;
};

void run_fidelity_command(const FidelityFlags& f) {
  const Tokenizer tokenizer = Tokenizer::load(f.common.model_dir);
  std::string prompt;
  if (!f.prompt_file.empty()) {
    DATTN_CHECK(f.task.empty(), "give --prompt-file or --task, not both");
    prompt = read_text_file(f.prompt_file);
  } else {
    DATTN_CHECK(!f.task.empty(), "give --prompt-file F or --task NAME --length L");
    eval::TokenizerCounter counter(tokenizer);
    prompt = eval::generate_ruler_sample(eval::parse_ruler_task(f.task), 0,
                                         {.target_length = f.length, .seed = f.seed}, counter)
                 .input;
  }
  const std::vector<int32_t> ids = tokenizer.encode(prompt, /*add_special_tokens=*/true);
  std::vector<AttentionMode> modes;
  for (AttentionMode m : parse_modes(f.common.sparsity.modes(f.common.attention)))
    if (m != AttentionMode::dense) modes.push_back(m);
  DATTN_CHECK(!modes.empty(), "--attention needs a mode other than dense to compare with dense");
  eval::ProgressBar bar;
  const auto model = model::Model::load(f.common.model_dir);
  const auto result = eval::run_fidelity(*model, ids, modes, eval_options(f.common, bar));
  bar.finish();

  fmt::print("{} tokens; rows compared: [{}, {})\n", result.tokens, result.first_scored_row, result.tokens);
  fmt::print("{:>5} {:<10} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10}\n", "layer", "mode", "attn cos", "attn relerr",
             "hidden cos", "hidden relerr", "gap mean", "gap max");
  std::string csv =
      "layer,mode,attention_cosine,attention_relative_error,hidden_cosine,hidden_relative_error,anchor_gap_mean,"
      "anchor_gap_max_head\n";
  nlohmann::json doc = {{"model", f.common.model_dir}, {"tokens", result.tokens},
                        {"first_scored_row", result.first_scored_row}, {"window", f.common.sparsity.window},
                        {"sink", f.common.sparsity.sink}, {"gamma", f.common.sparsity.gamma}};
  std::vector<eval::PlotSeries> series;
  for (const auto& l : result.layers) {
    // the anchor gap exists for delta layers with anchors only
    const bool gap = l.anchor_gap.samples > 0;
    fmt::print("{:>5} {:<10} {:>12.6f} {:>12.6f} {:>12.6f} {:>12.6f} {:>10} {:>10}\n", l.layer, mode_name(l.mode),
               l.attention_cosine, l.attention_relative_error, l.hidden_cosine, l.hidden_relative_error,
               gap ? fmt::format("{:.4f}", l.anchor_gap.mean) : "-",
               gap ? fmt::format("{:.4f}", l.anchor_gap.max_head_mean) : "-");
    csv += fmt::format("{},{},{:.8f},{:.8f},{:.8f},{:.8f},{},{}\n", l.layer, mode_name(l.mode), l.attention_cosine,
                       l.attention_relative_error, l.hidden_cosine, l.hidden_relative_error,
                       gap ? fmt::format("{:.6f}", l.anchor_gap.mean) : "",
                       gap ? fmt::format("{:.6f}", l.anchor_gap.max_head_mean) : "");
    doc["layers"].push_back({{"layer", l.layer}, {"mode", mode_name(l.mode)}, {"attention_cosine", l.attention_cosine},
                             {"attention_relative_error", l.attention_relative_error},
                             {"hidden_cosine", l.hidden_cosine}, {"hidden_relative_error", l.hidden_relative_error}});
    if (gap)
      doc["layers"].back()["anchor_gap"] = {{"mean", l.anchor_gap.mean}, {"max_head_mean", l.anchor_gap.max_head_mean}};
    for (const char* what : {"attention", "hidden"}) {
      const std::string name = std::string(mode_name(l.mode)) + " " + what;
      auto it = std::find_if(series.begin(), series.end(), [&](const auto& s) { return s.name == name; });
      if (it == series.end()) it = series.insert(series.end(), eval::PlotSeries{name, {}, {}});
      it->x.push_back(double(l.layer));
      it->y.push_back(std::string(what) == "attention" ? l.attention_cosine : l.hidden_cosine);
    }
  }
  // the paper's premise: how well the Δ of a row o rows earlier corrects a row (dense run's q, k, v)
  fmt::print("\nΔ transfer: ||Δ_i - Δ_(i-o)|| / ||Δ_i|| per layer (0 = perfect correction, 1 = no gain, > 1 = worse)\n");
  fmt::print("{:>5}", "layer");
  for (int64_t o : eval::kDeltaTransferOffsets) fmt::print(" {:>8}", fmt::format("o={}", o));
  fmt::print("\n");
  std::string transfer_csv = "layer";
  for (int64_t o : eval::kDeltaTransferOffsets) transfer_csv += fmt::format(",offset_{}", o);
  transfer_csv += "\n";
  for (size_t layer = 0; layer < result.delta_transfer.size(); ++layer) {
    fmt::print("{:>5}", layer);
    transfer_csv += std::to_string(layer);
    for (double r : result.delta_transfer[layer]) {
      fmt::print(" {:>8.4f}", r);
      transfer_csv += fmt::format(",{:.6f}", r);
    }
    fmt::print("\n");
    transfer_csv += "\n";
    doc["delta_transfer"].push_back({{"layer", layer}, {"residual", result.delta_transfer[layer]}});
  }
  doc["delta_transfer_offsets"] = std::vector<int64_t>(std::begin(eval::kDeltaTransferOffsets),
                                                       std::end(eval::kDeltaTransferOffsets));

  const std::filesystem::path out = f.common.out;
  eval::write_text_file(out / "fidelity.json", doc.dump(2) + "\n");
  eval::write_text_file(out / "fidelity.csv", csv);
  eval::write_text_file(out / "delta_transfer.csv", transfer_csv);
  eval::PlotSpec spec;
  spec.title = fmt::format("cosine similarity to dense per layer ({} tokens)", result.tokens);
  spec.x_label = "layer";
  spec.y_label = "mean cosine similarity vs dense";
  spec.series = std::move(series);
  eval::write_text_file(out / "fidelity.svg", eval::render_svg_line_plot(spec));
  fmt::print("wrote {}, {}, {}, {}\n", (out / "fidelity.json").string(), (out / "fidelity.csv").string(),
             (out / "fidelity.svg").string(), (out / "delta_transfer.csv").string());
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* eval_cmd = app.add_subcommand("eval", "evaluate prefill modes: RULER accuracy, perplexity, layer fidelity");
  eval_cmd->require_subcommand(1);

  auto rf = std::make_shared<RulerFlags>();
  auto* ruler = eval_cmd->add_subcommand("ruler", "RULER synthetic tasks (accuracy per task x length x mode)");
  add_common(ruler, rf->common, "eval-ruler");
  ruler->add_option("--lengths", rf->lengths, "target lengths in tokens, comma-separated")->capture_default_str();
  ruler->add_option("--tasks", rf->tasks, "tasks, comma-separated (default: all 11)");
  ruler->add_option("--samples", rf->samples, "samples per task and length")->capture_default_str();
  ruler->add_option("--seed", rf->seed, "seed of the task generators")->capture_default_str();
  ruler->add_option("--max-new-tokens", rf->max_new_tokens, "tokens to generate (0 = RULER's per task)")
      ->capture_default_str();
  ruler->add_option("--haystack", rf->haystack_file, "text file to use as haystack instead of the built-in one");
  ruler->add_option("--device", rf->device, "cpu|cuda (the GPU runtime: bf16 weights and KV cache)")
      ->capture_default_str();
  ruler->callback([rf] { run_ruler_command(*rf); });

  auto pf = std::make_shared<PplFlags>();
  auto* ppl = eval_cmd->add_subcommand("ppl", "perplexity of a text per prefill mode");
  add_common(ppl, pf->common, "eval-ppl");
  ppl->add_option("--text", pf->text_file, "text file (at least --length tokens)")->required();
  ppl->add_option("--length", pf->length, "tokens scored (the first L tokens of the text)")->capture_default_str();
  ppl->callback([pf] { run_ppl_command(*pf); });

  auto ff = std::make_shared<FidelityFlags>();
  auto* fid = eval_cmd->add_subcommand("fidelity", "per-layer cosine / relative error vs dense");
  ff->common.attention = "sparse,recompute,delta";
  add_common(fid, ff->common, "eval-fidelity");
  fid->add_option("--prompt-file", ff->prompt_file, "prompt text file");
  fid->add_option("--task", ff->task, "or a RULER task to generate the prompt from, e.g. niah_single_2");
  fid->add_option("--length", ff->length, "target length of the generated prompt")->capture_default_str();
  fid->add_option("--seed", ff->seed, "seed of the generated prompt")->capture_default_str();
  fid->callback([ff] { run_fidelity_command(*ff); });
}

}  // namespace dattn::cli
