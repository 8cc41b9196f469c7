#include "run_log.h"

#include <cerrno>
#include <cstring>

#include "dattn/core/error.h"
#include "dattn/core/text_file.h"

namespace dattn::cli {

RunLog::RunLog(const std::filesystem::path& path, const nlohmann::json& settings, bool resume) : path_(path) {
  const std::string header = settings.dump();
  if (resume) {
    std::error_code ec;
    DATTN_CHECK(std::filesystem::is_regular_file(path, ec),
                "--resume: '{}' does not exist, so there is no run to continue", path.string());
    const std::string text = read_text_file(path);
    size_t begin = 0;
    std::vector<std::string> lines;
    // only complete lines: the last one lacks its newline when the run was killed while writing it
    for (size_t end; (end = text.find('\n', begin)) != std::string::npos; begin = end + 1)
      lines.push_back(text.substr(begin, end - begin));
    DATTN_CHECK(!lines.empty() && lines.front() == header,
                "--resume: '{}' was written by a run with other settings; run again without --resume (or with the "
                "same flags).\n  that run: {:.400}\n  this run: {:.400}",
                path.string(), lines.empty() ? std::string("(nothing)") : lines.front(), header);
    previous_.assign(lines.begin() + 1, lines.end());
  }
  // rewritten whole through a rename (drops a torn last line, so appended lines start on a line of their own)
  {
    std::filesystem::path fresh = path;
    fresh += ".new";
    std::FILE* out = std::fopen(fresh.c_str(), "w");
    DATTN_CHECK(out != nullptr, "cannot write the run log '{}': {}", fresh.string(), std::strerror(errno));
    std::fputs((header + "\n").c_str(), out);
    for (const std::string& line : previous_) std::fputs((line + "\n").c_str(), out);
    const bool written = std::fflush(out) == 0;
    std::fclose(out);
    DATTN_CHECK(written && std::rename(fresh.c_str(), path.c_str()) == 0, "cannot write the run log '{}': {}",
                path.string(), std::strerror(errno));
  }
  file_ = std::fopen(path.c_str(), "a");
  DATTN_CHECK(file_ != nullptr, "cannot append to the run log '{}': {}", path.string(), std::strerror(errno));
}

RunLog::~RunLog() {
  if (file_) std::fclose(file_);
}

void RunLog::append(const std::string& line) {
  DATTN_CHECK(std::fputs((line + "\n").c_str(), file_) >= 0 && std::fflush(file_) == 0,
              "cannot append to the run log '{}': {}", path_.string(), std::strerror(errno));
}

}  // namespace dattn::cli
