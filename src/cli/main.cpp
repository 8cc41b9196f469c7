// dattn: the command line. Each subcommand lives in its own cmd_*.cpp (see commands.h).
#include <cstdio>
#include <exception>
#include <new>

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
    // --help and --version exit 0; every refusal of a flag exits 1, as every other error does
    return app.exit(e) == 0 ? 0 : 1;
  } catch (const dattn::Error& e) {
    fmt::print(stderr, "dattn: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "dattn: error: out of memory: the run needs more memory than is available (lower the "
                       "length, --ctx, --chunk or the batch of work)\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "dattn: unexpected error: {}\n", e.what());
    return 2;
  }
  return 0;
}
