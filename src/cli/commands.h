// Each `dattn` subcommand lives in its own cmd_*.cpp and registers itself on the app here.
#pragma once
#include <CLI/CLI.hpp>

namespace dattn::cli {
void add_attention_command(CLI::App& app);  // cmd_attention.cpp
void add_bench_command(CLI::App& app);      // cmd_bench.cpp
void add_demo_command(CLI::App& app);       // cmd_demo.cpp: the embedded model on a needle prompt
void add_demo_operator_command(CLI::App& app);  // cmd_demo_operator.cpp
void add_generate_command(CLI::App& app);   // cmd_generate.cpp
void add_tokenize_commands(CLI::App& app);  // cmd_tokenize.cpp: tokenize, detokenize
void add_logits_command(CLI::App& app);     // cmd_logits.cpp
void add_eval_command(CLI::App& app);       // cmd_eval.cpp: eval ruler | ppl | fidelity
void add_serve_command(CLI::App& app);      // cmd_serve.cpp: the OpenAI-compatible server
std::vector<int32_t> parse_token_ids(std::string_view text);  // cmd_tokenize.cpp: "1,2,3" of --ids
}  // namespace dattn::cli
