// Hostile and careless input on every `dattn` command it applies to: extreme parameters, NaN inputs,
// out-of-range and empty flag values, directories and stdin as inputs, outputs that are links, devices,
// protected or the same file, interrupted evals, and one prefill chunk for every command. Each refusal
// exits 1 with a message naming the flag, the value and the allowed range, never a C++ exception name.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dattn/io/npy.h"
#include "dattn/model/tokenizer.h"
#include "model_fixtures.h"

namespace dattn {
namespace {

namespace fs = std::filesystem;
using test::read_text;
using test::write_text;

struct Result {
  int code;
  std::string out, err;
};

// Runs `env dattn args < input` in dir with stdout and stderr in files (so stderr is not a terminal).
Result dattn(const std::string& args, const fs::path& dir, const std::string& env = "",
             const std::string& input = "/dev/null") {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string command =
      fmt::format("cd {} && {} {} {} < {} > {} 2> {}", dir.string(), env, DATTN_BINARY, args, input, out.string(),
                  err.string());
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(out), read_text(err)};
}

// A refusal: exit code 1, the message holds `needle`, and no raw C++ exception text.
void expect_refusal(const Result& r, const std::string& needle, const std::string& what) {
  EXPECT_EQ(r.code, 1) << what << "\n" << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << what << "\nstderr: " << r.err;
  for (const char* raw : {"std::", "stoll", "bad_alloc", "_M_", "unexpected error", "terminate"})
    EXPECT_EQ(r.err.find(raw), std::string::npos) << what << "\nstderr: " << r.err;
}

const std::string kMax = "9223372036854775807";

std::vector<float> load_f32(const fs::path& p) {
  const npy::Array a = npy::load(p);
  std::vector<float> v(size_t(a.numel()));
  std::memcpy(v.data(), a.bytes.data(), v.size() * 4);
  return v;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = a.size() == b.size() ? 0 : INFINITY;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return std::isnan(m) ? INFINITY : m;
}

struct OperatorInputs {
  test::TempDir dir;
  OperatorInputs() {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal;
    for (const char* name : {"q", "k", "v"}) {
      std::vector<float> values(1 * 150 * 2 * 16);
      for (float& x : values) x = normal(rng);
      npy::save_f32(dir.path / fmt::format("{}.npy", name), {1, 150, 2, 16}, values.data());
      if (std::string(name) == "q") {
        values[size_t(((0 * 150 + 70) * 2 + 1) * 16 + 3)] = std::nanf("");
        npy::save_f32(dir.path / "q_nan.npy", {1, 150, 2, 16}, values.data());
      }
    }
  }
  std::string args(const std::string& rest, const std::string& q = "q.npy") const {
    return "attention --q " + q + " --k k.npy --v v.npy " + rest;
  }
};

// ---- class 3: parameters near INT64_MAX

TEST(HostileCli, AttentionExtremeParametersComputeDenseEverywhere) {
  OperatorInputs in;
  ASSERT_EQ(dattn(in.args("--mode dense --out dense.npy --lse dense_lse.npy"), in.dir.path).code, 0);
  const auto dense = load_f32(in.dir.path / "dense.npy"), dense_lse = load_f32(in.dir.path / "dense_lse.npy");
  for (const std::string& flags : {"--gamma " + kMax, "--tail-min " + kMax, "--window " + kMax + " --sink " + kMax,
                                   "--gamma " + kMax + " --tail-min " + kMax}) {
    for (const char* backend : {"cpu", "reference"}) {
      const Result r = dattn(in.args(fmt::format("--mode delta --backend {} {} --out o.npy --lse l.npy", backend, flags)),
                             in.dir.path);
      ASSERT_EQ(r.code, 0) << flags << "\n" << r.err;
      // every row is dense: the same rows as the dense run (same backend family, fp32 accumulation)
      EXPECT_LE(max_abs_diff(load_f32(in.dir.path / "o.npy"), dense), 1e-5) << flags << " " << backend;
      EXPECT_LE(max_abs_diff(load_f32(in.dir.path / "l.npy"), dense_lse), 1e-5) << flags << " " << backend;
    }
  }
}

// ---- classes 4, 5, 6, 10: refusals name the flag, the value and the range

TEST(HostileCli, AttentionRefusesBadValuesClearly) {
  OperatorInputs in;
  struct Case {
    std::string flags, needle;
  };
  const std::vector<Case> cases = {
      {"--scale 1e38", "--scale: '1e38' is not a number in the allowed range (0, 1e+30]"},
      {"--threads 2147483647", "--threads: '2147483647' is not an integer in the allowed range 0 .. 4096"},
      {"--sink ''", "--sink: '' is not an integer in the allowed range 0 .. " + kMax},
      {"--gamma 0", "--gamma: '0' is not an integer in the allowed range 1 .. " + kMax},
      {"--window 99999999999999999999", "--window: '99999999999999999999' is not an integer in the allowed range"},
      {"--tail-min -5", "--tail-min: '-5' is not an integer in the allowed range 0 .. " + kMax},
  };
  for (const Case& c : cases) expect_refusal(dattn(in.args(c.flags + " --out o.npy"), in.dir.path), c.needle, c.flags);
  expect_refusal(dattn(in.args("--out o.npy"), in.dir.path, "DATTN_NUM_THREADS=2147483648"),
                 "DATTN_NUM_THREADS='2147483648' is not a thread count (allowed: 1 .. 4096)", "DATTN_NUM_THREADS");
  EXPECT_FALSE(fs::exists(in.dir.path / "o.npy"));
}

TEST(HostileCli, AttentionRefusesNaNInputsAndKeepsTheOldOutput) {
  OperatorInputs in;
  write_text(in.dir.path / "o.npy", "previous");
  for (const char* backend : {"cpu", "reference"})
    expect_refusal(dattn(in.args(fmt::format("--backend {} --out o.npy", backend), "q_nan.npy"), in.dir.path),
                   "q holds a non-finite value (nan) at [0, 70, 1, 3]", backend);
  EXPECT_EQ(read_text(in.dir.path / "o.npy"), "previous");
}

// ---- class 7: outputs

TEST(HostileCli, AttentionOutputsAreCheckedFirstAndCommittedTogether) {
  OperatorInputs in;
  const fs::path& d = in.dir.path;
  write_text(d / "x.npy", "old x");
  expect_refusal(dattn(in.args("--out x.npy --lse x.npy"), d), "name the same file", "--out X --lse X");
  EXPECT_EQ(read_text(d / "x.npy"), "old x");
  // --lse cannot be written: --out stays as it was
  expect_refusal(dattn(in.args("--out x.npy --lse missing/l.npy"), d), "does not exist", "--lse in a missing folder");
  EXPECT_EQ(read_text(d / "x.npy"), "old x");
  // a symbolic link is written through and the target keeps its mode 600
  write_text(d / "target.npy", "old");
  ::chmod((d / "target.npy").c_str(), 0600);
  fs::create_symlink("target.npy", d / "link.npy");
  ASSERT_EQ(dattn(in.args("--out link.npy"), d).code, 0);
  EXPECT_TRUE(fs::is_symlink(d / "link.npy"));
  EXPECT_EQ(npy::load(d / "target.npy").shape, (std::vector<int64_t>{1, 150, 2, 16}));
  struct stat st {};
  ASSERT_EQ(::stat((d / "target.npy").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // a device is written, not replaced by a regular file
  EXPECT_EQ(dattn(in.args("--out /dev/null"), d).code, 0);
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  // nothing but the outputs is left in the folder (no temporaries)
  for (const auto& entry : fs::directory_iterator(d))
    EXPECT_EQ(entry.path().filename().string().find(".dattn-"), std::string::npos) << entry.path();
}

TEST(HostileCli, BenchRefusesBadListsAndWritesNoCarriageReturnsToAFile) {
  test::TempDir dir;
  expect_refusal(dattn("bench attention --lengths abc", dir.path),
                 "--lengths: 'abc' is not an integer in the allowed range 1 .. 1073741824", "--lengths abc");
  expect_refusal(dattn("bench attention --lengths 64, --repeats 1", dir.path), "--lengths: '' is not an integer",
                 "--lengths 64,");
  expect_refusal(dattn("bench attention --lengths 64 --svg missing/p.svg", dir.path), "does not exist", "--svg");
  const Result r = dattn("bench attention --lengths 64 --heads 1 --head-dim 16 --repeats 1 --svg p.svg", dir.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("n=64 delta: 1 runs"), std::string::npos) << r.err;
  EXPECT_TRUE(read_text(dir.path / "p.svg").starts_with("<svg"));
}

// ---- the model commands

std::string fixture(const std::string& name = "llama3_tied_sharded") { return (test::models_dir() / name).string(); }

TEST(HostileCli, LogitsRefusesEmptyIdsAndNaNQueries) {
  test::TempDir dir;
  expect_refusal(dattn("logits --model " + fixture() + " --ids '' --out l.npy", dir.path), "--ids: no token ids given",
                 "--ids ''");
  // rope_theta 1e-300 makes the rotary frequencies overflow fp32: the queries are NaN from position 0 (the
  // kernels used to drop them and give finite logits)
  const fs::path model = dir.path / "model";
  fs::copy(fixture(), model, fs::copy_options::recursive);
  auto config = nlohmann::json::parse(read_text(model / "config.json"));
  config["rope_theta"] = 1e-300;
  write_text(model / "config.json", config.dump());
  const Result r = dattn("logits --model model --ids 1,2,3 --out l.npy", dir.path);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("dattn: error:"), std::string::npos) << r.err;  // a config check or the NaN queries
  EXPECT_FALSE(fs::exists(dir.path / "l.npy"));
}

TEST(HostileCli, PromptsPastTheTrainedContextWarn) {
  test::TempDir dir;
  std::string ids = "1";
  for (int i = 0; i < 299; ++i) ids += ",5";
  const Result r = dattn("logits --model " + fixture() + " --ids " + ids + " --out l.npy", dir.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: the input has 300 tokens, more than the model's max_position_embeddings 256"),
            std::string::npos)
      << r.err;
}

TEST(HostileCli, GenerateInputsAndLimits) {
  test::TempDir dir;
  const std::string base = "generate --model " + fixture() + " --max-new-tokens 5 ";
  expect_refusal(dattn(base + "--prompt-file .", dir.path), "--prompt-file '.' is a directory", "directory prompt");
  expect_refusal(dattn(base + "--prompt hi --ctx -1", dir.path),
                 "--ctx: '-1' is not an integer in the allowed range 0 .. 2147483648", "--ctx -1");
  expect_refusal(dattn("generate --model " + fixture() + " --prompt hi --max-new-tokens -1", dir.path),
                 "--max-new-tokens: '-1' is not an integer in the allowed range 0 .. 1073741824", "--max-new-tokens -1");
  expect_refusal(dattn(base + "--prompt hi --seed -1", dir.path),
                 "--seed: '-1' is not an integer in the allowed range 0 .. 18446744073709551615", "--seed -1");
  const Result greedy = dattn(base + "--prompt 'Hello world' --greedy", dir.path);
  ASSERT_EQ(greedy.code, 0) << greedy.err;
  // stdin as the prompt file; a subnormal temperature decodes greedily instead of sampling the unlikely
  write_text(dir.path / "prompt.txt", "Hello world");
  const Result from_stdin = dattn(base + "--prompt-file - --temperature 1e-310 --seed 5", dir.path, "", "prompt.txt");
  ASSERT_EQ(from_stdin.code, 0) << from_stdin.err;
  EXPECT_EQ(from_stdin.out, greedy.out);
  EXPECT_NE(from_stdin.err.find("greedy (temperature 1e-310 is below 0.001)"), std::string::npos) << from_stdin.err;
}

TEST(HostileCli, TokenizeReadsTextFilesAndStdin) {
  test::TempDir dir;
  const std::string m = "--model " + fixture("qwen2_bias_tied");
  const Result text = dattn("tokenize " + m + " --text 'The quick brown fox'", dir.path);
  ASSERT_EQ(text.code, 0) << text.err;
  write_text(dir.path / "t.txt", "The quick brown fox");
  EXPECT_EQ(dattn("tokenize " + m + " --text-file t.txt", dir.path).out, text.out);
  EXPECT_EQ(dattn("tokenize " + m + " --text-file -", dir.path, "", "t.txt").out, text.out);
  expect_refusal(dattn("tokenize " + m + " --text-file .", dir.path), "is a directory", "tokenize directory");
}

TEST(HostileCli, InvalidModelEnvironmentIsAnErrorNotAFallback) {
  test::TempDir dir;
  expect_refusal(dattn("demo --samples 1 --length 256", dir.path, "DATTN_MODEL=/nonexistent"),
                 "DATTN_MODEL='/nonexistent' is not a model directory", "DATTN_MODEL");
}

TEST(HostileCli, DemoOperatorAtShortLengths) {
  test::TempDir dir;
  const Result r = dattn("demo-operator --length 1024 --heads 1 --head-dim 16", dir.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("dattn demo-operator:")) << r.out;
  EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cover every key"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;  // stderr is a file here: no redrawn progress
}

TEST(HostileCli, EvalFlagsAndHelp) {
  test::TempDir dir;
  const std::string m = " --model " + fixture();
  expect_refusal(dattn("eval ruler" + m + " --lengths abc", dir.path),
                 "--lengths: 'abc' is not an integer in the allowed range 1 .. 2147483648", "--lengths abc");
  write_text(dir.path / "text.txt", "some words");
  expect_refusal(dattn("eval ppl" + m + " --text text.txt --length -1", dir.path),
                 "--length: '-1' is not an integer in the allowed range 2 .. 2147483648", "--length -1");
  write_text(dir.path / "file", "x");
  expect_refusal(dattn("eval ppl" + m + " --text text.txt --out file", dir.path), "--out 'file'", "--out a file");
  const std::string ppl_help = dattn("eval ppl --help", dir.path).out;
  EXPECT_NE(ppl_help.find("ppl.json and ppl.csv"), std::string::npos) << ppl_help;
  EXPECT_EQ(ppl_help.find("results.json"), std::string::npos) << ppl_help;
  const std::string fidelity_help = dattn("eval fidelity --help", dir.path).out;
  EXPECT_NE(fidelity_help.find("fidelity.json"), std::string::npos) << fidelity_help;
  EXPECT_EQ(fidelity_help.find("results.json"), std::string::npos) << fidelity_help;
}

// The results without the timings (measurements differ from run to run).
nlohmann::json without_timings(nlohmann::json items) {
  for (auto& item : items)
    for (const char* key : {"prefill_ms", "decode_ms"}) item.erase(key);
  return items;
}

// Cuts a run log to its header and first `keep` units plus half of the next line, as a kill mid-write leaves it.
void interrupt_log(const fs::path& log, size_t keep) {
  const std::string text = read_text(log);
  size_t end = 0;
  for (size_t line = 0; line <= keep; ++line) end = text.find('\n', end) + 1;
  const size_t next = text.find('\n', end);
  write_text(log, text.substr(0, end + (next - end) / 2));
}

TEST(HostileCli, InterruptedRulerEvalResumesToTheSameResults) {
  test::TempDir dir;
  const std::string run = "eval ruler --model " + fixture() +
                          " --lengths 400 --samples 2 --tasks niah_single_1 --attention dense,delta "
                          "--window 8 --sink 4 --gamma 4 --max-new-tokens 3 ";
  ASSERT_EQ(dattn(run + "--out full", dir.path).code, 0);
  const auto full = nlohmann::json::parse(read_text(dir.path / "full/results.json"));
  ASSERT_EQ(full["samples"].size(), 4u);
  fs::create_directories(dir.path / "cut");
  fs::copy_file(dir.path / "full/records.jsonl", dir.path / "cut/records.jsonl");
  interrupt_log(dir.path / "cut/records.jsonl", 1);
  expect_refusal(dattn(run + "--out cut --resume --seed 7", dir.path), "other settings", "resume, other flags");
  // the key pattern and the delta variant change the results as much as the window does
  expect_refusal(dattn(run + "--out cut --resume --pattern block_topk --block-q 8 --block-k 8 --topk 2", dir.path),
                 "other settings", "resume, other pattern");
  expect_refusal(dattn(run + "--out cut --resume --delta-variant interpolate", dir.path), "other settings",
                 "resume, other delta variant");
  expect_refusal(dattn(run + "--out nothing --resume", dir.path), "no run to continue", "resume, no log");
  const Result resumed = dattn(run + "--out cut --resume", dir.path);
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  const auto cut = nlohmann::json::parse(read_text(dir.path / "cut/results.json"));
  EXPECT_EQ(without_timings(cut["samples"]), without_timings(full["samples"]));
  EXPECT_EQ(cut["samples"][0]["prefill_ms"], full["samples"][0]["prefill_ms"]);  // kept, not run again
  const std::string log = read_text(dir.path / "cut/records.jsonl");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 5);  // the settings and 4 records, the torn line gone
}

// A text of about `words` tokens for the fixture tokenizers.
void write_words(const fs::path& path, int words) {
  std::string text;
  std::mt19937 rng(9);
  const char* vocabulary[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "runs"};
  for (int i = 0; i < words; ++i) text += std::string(vocabulary[rng() % 10]) + (i % 13 == 12 ? ".\n" : " ");
  write_text(path, text);
}

TEST(HostileCli, InterruptedPerplexityEvalResumesToTheSameResults) {
  test::TempDir dir;
  write_words(dir.path / "text.txt", 400);
  const std::string run = "eval ppl --model " + fixture() +
                          " --text text.txt --length 200 --attention dense,sparse,delta --window 8 --sink 4 --gamma 4 ";
  ASSERT_EQ(dattn(run + "--out full", dir.path).code, 0);
  fs::create_directories(dir.path / "cut");
  fs::copy_file(dir.path / "full/ppl.jsonl", dir.path / "cut/ppl.jsonl");
  interrupt_log(dir.path / "cut/ppl.jsonl", 1);
  ASSERT_EQ(dattn(run + "--out cut --resume", dir.path).code, 0);
  const auto full = nlohmann::json::parse(read_text(dir.path / "full/ppl.json"));
  const auto cut = nlohmann::json::parse(read_text(dir.path / "cut/ppl.json"));
  EXPECT_EQ(without_timings(cut["results"]), without_timings(full["results"]));
}

// One default chunk everywhere: `logits` and `eval ppl` (and `generate`, through the same default) give
// the same delta-mode logits for a prompt longer than the CPU's old 2048-token chunk.
TEST(HostileCli, DefaultChunkIsTheSameInLogitsAndEval) {
  test::TempDir dir;
  write_words(dir.path / "text.txt", 3000);
  const std::string flags = " --model " + fixture() + " --attention delta --window 16 --sink 4 --gamma 8 ";
  const Result ppl = dattn("eval ppl" + flags + "--text text.txt --length 2300 --out eval", dir.path);
  ASSERT_EQ(ppl.code, 0) << ppl.err;
  // the ids eval ppl scores: the text encoded with BOS, cut to --length
  std::vector<int32_t> id_list = Tokenizer::load(fixture()).encode(read_text(dir.path / "text.txt"), true);
  ASSERT_GE(id_list.size(), 2300u);
  id_list.resize(2300);
  std::string id_text;
  for (int32_t id : id_list) id_text += (id_text.empty() ? "" : ",") + std::to_string(id);
  const Result logits = dattn("logits" + flags + "--ids " + id_text + " --out l.npy", dir.path);
  ASSERT_EQ(logits.code, 0) << logits.err;
  const npy::Array a = npy::load(dir.path / "l.npy");
  const int64_t vocab = a.shape[1];
  const auto values = load_f32(dir.path / "l.npy");
  double nll = 0;
  for (size_t row = 0; row + 1 < id_list.size(); ++row) {
    const float* l = values.data() + row * size_t(vocab);
    double max_logit = l[0], sum = 0;
    for (int64_t v = 1; v < vocab; ++v) max_logit = std::max(max_logit, double(l[v]));
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(l[v]) - max_logit);
    nll += max_logit + std::log(sum) - double(l[id_list[row + 1]]);
  }
  const double from_logits = std::exp(nll / double(id_list.size() - 1));
  const double from_eval =
      nlohmann::json::parse(read_text(dir.path / "eval/ppl.json"))["results"][0]["perplexity"].get<double>();
  // the same float32 logits summed in double in the same order: equal up to the printing of ppl.json
  EXPECT_NEAR(from_logits / from_eval, 1.0, 1e-9) << from_logits << " vs " << from_eval;
}

}  // namespace
}  // namespace dattn
