#include "hostile_support.h"

#include <sys/wait.h>

#include <cstdlib>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "dattn/core/error.h"

namespace dattn::test {

namespace fs = std::filesystem;

fs::path copy_fixture(const std::string& name, const fs::path& parent) {
  const fs::path copy = parent / name;
  fs::copy(models_dir() / name, copy, fs::copy_options::recursive);
  return copy;
}

std::string deeply_nested_json(int depth) { return std::string(size_t(depth), '[') + std::string(size_t(depth), ']'); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a dattn::Error: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted; expected an error";
  return "(no error)";
}

void expect_short_error(const std::string& message, const std::string& needle) {
  EXPECT_NE(message.find(needle), std::string::npos) << "expected '" << needle << "' in: " << message.substr(0, 1000);
  EXPECT_LT(message.size(), 600u) << message.substr(0, 1000);
  for (const char* raw : {"bad_alloc", "stoll", "stoi", "vector::", "basic_string", "json.exception", "what()"})
    EXPECT_EQ(message.find(raw), std::string::npos) << message.substr(0, 1000);
}

CommandResult run_dattn(const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string command = fmt::format("{} {} > {} 2> {} < /dev/null", DATTN_BINARY, args, out.string(), err.string());
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(out), read_text(err)};
}

}  // namespace dattn::test
