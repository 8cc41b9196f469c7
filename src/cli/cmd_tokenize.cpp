// `dattn tokenize` / `dattn detokenize`: the model directory's tokenizer.json, from the command line.
#include <charconv>
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "attention_flags.h"
#include "commands.h"
#include "model_dir_option.h"
#include "dattn/core/error.h"
#include "dattn/model/tokenizer.h"

namespace dattn::cli {

std::vector<int32_t> parse_token_ids(std::string_view text) {
  std::vector<int32_t> ids;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '[')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == ']')) item.remove_suffix(1);
    int32_t id = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    DATTN_CHECK(ec == std::errc() && end == item.data() + item.size() && id >= 0 && !item.empty(),
                "--ids: '{}' is not a token id (expected comma-separated non-negative integers)", item);
    ids.push_back(id);
  }
  DATTN_CHECK(!ids.empty(), "--ids: no token ids given");
  return ids;
}

void add_tokenize_commands(CLI::App& app) {
  struct Flags {
    std::string model_dir, text, text_file, ids;
    bool no_special = false, keep_special = false;
  };
  auto f = std::make_shared<Flags>();

  CLI::App* tok = app.add_subcommand("tokenize", "Print the token ids of a text as JSON");
  tok->add_option("--model", f->model_dir, "model directory holding tokenizer.json, or a .gguf file")->required()->transform(model_dir_resolver());
  auto* text = tok->add_option("--text", f->text, "text to encode");
  auto* text_file = tok->add_option("--text-file", f->text_file, "file holding the text to encode (- reads stdin)");
  text->excludes(text_file);
  text_file->excludes(text);
  tok->add_flag("--no-special", f->no_special, "do not add special tokens (BOS)");
  tok->callback([f, text, text_file] {
    DATTN_CHECK(text->count() + text_file->count() == 1, "give the text with --text or --text-file");
    const std::string input = text_file->count() ? read_input_text("--text-file", f->text_file) : f->text;
    Tokenizer tokenizer = Tokenizer::load(f->model_dir);
    fmt::print("[{}]\n", fmt::join(tokenizer.encode(input, !f->no_special), ", "));
  });

  CLI::App* detok = app.add_subcommand("detokenize", "Print the text of comma-separated token ids");
  detok->add_option("--model", f->model_dir, "model directory holding tokenizer.json, or a .gguf file")->required()->transform(model_dir_resolver());
  detok->add_option("--ids", f->ids, "token ids, e.g. 1,2,3")->required();
  detok->add_flag("--keep-special", f->keep_special, "print special tokens too");
  detok->callback([f] {
    std::vector<int32_t> ids = parse_token_ids(f->ids);
    Tokenizer tokenizer = Tokenizer::load(f->model_dir);
    std::string text = tokenizer.decode(ids, !f->keep_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  });
}

}  // namespace dattn::cli
