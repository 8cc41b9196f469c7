// The files one command writes, handled together so that a failed command changes none of them:
// every path is checked before any work, every output is written to a temporary next to its target,
// and all of them are moved into place only once every one has been written.
#pragma once
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace dattn {

class OutputFiles {
 public:
  OutputFiles() = default;
  OutputFiles(const OutputFiles&) = delete;
  OutputFiles& operator=(const OutputFiles&) = delete;
  ~OutputFiles();  // removes temporaries that were never committed

  // Registers an output named by `flag` (for messages, e.g. "--out") and checks it now. Throws dattn::Error
  // when the path is empty or a directory, when it is the same file as another output (after following
  // symbolic links and hard links), when its folder does not exist or cannot be written, or when an
  // existing file cannot be written. A symbolic link is written through (the link stays); a device or
  // FIFO is written directly at commit; a regular file keeps its permission bits.
  void add(const std::string& flag, const std::filesystem::path& path);
  // Writes the concatenated pieces as the content of a registered output (to its temporary).
  void stage(const std::filesystem::path& path, std::initializer_list<std::string_view> pieces);
  // Moves every staged output into place. Throws on the first failure.
  void commit();

 private:
  struct Output {
    std::string flag;
    std::filesystem::path given, target, temporary;
    bool special = false;    // an existing non-regular file (device, FIFO): written directly at commit
    std::string held;        // the content of a special output until commit
    bool staged = false;
  };
  Output& find(const std::filesystem::path& path);
  std::vector<Output> outputs_;
};

}  // namespace dattn
