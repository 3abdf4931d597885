#pragma once
// Persistent state (DESIGN.md sec. 3): a JSON document written atomically and checked on
// read, so a restart finds exactly what was last written, or says why it cannot.
//
// Format: {"format": "nodegate-state/1", "sha256": "<hex of data.dump()>", "data": {...}}.
// write(): temp file in the same directory, write, fsync, rename over the old file,
// fsync the directory - a crash leaves the old file or the new one, never a torn mix.
// read(): a missing file is empty state; a file that does not parse, has another
// format, or fails its checksum is an error naming the file and the problem - never
// silently replaced by empty state. Control thread only.

#include <expected>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace ng::control {

class StateFile {
 public:
  explicit StateFile(std::string path);

  // nullopt: no state yet (the file does not exist).
  [[nodiscard]] std::expected<std::optional<nlohmann::json>, std::string> read() const;
  [[nodiscard]] std::expected<void, std::string> write(const nlohmann::json& data) const;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace ng::control
