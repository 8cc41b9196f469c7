#include "regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "dattn/core/error.h"
#include "utf8.h"

namespace dattn::tokenizer_detail {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// Bounds backtracking so a hostile pattern fails with an error instead of running for hours.
constexpr uint32_t kMatchLimit = 10'000'000;

// Match context and JIT stack are per thread and reused, so splitting many small pieces stays cheap.
struct ThreadMatchContext {
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, nullptr);
  ThreadMatchContext() {
    if (context == nullptr || jit_stack == nullptr) return;
    pcre2_set_match_limit(context, kMatchLimit);
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadMatchContext() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
};

pcre2_match_context* thread_match_context() {
  thread_local ThreadMatchContext resources;
  if (resources.context == nullptr || resources.jit_stack == nullptr) fail("regex: out of memory creating match context");
  return resources.context;
}

struct MatchData {
  pcre2_match_data* data;
  explicit MatchData(const pcre2_code* code) : data(pcre2_match_data_create_from_pattern(code, nullptr)) {
    if (data == nullptr) fail("regex: out of memory creating match data");
  }
  ~MatchData() { pcre2_match_data_free(data); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
};

}  // namespace

Regex::Regex(std::string_view pattern) : pattern_(pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    fail("regex '{}' does not compile at offset {}: {}", pattern, error_offset, pcre2_message(error_code));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
  code_ = std::shared_ptr<void>(code, [](void* p) { pcre2_code_free(static_cast<pcre2_code*>(p)); });
}

Regex Regex::literal(std::string_view literal) {
  // \Q...\E quotes everything except a literal "\E", which is spliced in escaped.
  std::string pattern = "\\Q";
  for (size_t pos = 0; pos < literal.size(); ++pos) {
    if (literal.compare(pos, 2, "\\E") == 0) {
      pattern += "\\E\\\\E\\Q";
      ++pos;
    } else {
      pattern += literal[pos];
    }
  }
  pattern += "\\E";
  return Regex(pattern);
}

std::vector<ByteRange> Regex::find_all(std::string_view text) const {
  auto* code = static_cast<pcre2_code*>(code_.get());
  MatchData match(code);
  pcre2_match_context* context = thread_match_context();
  std::vector<ByteRange> matches;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    // The text was validated once up front; PCRE2 need not re-check it on every call.
    const int rc = pcre2_match(code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, match.data, context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("regex '{}' failed to match: {}", pattern_, pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
    const size_t start = ovector[0], end = ovector[1];
    if (end > start) {
      matches.push_back({start, end});
      offset = end;
    } else {
      if (matches.empty() || matches.back().end != start) matches.push_back({start, end});
      // Step over one character so the search moves on.
      if (start >= text.size()) break;
      offset = start + utf8_char_length(text, start);
    }
  }
  return matches;
}

std::string Regex::replace_all(std::string_view text, std::string_view replacement) const {
  std::string out;
  out.reserve(text.size());
  size_t previous = 0;
  for (const ByteRange& match : find_all(text)) {
    out.append(text.substr(previous, match.start - previous));
    out.append(replacement);
    previous = match.end;
  }
  out.append(text.substr(previous));
  return out;
}

}  // namespace dattn::tokenizer_detail
