// The model-running evaluations on a tiny random Llama fixture (tests/fixtures/models/llama3_tied_sharded):
// they run and write their results (accuracy is meaningless for random weights), the fidelity probe
// reproduces the runtime's logits in every mode, and the spec's invariants show in the metrics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dattn/core/error.h"
#include "dattn/eval/model_eval.h"
#include "dattn/model/session.h"

namespace dattn::eval {
namespace {

const std::filesystem::path kModelDir = DATTN_SOURCE_DIR "/tests/fixtures/models/llama3_tied_sharded";

std::shared_ptr<const model::Model> fixture_model() {
  static const auto model = model::Model::load(kModelDir);
  return model;
}
const Tokenizer& fixture_tokenizer() {
  static const Tokenizer tok = Tokenizer::load(kModelDir);
  return tok;
}

ModelEvalOptions small_window_options(int64_t chunk) {
  ModelEvalOptions o;
  o.attention.window = 32;
  o.attention.sink = 8;
  o.attention.gamma = 8;
  o.chunk_size = chunk;
  o.num_threads = 1;  // a tiny model: threads only add overhead
  return o;
}

std::vector<int32_t> prompt_ids(int64_t n) {
  std::vector<int32_t> ids = fixture_tokenizer().encode(Haystack::builtin().first_words(n), true);
  ids.resize(size_t(n));
  return ids;
}

double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, r = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    r += double(b[i]) * b[i];
  }
  return std::sqrt(d / r);
}

TEST(EvalEndToEnd, RulerRunsEveryCellAndScoresIt) {
  RulerRunOptions run;
  run.lengths = {512, 640};
  run.tasks = {RulerTask::niah_single_1, RulerTask::niah_multikey_2, RulerTask::fwe};
  run.samples = 1;
  run.modes = {AttentionMode::dense, AttentionMode::sparse, AttentionMode::delta};
  run.max_new_tokens = 3;
  int progress_calls = 0;
  ModelEvalOptions options = small_window_options(0);
  options.on_progress = [&](const EvalProgress& p) {
    ++progress_calls;
    EXPECT_LE(p.done, p.total);
  };
  const auto records = run_ruler(fixture_model(), fixture_tokenizer(), run, options);
  ASSERT_EQ(records.size(), 2u * 3 * 1 * 3);
  EXPECT_GT(progress_calls, int(records.size()));
  for (const RulerRecord& r : records) {
    EXPECT_LE(r.prompt_tokens, r.length);
    EXPECT_GT(r.prompt_tokens, r.length / 2) << "prompt not fitted: " << r.task;
    EXPECT_GE(r.score, 0.0);
    EXPECT_LE(r.score, 1.0);
    EXPECT_LE(r.generated_tokens, 3);
    EXPECT_FALSE(r.references.empty());
  }
  // each sample is the same prompt in every mode
  EXPECT_EQ(records[0].prompt_tokens, records[1].prompt_tokens);
  EXPECT_EQ(records[0].references, records[2].references);
  EXPECT_EQ(records[0].mode, "dense");
  EXPECT_EQ(records[2].mode, "delta");
  const auto cells = summarize_ruler(records);
  EXPECT_EQ(cells.size(), 3u * 2 * 3 + 2 * 3);
}

TEST(EvalEndToEnd, FidelityProbeReproducesTheRuntimeLogitsInEveryMode) {
  const auto ids = prompt_ids(300);
  const std::vector<AttentionMode> modes{AttentionMode::sparse, AttentionMode::recompute, AttentionMode::delta};
  const ModelEvalOptions options = small_window_options(160);  // continued prefill: two chunks
  const FidelityResult probe = run_fidelity(*fixture_model(), ids, modes, options);
  ASSERT_EQ(probe.last_logits.size(), 4u);
  std::vector<AttentionMode> all{AttentionMode::dense};
  all.insert(all.end(), modes.begin(), modes.end());
  for (size_t i = 0; i < all.size(); ++i) {
    model::SessionOptions so;
    so.context = int64_t(ids.size());
    so.chunk_size = 160;
    so.attention.params = options.attention;
    so.attention.params.mode = all[i];
    model::Session session(fixture_model(), so);
    const std::vector<float> logits = session.prefill(ids);
    EXPECT_LT(relative_difference(probe.last_logits[i], logits), 1e-5) << mode_name(all[i]);
  }
  ASSERT_EQ(probe.layers.size(), size_t(fixture_model()->config().num_layers) * modes.size());
  EXPECT_EQ(probe.first_scored_row, 40);
  ASSERT_EQ(probe.delta_transfer.size(), size_t(fixture_model()->config().num_layers));
  for (const auto& layer : probe.delta_transfer) {
    ASSERT_EQ(layer.size(), std::size(kDeltaTransferOffsets));
    for (double r : layer) EXPECT_TRUE(std::isfinite(r) && r > 0.0) << r;
  }
  for (const LayerFidelity& l : probe.layers) {
    EXPECT_LT(l.attention_cosine, 1.0 - 1e-6) << "a 32-key window must change attention";
    EXPECT_GT(l.attention_relative_error, 1e-4);
    EXPECT_GT(l.hidden_cosine, 0.0);
    EXPECT_GT(l.one_layer_attention_relative_error, 1e-4);
    // layer 0 sees the same embeddings in every stream: its one-layer error is its whole error (same
    // computation on the same data; 1e-12 only for the summation in double)
    if (l.layer == 0) {
      EXPECT_NEAR(l.one_layer_attention_relative_error, l.attention_relative_error, 1e-12) << mode_name(l.mode);
      EXPECT_NEAR(l.one_layer_attention_cosine, l.attention_cosine, 1e-12) << mode_name(l.mode);
    }
  }
  // sparse's one-layer error is ||Δ|| / ||dense||: the transfer residual's denominator, never zero here
  for (const LayerFidelity& l : probe.layers)
    if (l.mode == AttentionMode::recompute) {
      const auto sparse = std::find_if(probe.layers.begin(), probe.layers.end(), [&](const LayerFidelity& s) {
        return s.layer == l.layer && s.mode == AttentionMode::sparse;
      });
      EXPECT_LT(l.one_layer_attention_relative_error, sparse->one_layer_attention_relative_error)
          << "recompute's exact anchors and tail on the same inputs can only remove error, layer " << l.layer;
    }
}

// Hand-made Δ sequences with known answers (2 rows compared from first_row 1, 2 heads of 2 dims).
TEST(DeltaTransfer, ResidualsOfKnownSequences) {
  const int64_t rows = 6, heads = 2, d = 2, width = heads * d;
  const std::vector<int64_t> offsets{1, 2, 3};
  auto residuals = [&](const std::vector<float>& delta_per_row) {  // Δ of each row, the same in every lane
    std::vector<float> dense(size_t(rows * width)), sparse(dense.size(), 0.5f);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t c = 0; c < width; ++c) dense[size_t(i * width + c)] = 0.5f + delta_per_row[size_t(i)];
    return delta_transfer_residuals(dense, sparse, rows, heads, d, 1, offsets);
  };
  // a constant Δ transfers perfectly; no Δ at all gives 0 (nothing to correct)
  for (double r : residuals({3, 3, 3, 3, 3, 3})) EXPECT_DOUBLE_EQ(r, 0.0);
  for (double r : residuals({0, 0, 0, 0, 0, 0})) EXPECT_DOUBLE_EQ(r, 0.0);
  // alternating sign: one row back is twice as wrong as no correction, two rows back is exact
  const auto alternating = residuals({1, -1, 1, -1, 1, -1});
  EXPECT_DOUBLE_EQ(alternating[0], 2.0);
  EXPECT_DOUBLE_EQ(alternating[1], 0.0);
  EXPECT_DOUBLE_EQ(alternating[2], 2.0);
  // Δ only on the last row: its own residual is 1 (the row o back has no Δ); rows before it count 0
  const auto last_only = residuals({0, 0, 0, 0, 0, 2});
  for (double r : last_only) EXPECT_DOUBLE_EQ(r, 1.0);
  // rows before first_row never enter: with first_row 1 and offset 3 the pairs are (4,1) and (5,2)
  EXPECT_DOUBLE_EQ(residuals({100, 1, 1, 1, 1, 1})[2], 0.0);
  std::vector<float> too_short(3);
  EXPECT_THROW(delta_transfer_residuals(too_short, too_short, rows, heads, d, 1, offsets), Error);
}

TEST(EvalEndToEnd, FidelityIsExactWhereTheSpecSaysModesEqualDense) {
  const auto ids = prompt_ids(200);
  ModelEvalOptions options = small_window_options(0);
  options.attention.window = 4096;  // sparse with window >= n is dense
  options.attention.gamma = 1;      // delta with gamma 1 is dense
  const std::vector<AttentionMode> modes{AttentionMode::sparse, AttentionMode::delta};
  const FidelityResult probe = run_fidelity(*fixture_model(), ids, modes, options);
  EXPECT_EQ(probe.first_scored_row, 0);
  ASSERT_EQ(probe.delta_transfer.size(), size_t(fixture_model()->config().num_layers));
  for (const auto& layer : probe.delta_transfer)
    for (double r : layer) EXPECT_EQ(r, 0.0) << "sparse equals dense here: no Δ to transfer";
  for (const LayerFidelity& l : probe.layers) {
    EXPECT_NEAR(l.attention_cosine, 1.0, 1e-6) << mode_name(l.mode) << " layer " << l.layer;
    EXPECT_LT(l.hidden_relative_error, 1e-5) << mode_name(l.mode) << " layer " << l.layer;
    EXPECT_LT(l.one_layer_attention_relative_error, 1e-5) << mode_name(l.mode) << " layer " << l.layer;
  }
}

TEST(EvalEndToEnd, PerplexityIsFiniteAndChunkingDoesNotChangeDense) {
  const auto ids = prompt_ids(256);
  const std::vector<AttentionMode> modes{AttentionMode::dense, AttentionMode::sparse};
  const auto whole = run_perplexity(fixture_model(), ids, modes, small_window_options(0));
  const auto chunked = run_perplexity(fixture_model(), ids, modes, small_window_options(64));
  ASSERT_EQ(whole.size(), 2u);
  EXPECT_EQ(whole[0].tokens_scored, 255);
  EXPECT_EQ(whole[0].far_tokens_scored, 256 - 40 - 1);
  EXPECT_TRUE(std::isfinite(whole[0].perplexity));
  EXPECT_GT(whole[0].perplexity, 1.0);
  EXPECT_NEAR(whole[0].perplexity, chunked[0].perplexity, 1e-4 * whole[0].perplexity);
  EXPECT_NE(whole[1].perplexity, whole[0].perplexity) << "a 32-key window must change the predictions";
}

#ifdef DATTN_BINARY
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(EvalEndToEnd, CliWritesJsonCsvAndSvg) {
  const auto out = std::filesystem::temp_directory_path() / "dattn_test_eval_cli";
  std::filesystem::remove_all(out);
  const std::string cmd = std::string(DATTN_BINARY) + " eval ruler --model " + kModelDir.string() +
                          " --lengths 384 --tasks niah_single_2,vt --samples 1 --attention dense,delta"
                          " --window 32 --sink 8 --gamma 8 --max-new-tokens 2 --out " + out.string() +
                          " > " + (out.string() + ".log") + " 2>&1";
  std::filesystem::create_directories(out);
  // vt's solved example alone needs about 500 tokens: the error must say so, not crash
  EXPECT_NE(std::system(cmd.c_str()), 0);
  EXPECT_NE(slurp(out.string() + ".log").find("vt"), std::string::npos);
  const std::string ok = std::string(DATTN_BINARY) + " eval ruler --model " + kModelDir.string() +
                         " --lengths 512,640 --tasks niah_single_2 --samples 1 --attention dense,delta"
                         " --window 32 --sink 8 --gamma 8 --max-new-tokens 2 --out " + out.string() + " > " +
                         (out.string() + ".log") + " 2>&1";
  ASSERT_EQ(std::system(ok.c_str()), 0) << slurp(out.string() + ".log");
  const auto doc = nlohmann::json::parse(slurp(out / "results.json"));
  EXPECT_EQ(doc["samples"].size(), 4u);
  EXPECT_NE(slurp(out / "results.csv").find("niah_single_2,640,delta,"), std::string::npos);
  EXPECT_NE(slurp(out / "plot.svg").find("<polyline"), std::string::npos);
  EXPECT_NE(slurp(out.string() + ".log").find("niah_single_2"), std::string::npos) << "the table is printed";
  std::filesystem::remove_all(out);
  std::filesystem::remove(out.string() + ".log");
}

// `eval fidelity --model FILE.gguf`: the F32 conversion of the fixture (tools/make_gguf_fixtures.py) holds the
// same weights and vocabulary, so every per-layer figure must be the same to the last printed digit; the
// Q4_1 file (the real model's quantization type) must give one finite row per layer and mode.
TEST(EvalEndToEnd, CliFidelityOnGgufEqualsTheSafetensorsModel) {
  const auto base = std::filesystem::temp_directory_path() / "dattn_test_eval_fidelity_gguf";
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  const std::filesystem::path gguf_dir = DATTN_SOURCE_DIR "/tests/fixtures/gguf";
  const auto run = [&](const std::filesystem::path& model, const std::string& name) {
    const std::string cmd = std::string(DATTN_BINARY) + " eval fidelity --model " + model.string() +
                            " --task niah_single_1 --length 512 --window 32 --sink 8 --gamma 8"
                            " --attention sparse,recompute,delta --threads 1 --out " + (base / name).string() +
                            " > " + (base / (name + ".log")).string() + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << slurp(base / (name + ".log"));
    return base / name;
  };
  const auto dir = run(kModelDir, "safetensors");
  const auto f32 = run(gguf_dir / "llama3_tied_sharded.F32.gguf", "f32");
  const auto q41 = run(gguf_dir / "llama3_tied_sharded.Q4_1.gguf", "q4_1");
  for (const char* file : {"fidelity.csv", "delta_transfer.csv"}) {
    ASSERT_FALSE(slurp(dir / file).empty()) << file;
    EXPECT_EQ(slurp(f32 / file), slurp(dir / file)) << file;
  }
  const auto doc = nlohmann::json::parse(slurp(q41 / "fidelity.json"));
  const size_t layers = size_t(fixture_model()->config().num_layers);
  ASSERT_EQ(doc["layers"].size(), layers * 3);
  for (const auto& row : doc["layers"])
    for (const char* key : {"attention_cosine", "attention_relative_error", "hidden_relative_error",
                            "one_layer_attention_relative_error"})
      EXPECT_TRUE(std::isfinite(row[key].get<double>())) << row.dump();
  std::filesystem::remove_all(base);
}
#endif

}  // namespace
}  // namespace dattn::eval
