// dattn: the command line. Each subcommand lives in its own cmd_*.cpp (see commands.h).
#include <cstdio>
#include <exception>

#include <fmt/format.h>

#include "commands.h"
#include "dattn/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"dattn: Delta Attention, fast and accurate sparse-attention prefill for long contexts"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dattn 0.1.0");
  dattn::cli::add_attention_command(app);
  dattn::cli::add_bench_command(app);
  dattn::cli::add_demo_command(app);
  dattn::cli::add_demo_operator_command(app);
  dattn::cli::add_generate_command(app);
  dattn::cli::add_tokenize_commands(app);
  dattn::cli::add_logits_command(app);
  dattn::cli::add_eval_command(app);
  dattn::cli::add_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const dattn::Error& e) {
    fmt::print(stderr, "dattn: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "dattn: unexpected error: {}\n", e.what());
    return 2;
  }
  return 0;
}
