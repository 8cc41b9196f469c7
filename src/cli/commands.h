// Each `dattn` subcommand lives in its own cmd_*.cpp and registers itself on the app here.
#pragma once
#include <CLI/CLI.hpp>

namespace dattn::cli {
void add_attention_command(CLI::App& app);  // cmd_attention.cpp
void add_bench_command(CLI::App& app);      // cmd_bench.cpp
void add_demo_command(CLI::App& app);       // cmd_demo.cpp
}  // namespace dattn::cli
