// dattn eval ruler | ppl | fidelity: accuracy, perplexity and per-layer fidelity of the prefill modes
// (docs/EVAL.md). ruler runs on the CPU or the GPU runtime; ppl and fidelity on the CPU runtime.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "attention_flags.h"
#include "flag_values.h"
#include "run_log.h"
#include "commands.h"
#include "model_dir_option.h"
#include "dattn/core/error.h"
#include "dattn/core/output_files.h"
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
  bool resume = false;
};

// `files`: what the command writes into --out, for its help. `log`: its run log, when it keeps one.
void add_common(CLI::App* cmd, CommonFlags& f, const std::string& default_out, const std::string& files,
                const std::string& log = "") {
  f.out = default_out;
  cmd->add_option("--model", f.model_dir, "model directory (config.json, *.safetensors, tokenizer.json), .gguf file or cached repo id")
      ->required()
      ->transform(model_dir_resolver());
  cmd->add_option("--attention", f.attention, "prefill modes to compare, comma-separated: dense,sparse,recompute,delta")
      ->capture_default_str();
  add_sparsity_flags(*cmd, f.sparsity);
  add_chunk_flag(*cmd, f.chunk);
  cmd->add_option("--adaptive-gap", f.adaptive_gap,
                  "ruler: delta layers whose anchor gap on a prompt's first chunk exceeds this prefill the rest densely "
                  "(0 = off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  add_threads_flag(*cmd, f.threads);
  cmd->add_option("--out", f.out, "directory for " + files + (log.empty() ? "" : " (and the run log " + log + ")"))
      ->capture_default_str();
  if (!log.empty())
    cmd->add_flag("--resume", f.resume,
                  "continue an interrupted run from --out/" + log + " (same flags): finished units are not run again");
}

// The output directory (created now) and its files, checked before any work.
std::filesystem::path prepare_outputs(const CommonFlags& f, OutputFiles& files,
                                      std::initializer_list<const char*> names) {
  const std::filesystem::path out = f.out;
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  DATTN_CHECK(!ec && std::filesystem::is_directory(out), "--out '{}': cannot create the directory: {}", f.out,
              ec ? ec.message() : std::string("not a directory"));
  for (const char* name : names) files.add("--out", out / name);
  return out;
}

// What a run log's first line holds: every flag that changes the results.
nlohmann::json common_settings(const CommonFlags& f) {
  return {{"model", f.model_dir},
          {"attention", f.attention},
          {"window", f.sparsity.window},
          {"sink", f.sparsity.sink},
          {"gamma", f.sparsity.gamma},
          {"pattern", f.sparsity.pattern},
          {"block_q", f.sparsity.block_q},
          {"block_k", f.sparsity.block_k},
          {"topk", f.sparsity.topk},
          {"correction", f.sparsity.correction},
          {"delta_variant", f.sparsity.delta_variant},
          {"adaptive_gap", f.adaptive_gap},
          {"chunk", model::prefill_chunk_or_default(f.chunk)}};
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
  ModelEvalOptions o;
  o.attention = f.sparsity.params(AttentionMode::dense);  // the mode is set per run
  validate_attention_params(o.attention);
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
  run.lengths = parse_int_list("--lengths", f.lengths, 1, int64_t(1) << 31);
  for (const std::string& t : split_list(f.tasks)) run.tasks.push_back(eval::parse_ruler_task(t));
  run.samples = f.samples;
  run.modes = parse_modes(f.common.sparsity.modes(f.common.attention));
  run.seed = f.seed;
  run.max_new_tokens = f.max_new_tokens;
  std::optional<eval::Haystack> haystack;
  if (!f.haystack_file.empty()) haystack = eval::Haystack::from_file(f.haystack_file);
  run.haystack = haystack ? &*haystack : nullptr;

  check_device(f.device);
  OutputFiles files;
  const std::filesystem::path out = prepare_outputs(f.common, files, {"results.json", "results.csv", "plot.svg"});
  eval::ProgressBar bar;
  const ModelEvalOptions options = eval_options(f.common, bar);
  const Tokenizer tokenizer = Tokenizer::load(f.common.model_dir);
  const model::ModelConfig config = model::load_model_config(f.common.model_dir);
  for (int64_t length : run.lengths) warn_past_model_context(config, length, "--lengths");
  nlohmann::json settings = common_settings(f.common);
  settings.update({{"eval", "ruler"}, {"lengths", run.lengths}, {"tasks", f.tasks}, {"samples", f.samples},
                   {"seed", f.seed}, {"max_new_tokens", f.max_new_tokens}, {"haystack", f.haystack_file},
                   {"device", f.device}});
  RunLog log(out / "records.jsonl", settings, f.common.resume);
  for (const std::string& line : log.previous_units()) run.finished.push_back(eval::parse_ruler_record_line(line));
  run.on_record = [&log](const eval::RulerRecord& r) { log.append(eval::ruler_record_line(r)); };
  eval::SessionFactory sessions;
  if (f.device == "cuda") {
    sessions = [dir = f.common.model_dir](const model::SessionOptions& options) {
      return model::make_cuda_session(dir, options);
    };
  } else {
    sessions = eval::cpu_sessions(model::Model::load(f.common.model_dir));
  }
  const auto records = eval::run_ruler(sessions, config, tokenizer, run, options);
  bar.finish();
  const auto cells = eval::summarize_ruler(records);
  fmt::print("{}", eval::format_ruler_table(cells));

  eval::RulerRunInfo info{f.common.model_dir, f.haystack_file.empty() ? "builtin (KJV narrative)" : f.haystack_file,
                          f.seed, f.common.sparsity.window, f.common.sparsity.sink, f.common.sparsity.gamma, f.device};
  files.stage(out / "results.json", {eval::ruler_json(info, records, cells)});
  files.stage(out / "results.csv", {eval::ruler_csv(cells)});
  files.stage(out / "plot.svg", {eval::ruler_plot_svg(cells, fmt::format("RULER, window {} sink {} gamma {}",
                                                                           f.common.sparsity.window,
                                                                           f.common.sparsity.sink,
                                                                           f.common.sparsity.gamma))});
  files.commit();
  fmt::print("wrote {}, {}, {}\n", (out / "results.json").string(), (out / "results.csv").string(),
             (out / "plot.svg").string());
}

// ---- ppl

struct PplFlags {
  CommonFlags common;
  std::string text_file;
  int64_t length = 4096;
};

nlohmann::json perplexity_json(const eval::PerplexityResult& r) {
  return {{"mode", mode_name(r.mode)},
          {"perplexity", r.perplexity},
          {"far_perplexity", r.far_tokens_scored ? nlohmann::json(r.far_perplexity) : nullptr},
          {"mean_nll", r.mean_nll},
          {"tokens_scored", r.tokens_scored},
          {"far_tokens_scored", r.far_tokens_scored},
          {"prefill_ms", r.prefill_ms}};
}

eval::PerplexityResult parse_perplexity_line(const std::string& line) {
  try {
    const nlohmann::json j = nlohmann::json::parse(line);
    eval::PerplexityResult r;
    r.mode = parse_mode(j.at("mode").get<std::string>());
    r.perplexity = j.at("perplexity").get<double>();
    r.far_perplexity = j.at("far_perplexity").is_null() ? std::nan("") : j.at("far_perplexity").get<double>();
    r.mean_nll = j.at("mean_nll").get<double>();
    r.tokens_scored = j.at("tokens_scored").get<int64_t>();
    r.far_tokens_scored = j.at("far_tokens_scored").get<int64_t>();
    r.prefill_ms = j.at("prefill_ms").get<double>();
    return r;
  } catch (const nlohmann::json::exception&) {
    fail("--resume: a line of the run log is not a perplexity result ({} bytes)", line.size());
  }
}

void run_ppl_command(const PplFlags& f) {
  const auto modes = parse_modes(f.common.sparsity.modes(f.common.attention));
  OutputFiles files;
  const std::filesystem::path out = prepare_outputs(f.common, files, {"ppl.json", "ppl.csv"});
  eval::ProgressBar bar;
  const ModelEvalOptions options = eval_options(f.common, bar);
  const Tokenizer tokenizer = Tokenizer::load(f.common.model_dir);
  std::vector<int32_t> ids = tokenizer.encode(read_input_text("--text", f.text_file), /*add_special_tokens=*/true);
  DATTN_CHECK(int64_t(ids.size()) >= f.length, "'{}' has {} tokens, fewer than --length {}", f.text_file, ids.size(),
              f.length);
  ids.resize(size_t(f.length));
  const auto model = model::Model::load(f.common.model_dir);
  warn_past_model_context(model->config(), f.length, "--length");
  nlohmann::json settings = common_settings(f.common);
  settings.update({{"eval", "ppl"}, {"text", f.text_file}, {"length", f.length}});
  RunLog log(out / "ppl.jsonl", settings, f.common.resume);
  std::vector<eval::PerplexityResult> finished;
  for (const std::string& line : log.previous_units()) finished.push_back(parse_perplexity_line(line));
  const auto results = eval::run_perplexity(model, ids, modes, options, finished, [&log](const auto& r) {
    log.append(perplexity_json(r).dump());
  });
  bar.finish();
  const int64_t far = saturating_add(f.common.sparsity.window, f.common.sparsity.sink);
  fmt::print("{:<10} {:>12} {:>14} {:>12} {:>12}\n", "mode", "perplexity", fmt::format("ppl@>={}", far), "nll/token",
             "prefill ms");
  nlohmann::json doc = {{"model", f.common.model_dir}, {"text", f.text_file}, {"length", f.length},
                        {"window", f.common.sparsity.window},   {"sink", f.common.sparsity.sink}, {"gamma", f.common.sparsity.gamma}};
  std::string csv = "mode,perplexity,far_perplexity,mean_nll,tokens_scored,far_tokens_scored,prefill_ms\n";
  for (const auto& r : results) {
    fmt::print("{:<10} {:>12.4f} {:>14.4f} {:>12.5f} {:>12.1f}\n", mode_name(r.mode), r.perplexity, r.far_perplexity,
               r.mean_nll, r.prefill_ms);
    doc["results"].push_back(perplexity_json(r));
    csv += fmt::format("{},{:.6f},{:.6f},{:.6f},{},{},{:.1f}\n", mode_name(r.mode), r.perplexity, r.far_perplexity,
                       r.mean_nll, r.tokens_scored, r.far_tokens_scored, r.prefill_ms);
  }
  files.stage(out / "ppl.json", {doc.dump(2) + "\n"});
  files.stage(out / "ppl.csv", {csv});
  files.commit();
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
  OutputFiles files;
  const std::filesystem::path out =
      prepare_outputs(f.common, files, {"fidelity.json", "fidelity.csv", "delta_transfer.csv", "fidelity.svg"});
  const Tokenizer tokenizer = Tokenizer::load(f.common.model_dir);
  std::string prompt;
  if (!f.prompt_file.empty()) {
    DATTN_CHECK(f.task.empty(), "give --prompt-file or --task, not both");
    prompt = read_input_text("--prompt-file", f.prompt_file);
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
  const ModelEvalOptions options = eval_options(f.common, bar);
  const auto model = model::Model::load(f.common.model_dir);
  warn_past_model_context(model->config(), int64_t(ids.size()), "the prompt");
  const auto result = eval::run_fidelity(*model, ids, modes, options);
  bar.finish();

  fmt::print("{} tokens; rows compared: [{}, {})\n", result.tokens, result.first_scored_row, result.tokens);
  fmt::print("{:>5} {:<10} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10} {:>12}\n", "layer", "mode", "attn cos",
             "attn relerr", "hidden cos", "hidden relerr", "gap mean", "gap max", "1-layer err");
  std::string csv =
      "layer,mode,attention_cosine,attention_relative_error,hidden_cosine,hidden_relative_error,anchor_gap_mean,"
      "anchor_gap_max_head,one_layer_attention_cosine,one_layer_attention_relative_error\n";
  nlohmann::json doc = common_settings(f.common);
  doc.update({{"eval", "fidelity"}, {"prompt_file", f.prompt_file}, {"task", f.task}, {"length", f.length},
              {"seed", f.seed}, {"tokens", result.tokens}, {"first_scored_row", result.first_scored_row}});
  std::vector<eval::PlotSeries> series;
  for (const auto& l : result.layers) {
    // the anchor gap exists for delta layers with anchors only
    const bool gap = l.anchor_gap.samples > 0;
    fmt::print("{:>5} {:<10} {:>12.6f} {:>12.6f} {:>12.6f} {:>12.6f} {:>10} {:>10} {:>12.6f}\n", l.layer,
               mode_name(l.mode), l.attention_cosine, l.attention_relative_error, l.hidden_cosine,
               l.hidden_relative_error, gap ? fmt::format("{:.4f}", l.anchor_gap.mean) : "-",
               gap ? fmt::format("{:.4f}", l.anchor_gap.max_head_mean) : "-", l.one_layer_attention_relative_error);
    csv += fmt::format("{},{},{:.8f},{:.8f},{:.8f},{:.8f},{},{},{:.8f},{:.8f}\n", l.layer, mode_name(l.mode),
                       l.attention_cosine, l.attention_relative_error, l.hidden_cosine, l.hidden_relative_error,
                       gap ? fmt::format("{:.6f}", l.anchor_gap.mean) : "",
                       gap ? fmt::format("{:.6f}", l.anchor_gap.max_head_mean) : "", l.one_layer_attention_cosine,
                       l.one_layer_attention_relative_error);
    doc["layers"].push_back({{"layer", l.layer}, {"mode", mode_name(l.mode)}, {"attention_cosine", l.attention_cosine},
                             {"attention_relative_error", l.attention_relative_error},
                             {"hidden_cosine", l.hidden_cosine}, {"hidden_relative_error", l.hidden_relative_error},
                             {"one_layer_attention_cosine", l.one_layer_attention_cosine},
                             {"one_layer_attention_relative_error", l.one_layer_attention_relative_error}});
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

  files.stage(out / "fidelity.json", {doc.dump(2) + "\n"});
  files.stage(out / "fidelity.csv", {csv});
  files.stage(out / "delta_transfer.csv", {transfer_csv});
  eval::PlotSpec spec;
  spec.title = fmt::format("cosine similarity to dense per layer ({} tokens)", result.tokens);
  spec.x_label = "layer";
  spec.y_label = "mean cosine similarity vs dense";
  spec.series = std::move(series);
  files.stage(out / "fidelity.svg", {eval::render_svg_line_plot(spec)});
  files.commit();
  fmt::print("wrote {}, {}, {}, {}\n", (out / "fidelity.json").string(), (out / "fidelity.csv").string(),
             (out / "fidelity.svg").string(), (out / "delta_transfer.csv").string());
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* eval_cmd = app.add_subcommand("eval", "evaluate prefill modes: RULER accuracy, perplexity, layer fidelity");
  eval_cmd->require_subcommand(1);

  auto rf = std::make_shared<RulerFlags>();
  auto* ruler = eval_cmd->add_subcommand("ruler", "RULER synthetic tasks (accuracy per task x length x mode)");
  add_common(ruler, rf->common, "eval-ruler", "results.json, results.csv and plot.svg", "records.jsonl");
  ruler->add_option("--lengths", rf->lengths, "target lengths in tokens, comma-separated")->capture_default_str();
  ruler->add_option("--tasks", rf->tasks, "tasks, comma-separated (default: all 11)");
  ruler->add_option("--samples", rf->samples, "samples per task and length")
      ->capture_default_str()
      ->check(int_range(1, 1000000));
  ruler->add_option("--seed", rf->seed, "seed of the task generators")->capture_default_str()->check(uint64_value());
  ruler->add_option("--max-new-tokens", rf->max_new_tokens, "tokens to generate (0 = RULER's per task)")
      ->capture_default_str()
      ->check(int_range(0, int64_t(1) << 20));
  ruler->add_option("--haystack", rf->haystack_file, "text file to use as haystack instead of the built-in one");
  ruler->add_option("--device", rf->device, "cpu|cuda (the GPU runtime: bf16 weights and KV cache)")
      ->capture_default_str();
  ruler->callback([rf] { run_ruler_command(*rf); });

  auto pf = std::make_shared<PplFlags>();
  auto* ppl = eval_cmd->add_subcommand("ppl", "perplexity of a text per prefill mode");
  add_common(ppl, pf->common, "eval-ppl", "ppl.json and ppl.csv", "ppl.jsonl");
  ppl->add_option("--text", pf->text_file, "text file (at least --length tokens; - reads stdin)")->required();
  ppl->add_option("--length", pf->length, "tokens scored (the first L tokens of the text)")
      ->capture_default_str()
      ->check(int_range(2, int64_t(1) << 31));
  ppl->callback([pf] { run_ppl_command(*pf); });

  auto ff = std::make_shared<FidelityFlags>();
  auto* fid = eval_cmd->add_subcommand("fidelity", "per-layer cosine / relative error vs dense");
  ff->common.attention = "sparse,recompute,delta";
  add_common(fid, ff->common, "eval-fidelity", "fidelity.json, fidelity.csv, delta_transfer.csv and fidelity.svg");
  fid->add_option("--prompt-file", ff->prompt_file, "prompt text file (- reads stdin)");
  fid->add_option("--task", ff->task, "or a RULER task to generate the prompt from, e.g. niah_single_2");
  fid->add_option("--length", ff->length, "target length of the generated prompt")
      ->capture_default_str()
      ->check(int_range(1, int64_t(1) << 31));
  fid->add_option("--seed", ff->seed, "seed of the generated prompt")->capture_default_str()->check(uint64_value());
  fid->callback([ff] { run_fidelity_command(*ff); });
}

}  // namespace dattn::cli
